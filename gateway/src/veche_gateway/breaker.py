"""A circuit breaker per subgraph instance (`instances.py`), so a subgraph that is down or hung costs no waiting.

    closed ──(`failures` failures in a row)──▶ open ──(a probe is answered)──▶ closed

Closed: every fetch goes out. A failure (connect error, timeout, 5xx, a body
that is not a GraphQL response: whatever the transport reports as
`SubgraphUnavailable`) counts one; any answer resets the count. Open: `check()`
refuses fetches at once with `SubgraphUnavailable`, and one background task
sends the subgraph a probe every `probe_interval` seconds. The first probe
answered closes the breaker. The probe plays the half-open trial, so no
client's request is spent on finding out whether the subgraph is back; a fetch
that was in flight when the breaker opened and then gets an answer closes it
too.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from veche_gateway.transport import SubgraphUnavailable

log = logging.getLogger("veche_gateway")

Probe = Callable[[], Awaitable[object]]


class CircuitOpen(SubgraphUnavailable):
    """A fetch refused without trying: the subgraph's breaker is open."""

    def __init__(self, subgraph: str, reason: str) -> None:
        super().__init__(subgraph, reason, sent=False)


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"


class CircuitBreaker:
    """One subgraph instance's breaker. `failures` 0 disables it: it never opens."""

    def __init__(
        self,
        subgraph: str,
        failures: int,
        probe: Probe,
        probe_interval: float,
        instance: str | None = None,
    ) -> None:
        self.subgraph = subgraph
        # how the logs name it: the instance's URL too when the subgraph has several
        self.label = subgraph if instance is None else f"{subgraph} at {instance}"
        self.threshold = failures
        self.probe_interval = probe_interval
        self._probe = probe
        self.state = BreakerState.CLOSED
        self.failures = 0  # in a row, while closed
        self.last_failure: str | None = None
        self.opened_at: float | None = None
        self._prober: asyncio.Task[None] | None = None

    def check(self) -> None:
        """Refuse a fetch at once while the breaker is open."""
        if self.state is BreakerState.OPEN:
            raise CircuitOpen(
                self.subgraph, f"circuit breaker open (last failure: {self.last_failure})"
            )

    def record_success(self) -> None:
        self.failures = 0
        if self.state is BreakerState.OPEN:
            self._close("a fetch was answered")

    def record_failure(self, error: SubgraphUnavailable) -> None:
        self.last_failure = error.reason
        if self.state is BreakerState.OPEN:
            return
        self.failures += 1
        if self.threshold and self.failures >= self.threshold:
            self.state = BreakerState.OPEN
            self.opened_at = time.time()
            log.warning(
                "subgraph %s: circuit breaker open after %d failures in a row (%s); "
                "probing every %.1f s",
                self.label,
                self.failures,
                error.reason,
                self.probe_interval,
            )
            if self._prober is None or self._prober.done():
                self._prober = asyncio.create_task(self._probe_until_closed())

    def _close(self, why: str) -> None:
        log.info("subgraph %s: circuit breaker closed, %s", self.label, why)
        self.state = BreakerState.CLOSED
        self.failures = 0
        self.opened_at = None

    async def _probe_until_closed(self) -> None:
        while self.state is BreakerState.OPEN:
            await asyncio.sleep(self.probe_interval)
            if self.state is not BreakerState.OPEN:
                break  # a fetch in flight was answered meanwhile
            try:
                await self._probe()
            except SubgraphUnavailable as exc:
                self.last_failure = exc.reason
                continue
            except Exception as exc:  # a probe must never end the probing
                log.exception("subgraph %s: the probe failed unexpectedly", self.label)
                self.last_failure = repr(exc)
                continue
            if self.state is BreakerState.OPEN:
                self._close("a probe was answered")

    async def aclose(self) -> None:
        """Stop probing (the gateway is shutting down)."""
        if self._prober is not None:
            self._prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._prober

    def snapshot(self) -> dict[str, Any]:
        """The breaker as /health shows it."""
        return {
            "state": self.state.value,
            "failuresInARow": self.failures,
            "openedAt": None
            if self.opened_at is None
            else datetime.fromtimestamp(self.opened_at, tz=UTC).isoformat(),
            "lastFailure": self.last_failure,
        }
