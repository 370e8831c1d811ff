"""`BriefCache` and `BriefCaches`: one run shared by concurrent callers, kept for
`seconds`, failures not kept; by key, at most `size` keys and `forget`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from veche_kit.memo import BriefCache, BriefCaches


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Counter:
    def __init__(self) -> None:
        self.runs = 0

    async def __call__(self) -> int:
        self.runs += 1
        await asyncio.sleep(0.01)
        return self.runs


async def test_concurrent_callers_share_one_run() -> None:
    cache: BriefCache[int] = BriefCache(5.0)
    compute = Counter()
    assert await asyncio.gather(*(cache.get(compute) for _ in range(10))) == [1] * 10
    assert compute.runs == 1


async def test_a_value_is_kept_until_it_expires() -> None:
    clock = Clock()
    cache: BriefCache[int] = BriefCache(5.0, clock=clock)
    compute = Counter()
    assert await cache.get(compute) == 1
    clock.now += 4.99
    assert await cache.get(compute) == 1
    clock.now += 0.01  # exactly `seconds` after: expired
    assert await cache.get(compute) == 2
    assert compute.runs == 2


async def test_zero_seconds_computes_every_call() -> None:
    cache: BriefCache[int] = BriefCache(0.0, clock=Clock())
    compute = Counter()
    assert [await cache.get(compute) for _ in range(3)] == [1, 2, 3]


async def test_a_failed_computation_is_not_kept() -> None:
    cache: BriefCache[int] = BriefCache(60.0, clock=Clock())
    calls = 0

    async def flaky() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("store away")
        return 7

    with pytest.raises(ConnectionError):
        await cache.get(flaky)
    assert await cache.get(flaky) == 7
    assert await cache.get(flaky) == 7
    assert calls == 2


async def test_a_cancelled_caller_does_not_cancel_the_shared_run() -> None:
    cache: BriefCache[int] = BriefCache(60.0)
    compute = Counter()
    first = asyncio.ensure_future(cache.get(compute))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(cache.get(compute))
    await asyncio.sleep(0)
    first.cancel()
    assert await second == 1
    assert compute.runs == 1


# ───────────────────────── BriefCaches: by key ─────────────────────────


class Keyed:
    """Counts runs per key; the value is (key, that key's run number)."""

    def __init__(self) -> None:
        self.runs: dict[str, int] = {}

    def __call__(self, key: str) -> Callable[[], Awaitable[tuple[str, int]]]:
        async def compute() -> tuple[str, int]:
            self.runs[key] = self.runs.get(key, 0) + 1
            await asyncio.sleep(0.01)
            return key, self.runs[key]

        return compute


async def test_keys_are_kept_apart_and_concurrent_callers_of_one_key_share_a_run() -> None:
    caches: BriefCaches[str, tuple[str, int]] = BriefCaches(5.0, 10)
    compute = Keyed()
    got = await asyncio.gather(*(caches.get(k, compute(k)) for k in ["a", "b"] * 5))
    assert got == [("a", 1), ("b", 1)] * 5
    assert compute.runs == {"a": 1, "b": 1}


async def test_a_key_expires_alone_and_forget_drops_it_at_once() -> None:
    clock = Clock()
    caches: BriefCaches[str, tuple[str, int]] = BriefCaches(5.0, 10, clock=clock)
    compute = Keyed()
    await caches.get("a", compute("a"))
    clock.now += 3
    await caches.get("b", compute("b"))
    clock.now += 2  # a's five seconds are over, b's are not
    assert await caches.get("a", compute("a")) == ("a", 2)
    assert await caches.get("b", compute("b")) == ("b", 1)
    caches.forget("b")
    assert await caches.get("b", compute("b")) == ("b", 2)


async def test_at_most_size_keys_are_kept_the_oldest_leaving_first() -> None:
    caches: BriefCaches[str, tuple[str, int]] = BriefCaches(60.0, 2)
    compute = Keyed()
    for key in ("a", "b", "c"):
        await caches.get(key, compute(key))
    assert len(caches._entries) == 2
    assert await caches.get("b", compute("b")) == ("b", 1)  # kept
    assert await caches.get("a", compute("a")) == ("a", 2)  # evicted, computed again


async def test_a_failed_computation_of_a_key_is_not_kept() -> None:
    caches: BriefCaches[str, int] = BriefCaches(60.0, 10)
    calls = 0

    async def flaky() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("store down")
        return calls

    with pytest.raises(RuntimeError):
        await caches.get("a", flaky)
    assert await caches.get("a", flaky) == 2
