"""Prometheus metrics of the gateway, served at `/metrics`.

A registry per gateway (tests run several in one process). Labels stay
low-cardinality: routes are a fixed set; an operation name is kept only when it
is a plain identifier (the request's operationName, or else the name of the
document's first operation) and only for the first `MAX_OPERATIONS` names seen (later
ones count as "other", a request without one as "anonymous"); error codes are
the upper-case codes of `extensions.code`, the first `MAX_CODES` of them; the
subgraphs and their instances come from the settings. No label holds a user id.

    veche_gateway_http_requests_total{route, method, status}
    veche_gateway_http_request_duration_seconds{route}                 histogram
    veche_gateway_graphql_operations_total{operation}
    veche_gateway_graphql_operation_duration_seconds{operation}        histogram
    veche_gateway_graphql_errors_total{code}
    veche_gateway_subgraph_fetch_duration_seconds{subgraph, outcome}   histogram
    veche_gateway_breaker_open{subgraph, endpoint}    1 while open (read at scrape)

Errors are counted from the response body the gateway sends (one scan of its
bytes for `"extensions":{..."code":"..."}`), so every error a client sees counts
once, whoever raised it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from veche_gateway.breaker import BreakerState

if TYPE_CHECKING:
    from veche_gateway.instances import InstancePool

MAX_OPERATIONS = 200
MAX_CODES = 50
_OPERATION = re.compile(rb'"operationName"\s*:\s*"([A-Za-z_][A-Za-z0-9_]{0,63})"')
# Without an operationName, the name of a document's first operation, when it starts it.
_DOCUMENT = re.compile(
    rb'"query"\s*:\s*"\s*(?:query|mutation|subscription)\s+([A-Za-z_][A-Za-z0-9_]{0,63})'
)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
# An error's code: orjson writes no spaces; extensions hold flat values here.
_CODE = re.compile(rb'"extensions":\{[^{}]*?"code":"([A-Z][A-Z0-9_]{0,39})"')
ROUTES = frozenset(
    {"/graphql", "/health", "/ready", "/metrics", "/schema.graphql", "/admin/reload", "/"}
)
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
FETCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class _Folded:
    """The first `limit` distinct values as themselves, the rest as "other"."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value not in self.seen:
            if len(self.seen) >= self.limit:
                return "other"
            self.seen.add(value)
        return value


class GatewayMetrics:
    """The gateway's series; `breakers` is read at each scrape."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.requests = Counter(
            "veche_gateway_http_requests",
            "HTTP requests the gateway answered.",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "veche_gateway_http_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.operations = Counter(
            "veche_gateway_graphql_operations",
            "GraphQL operations by name.",
            ["operation"],
            registry=r,
        )
        self.operation_latency = Histogram(
            "veche_gateway_graphql_operation_duration_seconds",
            "Time to answer a GraphQL operation, by name.",
            ["operation"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "veche_gateway_graphql_errors",
            "GraphQL errors in the gateway's responses, by extensions.code.",
            ["code"],
            registry=r,
        )
        self.fetches = Histogram(
            "veche_gateway_subgraph_fetch_duration_seconds",
            "Time of each fetch from a subgraph; outcome answered or unavailable.",
            ["subgraph", "outcome"],
            buckets=FETCH_BUCKETS,
            registry=r,
        )
        self._operation = _Folded(MAX_OPERATIONS)
        self._code = _Folded(MAX_CODES)
        self._breakers = _Breakers()
        r.register(self._breakers)

    def watch(self, pools: Callable[[], Mapping[str, InstancePool]]) -> None:
        """The pools whose breakers the scrape reports (the gateway's, as they change)."""
        self._breakers.pools = pools

    def operation_name(self, name: str | None) -> str:
        if not name:
            return "anonymous"
        return self._operation(name) if _NAME.fullmatch(name) else "other"

    def fetched(self, subgraph: str, seconds: float, answered: bool) -> None:
        self.fetches.labels(subgraph, "answered" if answered else "unavailable").observe(seconds)

    def errors_in(self, body: bytes) -> None:
        if b'"errors"' not in body:
            return
        for match in _CODE.finditer(body):
            self.errors.labels(self._code(match.group(1).decode())).inc()

    async def endpoint(self, request: Request) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class _Breakers(Collector):
    def __init__(self) -> None:
        self.pools: Callable[[], Mapping[str, InstancePool]] = dict

    def collect(self) -> list[Metric]:
        family = GaugeMetricFamily(
            "veche_gateway_breaker_open",
            "1 while the circuit breaker of a subgraph instance is open.",
            labels=["subgraph", "endpoint"],
        )
        for name, pool in self.pools().items():
            for url, breaker in pool.breakers.items():
                family.add_metric([name, url], float(breaker.state is BreakerState.OPEN))
        return [family]


class MetricsMiddleware:
    """Counts and times every HTTP request; names and times GraphQL operations and
    counts the error codes of their responses."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        route = path if path in ROUTES else "other"
        graphql = route == "/graphql"
        metrics = self.metrics
        began = time.perf_counter()
        status = 500
        operation = _from_query(scope) if graphql and scope["method"] == "GET" else None
        named = not graphql or scope["method"] == "GET"

        async def receive_body() -> Message:
            nonlocal named, operation
            message = await receive()
            if not named and message["type"] == "http.request":
                named = True  # named from the body's first chunk
                operation = _named(message.get("body", b"")[:4096])
            return message

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif graphql and message["type"] == "http.response.body":
                metrics.errors_in(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive_body, send_counted)
        finally:
            seconds = time.perf_counter() - began
            metrics.requests.labels(route, scope["method"], str(status)).inc()
            metrics.latency.labels(route).observe(seconds)
            if graphql:
                name = metrics.operation_name(operation)
                metrics.operations.labels(name).inc()
                metrics.operation_latency.labels(name).observe(seconds)


def _named(body: bytes) -> str | None:
    found = _OPERATION.search(body) or _DOCUMENT.search(body)
    return found.group(1).decode() if found else None


def _from_query(scope: Scope) -> str | None:
    names = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("operationName")
    return names[0] if names else None
