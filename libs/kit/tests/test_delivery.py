"""Outbox relay and idempotent consumer against the real broker and store:
order per aggregate, duplicates absorbed, poison messages parked and replayed."""

from __future__ import annotations

import asyncio
import functools
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aio_pika
import pytest
from pymongo import AsyncMongoClient

from veche_kit.bus import EventBus
from veche_kit.consumer import PROCESSED, Consumer
from veche_kit.events import Envelope, Event, UserErased, UserProfileUpdated
from veche_kit.mongo import Database, Document, Session, connect, ensure_indexes, in_transaction
from veche_kit.outbox import OUTBOX, PENDING_INDEX, OutboxRelay, add_event
from veche_kit.replay import replay
from veche_stack.testing import eventually


def profile(user_id: str, name: str) -> UserProfileUpdated:
    return UserProfileUpdated(
        user_id=user_id,
        display_name=name,
        district_id=None,
        birth_year=None,
        phone_verified=False,
        skills=[],
        organization=None,
    )


@dataclass
class World:
    db: Database
    client: AsyncMongoClient[Document]
    bus: EventBus
    namespace: str


@pytest.fixture
async def world(mongo_server_url: str, amqp_url: str) -> AsyncIterator[World]:
    client = connect(mongo_server_url)
    db = client[f"kit_{uuid.uuid4().hex[:8]}"]
    await ensure_indexes(db, {OUTBOX: [PENDING_INDEX]})
    namespace = f"test-{uuid.uuid4().hex[:8]}."
    bus = EventBus(amqp_url, "projector", namespace=namespace)
    bus.start()
    await bus.wait_ready(10)
    yield World(db, client, bus, namespace)
    await bus.close()
    await client.close()


class Projection:
    """A consumer's effect: each profile event bumps a counter and records the name."""

    def __init__(self, db: Database, fail_names: set[str] | None = None) -> None:
        self.db = db
        self.fail_names = fail_names or set()
        self.calls = 0
        self.applied: list[str] = []  # user ids, in the order their events were applied

    async def on_profile_updated(self, envelope: Envelope, session: Session) -> None:
        self.calls += 1
        event = envelope.event()
        assert isinstance(event, UserProfileUpdated)
        if event.display_name in self.fail_names:
            raise RuntimeError("cannot handle this one yet")
        await self.db["names"].update_one(
            {"_id": event.user_id},
            {"$inc": {"applied": 1}, "$push": {"names": event.display_name}},
            upsert=True,
            session=session,
        )
        self.applied.append(event.user_id)


async def _doc(db: Database, user_id: str) -> Document:
    return await db["names"].find_one({"_id": user_id}) or {}


async def test_relay_publishes_in_write_order_and_consumer_applies_each_once(world: World) -> None:
    projection = Projection(world.db)
    consumer = Consumer(
        world.client,
        world.db,
        world.bus,
        {"user.profile_updated": projection.on_profile_updated},
    )
    consumer.start()
    names = [f"name-{i}" for i in range(30)]
    for name in names:

        async def write(session: Session, name: str = name) -> None:
            await add_event(world.db, profile("u1", name), producer="test", session=session)

        await in_transaction(world.client, write)
    relay = OutboxRelay(world.db, world.bus, poll_seconds=0.1)
    relay.start()
    await eventually(lambda: _applied(world.db, "u1", 30))
    await relay.stop()
    assert (await _doc(world.db, "u1"))["names"] == names  # per-aggregate order kept
    assert await world.db[OUTBOX].count_documents({"pending": True}) == 0


async def _applied(db: Database, user_id: str, count: int) -> bool:
    return bool((await _doc(db, user_id)).get("applied") == count)


async def test_duplicate_deliveries_and_concurrent_redelivery_apply_once(world: World) -> None:
    projection = Projection(world.db)
    consumer = Consumer(
        world.client,
        world.db,
        world.bus,
        {"user.profile_updated": projection.on_profile_updated},
    )
    envelope = Envelope.wrap(profile("u2", "Анна"), "test")
    results = await asyncio.gather(
        *[consumer.apply(envelope, projection.on_profile_updated) for _ in range(10)]
    )
    assert results.count(True) == 1
    assert (await _doc(world.db, "u2"))["applied"] == 1
    assert await world.db[PROCESSED].count_documents({"_id": str(envelope.id)}) == 1
    # Through the broker too: the same envelope published three times.
    consumer.start()
    await asyncio.wait_for(consumer.subscribed.wait(), 10)
    for _ in range(3):
        await world.bus.publish(envelope)
    await world.bus.publish(Envelope.wrap(profile("u2", "Марк"), "test"))
    await eventually(lambda: _applied(world.db, "u2", 2))
    # The duplicates were consumed before the later event (one queue, one at a time).
    assert (await _doc(world.db, "u2"))["names"] == ["Анна", "Марк"]


