"""`Lanes`: one key in order, keys side by side, keyless work alone."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from veche_kit.lanes import Lanes


class Log:
    def __init__(self) -> None:
        self.events: list[str] = []
        self.running = 0
        self.most = 0

    def work(self, name: str, seconds: float = 0.02) -> Callable[[], Awaitable[str]]:
        async def run() -> str:
            self.running += 1
            self.most = max(self.most, self.running)
            self.events.append(f"start {name}")
            await asyncio.sleep(seconds)
            self.events.append(f"end {name}")
            self.running -= 1
            return name

        return run


async def test_one_key_runs_in_arrival_order_even_when_the_first_is_slowest() -> None:
    lanes, log = Lanes(8), Log()
    tasks = [
        asyncio.create_task(lanes.run("voter-1", log.work(f"v{i}", 0.05 - 0.01 * i)))
        for i in range(4)
    ]
    assert await asyncio.gather(*tasks) == ["v0", "v1", "v2", "v3"]
    assert log.events == [f"{what} v{i}" for i in range(4) for what in ("start", "end")]
    assert log.most == 1


async def test_different_keys_run_side_by_side_up_to_the_width() -> None:
    lanes, log = Lanes(3), Log()
    await asyncio.gather(*(lanes.run(f"voter-{i}", log.work(f"v{i}")) for i in range(10)))
    assert log.most == 3


async def test_keyless_work_waits_for_all_before_it_and_holds_all_after_it() -> None:
    lanes, log = Lanes(8), Log()
    tasks = [
        asyncio.create_task(lanes.run("a", log.work("a1", 0.05))),
        asyncio.create_task(lanes.run("b", log.work("b1", 0.01))),
        asyncio.create_task(lanes.run(None, log.work("erase", 0.01))),
        asyncio.create_task(lanes.run("c", log.work("c1", 0.01))),
    ]
    await asyncio.gather(*tasks)
    erase_start = log.events.index("start erase")
    assert {"end a1", "end b1"} <= set(log.events[:erase_start])
    assert log.events.index("start c1") > log.events.index("end erase")


async def test_a_failed_work_does_not_block_its_lane() -> None:
    lanes, log = Lanes(2), Log()

    async def broken() -> str:
        raise RuntimeError("store down")

    first = asyncio.create_task(lanes.run("a", broken))
    second = asyncio.create_task(lanes.run("a", log.work("a2")))
    results = await asyncio.gather(first, second, return_exceptions=True)
    assert isinstance(results[0], RuntimeError)
    assert results[1] == "a2"
    assert not lanes._tails
    assert not lanes._running
