"""HTTP: the Starlette application around a `Gateway`.

Routes: POST and GET /graphql (GraphQL over HTTP; a browser's GET gets
GraphiQL, whose files are under /graphiql/), GET /schema.graphql (the
client supergraph SDL), GET /health, GET /ready and POST /admin/reload
(guarded by the `X-Admin-Secret` header). The lifespan owns the gateway:
the first composition, the polling task and the pooled subgraph client.

Malformed input gets a 4xx with a code, never a 500: bodies are parsed by
orjson (strict UTF-8, no lone surrogates, nesting bounded), variables and
extensions nested deeper than `MAX_VALUE_NESTING` are refused, and responses
larger than `max_response_bytes` are replaced by an error. Cross-site request
forgery is refused as Apollo Server's `csrfPrevention` does: a browser sends a
"simple" request (no `Content-Type`, or a form or `text/plain` one) cross-site
without a CORS preflight, so such a request must carry a header only a
preflighted request can (`PREFLIGHT_HEADERS`); a POST otherwise needs
`Content-Type: application/json`.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from veche_gateway import sse, ws
from veche_gateway.errors import (
    INTERNAL,
    QUERY_TOO_COMPLEX,
    RESPONSE_TOO_LARGE,
    RequestError,
)
from veche_gateway.gateway import Gateway, GraphQLRequest, NotASubscription
from veche_gateway.graphiql import GraphiQLFiles, wants_page
from veche_gateway.instances import first_instance
from veche_gateway.language import language, language_var, said
from veche_gateway.metrics import MetricsMiddleware
from veche_gateway.passthrough import open311_route
from veche_gateway.photos import photo_routes
from veche_gateway.settings import Settings
from veche_gateway.subscriptions import LiveLimit, SubscriptionFailed

log = logging.getLogger("veche_gateway")

GRAPHQL_RESPONSE = "application/graphql-response+json"
# accept-language: the users subgraph renders the inbox in the reader's language.
FORWARDED_HEADERS = ("authorization", "traceparent", "tracestate", "accept-language")
ADMIN_HEADER = "x-admin-secret"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Content types a browser sends cross-site without asking (no CORS preflight).
SIMPLE_CONTENT_TYPES = frozenset(
    {"", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"}
)
# Headers only a preflighted request can carry (Apollo's, and its client's name).
PREFLIGHT_HEADERS = (
    "apollo-require-preflight",
    "x-apollo-operation-name",
    "apollographql-client-name",
)
JSON_CONTENT_TYPES = frozenset({"application/json", GRAPHQL_RESPONSE})
# Variables and extensions nested deeper than this are refused: no GraphQL input
# type a client sends nests this deep, and the recursive coercion must not overflow.
MAX_VALUE_NESTING = 64


class _TooLarge(Exception):
    pass


def encode(content: Any) -> bytes:
    """A response body as JSON: orjson, or the standard library for what orjson
    refuses (a lone surrogate or an integer past 64 bits in a subgraph's data)."""
    try:
        encoded: bytes = orjson.dumps(content)
        return encoded
    except TypeError:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode()


class ORJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return encode(content)


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > limit:
            raise _TooLarge
    return bytes(chunks)


def _json(value: str | bytes | None, what: str) -> Any:
    if value is None or value == "" or value == b"":
        return None
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        detail = str(exc).split(":", 1)[0]  # e.g. "depth limit exceeded", "no low surrogate"
        raise RequestError(
            f"{what} is not valid JSON: {detail}",
            graphql_level=False,
            ru=f"{_WHAT_RU.get(what, what)}: некорректный JSON ({detail})",
        ) from None


_WHAT_RU = {"The request body": "Тело запроса"}


def _too_deep(value: Any, limit: int) -> bool:
    """The value nests lists and objects deeper than `limit` (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        if depth >= limit:
            return True
        stack.extend((child, depth + 1) for child in item)
    return False


def _csrf_safe(request: Request) -> bool:
    """The request could not have been sent cross-site by a browser without a preflight."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in SIMPLE_CONTENT_TYPES:
        return True
    return any(request.headers.get(name) for name in PREFLIGHT_HEADERS)


def _check_request(request: Request) -> None:
    """Refuse a request a browser could send cross-site unasked, or a body not in JSON."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if request.method == "GET" and media == "":
        return  # a plain GET runs queries only: mutations are refused over GET
    if not _csrf_safe(request):
        raise RequestError(
            "This request has been blocked as a potential cross-site request forgery: send"
            " Content-Type: application/json, or one of the headers "
            + ", ".join(PREFLIGHT_HEADERS),
            graphql_level=False,
            ru="Запрос заблокирован как возможная межсайтовая подделка (CSRF): отправьте"
            " Content-Type: application/json или один из заголовков "
            + ", ".join(PREFLIGHT_HEADERS),
        )
    if (
        request.method == "POST"
        and media not in JSON_CONTENT_TYPES
        and media not in (SIMPLE_CONTENT_TYPES)
    ):
        raise RequestError(
            f"Unsupported Content-Type {media}: send the request as application/json",
            status=415,
            graphql_level=False,
            ru=f"Content-Type {media} не поддерживается: отправьте запрос как application/json",
        )


def _graphql_request(params: dict[str, Any]) -> GraphQLRequest:
    query = params.get("query")
    operation_name = params.get("operationName")
    variables = params.get("variables")
    extensions = params.get("extensions")
    if query is not None and not isinstance(query, str):
        raise RequestError(
            "query must be a string", graphql_level=False, ru="query должен быть строкой"
        )
    if operation_name is not None and not isinstance(operation_name, str):
        raise RequestError(
            "operationName must be a string",
            graphql_level=False,
            ru="operationName должен быть строкой",
        )
    if variables is not None and not isinstance(variables, dict):
        raise RequestError(
            "variables must be an object", graphql_level=False, ru="variables должен быть объектом"
        )
    if extensions is not None and not isinstance(extensions, dict):
        raise RequestError(
            "extensions must be an object",
            graphql_level=False,
            ru="extensions должен быть объектом",
        )
    for name, value in (("variables", variables), ("extensions", extensions)):
        if _too_deep(value, MAX_VALUE_NESTING):
            raise RequestError(
                f"{name} are nested more than {MAX_VALUE_NESTING} levels deep",
                graphql_level=False,
                ru=f"{name} вложены глубже {MAX_VALUE_NESTING} уровней",
            )
    return GraphQLRequest(query, operation_name, variables or {}, extensions)


async def _params(request: Request, limit: int) -> dict[str, Any]:
    """The GraphQL request parameters, from the query string (GET) or the JSON body."""
    if request.method == "GET":
        return {
            "query": request.query_params.get("query"),
            "operationName": request.query_params.get("operationName") or None,
            "variables": _json(request.query_params.get("variables"), "variables"),
            "extensions": _json(request.query_params.get("extensions"), "extensions"),
        }
    try:
        raw = await _body(request, limit)
    except _TooLarge:
        raise RequestError(
            f"The request body exceeds {limit} bytes",
            status=413,
            graphql_level=False,
            ru=f"Тело запроса больше {limit} байт",
        ) from None
    params = _json(raw, "The request body")
    if not isinstance(params, dict):
        raise RequestError(
            "The request body must be a JSON object",
            graphql_level=False,
            ru="Тело запроса должно быть объектом JSON",
        )
    return params


# The gateway's own errors of a whole response, in English and Russian.
_ERRORS = {
    "nested": (
        "The operation is too complex: it is nested too deeply",
        "Операция слишком сложна: она вложена слишком глубоко",
    ),
    "internal": ("Internal gateway error", "Внутренняя ошибка шлюза"),
    "unencodable": ("The response cannot be encoded", "Ответ не удаётся закодировать"),
    "forbidden": ("Forbidden", "Доступ запрещён"),
}


def _error(what: str, code: str) -> dict[str, Any]:
    return {"message": said(*_ERRORS[what]), "extensions": {"code": code}}


def _too_large(size: int, limit: int) -> dict[str, Any]:
    message = said(
        f"The response would be {size} bytes, the limit is {limit}: select fewer fields or"
        " fewer items",
        f"Ответ занял бы {size} байт, предел — {limit}: выберите меньше полей или элементов",
    )
    return {"message": message, "extensions": {"code": RESPONSE_TOO_LARGE}}


class LanguageMiddleware:
    """Sets the request's language (`Accept-Language`) for the gateway's own messages."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers") or [])
        accept = headers.get(b"accept-language", b"").decode("latin-1")
        token = language_var.set(language(accept))
        try:
            await self.app(scope, receive, send)
        finally:
            language_var.reset(token)


