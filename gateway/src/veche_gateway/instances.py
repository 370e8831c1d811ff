"""Several instances of one subgraph: `http://a/graphql|http://b/graphql`.

A subgraph's URL (in SUBGRAPHS or in the supergraph file's `@join__graph(url:)`)
may list several instances of the same service separated by `|`. The gateway
sends each fetch to the next instance in turn (round-robin) and keeps a circuit
breaker per instance (`breaker.py`), so one instance down costs its share of
requests nothing once its breaker opens: the others take them.

An instance whose breaker is open is passed over without trying. A query whose
fetch fails before any byte of it went upstream (the connection was refused)
goes on to the next instance; one that failed after it was sent (a timeout, a
5xx) does not, so a slow instance is not waited for twice; a mutation is never
retried at all. When every instance's breaker is open, the fetch is refused at
once with the first one's `CircuitOpen` (SUBGRAPH_UNAVAILABLE), as with one
instance.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from veche_gateway.breaker import BreakerState, CircuitBreaker
from veche_gateway.transport import SubgraphUnavailable, Transport

SEPARATOR = "|"
# (subgraph, seconds, answered) of one fetch
Observe = Callable[[str, float, bool], None]


def instance_urls(url: str) -> tuple[str, ...]:
    """The instances a subgraph URL lists, in order (one for a plain URL)."""
    urls = tuple(part.strip() for part in url.split(SEPARATOR) if part.strip())
    return urls or (url,)


def first_instance(url: str) -> str:
    """The URL of the first instance listed: for routes that proxy to one of them."""
    return instance_urls(url)[0]


class InstancePool:
    """One subgraph's instances, each with its breaker, used in turn."""

    def __init__(
        self,
        subgraph: str,
        url: str,
        breaker: Callable[[str], CircuitBreaker],
        observe: Observe | None = None,
    ) -> None:
        self.subgraph = subgraph
        self.observe = observe  # each fetch's time and outcome, for the metrics
        self.url = url
        self.urls = instance_urls(url)
        self.breakers = {instance: breaker(instance) for instance in self.urls}
        self._next = 0

    @property
    def state(self) -> BreakerState:
        """Closed while any instance's breaker is closed."""
        closed = any(b.state is BreakerState.CLOSED for b in self.breakers.values())
        return BreakerState.CLOSED if closed else BreakerState.OPEN

    def _turn(self) -> list[int]:
        """Every instance's index, starting with the next one in the round."""
        count = len(self.urls)
        return [(self._next + step) % count for step in range(count)]

    def _take(self, index: int) -> str:
        """Uses the instance: the round goes on after it (an open one passed over does
        not hand its turn to its neighbour alone)."""
        self._next = index + 1
        return self.urls[index]

    def pick(self) -> str:
        """The next instance whose breaker is closed (for a subscription's socket);
        `CircuitOpen` when every one is open."""
        turn = self._turn()
        for index in turn:
            if self.breakers[self.urls[index]].state is BreakerState.CLOSED:
                return self._take(index)
        self.breakers[self.urls[turn[0]]].check()
        raise AssertionError("an open breaker refused nothing")  # pragma: no cover

    async def post(
        self,
        transport: Transport,
        payload: Mapping[str, Any],
        headers: Mapping[str, str],
        *,
        mutation: bool,
    ) -> dict[str, Any]:
        """One fetch, on the next instance that takes it (see the module doc)."""
        refused: SubgraphUnavailable | None = None
        for index in self._turn():
            breaker = self.breakers[self.urls[index]]
            try:
                breaker.check()
            except SubgraphUnavailable as exc:
                refused = refused or exc
                continue
            instance = self._take(index)
            began = time.perf_counter()
            try:
                body = await transport.post(self.subgraph, instance, payload, headers)
            except SubgraphUnavailable as exc:
                self._observe(began, answered=False)
                breaker.record_failure(exc)
                if mutation or exc.sent:
                    raise
                refused = exc
                continue
            self._observe(began, answered=True)
            breaker.record_success()
            return body
        assert refused is not None  # a pool has at least one instance
        raise refused

    def _observe(self, began: float, *, answered: bool) -> None:
        if self.observe is not None:
            self.observe(self.subgraph, time.perf_counter() - began, answered)

    async def aclose(self) -> None:
        for breaker in self.breakers.values():
            await breaker.aclose()

    def snapshot(self) -> dict[str, Any]:
        """The breakers as /health shows them: one instance's as before; several, with
        each instance's under `instances`."""
        if len(self.urls) == 1:
            return self.breakers[self.urls[0]].snapshot()
        return {
            "state": self.state.value,
            "instances": {url: b.snapshot() for url, b in self.breakers.items()},
        }
