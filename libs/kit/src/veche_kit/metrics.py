"""Prometheus metrics of one service, served at `/metrics`.

Each service has a registry of its own (several services share one process in
tests). Labels stay low-cardinality: routes and commands are fixed sets, the
GraphQL operation name is kept only when it is a plain identifier and only for
the first `MAX_OPERATIONS` names seen (the rest count as "other"), and no label
ever holds a user id.

    veche_http_requests_total{route, method, status}
    veche_http_request_duration_seconds{route}            histogram
    veche_graphql_operations_total{operation}
    veche_graphql_errors_total{code}
    veche_store_command_duration_seconds{command}         histogram, every MongoDB command
    veche_outbox_pending, veche_outbox_oldest_age_seconds (read at scrape)
    veche_events_applied_total, veche_dead_letters        (read at scrape)
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from pymongo import monitoring
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_OPERATIONS = 200
_OPERATION = re.compile(rb'"operationName"\s*:\s*"([A-Za-z_][A-Za-z0-9_]{0,63})"')
ROUTES = frozenset({"/graphql", "/health", "/ready", "/metrics", "/.well-known/jwks.json"})
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class ServiceMetrics:
    """The series of one service; `scrape` refreshes the ones read from state."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "veche_http_requests",
            "HTTP requests answered.",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "veche_http_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.operations = Counter(
            "veche_graphql_operations", "GraphQL operations by name.", ["operation"], registry=r
        )
        self.errors = Counter(
            "veche_graphql_errors", "GraphQL errors by extensions.code.", ["code"], registry=r
        )
        self.store = Histogram(
            "veche_store_command_duration_seconds",
            "Time of each MongoDB command, as the driver saw it.",
            ["command"],
            buckets=STORE_BUCKETS,
            registry=r,
        )
        self.state = State()
        r.register(self.state)
        self._operation_names: set[str] = set()

    def operation(self, body: bytes) -> None:
        match = _OPERATION.search(body[:4096])
        name = match.group(1).decode() if match else "anonymous"
        if name not in self._operation_names:
            if len(self._operation_names) >= MAX_OPERATIONS:
                name = "other"
            else:
                self._operation_names.add(name)
        self.operations.labels(name).inc()

    def store_listener(self) -> monitoring.CommandListener:
        return _StoreListener(self.store)

    def errors_of(self, codes: list[str]) -> None:
        for code in codes:
            self.errors.labels(code).inc()

    async def response(self, refresh: Callable[[State], Awaitable[None]]) -> Response:
        await refresh(self.state)
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class State(Collector):
    """Series read from the service's state at each scrape (`refresh` sets them)."""

    def __init__(self) -> None:
        self.outbox_pending = 0
        self.outbox_oldest_age_seconds = 0.0
        self.events_applied: int | None = None  # None: the service consumes nothing
        self.dead_letters: int | None = None

    def collect(self) -> list[Metric]:
        found: list[Metric] = [
            GaugeMetricFamily(
                "veche_outbox_pending", "Events written but not yet published.", self.outbox_pending
            ),
            GaugeMetricFamily(
                "veche_outbox_oldest_age_seconds",
                "Age of the oldest unpublished event (0 when none).",
                self.outbox_oldest_age_seconds,
            ),
        ]
        if self.events_applied is not None:
            found.append(
                CounterMetricFamily(
                    "veche_events_applied",
                    "Events this service's consumer applied since it started.",
                    self.events_applied,
                )
            )
        if self.dead_letters is not None:
            found.append(
                GaugeMetricFamily(
                    "veche_dead_letters",
                    "Messages parked in this service's dead-letter queue.",
                    self.dead_letters,
                )
            )
        return found


class _StoreListener(monitoring.CommandListener):
    def __init__(self, histogram: Histogram) -> None:
        self.histogram = histogram

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self.histogram.labels(event.command_name).observe(event.duration_micros / 1e6)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self.histogram.labels(event.command_name).observe(event.duration_micros / 1e6)


class MetricsMiddleware:
    """Counts and times every HTTP request, and names GraphQL operations."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        route = path if path in ROUTES else "other"
        began = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        named = route != "/graphql"  # each GraphQL request is named once, from its first chunk

        async def receive_body() -> Message:
            nonlocal named
            message = await receive()
            if not named and message["type"] == "http.request":
                named = True
                self.metrics.operation(message.get("body", b""))
            return message

        try:
            await self.app(scope, receive_body, send_status)
        finally:
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - began)
