"""What a running service holds, assembled once: store, bus, relay, consumer.

`Runtime` is created by each service's `create_app`; the Starlette lifespan
starts and stops it. `build_app` gives every service the same HTTP surface:
`/graphql` (read by `veche_kit.graphql_http`, held to `veche_kit.limits`),
`/health`, `/ready`, request ids and JSON logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from cross_web import HTTPException
from pymongo import AsyncMongoClient, IndexModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.exceptions import MissingQueryError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from veche_kit.auth import STALE_INDEXES, StaleTokens, TokenVerifier
from veche_kit.bus import EventBus
from veche_kit.consumer import PROCESSED, Consumer, Handler
from veche_kit.graphql import RequestContext
from veche_kit.graphql_http import JSON_TYPE, Refused, read_graphql_request, refusal
from veche_kit.language import Language, language, language_var, said
from veche_kit.limits import OperationLimits
from veche_kit.live import LiveFeed, LiveHub, TopicsOf
from veche_kit.live_ws import (
    CONNECTION_INIT_WAIT,
    DEFAULT_MAX_SUBSCRIPTIONS,
    CodedTransportWSHandler,
)
from veche_kit.logs import request_id_var
from veche_kit.metrics import MetricsMiddleware, ServiceMetrics, State
from veche_kit.migrations import Migration, migrate
from veche_kit.mongo import Database, Document, connect, ensure_indexes
from veche_kit.outbox import OUTBOX, PENDING_INDEX, OutboxRelay
from veche_kit.settings import ServiceSettings

log = logging.getLogger(__name__)

CLOSE_STORE_SECONDS = 2.0
# How long a stop may take once the server has closed its connections. A library
# that does not honour cancellation (seen once: a stop begun while the broker
# link was still being set up never ended) must not keep a port held past it.
STOP_DEADLINE_SECONDS = 6.0
# How long a stopping server lets open requests finish before cutting them.
GRACEFUL_SECONDS = 3


@dataclass
class Runtime:
    """A service's shared clients and background workers."""

    settings: ServiceSettings
    client: AsyncMongoClient[Document]
    db: Database
    bus: EventBus
    relay: OutboxRelay
    verifier: TokenVerifier
    consumer: Consumer | None = None
    indexes: dict[str, Sequence[IndexModel]] = field(default_factory=dict)
    migrations: Sequence[Migration] = ()
    metrics: ServiceMetrics = field(default_factory=ServiceMetrics)
    on_start: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Closes what a service opened beside the store and broker (an HTTP client...),
    # once its workers are stopped; one failing step does not skip the rest.
    on_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    background: dict[str, Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=dict)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list, repr=False)
    _stopping: str = field(default="", repr=False)  # the step a stop is in, for the log

    @classmethod
    def create(
        cls,
        settings: ServiceSettings,
        verifier: TokenVerifier,
        *,
        indexes: dict[str, Sequence[IndexModel]],
        handlers: Mapping[str, Handler] | None = None,
        outbox_collections: tuple[str, ...] = (OUTBOX,),
        migrations: Sequence[Migration] = (),
    ) -> Runtime:
        metrics = ServiceMetrics()
        client = connect(settings.mongo_url, listeners=[metrics.store_listener()])
        db = client[settings.mongo_db]
        bus = EventBus(
            settings.amqp_url,
            settings.service_name,
            namespace=settings.namespace,
            prefetch=settings.consumer_prefetch,
        )
        relay = OutboxRelay(
            db, bus, collections=outbox_collections, poll_seconds=settings.outbox_poll_seconds
        )
        all_indexes: dict[str, Sequence[IndexModel]] = {
            OUTBOX: [PENDING_INDEX],
            PROCESSED: [],
            **STALE_INDEXES,
            **indexes,
        }
        verifier.stale = StaleTokens(db)  # fed by each service's user.* handlers
        runtime = cls(
            settings, client, db, bus, relay, verifier, None, all_indexes, migrations, metrics
        )
        if handlers:
            runtime.attach_consumer(handlers)
        return runtime

    def attach_consumer(
        self, handlers: Mapping[str, Handler], lanes: Mapping[str, str] | None = None
    ) -> Consumer:
        """Adds the service's consumer once its handlers exist (they need the service);
        `lanes` is the registry's (`Handlers.lanes`)."""
        self.consumer = Consumer(
            self.client,
            self.db,
            self.bus,
            handlers,
            max_attempts=self.settings.consumer_max_attempts,
            backoff_seconds=self.settings.consumer_backoff_seconds,
            lanes=lanes,
            concurrency=self.settings.consumer_concurrency,
        )
        return self.consumer

    def run_in_background(self, name: str, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Runs `work()` as the task `name` for the runtime's life: started at the end of
        `start()` (after `on_start`, once the bus, relay and consumer are started), cancelled
        and awaited in `stop()`, last started first, before they close."""
        self.background[name] = work

    def live_hub(self, routes: Mapping[str, TopicsOf], interval_seconds: float) -> LiveHub[Any]:
        """A hub for this service's subscriptions, fed by its own queue (`veche_kit.live`)
        bound to `routes`' event types; its subscriptions end when the runtime stops."""
        hub: LiveHub[Any] = LiveHub(interval_seconds)
        LiveFeed(self.bus, hub, routes).start()
        self.run_in_background("live-hub", hub.hold)
        return hub

    async def start(self) -> None:
        await migrate(self.db, self.migrations)  # refuses a store newer than this code
        await ensure_indexes(self.db, self.indexes)
        for step in self.on_start:
            await step()
        self.bus.start()
        self.relay.start()
        if self.consumer is not None:
            self.consumer.start()
        for name, work in self.background.items():
            self._tasks.append(asyncio.create_task(work(), name=name))

    async def stop(self) -> None:
        """Stops the workers and closes the clients; the process exits hard if this
        overruns `STOP_DEADLINE_SECONDS`."""
        watchdog = threading.Timer(STOP_DEADLINE_SECONDS, self._overran)
        watchdog.daemon = True
        watchdog.start()
        while self._tasks:
            task = self._tasks.pop()
            self._stopping = f"cancelling {task.get_name()}"
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for step in self.on_stop:
            self._stopping = f"running {getattr(step, '__qualname__', step)}"
            try:
                await step()
            except Exception:
                log.exception("a stop step failed; stopping the rest")
        self._stopping = "stopping the relay"
        await self.relay.stop()
        self._stopping = "closing the broker link"
        await self.bus.close()
        # Closing ends the server sessions, which waits for a store that may be gone
        # (stopped beside us, or crashed): a stop must not wait for it.
        self._stopping = "closing the store client"
        try:
            await asyncio.wait_for(self.client.close(), CLOSE_STORE_SECONDS)
        except TimeoutError:
            log.warning("the store did not answer while closing; stopped without it")
        watchdog.cancel()

    def _overran(self) -> None:
        log.error(
            "stop overran its deadline, exiting hard",
            extra={"step": self._stopping, "deadline_seconds": STOP_DEADLINE_SECONDS},
        )
        os._exit(1)

    async def health(self) -> dict[str, Any]:
        report: dict[str, Any] = {"service": self.settings.service_name}
        try:
            await self.db.command("ping")
            report["mongo"] = "ok"
            backlog = await self.relay.backlog()
            report["outbox"] = {
                "pending": backlog.pending,
                "oldestAgeSeconds": backlog.oldest_age_seconds,
            }
        except Exception as error:
            report["mongo"] = f"unavailable: {error}"
        report["broker"] = "connected" if self.bus.connected else "disconnected"
        if self.consumer is not None:
            report["deadLetters"] = await self.bus.dead_letter_depth()
            report["eventsApplied"] = self.consumer.applied
        report["status"] = "ok" if report["mongo"] == "ok" and self.bus.connected else "degraded"
        return report


MAX_REQUEST_ID = 128


def _request_id(given: bytes) -> str | None:
    """The caller's request id, or None when it is not printable ASCII."""
    if not all(0x21 <= byte <= 0x7E for byte in given):
        return None
    return given.decode("ascii")[:MAX_REQUEST_ID]


def _language(headers: dict[bytes, bytes]) -> Language:
    return language(headers.get(b"accept-language", b"").decode("latin-1"))


class RequestIdMiddleware:
    """Takes `X-Request-Id` from the caller (or makes one) for logs and the response;
    one that is not printable ASCII is refused (400) rather than logged. Sets the
    request's language (`Accept-Language`) for every message it is answered with."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        spoken = language_var.set(_language(headers))
        try:
            await self._with_id(headers, scope, receive, send)
        finally:
            language_var.reset(spoken)

    async def _with_id(
        self, headers: dict[bytes, bytes], scope: Scope, receive: Receive, send: Send
    ) -> None:
        given = _request_id(headers.get(b"x-request-id", b""))
        if given is None:
            response = refusal(
                said(
                    "X-Request-Id must be printable ASCII (letters, digits, -._:).",
                    "X-Request-Id должен состоять из печатных символов ASCII (буквы, цифры, -._:).",
                )
            )
            await response(scope, receive, send)
            return
        request_id = given or uuid.uuid4().hex
        token = request_id_var.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


ContextFactory = Callable[[Request], RequestContext]
# What a POST may run (subscriptions are not served over HTTP).
POST_OPERATIONS = OperationType.from_http("POST")


def operation_limits(settings: ServiceSettings) -> OperationLimits:
    return OperationLimits(
        max_tokens=settings.max_tokens,
        max_depth=settings.max_depth,
        max_aliases=settings.max_aliases,
        max_body_bytes=settings.max_body_bytes,
    )


class SubgraphApp(GraphQL[RequestContext, None]):
    """Strawberry's ASGI app with Veche's context; no IDE (the gateway serves GraphiQL).
    Reads the request itself (`graphql_http`: POST JSON only, bounded, well-formed),
    answers every refusal as a coded GraphQL error, and counts each error's
    `extensions.code` in the service's metrics. Subscriptions are Strawberry's over
    `graphql-transport-ws` on the same path (`veche_kit.live` feeds them), their
    errors coded like a POST's."""

    graphql_transport_ws_handler_class = CodedTransportWSHandler

    def __init__(
        self,
        schema: Any,
        context_factory: ContextFactory,
        metrics: ServiceMetrics,
        limits: OperationLimits | None = None,
        max_subscriptions: int = DEFAULT_MAX_SUBSCRIPTIONS,
    ) -> None:
        super().__init__(
            schema,
            graphql_ide=None,
            allow_queries_via_get=False,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=CONNECTION_INIT_WAIT,
            max_subscriptions_per_connection=max_subscriptions,
        )
        self.context_factory = context_factory
        self.metrics = metrics
        self.limits = limits or OperationLimits()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        response: Response
        try:
            data = await read_graphql_request(request, self.limits.max_body_bytes)
            response = await self._answer(request, data)
        except Refused as refused:
            self.metrics.errors_of([refused.code])
            response = refused.response()
        except HTTPException as exc:  # Strawberry's own refusals (e.g. an unknown operation name)
            self.metrics.errors_of(["BAD_USER_INPUT"])
            response = refusal(exc.reason, exc.status_code)
        await response(scope, receive, send)

    async def _answer(self, request: Request, data: GraphQLRequestData) -> Response:
        """What Strawberry's `run` does with the one JSON POST that reaches here, read and
        checked: execute, then encode. Its adapters, sub-response and checks for GET,
        batches and streams are for requests refused before this (a tenth of the floor)."""
        context = await self.get_context(request, None)
        try:
            result = await self.schema.execute(
                data.query,
                variable_values=data.variables,
                context_value=context,
                operation_name=data.operation_name,
                allowed_operation_types=POST_OPERATIONS,
                operation_extensions=data.extensions,
            )
        except CannotGetOperationTypeError as error:
            raise HTTPException(400, error.as_http_error_reason()) from error
        except InvalidOperationTypeError as error:
            raise HTTPException(400, error.as_http_error_reason("POST")) from error
        except MissingQueryError as error:
            raise HTTPException(400, "No GraphQL query found in the request") from error
        body = await self.process_result(request, result)
        return Response(self.encode_json(body), media_type=JSON_TYPE)

    async def get_context(self, request: Any, response: Any) -> RequestContext:
        context = self.context_factory(request)
        context.limits = self.limits
        return context

    def encode_json(self, data: object) -> bytes:
        try:
            return orjson.dumps(data)  # a tenth of json.dumps' time on a page of polls
        except TypeError:  # what orjson refuses (an int past 64 bits) is json's to judge
            return json.dumps(data, separators=(",", ":")).encode()

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        if result.errors:
            self.metrics.errors_of(
                [str((e.extensions or {}).get("code", "INTERNAL")) for e in result.errors]
            )
        return await super().process_result(request, result)


def build_app(
    runtime: Runtime,
    schema: Any,
    *,
    context_factory: ContextFactory | None = None,
    routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """The service's HTTP app: GraphQL at /graphql plus /health and /ready."""

    async def health(_: Request) -> Response:
        report = await runtime.health()
        return JSONResponse(report, status_code=200 if report["mongo"] == "ok" else 503)

    async def ready(_: Request) -> Response:
        try:
            await runtime.db.command("ping")
        except Exception as error:
            return JSONResponse({"ready": False, "error": str(error)}, status_code=503)
        return JSONResponse({"ready": True})

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        log.info("service started", extra={"port": runtime.settings.port})
        try:
            yield
        finally:
            await runtime.stop()

    def plain_context(request: Request) -> RequestContext:
        return RequestContext(request=request, verifier=runtime.verifier)

    async def refresh(state: State) -> None:
        backlog = await runtime.relay.backlog()
        state.outbox_pending = backlog.pending
        state.outbox_oldest_age_seconds = backlog.oldest_age_seconds or 0.0
        if runtime.consumer is not None:
            state.events_applied = runtime.consumer.applied
            state.dead_letters = await runtime.bus.dead_letter_depth()

    async def metrics(_: Request) -> Response:
        return await runtime.metrics.response(refresh)

    graphql_app = SubgraphApp(
        schema,
        context_factory or plain_context,
        runtime.metrics,
        operation_limits(runtime.settings),
    )
    app = Starlette(
        routes=[
            Route("/graphql", graphql_app, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql_app),
            Route("/health", health),
            Route("/ready", ready),
            Route("/metrics", metrics),
            *routes,
        ],
        lifespan=lifespan,
    )
    app.add_middleware(MetricsMiddleware, metrics=runtime.metrics)
    app.add_middleware(RequestIdMiddleware)
    app.state.runtime = runtime
    return app


def serve(app: Starlette, settings: ServiceSettings) -> None:
    """Runs a service with Uvicorn until SIGINT or SIGTERM. Requests still open
    `GRACEFUL_SECONDS` after the signal are cut, so a stop never waits on a request
    stuck on a store that is stopping too."""
    import uvicorn

    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        # Named, not "auto": a missing parser would silently cost a fifth of the floor.
        loop="asyncio",
        http="httptools",
    )
