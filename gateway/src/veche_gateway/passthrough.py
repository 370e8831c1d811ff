"""Routes that are not GraphQL, passed through to the subgraph that serves them.

Open311 GeoReport v2 (`/open311/v2/...`) is served by one subgraph (settings:
`OPEN311_SUBGRAPH`, the issues service by default) beside its GraphQL
endpoint; the gateway passes those requests on unchanged (method, path, query
string, body up to the gateway's body limit, content type) so partners reach
the city through the same one endpoint. An unreachable subgraph answers 503
in Open311's error shape.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit, urlunsplit

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from veche_gateway.language import said

OPEN311 = "/open311/v2"
# accept-language: Open311 answers its errors in the caller's language.
PASSED_HEADERS = ("content-type", "accept", "accept-language", "x-request-id", "traceparent")


def _open311_error(status: int, description: str) -> Response:
    body = json.dumps([{"code": status, "description": description}])
    return Response(body, status, media_type="application/json")


def _too_large(limit: int) -> Response:
    message = said(f"the body is larger than {limit} bytes", f"тело запроса больше {limit} байт")
    return _open311_error(413, message)


_UNAVAILABLE = "Open311 is unavailable right now; try again shortly"
_UNAVAILABLE_RU = "Open311 сейчас недоступен; попробуйте чуть позже"


def _base(url: str) -> str:
    """`http://host:port/graphql` -> `http://host:port`."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def open311_route(subgraph_url: str, client: httpx.AsyncClient, max_body_bytes: int) -> Route:
    """`/open311/v2/...` on the gateway, answered by the subgraph at `subgraph_url`."""
    target = _base(subgraph_url)

    async def forward(request: Request) -> Response:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_body_bytes:
                return _too_large(max_body_bytes)
        headers = {
            name: request.headers[name] for name in PASSED_HEADERS if name in request.headers
        }
        client_address = request.client.host if request.client else None
        if client_address:
            headers["x-forwarded-for"] = client_address
        url = f"{target}{request.url.path}"
        if request.url.query:  # as the client wrote it: Open311 lists are comma-separated
            url += f"?{request.url.query}"
        try:
            answer = await client.request(
                request.method,
                url,
                content=body,
                headers=headers,
            )
        except httpx.HTTPError:
            return _open311_error(503, said(_UNAVAILABLE, _UNAVAILABLE_RU))
        kept = {k: v for k, v in answer.headers.items() if k.lower() == "content-type"}
        return Response(answer.content, answer.status_code, kept)

    return Route(OPEN311 + "/{path:path}", forward, methods=["GET", "POST"])
