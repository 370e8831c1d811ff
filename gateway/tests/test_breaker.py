"""The circuit breaker on its own: counting, opening, refusing, probing, closing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from veche_gateway.breaker import BreakerState, CircuitBreaker, CircuitOpen
from veche_gateway.transport import SubgraphUnavailable

Until = Callable[..., Awaitable[None]]
TIMED_OUT = SubgraphUnavailable("issues", "timed out")


class Subgraph:
    """What the probe reaches: it answers once `back` is set."""

    def __init__(self) -> None:
        self.back = asyncio.Event()
        self.probes = 0

    async def probe(self) -> None:
        self.probes += 1
        if not self.back.is_set():
            raise SubgraphUnavailable("issues", "timed out")


async def test_opens_after_failures_in_a_row_and_closes_when_a_probe_is_answered(
    until: Until,
) -> None:
    subgraph = Subgraph()
    breaker = CircuitBreaker("issues", failures=3, probe=subgraph.probe, probe_interval=0.01)
    for _ in range(2):
        breaker.record_failure(TIMED_OUT)
    breaker.record_success()  # an answer starts the count again
    for _ in range(2):
        breaker.record_failure(TIMED_OUT)
    breaker.check()  # two in a row: still closed
    assert subgraph.probes == 0  # nobody probes a closed breaker
    breaker.record_failure(TIMED_OUT)
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(
        CircuitOpen,
        match=r'^Subgraph "issues" is unavailable: circuit breaker open \(last failure: timed out\)$',
    ):
        breaker.check()
    snapshot = breaker.snapshot()
    assert (snapshot["state"], snapshot["failuresInARow"], snapshot["lastFailure"]) == (
        "open",
        3,
        "timed out",
    )
    assert snapshot["openedAt"] is not None

    async def probed_twice() -> bool:
        return subgraph.probes >= 2

    await until(probed_twice)
    assert breaker.state is BreakerState.OPEN  # unanswered probes keep it open
    subgraph.back.set()

    async def closed() -> bool:
        return breaker.state is BreakerState.CLOSED

    await until(closed)
    breaker.check()
    assert breaker.snapshot() == {
        "state": "closed",
        "failuresInARow": 0,
        "openedAt": None,
        "lastFailure": "timed out",
    }
    await breaker.aclose()


async def test_an_answer_to_a_fetch_in_flight_closes_it_too() -> None:
    subgraph = Subgraph()
    breaker = CircuitBreaker("issues", failures=1, probe=subgraph.probe, probe_interval=60)
    breaker.record_failure(TIMED_OUT)
    assert breaker.state is BreakerState.OPEN
    breaker.record_success()  # sent before it opened, answered after
    assert breaker.snapshot()["state"] == "closed"
    await breaker.aclose()
    assert subgraph.probes == 0


async def test_zero_failures_disables_it() -> None:
    subgraph = Subgraph()
    breaker = CircuitBreaker("issues", failures=0, probe=subgraph.probe, probe_interval=0.01)
    for _ in range(100):
        breaker.record_failure(TIMED_OUT)
    breaker.check()
    assert breaker.state is BreakerState.CLOSED
    await breaker.aclose()
