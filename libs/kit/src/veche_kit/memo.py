"""Work done once however many ask for it: per request (`RequestContext.once`) and
for a few seconds across requests (`BriefCache` for one value, `BriefCaches` by key).

Both keep the computation itself, not only its result, so callers that ask at
the same time (the aliases of one operation, resolved concurrently) share one
run of the work.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


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


class BriefCaches(Generic[K, T]):
    """Values by key, each computed at most once per `seconds`, for at most `size` keys
    (the least recently computed leaves first, so memory is bounded by `size` values).
    Concurrent callers of one key share one run; a failed computation is not kept;
    `forget` drops a key whose value this process has just changed."""

    def __init__(
        self, seconds: float, size: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.seconds = seconds
        self.size = size
        self.clock = clock
        self._entries: OrderedDict[K, tuple[float, asyncio.Future[T]]] = OrderedDict()

    async def get(self, key: K, compute: Callable[[], Awaitable[T]]) -> T:
        entry = self._entries.get(key)
        if entry is None or (entry[1].done() and not self._usable(*entry)):
            future = asyncio.ensure_future(compute())
            self._entries[key] = (self.clock() + self.seconds, future)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
            entry = self._entries[key]
        return await asyncio.shield(entry[1])

    def forget(self, key: K) -> None:
        self._entries.pop(key, None)

    def _usable(self, expires: float, done: asyncio.Future[T]) -> bool:
        failed = done.cancelled() or done.exception() is not None
        return not failed and self.clock() < expires
