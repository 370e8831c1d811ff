"""Work done once however many ask for it: per request (`RequestContext.once`) and
for a few seconds across requests (`BriefCache`).

Both keep the computation itself, not only its result, so callers that ask at
the same time (the aliases of one operation, resolved concurrently) share one
run of the work.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class BriefCache(Generic[T]):
    """One value, computed at most once per `seconds` (0: every call computes;
    concurrent callers still share one run). A failed computation is not kept."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self._pending: asyncio.Future[T] | None = None
        self._expires = 0.0

    async def get(self, compute: Callable[[], Awaitable[T]]) -> T:
        pending = self._pending
        if pending is None or (pending.done() and not self._usable(pending)):
            pending = asyncio.ensure_future(compute())
            self._pending = pending
            pending.add_done_callback(self._computed)
        return await asyncio.shield(pending)

    def _usable(self, done: asyncio.Future[T]) -> bool:
        failed = done.cancelled() or done.exception() is not None
        return not failed and self.clock() < self._expires

    def _computed(self, _: asyncio.Future[T]) -> None:
        self._expires = self.clock() + self.seconds
