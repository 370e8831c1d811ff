"""`metrics`: requests counted by fixed routes, operation names bounded, state read at scrape."""

from __future__ import annotations

import json

import httpx
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from veche_kit.metrics import MAX_OPERATIONS, MetricsMiddleware, ServiceMetrics, State


def sample(metrics: ServiceMetrics, name: str, **labels: str) -> float | None:
    for family in metrics.registry.collect():
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                return float(found.value)
    return None


def test_operation_names_are_kept_only_when_plain_and_few() -> None:
    metrics = ServiceMetrics()
    metrics.operation(json.dumps({"query": "q", "operationName": "Polls"}).encode())
    metrics.operation(b'{"query": "{ a }"}')
    metrics.operation(b'{"operationName": "bad name!"}')
    assert sample(metrics, "veche_graphql_operations_total", operation="Polls") == 1
    assert sample(metrics, "veche_graphql_operations_total", operation="anonymous") == 2
    for index in range(MAX_OPERATIONS + 5):
        metrics.operation(f'{{"operationName": "Op{index}"}}'.encode())
    assert (
        sample(metrics, "veche_graphql_operations_total", operation="other") == 7
    )  # 2 names seen, 198 more fit
    assert (
        sample(metrics, "veche_graphql_operations_total", operation=f"Op{MAX_OPERATIONS}") is None
    )


def test_errors_are_counted_by_code() -> None:
    metrics = ServiceMetrics()
    metrics.errors_of(["NOT_FOUND", "NOT_FOUND", "FORBIDDEN"])
    assert sample(metrics, "veche_graphql_errors_total", code="NOT_FOUND") == 2
    assert sample(metrics, "veche_graphql_errors_total", code="FORBIDDEN") == 1


def test_state_series_appear_only_when_the_service_has_them() -> None:
    state = State()
    assert [m.name for m in state.collect()] == [
        "veche_outbox_pending",
        "veche_outbox_oldest_age_seconds",
    ]
    state.events_applied, state.dead_letters = 3, 0
    assert len(state.collect()) == 4


async def test_the_middleware_counts_routes_and_the_scrape_refreshes_state() -> None:
    metrics = ServiceMetrics()

    async def hello(request: Request) -> Response:
        return PlainTextResponse(await request.body())

    async def scrape(_: Request) -> Response:
        async def refresh(state: State) -> None:
            state.outbox_pending = 7

        return await metrics.response(refresh)

    app = Starlette(routes=[Route("/graphql", hello, methods=["POST"]), Route("/metrics", scrape)])
    transport = httpx.ASGITransport(app=MetricsMiddleware(app, metrics))
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as http:
        await http.post("/graphql", content=b'{"operationName": "Me"}')
        await http.get("/users/123")  # an unknown path: never a label of its own
        text = (await http.get("/metrics")).text
    found = {
        s.name: s
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.labels.get("route") != "/metrics"
    }
    assert (
        sample(metrics, "veche_http_requests_total", route="/graphql", method="POST", status="200")
        == 1
    )
    assert sample(metrics, "veche_http_requests_total", route="other", status="404") == 1
    assert sample(metrics, "veche_graphql_operations_total", operation="Me") == 1
    assert found["veche_outbox_pending"].value == 7
    assert "/users/123" not in text
