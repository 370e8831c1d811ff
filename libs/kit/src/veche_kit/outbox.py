"""The transactional outbox and its relay.

A state change and its event are written atomically: `add_event` inserts the
envelope into the service's `outbox` collection within the caller's
transaction (or a pending envelope lives inside the very document that
changes, for single-document atomicity on hot paths). The relay publishes
pending envelopes in the order they were written, waits for the broker's
confirm, then marks them sent. A broker outage delays events, never drops
them; a crash between publish and mark re-publishes, which idempotent
consumers absorb. Several processes of a service each run a relay; a lease per
collection lets one of them publish it at a time (`OutboxRelay`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bson import ObjectId
from pymongo import ASCENDING, AsyncMongoClient, IndexModel, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection

from veche_kit.bus import BusUnavailableError, EventBus
from veche_kit.clock import utcnow
from veche_kit.events import Envelope, Event
from veche_kit.mongo import Database, Document, Session, in_transaction
from veche_kit.periodic import Lease, release_quietly

log = logging.getLogger(__name__)
T = TypeVar("T")
Collection = AsyncCollection[Document]

OUTBOX = "outbox"
# The relay's ordering key: ObjectIds grow within a process, so per-aggregate
# order (every write of one aggregate goes through one service) is kept.
PENDING_INDEX = IndexModel([("pending", ASCENDING), ("seq", ASCENDING)], sparse=True)


def pending_fields(envelope: Envelope) -> Document:
    """The fields that make any document carry a pending event for the relay."""
    return {"envelope": envelope.model_dump(mode="json"), "pending": True, "seq": ObjectId()}


async def add_event(
    db: Database, event: Event, *, producer: str, session: Session | None = None
) -> Envelope:
    """Writes `event` to the outbox, inside `session`'s transaction when given."""
    envelope = Envelope.wrap(event, producer)
    await db[OUTBOX].insert_one(
        {
            "_id": str(envelope.id),
            "type": envelope.type,
            "created_at": utcnow(),
            **pending_fields(envelope),
        },
        session=session,
    )
    return envelope


@dataclass
class Transaction:
    """One try of a unit of work: its session, and the events it emits."""

    session: Session
    events: list[Event] = field(default_factory=list)

    def emit(self, *events: Event) -> None:
        """Written to the outbox when the work returns, in order, in its transaction."""
        self.events.extend(events)


class Outbox:
    """How a service saves a change with its events, then wakes the relay.

    Two ways, both atomic: `transaction(work)` commits the work and outbox rows for
    what it emitted together; `carry(event)` gives the fields that make the one
    document being written hold its own pending event (no transaction, for hot
    paths), after which the writer calls `written()`.
    """

    def __init__(
        self,
        client: AsyncMongoClient[Document],
        db: Database,
        producer: str,
        relay: OutboxRelay | None = None,
    ) -> None:
        self.client = client
        self.db = db
        self.producer = producer
        self.relay = relay

    def carry(self, event: Event) -> Document:
        return pending_fields(Envelope.wrap(event, self.producer))

    def written(self) -> None:
        """After a commit that wrote events, so they go out without waiting a poll."""
        if self.relay is not None:
            self.relay.wake()

    async def transaction(self, work: Callable[[Transaction], Awaitable[T]]) -> T:
        """Runs `work` in one transaction with the events it emits; wakes the relay
        once it committed any. A callable rather than an `async with` block, because
        a transient conflict re-runs the whole work (a block's body runs once)."""
        emitted = False

        async def attempt(session: Session) -> T:
            nonlocal emitted
            tx = Transaction(session)
            result = await work(tx)
            for event in tx.events:
                await add_event(self.db, event, producer=self.producer, session=session)
            emitted = bool(tx.events)
            return result

        result = await in_transaction(self.client, attempt)
        if emitted:
            self.written()
        return result


@dataclass(frozen=True)
class Backlog:
    pending: int
    oldest_age_seconds: float | None


