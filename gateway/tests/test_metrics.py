"""The gateway's /metrics after traffic: requests, operations by (folded) name,
latency, errors by code, subgraph fetches and each instance's breaker."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from veche_gateway.metrics import MAX_OPERATIONS, GatewayMetrics

from .conftest import Served

Start = Callable[..., Awaitable[Served]]

NAMED = 'query PollTitle { poll(id: "p1") { title } }'
ANONYMOUS = '{ issue(id: "i1") { title } }'
FAILING = "query Burning { failing }"  # the issues subgraph answers with code INTERNAL
UNKNOWN_FIELD = "query Typo { nosuchfield }"


async def _scrape(gateway: Served) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        f"{s.name}{sorted(s.labels.items())}": s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


async def test_metrics_after_traffic(subgraph_urls: dict[str, str], start_gateway: Start) -> None:
    gateway = await start_gateway(subgraph_urls)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        for query in (NAMED, NAMED, ANONYMOUS, FAILING, UNKNOWN_FIELD):
            response = await http.post("/graphql", json={"query": query})
            assert response.status_code == 200
        await http.post("/graphql", json={"query": ANONYMOUS, "operationName": None})
        await http.post("/graphql", json={"query": NAMED, "operationName": "PollTitle"})
    found = await _scrape(gateway)
    ok = "veche_gateway_http_requests_total[('method', 'POST'), ('route', '/graphql'), ('status', '200')]"
    assert found[ok] == 7
    operations = {
        k: v for k, v in found.items() if k.startswith("veche_gateway_graphql_operations_total")
    }
    named = {k.split("'")[3]: v for k, v in operations.items()}
    assert named == {"PollTitle": 3, "anonymous": 2, "Burning": 1, "Typo": 1}
    count = "veche_gateway_graphql_operation_duration_seconds_count[('operation', 'PollTitle')]"
    assert found[count] == 3
    assert found["veche_gateway_graphql_errors_total[('code', 'INTERNAL')]"] == 1
    errors = sum(v for k, v in found.items() if k.startswith("veche_gateway_graphql_errors_total"))
    assert errors == 2  # the subgraph's INTERNAL and the gateway's refusal of the typo
    fetched = "veche_gateway_subgraph_fetch_duration_seconds_count[('outcome', 'answered'), ('subgraph', 'polls')]"
    assert found[fetched] == 3
    breaker = f"veche_gateway_breaker_open[('endpoint', '{subgraph_urls['polls']}'), ('subgraph', 'polls')]"
    assert found[breaker] == 0
    latency = "veche_gateway_http_request_duration_seconds_count[('route', '/graphql')]"
    assert found[latency] == 7


async def test_an_open_breaker_shows_per_instance(
    subgraph_urls: dict[str, str], start_gateway: Start, serve_app: Callable[[Any], Any]
) -> None:
    from .conftest import polls_schema, subgraph_app

    up: Served = await serve_app(subgraph_app("polls-metrics", polls_schema))
    down: Served = await serve_app(subgraph_app("polls-metrics-down", polls_schema))
    urls = f"{up.url}/graphql|{down.url}/graphql"
    gateway = await start_gateway(
        {**subgraph_urls, "polls": urls}, breaker_failures=1, breaker_probe_interval_seconds=60
    )
    await down.stop()
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        for _ in range(3):
            await http.post("/graphql", json={"query": NAMED})
    found = await _scrape(gateway)
    open_ = "veche_gateway_breaker_open[('endpoint', '{}/graphql'), ('subgraph', 'polls')]"
    assert found[open_.format(down.url)] == 1
    assert found[open_.format(up.url)] == 0
    failed = "veche_gateway_subgraph_fetch_duration_seconds_count[('outcome', 'unavailable'), ('subgraph', 'polls')]"
    assert found[failed] == 1


def test_operation_names_are_folded_to_a_bounded_set() -> None:
    metrics = GatewayMetrics()
    names = [metrics.operation_name(f"Op{i}") for i in range(MAX_OPERATIONS + 5)]
    assert names[:MAX_OPERATIONS] == [f"Op{i}" for i in range(MAX_OPERATIONS)]
    assert set(names[MAX_OPERATIONS:]) == {"other"}
    assert metrics.operation_name("Op1") == "Op1"  # one seen before keeps its name
    assert metrics.operation_name(None) == "anonymous"
    assert metrics.operation_name("not a name; DROP") == "other"
