"""Several instances of one subgraph (`http://a|http://b`): used in turn, a breaker
each, a query moved on from an instance that refused the connection, a mutation
never sent twice, and SUBGRAPH_UNAVAILABLE once every instance is open."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from veche_gateway.breaker import BreakerState, CircuitBreaker, CircuitOpen
from veche_gateway.instances import InstancePool, instance_urls

from .conftest import MUTATION_LOG, SEEN, Served, failing_app, polls_schema, subgraph_app

Start = Callable[..., Awaitable[Served]]
ServeApp = Callable[[Any], Awaitable[Served]]

POLL = '{ poll(id: "p1") { title } }'
CREATE = "mutation($t: String!) { createPoll(title: $t) { title } }"
ENGLISH = {"Accept-Language": "en"}


async def _instance(serve_app: ServeApp) -> tuple[str, Served]:
    """A polls instance that counts its requests under a name of its own."""
    name = f"polls-{uuid.uuid4().hex[:6]}"
    return name, await serve_app(subgraph_app(name, polls_schema))


async def _post(gateway: Served, query: str, variables: dict[str, Any] | None = None) -> Any:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10, headers=ENGLISH) as http:
        response = await http.post("/graphql", json={"query": query, "variables": variables})
        assert response.status_code == 200, response.text
        return response.json()


async def _health(gateway: Served) -> Any:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        return (await http.get("/health")).json()


def _seen(name: str) -> int:
    return len(SEEN.get(name, []))


def test_a_url_lists_its_instances() -> None:
    assert instance_urls("http://a/graphql") == ("http://a/graphql",)
    assert instance_urls(" http://a/graphql | http://b/graphql ") == (
        "http://a/graphql",
        "http://b/graphql",
    )


async def test_fetches_go_to_each_instance_in_turn(
    subgraph_urls: dict[str, str], serve_app: ServeApp, start_gateway: Start
) -> None:
    (a, served_a), (b, served_b) = await _instance(serve_app), await _instance(serve_app)
    polls = f"{served_a.url}/graphql|{served_b.url}/graphql"
    gateway = await start_gateway({**subgraph_urls, "polls": polls})
    before = _seen(a), _seen(b)
    for _ in range(6):
        assert await _post(gateway, POLL) == {"data": {"poll": {"title": "Park renovation"}}}
    assert (_seen(a) - before[0], _seen(b) - before[1]) == (3, 3)
    breaker = (await _health(gateway))["subgraphs"]["polls"]["breaker"]
    assert breaker["state"] == "closed"
    assert set(breaker["instances"]) == set(instance_urls(polls))


async def test_a_query_refused_by_a_stopped_instance_goes_to_the_next(
    subgraph_urls: dict[str, str], serve_app: ServeApp, start_gateway: Start
) -> None:
    (_, served_a), (b, served_b) = await _instance(serve_app), await _instance(serve_app)
    first = f"{served_a.url}/graphql"
    gateway = await start_gateway(
        {**subgraph_urls, "polls": f"{first}|{served_b.url}/graphql"},
        breaker_failures=2,
        breaker_probe_interval_seconds=60,
    )
    await served_a.stop()  # its port now refuses connections: nothing was sent
    before = _seen(b)
    for _ in range(6):
        assert await _post(gateway, POLL) == {"data": {"poll": {"title": "Park renovation"}}}
    assert _seen(b) - before == 6
    instances = (await _health(gateway))["subgraphs"]["polls"]["breaker"]["instances"]
    assert instances[first]["state"] == "open"  # and then it is not even tried


async def test_a_mutation_is_never_sent_to_a_second_instance(
    subgraph_urls: dict[str, str], serve_app: ServeApp, start_gateway: Start
) -> None:
    (_, served_a), (_, served_b) = await _instance(serve_app), await _instance(serve_app)
    gateway = await start_gateway(
        {**subgraph_urls, "polls": f"{served_a.url}/graphql|{served_b.url}/graphql"},
        breaker_failures=0,  # never opens: every other fetch meets the stopped instance
    )
    await served_a.stop()
    tag = uuid.uuid4().hex[:6]
    answers = [await _post(gateway, CREATE, {"t": f"{tag}-{i}"}) for i in range(4)]
    refused = [a for a in answers if a.get("errors")]
    assert len(refused) == 2
    assert {e["extensions"]["code"] for a in refused for e in a["errors"]} == {
        "SUBGRAPH_UNAVAILABLE"
    }
    created = [entry for entry in MUTATION_LOG if entry.startswith(f"polls:create:{tag}")]
    assert len(created) == 2  # the refused two were not tried on the other instance


async def test_a_query_that_failed_upstream_is_not_repeated_and_its_breaker_opens(
    subgraph_urls: dict[str, str], serve_app: ServeApp, start_gateway: Start
) -> None:
    failing = await serve_app(failing_app)  # answers 500: the request was sent
    _, served = await _instance(serve_app)
    gateway = await start_gateway(
        {**subgraph_urls, "polls": f"{failing.url}/graphql|{served.url}/graphql"},
        breaker_failures=2,
        breaker_probe_interval_seconds=60,
    )
    answers = [await _post(gateway, POLL) for _ in range(8)]
    failed = [a for a in answers if a.get("errors")]
    # turns alternate: the failing instance's two failures, then its breaker is open
    assert len(failed) == 2
    assert all(
        a["data"] == {"poll": {"title": "Park renovation"}} for a in answers if a not in failed
    )
    health = await _health(gateway)
    assert health["subgraphs"]["polls"]["breaker"]["state"] == "closed"  # one still is
    assert health["status"] == "ok"


async def test_every_instance_open_refuses_at_once_as_one_would(
    subgraph_urls: dict[str, str], serve_app: ServeApp, start_gateway: Start
) -> None:
    (_, served_a), (_, served_b) = await _instance(serve_app), await _instance(serve_app)
    gateway = await start_gateway(
        {**subgraph_urls, "polls": f"{served_a.url}/graphql|{served_b.url}/graphql"},
        breaker_failures=1,
        breaker_probe_interval_seconds=60,
    )
    await served_a.stop()
    await served_b.stop()
    await _post(gateway, POLL)  # both instances fail and open
    answer = await _post(gateway, POLL)
    assert answer["data"] == {"poll": None}
    [error] = answer["errors"]
    assert error["extensions"] == {"code": "SUBGRAPH_UNAVAILABLE", "serviceName": "polls"}
    assert "circuit breaker open" in error["message"]
    health = await _health(gateway)
    assert health["subgraphs"]["polls"]["breaker"]["state"] == "open"
    assert health["status"] == "degraded"


def test_a_subscription_picks_the_next_instance_whose_breaker_is_closed() -> None:
    async def probe() -> None:
        return None

    pool = InstancePool(
        "polls", "http://a|http://b|http://c", lambda url: CircuitBreaker("polls", 1, probe, 60)
    )
    assert [pool.pick() for _ in range(4)] == ["http://a", "http://b", "http://c", "http://a"]
    pool.breakers["http://b"].state = BreakerState.OPEN
    assert [pool.pick() for _ in range(4)] == ["http://c", "http://a", "http://c", "http://a"]
    for breaker in pool.breakers.values():
        breaker.state = BreakerState.OPEN
    with pytest.raises(CircuitOpen):
        pool.pick()
