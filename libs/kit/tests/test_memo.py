"""`BriefCache`: one run shared by concurrent callers, kept for `seconds`, failures not kept."""

from __future__ import annotations

import asyncio

import pytest

from veche_kit.memo import BriefCache


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
