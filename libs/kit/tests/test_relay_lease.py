"""Several relays on one store, as several processes of one service run them: each
event reaches the broker once, a dead or stopped holder is taken over, and a broker
outage in the middle of a batch loses nothing. Counted in a real RabbitMQ queue."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aio_pika.abc import AbstractQueue

from veche_kit.bus import EventBus
from veche_kit.events import UserRoleChanged
from veche_kit.mongo import Database, Session, connect, ensure_indexes, in_transaction
from veche_kit.outbox import OUTBOX, PENDING_INDEX, OutboxRelay, add_event
from veche_kit.periodic import LEASES
from veche_stack.testing import TcpProxy, bound_queue, eventually, take


def role(user_id: str) -> UserRoleChanged:
    return UserRoleChanged(
        user_id=user_id, role="CITIZEN", granted=True, roles=["CITIZEN"], department_id=None
    )


@dataclass
class Store:
    db: Database
    namespace: str
    amqp_url: str


@pytest.fixture
async def store(mongo_server_url: str, amqp_url: str) -> AsyncIterator[Store]:
    client = connect(mongo_server_url)
    db = client[f"relays_{uuid.uuid4().hex[:8]}"]
    await ensure_indexes(db, {OUTBOX: [PENDING_INDEX]})
    yield Store(db, f"test-{uuid.uuid4().hex[:8]}.", amqp_url)
    await client.close()


class Instance:
    """One process's relay: its own broker link, its own lease holder name."""

    def __init__(self, store: Store, name: str, url: str | None = None, **options: Any) -> None:
        self.bus = EventBus(url or store.amqp_url, "tests", namespace=store.namespace)
        self.relay = OutboxRelay(store.db, self.bus, poll_seconds=0.05, holder=name, **options)

    async def start(self) -> None:
        self.bus.start()
        await self.bus.wait_ready(10)
        self.relay.start()

    async def stop(self) -> None:
        await self.relay.stop()
        await self.bus.close()

    async def die(self) -> None:
        """As a SIGKILL would: the work stops, the lease is left to run out."""
        assert self.relay._task is not None
        self.relay._task.cancel()
        self.relay._task = None
        await self.bus.close()


async def write(db: Database, count: int, prefix: str) -> set[str]:
    """`count` events in `count` transactions, as a service's commits write them."""
    ids: set[str] = set()
    for i in range(count):

        async def one(session: Session, i: int = i) -> None:
            envelope = await add_event(db, role(f"{prefix}-{i}"), producer="tests", session=session)
            ids.add(str(envelope.id))

        await in_transaction(db.client, one)
    return ids


async def drained(store: Store) -> None:
    async def nothing_pending() -> bool:
        return await store.db[OUTBOX].count_documents({"pending": True}) == 0

    await eventually(nothing_pending, timeout=30)


async def received_ids(queue: AbstractQueue) -> Counter[str]:
    return Counter(str(message["id"]) for message in await take(queue))


async def holder(store: Store, collection: str = OUTBOX) -> str | None:
    lease = await store.db[LEASES].find_one({"_id": f"outbox:{collection}"})
    return None if lease is None else str(lease["holder"])


async def test_two_relays_on_one_store_publish_each_event_once(store: Store) -> None:
    first, second = Instance(store, "a", batch_size=20), Instance(store, "b", batch_size=20)
    async with bound_queue(store.amqp_url, store.namespace, "#") as queue:
        await asyncio.gather(first.start(), second.start())
        written = await write(store.db, 60, "before")
        # Both relays are woken by every commit, as both processes' commits would.
        waking = asyncio.create_task(_wake_both(first, second))
        written |= await write(store.db, 60, "during")
        waking.cancel()
        await drained(store)
        await asyncio.gather(first.stop(), second.stop())
        received = await received_ids(queue)
    assert set(received) == written
    assert max(received.values()) == 1, "an event was published twice"


async def _wake_both(*instances: Instance) -> None:
    while True:
        for instance in instances:
            instance.relay.wake()
        await asyncio.sleep(0.01)


async def test_a_stopped_holder_hands_over_at_once(store: Store) -> None:
    first, second = Instance(store, "a"), Instance(store, "b")
    async with bound_queue(store.amqp_url, store.namespace, "#") as queue:
        await first.start()
        written = await write(store.db, 5, "first")
        await drained(store)
        await second.start()
        assert await holder(store) == "a"
        await first.stop()  # releases its lease
        written |= await write(store.db, 5, "second")
        await drained(store)
        assert await holder(store) == "b"
        await second.stop()
        received = await received_ids(queue)
    assert set(received) == written
    assert max(received.values()) == 1


async def test_a_killed_holder_is_taken_over_once_its_lease_runs_out(store: Store) -> None:
    first, second = Instance(store, "a", lease_seconds=1.0), Instance(store, "b", lease_seconds=1.0)
    async with bound_queue(store.amqp_url, store.namespace, "#") as queue:
        await first.start()
        written = await write(store.db, 5, "first")
        await drained(store)
        await second.start()
        await first.die()
        assert await holder(store) == "a"  # left behind, not released
        written |= await write(store.db, 5, "second")
        await drained(store)
        assert await holder(store) == "b"
        await second.stop()
        received = await received_ids(queue)
    assert set(received) == written
    assert max(received.values()) == 1


async def test_a_broker_outage_in_the_middle_of_a_batch_loses_nothing(store: Store) -> None:
    proxy = TcpProxy("127.0.0.1", 5672)
    await proxy.start()
    relay = Instance(store, "a", proxy.url, batch_size=400)
    written = await write(store.db, 400, "outage")
    async with bound_queue(store.amqp_url, store.namespace, "#") as queue:
        received: Counter[str] = Counter()

        async def some_arrived() -> bool:
            received.update(await received_ids(queue))
            return len(received) > 0

        await relay.start()
        await eventually(some_arrived, interval=0.005)
        await proxy.cut()  # while the batch of 400 is being published
        assert await store.db[OUTBOX].count_documents({"pending": True}) > 0
        await proxy.restore()
        await drained(store)
        await relay.stop()
        await proxy.cut()
        received.update(await received_ids(queue))
    # Confirmed ones were marked at the cut; only one unconfirmed at the cut may repeat.
    assert set(received) == written
    assert sum(received.values()) - len(written) <= 1
