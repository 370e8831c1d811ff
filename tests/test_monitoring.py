"""The alert rules and the dashboard in deploy/ ask only for series the services
and the gateway export: a renamed metric breaks this test, not a city's alerting.
And the gateway's /metrics, scraped from a running stack after traffic."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from veche_gateway.metrics import GatewayMetrics
from veche_kit.metrics import ServiceMetrics
from veche_stack.runner import Runner
from veche_stack.testing import GraphQLClient

ROOT = Path(__file__).resolve().parents[1]
SERIES = re.compile(r"\bveche_[a-z_]+")


def exported() -> set[str]:
    metrics = ServiceMetrics()
    metrics.state.events_applied = 0
    metrics.state.dead_letters = 0
    # A labelled series appears once it has a child: give every one a value.
    metrics.requests.labels("/graphql", "POST", "200").inc()
    metrics.latency.labels("/graphql").observe(0.01)
    metrics.operations.labels("anonymous").inc()
    metrics.errors.labels("INTERNAL").inc()
    metrics.store.labels("find").observe(0.001)
    names = {s.name for family in metrics.registry.collect() for s in family.samples}
    return names | gateway_exported()


def gateway_exported() -> set[str]:
    metrics = GatewayMetrics()
    metrics.requests.labels("/graphql", "POST", "200").inc()
    metrics.latency.labels("/graphql").observe(0.01)
    metrics.operations.labels("anonymous").inc()
    metrics.operation_latency.labels("anonymous").observe(0.01)
    metrics.errors.labels("INTERNAL").inc()
    metrics.fetches.labels("polls", "answered").observe(0.01)
    return {s.name for family in metrics.registry.collect() for s in family.samples}


def expressions() -> list[str]:
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yaml").read_text())
    found = [r["expr"] for group in rules["groups"] for r in group["rules"]]
    dashboard = json.loads((ROOT / "deploy/grafana/veche.json").read_text())
    found += [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    return found


def test_alerts_and_dashboard_use_only_exported_series() -> None:
    names = exported()
    asked = {name for expr in expressions() for name in SERIES.findall(expr)}
    assert asked, "no series found in the rules"
    assert asked <= names, f"not exported: {sorted(asked - names)}"


def test_every_alert_says_what_to_look_at() -> None:
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yaml").read_text())
    for rule in (r for group in rules["groups"] for r in group["rules"]):
        assert rule["alert"].startswith("Veche")
        assert rule["labels"]["severity"] in {"page", "ticket"}
        assert rule["annotations"]["summary"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runner]:
    runner = Runner(tmp_path_factory.mktemp("monitoring"))
    try:
        runner.start()
    except RuntimeError as error:
        pytest.fail(str(error))
    yield runner
    runner.interrupt()


@pytest.fixture
async def client(stack: Runner) -> AsyncIterator[GraphQLClient]:
    client = GraphQLClient(stack.url("gateway"))
    yield client
    await client.aclose()


POLLS = "query PollList { polls(first: 3) { totalCount } }"
UNKNOWN_FIELD = "query Typo { nosuchfield }"


async def _gateway_series(stack: Runner) -> dict[str, float]:
    async with httpx.AsyncClient() as http:
        text = (await http.get(stack.url("gateway", "/metrics"))).text
    return {
        f"{s.name}{sorted(s.labels.items())}": s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_the_gateway_serves_its_metrics_after_traffic(
    stack: Runner, client: GraphQLClient
) -> None:
    for _ in range(3):
        assert "errors" not in await client.post(POLLS)
    refused = await client.post(UNKNOWN_FIELD)
    code = refused["errors"][0]["extensions"]["code"]
    found = await _gateway_series(stack)
    assert found["veche_gateway_graphql_operations_total[('operation', 'PollList')]"] == 3
    took = found["veche_gateway_graphql_operation_duration_seconds_sum[('operation', 'PollList')]"]
    assert 0 < took < 60
    assert found[f"veche_gateway_graphql_errors_total[('code', '{code}')]"] >= 1
    ok = [("method", "POST"), ("route", "/graphql"), ("status", "200")]
    assert found[f"veche_gateway_http_requests_total{ok}"] >= 4
    fetched = "veche_gateway_subgraph_fetch_duration_seconds_count"
    assert found[f"{fetched}[('outcome', 'answered'), ('subgraph', 'polls')]"] >= 3
    breakers = {k: v for k, v in found.items() if k.startswith("veche_gateway_breaker_open")}
    assert len(breakers) == 3  # users, polls, issues: one instance each
    assert set(breakers.values()) == {0.0}
    assert not any("user_id" in key or "@" in key for key in found)  # no personal labels