class OutboxRelay:
    """Publishes pending envelopes from one or more collections, oldest first.

    Several processes of one service may each run a relay: a `Lease` named
    `outbox:<collection>` in the service's store lets one of them publish a
    collection at a time, renewed while it works. When its holder dies, another
    relay takes the collection over once the lease has run out (`lease_seconds`);
    a clean stop releases it at once. A holder that stalls past its lease may
    overlap its successor for one batch, publishing some envelopes twice: the
    consumers are idempotent (each applies an event id once), so the lease saves
    work and keeps order, and a duplicate is absorbed where it lands.
    """

    def __init__(
        self,
        db: Database,
        bus: EventBus,
        *,
        collections: tuple[str, ...] = (OUTBOX,),
        poll_seconds: float = 0.5,
        batch_size: int = 200,
        lease_seconds: float = 10.0,
        holder: str | None = None,
    ) -> None:
        self.db = db
        self.bus = bus
        self.collections = collections
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self.leases = {
            name: Lease(db, f"outbox:{name}", lease_seconds, holder) for name in collections
        }
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Called after a commit that wrote events, so they go out without waiting a poll."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
            for lease in self.leases.values():
                await release_quietly(lease)

    async def _run(self) -> None:
        await self.bus.wait_ready(None)  # nothing to do before the first connection
        waiting = False  # log an outage once, not once a second
        while True:
            self._wake.clear()  # before reading, so a wake during the read is not lost
            try:
                sent = await self.publish_pending()
                waiting = False
            except BusUnavailableError as error:
                if not waiting:
                    log.warning("outbox relay waiting for the broker", extra={"error": str(error)})
                waiting = True
                sent = 0
                await asyncio.sleep(1.0)
            except Exception:
                log.exception("outbox relay failed; retrying")
                sent = 0
                await asyncio.sleep(1.0)
            if sent == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)

    async def publish_pending(self) -> int:
        """Publishes one batch of each collection whose lease this relay holds; returns
        how many were sent."""
        sent = 0
        for name in self.collections:
            if await self.leases[name].keep():
                sent += await self._publish_batch(self.db[name])
        return sent

    async def _publish_batch(self, collection: Collection) -> int:
        """Publishes the oldest pending envelopes in order, each confirmed by the broker,
        then marks the published ones sent in one write (also when the broker fails
        midway: what it confirmed is marked, the rest stays pending, in order)."""
        cursor = collection.find({"pending": True}, {"envelope": 1, "seq": 1}).sort(
            "seq", ASCENDING
        )
        batch: list[Document] = await cursor.limit(self.batch_size).to_list()
        published: list[Document] = []
        try:
            for document in batch:
                envelope = Envelope.model_validate(document["envelope"])
                await self.bus.publish(envelope)
                published.append(document)
                log.debug(
                    "event published",
                    extra={"event_id": str(envelope.id), "event_type": envelope.type},
                )
        finally:
            if published:
                await _mark_sent(collection, published)
        return len(published)

    async def backlog(self) -> Backlog:
        pending = 0
        oldest: Any = None
        for name in self.collections:
            collection = self.db[name]
            pending += await collection.count_documents({"pending": True})
            first = await collection.find_one(
                {"pending": True}, {"seq": 1}, sort=[("seq", ASCENDING)]
            )
            if first is not None:
                created = first["seq"].generation_time
                oldest = created if oldest is None else min(oldest, created)
        age = (utcnow() - oldest).total_seconds() if oldest is not None else None
        return Backlog(pending=pending, oldest_age_seconds=age)


async def _mark_sent(collection: Collection, published: list[Document]) -> None:
    """One write for the batch: a bulk write of one conditional update per document, in
    one round trip. Matching the seq each document had when read keeps a document that
    meanwhile took a newer pending event (a carried one) pending. (Not one `update_many`
    over `_id $in`: against the embedded store, that multi-document write stalled a
    transaction writing the same collection at the same time.)"""
    marked = {"$unset": {"pending": "", "seq": ""}, "$set": {"sent_at": utcnow()}}
    await collection.bulk_write(
        [UpdateOne({"_id": d["_id"], "seq": d["seq"]}, marked) for d in published],
        ordered=False,
    )