async def test_poison_message_is_parked_while_others_flow_then_replayed(
    world: World, amqp_url: str
) -> None:
    projection = Projection(world.db, fail_names={"poison"})
    consumer = Consumer(
        world.client,
        world.db,
        world.bus,
        {"user.profile_updated": projection.on_profile_updated},
        max_attempts=3,
        backoff_seconds=0.05,
    )
    consumer.start()
    await asyncio.wait_for(consumer.subscribed.wait(), 10)
    await world.bus.publish(Envelope.wrap(profile("u3", "poison"), "test"))
    for i in range(5):
        await world.bus.publish(Envelope.wrap(profile(f"ok-{i}", "fine"), "test"))
    for user_id in [f"ok-{i}" for i in range(5)]:
        await eventually(functools.partial(_applied, world.db, user_id, 1))
    await eventually(lambda: _dead_depth(world.bus, 1))
    assert projection.calls == 3 + 5  # three tries for the poison message, bounded
    assert await _doc(world.db, "u3") == {}
    # After the fix, the documented replay puts it back on the service's own queue.
    projection.fail_names.clear()
    moved = await replay(amqp_url, "projector", namespace=world.namespace)
    assert moved == 1
    await eventually(lambda: _applied(world.db, "u3", 1))
    await eventually(lambda: _dead_depth(world.bus, 0))


async def test_an_erasure_drops_the_persons_dead_letters_and_keeps_the_rest_in_order(
    world: World, amqp_url: str
) -> None:
    projection = Projection(world.db, fail_names={"poison-erased", "poison-kept"})
    erased: list[str] = []

    async def on_erased(envelope: Envelope, session: Session) -> None:
        erased.append(envelope.data["user_id"])

    consumer = Consumer(
        world.client,
        world.db,
        world.bus,
        {"user.profile_updated": projection.on_profile_updated, "user.erased": on_erased},
        max_attempts=1,
    )
    consumer.start()
    await asyncio.wait_for(consumer.subscribed.wait(), 10)
    parked = [
        profile("erased-1", "poison-erased"),
        profile("kept-1", "poison-kept"),
        profile("erased-1", "poison-erased"),
        profile("kept-2", "poison-kept"),
    ]
    for event in parked:
        await world.bus.publish(Envelope.wrap(event, "test"))
    await eventually(lambda: _dead_depth(world.bus, 4))

    await world.bus.publish(Envelope.wrap(UserErased(user_id="erased-1"), "test"))

    await eventually(lambda: _dead_depth(world.bus, 2))
    assert erased == ["erased-1"]
    # What stays is the others' messages, in the order they were parked.
    projection.fail_names.clear()
    assert await replay(amqp_url, "projector", namespace=world.namespace) == 2
    await eventually(lambda: _applied(world.db, "kept-2", 1))
    assert await _doc(world.db, "erased-1") == {}
    assert projection.applied == ["kept-1", "kept-2"]


async def _dead_depth(bus: EventBus, depth: int) -> bool:
    return await bus.dead_letter_depth() == depth


async def test_unreadable_message_goes_to_the_dead_letter_queue(
    world: World, amqp_url: str
) -> None:
    projection = Projection(world.db)
    consumer = Consumer(
        world.client,
        world.db,
        world.bus,
        {"user.profile_updated": projection.on_profile_updated},
    )
    consumer.start()
    await asyncio.wait_for(consumer.subscribed.wait(), 10)
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.default_exchange.publish(
            aio_pika.Message(body=json.dumps({"not": "an envelope"}).encode()),
            routing_key=world.bus.queue_name,
        )
    await eventually(lambda: _dead_depth(world.bus, 1))
    assert projection.calls == 0


async def test_an_older_event_version_parked_before_an_upgrade_replays_after_it(
    world: World, amqp_url: str
) -> None:
    """A version-1 event is dead-lettered; the upgrade adds version 2 (with its upcast)
    and a handler written for it; the replay hands that handler the upcast event."""
    event_type = "test.note_written"

    class NoteWritten(Event):
        type = event_type
        note_id: str
        text: str

    applied: list[Event] = []
    upgraded = False

    async def on_note_written(envelope: Envelope, session: Session) -> None:
        if not upgraded:
            raise RuntimeError("the handler before the upgrade fails on this note")
        applied.append(envelope.event())
        await world.db["notes"].insert_one({"_id": envelope.data["note_id"]}, session=session)

    try:
        consumer = Consumer(
            world.client,
            world.db,
            world.bus,
            {event_type: on_note_written},
            max_attempts=2,
            backoff_seconds=0.05,
        )
        consumer.start()
        await asyncio.wait_for(consumer.subscribed.wait(), 10)
        old = Envelope.wrap(NoteWritten(note_id="n1", text="Спасибо за скамейку"), "test")
        await world.bus.publish(old)
        await eventually(lambda: _dead_depth(world.bus, 1))

        class NoteWrittenV2(Event):
            type = event_type
            version = 2
            note_id: str
            text: str
            language: str

            @classmethod
            def from_previous(cls, data: dict[str, Any]) -> dict[str, Any]:
                return {**data, "language": "ru"}

        upgraded = True
        assert await replay(amqp_url, "projector", namespace=world.namespace) == 1

        async def notes() -> int:
            return await world.db["notes"].count_documents({})

        await eventually(notes)
        assert applied == [NoteWrittenV2(note_id="n1", text="Спасибо за скамейку", language="ru")]
        assert old.version == 1
    finally:
        for version in (1, 2):
            Event.registry.pop((event_type, version), None)


def test_a_new_version_without_an_upcast_is_refused() -> None:
    with pytest.raises(TypeError, match="must say how to upcast version 1"):

        class ProfileUpdatedV2(Event):
            type = "user.profile_updated"
            version = 2

    assert ("user.profile_updated", 2) not in Event.registry


def test_an_unknown_newer_version_is_not_guessed() -> None:
    envelope = Envelope.wrap(profile("u9", "Ольга"), "test").model_copy(update={"version": 9})
    with pytest.raises(KeyError):
        envelope.event()
