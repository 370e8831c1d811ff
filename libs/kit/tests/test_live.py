"""`veche_kit.live`: the hub's throttle and coalescing, and the feed on the machine's
RabbitMQ (each instance its own queue: two feeds both deliver one event)."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid

from veche_kit.bus import EventBus
from veche_kit.events import Envelope, Event, PollVoteCast
from veche_kit.live import LiveFeed, LiveHub, Subscriber

INTERVAL = 0.2


async def wakes_within(subscriber: Subscriber[int], seconds: float) -> list[int | None]:
    """Every wake the subscriber gets in `seconds`."""
    seen: list[int | None] = []

    async def collect() -> None:
        async for value in subscriber:
            seen.append(value)

    task = asyncio.create_task(collect())
    await asyncio.sleep(seconds)
    task.cancel()
    return seen


async def test_a_burst_of_touches_wakes_each_subscriber_once_with_the_latest() -> None:
    hub: LiveHub[int] = LiveHub(INTERVAL)
    with hub.subscribe("poll:1") as first, hub.subscribe("poll:1") as second:
        hub.touch("poll:1", 1)  # the first wakes at once
        await asyncio.sleep(0.01)
        for value in range(2, 100):
            hub.touch("poll:1", value)  # coalesced into one wake after the interval
        seen_first, seen_second = await asyncio.gather(
            wakes_within(first, INTERVAL * 3), wakes_within(second, INTERVAL * 3)
        )
    assert seen_first == [1, 99]
    assert seen_second == [1, 99]


async def test_wakes_are_at_least_an_interval_apart_and_the_last_touch_arrives() -> None:
    hub: LiveHub[int] = LiveHub(INTERVAL)
    woken: list[float] = []
    with hub.subscribe("t") as subscriber:

        async def watch() -> None:
            async for _ in subscriber:
                woken.append(time.monotonic())

        task = asyncio.create_task(watch())
        began = time.monotonic()
        while time.monotonic() - began < INTERVAL * 4:
            hub.touch("t", 1)
            await asyncio.sleep(0.005)
        await asyncio.sleep(INTERVAL * 1.5)  # the touches after the last wake still land
        task.cancel()
    gaps = [b - a for a, b in itertools.pairwise(woken)]
    assert 4 <= len(woken) <= 6, woken
    assert all(gap >= INTERVAL * 0.95 for gap in gaps), gaps
    assert woken[-1] > began + INTERVAL * 4


async def test_a_topic_no_one_listens_to_is_forgotten_and_close_ends_streams() -> None:
    hub: LiveHub[int] = LiveHub(INTERVAL)
    hub.touch("nobody", 1)
    assert hub.subscribers == 0
    with hub.subscribe("t") as subscriber:
        assert hub.subscribers == 1
        hub.close()
        assert [v async for v in subscriber] == []
    assert hub.subscribers == 0


async def test_one_flush_numbers_its_wakes_alike_and_the_shared_object_lives_with_the_topic() -> (
    None
):
    hub: LiveHub[int] = LiveHub(INTERVAL)
    with hub.subscribe("t") as first, hub.subscribe("t") as second:
        made = hub.shared("t", object)
        assert hub.shared("t", object) is made  # one per topic
        hub.touch("t", 1)
        assert await first.wait()
        assert await second.wait()
        number = first.wake_number
        assert number > 0
        assert second.wake_number == number
        hub.touch("t", 2)
        assert await first.wait()
        assert first.wake_number > number  # a later flush, a higher number
    with hub.subscribe("t"):
        assert hub.shared("t", object) is not made  # dropped with the last subscriber


def _topic(event: Event) -> list[str]:
    assert isinstance(event, PollVoteCast)
    return [f"poll:{event.poll_id}"]


async def test_each_feed_binds_its_own_queue_so_every_instance_gets_the_event(
    amqp_url: str,
) -> None:
    namespace = f"test-{uuid.uuid4().hex[:8]}."
    buses = [EventBus(amqp_url, "polls", namespace=namespace) for _ in range(2)]
    hubs: list[LiveHub[None]] = [LiveHub(INTERVAL) for _ in buses]
    feeds = [LiveFeed(b, h, {PollVoteCast.type: _topic}) for b, h in zip(buses, hubs, strict=True)]
    for bus, feed in zip(buses, feeds, strict=True):
        feed.start()
        bus.start()
    try:
        for bus in buses:
            await bus.wait_ready(10)
        await asyncio.sleep(0.5)  # the queues are declared once connected
        with hubs[0].subscribe("poll:p1") as one, hubs[1].subscribe("poll:p1") as two:
            vote = PollVoteCast(
                poll_id="p1",
                ballot_id="b",
                voter_id="v",
                points_reward=0,
                district_id=None,
                age_group=None,
            )
            await buses[0].publish(Envelope.wrap(vote, "polls"))
            await asyncio.wait_for(asyncio.gather(anext(aiter(one)), anext(aiter(two))), 5)
        assert [feed.received for feed in feeds] == [1, 1]
    finally:
        for bus in buses:
            await bus.close()
