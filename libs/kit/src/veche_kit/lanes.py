"""Work in arrival order per key, different keys side by side.

A consumer that handles one event at a time is as slow as its store's round
trips; handling every event at once would reorder what must stay in order.
`Lanes` sits between: work with the same key runs in the order it arrived,
work with different keys runs concurrently (at most `width` at once), and work
with no key runs alone, after everything that arrived before it and before
anything that arrives after it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

T = TypeVar("T")


class Lanes:
    def __init__(self, width: int) -> None:
        self._slots = asyncio.Semaphore(max(width, 1))
        self._tails: dict[Hashable, asyncio.Future[None]] = {}  # the last work of each key
        self._running: set[asyncio.Future[None]] = set()  # every work not finished yet
        self._barrier: asyncio.Future[None] | None = None  # the last keyless work

    async def run(self, key: Hashable | None, work: Callable[[], Awaitable[T]]) -> T:
        """Runs `work` in its lane. The place in line is taken when `run` is called,
        before its first await, so callers started in order keep their order."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waits = self._join(key, done)
        try:
            for earlier in waits:
                await asyncio.shield(earlier)
            async with self._slots:
                return await work()
        finally:
            self._leave(key, done)

    def _join(self, key: Hashable | None, done: asyncio.Future[None]) -> list[asyncio.Future[None]]:
        if key is None:
            waits = list(self._running)
            self._barrier = done
        else:
            waits = [f for f in (self._tails.get(key), self._barrier) if f is not None]
            self._tails[key] = done
        self._running.add(done)
        return waits

    def _leave(self, key: Hashable | None, done: asyncio.Future[None]) -> None:
        done.set_result(None)
        self._running.discard(done)
        if key is not None and self._tails.get(key) is done:
            del self._tails[key]
        if self._barrier is done:
            self._barrier = None