def _is_admin(request: Request, settings: Settings) -> bool:
    """The request carries the admin secret (an empty secret admits no one)."""
    given = request.headers.get(ADMIN_HEADER, "")
    secret = settings.admin_secret
    return bool(secret) and hmac.compare_digest(given.encode(), secret.encode())


def _forwarded(connection: HTTPConnection) -> dict[str, str]:
    """What the subgraphs get of the client's request (or WebSocket upgrade) headers."""
    request_id = connection.headers.get("x-request-id", "")
    if not _REQUEST_ID.fullmatch(request_id):
        request_id = uuid.uuid4().hex  # absent or unsafe to pass on
    forwarded = {"X-Request-Id": request_id}
    for name in FORWARDED_HEADERS:
        if name in connection.headers:
            forwarded[name] = connection.headers[name]
    # The subgraphs rate-limit per client: pass on who called, as a proxy does.
    client = connection.client
    hops = [connection.headers.get("x-forwarded-for"), client and client.host]
    forwarded["X-Forwarded-For"] = ", ".join(h for h in hops if h)
    return forwarded


def create_app(settings: Settings | None = None, gateway: Gateway | None = None) -> Starlette:
    settings = settings or Settings()
    gateway = gateway or Gateway(settings)
    graphiql = GraphiQLFiles(settings.graphiql_dir) if settings.graphiql else None
    # WebSockets and event streams open per client address (ws.py, sse.py).
    live_limit = LiveLimit(settings.max_live_connections_per_client)
    # Non-GraphQL routes passed to a subgraph (Open311) have a client of their own.
    passthrough = httpx.AsyncClient(timeout=settings.fetch_timeout_seconds)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if graphiql is not None and not graphiql.built:
            log.warning(
                "GraphiQL is not built in %s: run gateway/graphiql/build.sh", graphiql.directory
            )
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()
            await passthrough.aclose()

    async def graphql(request: Request) -> Response:
        if graphiql is not None and wants_page(request):
            return graphiql.page(request)
        forwarded = _forwarded(request)
        request_id = forwarded["X-Request-Id"]
        strict = GRAPHQL_RESPONSE in request.headers.get("accept", "")
        media_type = GRAPHQL_RESPONSE if strict else "application/json"
        headers = {"X-Request-Id": request_id}
        try:
            _check_request(request)
            params = await _params(request, settings.max_body_bytes)
            if sse.wanted(request):
                # urql and others accept an event stream for every operation: a query
                # or mutation gets its one answer as JSON
                with contextlib.suppress(NotASubscription):
                    return sse.open_stream(
                        request, gateway, _graphql_request(params), forwarded, live_limit
                    )
            body = await gateway.execute(
                _graphql_request(params),
                forwarded,
                allow_mutations=request.method == "POST",
                with_plan=_is_admin(request, settings),
            )
        except SubscriptionFailed as failed:
            return ORJSONResponse({"errors": failed.errors}, 400, headers, "application/json")
        except RequestError as exc:
            # GraphQL-over-HTTP: plain JSON clients get 200 for GraphQL-level refusals
            status = 200 if exc.graphql_level and not strict else exc.status
            return ORJSONResponse({"errors": exc.said()}, status, headers, media_type)
        except RecursionError:  # a backstop: every input's nesting is bounded before this
            log.warning("request %s: nested too deeply", request_id)
            error = _error("nested", QUERY_TOO_COMPLEX)
            return ORJSONResponse({"errors": [error]}, 200 if not strict else 400, headers)
        except Exception:
            log.exception("request %s failed", request_id)
            error = _error("internal", INTERNAL)
            return ORJSONResponse({"errors": [error]}, 500, headers, media_type)
        try:
            encoded = encode(body)
        except (TypeError, ValueError, RecursionError):  # a subgraph sent what JSON cannot hold
            log.exception("request %s: the response cannot be encoded", request_id)
            error = _error("unencodable", INTERNAL)
            return ORJSONResponse({"errors": [error]}, 502, headers, media_type)
        if len(encoded) > settings.max_response_bytes:
            log.warning("request %s: a response of %d bytes refused", request_id, len(encoded))
            error = _too_large(len(encoded), settings.max_response_bytes)
            encoded = encode({"errors": [error], "data": None})
        return Response(encoded, 200, headers, media_type)

    async def graphql_socket(websocket: WebSocket) -> None:
        await ws.serve(websocket, gateway, live_limit, _forwarded(websocket))

    async def schema_sdl(request: Request) -> Response:
        supergraph = gateway.supergraph
        if supergraph is None:
            return PlainTextResponse("no supergraph yet\n", 503)
        return PlainTextResponse(supergraph.sdl, media_type="text/plain; charset=utf-8")

    async def health(request: Request) -> Response:
        return JSONResponse(gateway.health())

    async def ready(request: Request) -> Response:
        file = gateway.file_status()
        if gateway.supergraph is None:
            waiting: dict[str, Any] = {"ready": False, "leftOut": gateway.left_out()}
            if file is not None:
                waiting["supergraphFile"] = file
            return JSONResponse(waiting, 503)
        # Ready while it serves the others: one department's broken schema must not take
        # the whole endpoint out of rotation; the body says which subgraph is out and why.
        body: dict[str, Any] = {"ready": True, "version": gateway.supergraph.version}
        if left_out := gateway.left_out():
            body["leftOut"] = left_out
        if file is not None and file["error"]:
            body["supergraphFile"] = file  # still the last good file; this one is refused
        return JSONResponse(body)

    async def admin_reload(request: Request) -> Response:
        if not _is_admin(request, settings):
            return JSONResponse({"errors": [_error("forbidden", "FORBIDDEN")]}, 403)
        changed = await gateway.reload()
        return JSONResponse(
            {
                "changed": changed,
                "version": gateway.supergraph.version if gateway.supergraph else None,
                "lastCompositionError": gateway.last_composition_error,
            }
        )

    # outermost: every request counts, refusals by the other middleware too
    middleware = [Middleware(MetricsMiddleware, gateway.metrics), Middleware(LanguageMiddleware)]
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origins,
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["*"],
                expose_headers=["X-Request-Id"],
            )
        )

    async def home(_: Request) -> Response:
        # A browser sent to the server's root lands in GraphiQL.
        return RedirectResponse("/graphql", status_code=307)

    routes = [
        Route("/", home, methods=["GET"]),
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql_socket),
        Route("/schema.graphql", schema_sdl, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route("/admin/reload", admin_reload, methods=["POST"]),
        Route("/metrics", gateway.metrics.endpoint, methods=["GET"]),
    ]
    if graphiql is not None:
        routes.append(Route("/graphiql/{name}", graphiql.asset, methods=["GET"]))
    # the urls of SUBGRAPHS, or of the supergraph file as it was at start (its first
    # instance, when it lists several: uploads and photos live in its store, not in it)
    if settings.open311_subgraph in gateway.urls:
        url = first_instance(gateway.urls[settings.open311_subgraph])
        routes.append(open311_route(url, passthrough, settings.max_body_bytes))
    if settings.photos_subgraph in gateway.urls:
        url = first_instance(gateway.urls[settings.photos_subgraph])
        routes += photo_routes(url, passthrough, settings.max_upload_bytes)
    app = Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    return app
