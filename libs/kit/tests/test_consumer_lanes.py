"""A consumer with lanes, on the real broker and store: one voter's events in order,
voters side by side, an event without a lane alone between them, each applied once."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

import pytest

from veche_kit.bus import EventBus
from veche_kit.consumer import PROCESSED, Consumer, Handlers
from veche_kit.events import Envelope, PollClosed, PollVoteCast
from veche_kit.mongo import Database, Session, connect
from veche_stack.testing import eventually

VOTERS, VOTES_EACH, WIDTH = 5, 8, 4


@dataclass
class Record:
    log: list[tuple[str, str]] = field(default_factory=list)  # (what, ballot or poll)
    running: int = 0
    most: int = 0

    async def handle(self, name: str) -> None:
        self.running += 1
        self.most = max(self.most, self.running)
        self.log.append(("start", name))
        await asyncio.sleep(0.02)
        self.log.append(("end", name))
        self.running -= 1


handlers: Handlers[Record] = Handlers()


@handlers.on(PollVoteCast, lane="voter_id")
async def on_vote(
    record: Record, event: PollVoteCast, envelope: Envelope, session: Session
) -> None:
    await record.handle(event.ballot_id)


@handlers.on(PollClosed)
async def on_closed(
    record: Record, event: PollClosed, envelope: Envelope, session: Session
) -> None:
    await record.handle(event.poll_id)


def vote(voter: int, n: int) -> Envelope:
    event = PollVoteCast(
        poll_id="p1",
        ballot_id=f"v{voter}-{n:02d}",
        voter_id=f"v{voter}",
        points_reward=1,
        district_id=None,
        age_group=None,
    )
    return Envelope.wrap(event, "tests")


def published() -> list[Envelope]:
    """Every voter's first votes interleaved, the poll closing, then one vote each more."""
    first = [vote(v, n) for n in range(VOTES_EACH) for v in range(VOTERS)]
    closed = Envelope.wrap(PollClosed(poll_id="p1", title="?", votes_count=40, closed_by=None), "t")
    return [*first, closed, *(vote(v, VOTES_EACH) for v in range(VOTERS))]


def check_order(record: Record) -> None:
    started = [name for what, name in record.log if what == "start"]
    for v in range(VOTERS):
        mine = [name for name in started if name.startswith(f"v{v}-")]
        assert mine == sorted(mine), f"voter {v}'s votes out of order: {mine}"
    closing = record.log.index(("start", "p1"))
    assert {("end", f"v{v}-{n:02d}") for v in range(VOTERS) for n in range(VOTES_EACH)} <= set(
        record.log[:closing]
    )
    assert all(what == "start" or name != "p1" for what, name in record.log[:closing])
    after = record.log[record.log.index(("end", "p1")) :]
    assert {("start", f"v{v}-{VOTES_EACH:02d}") for v in range(VOTERS)} <= set(after)


async def test_lanes_keep_each_voters_order_and_run_voters_side_by_side(
    mongo_server_url: str, amqp_url: str
) -> None:
    client = connect(mongo_server_url)
    db = client[f"lanes_{uuid.uuid4().hex[:8]}"]
    bus = EventBus(amqp_url, "lanes", namespace=f"test-{uuid.uuid4().hex[:8]}.")
    record = Record()
    consumer = Consumer(
        client, db, bus, handlers.bind(record), lanes=handlers.lanes, concurrency=WIDTH
    )
    bus.start()
    consumer.start()
    try:
        await consumer.wait_subscribed(15)
        envelopes = published()
        for envelope in envelopes:
            await bus.publish(envelope)
        await eventually(lambda: _count(db, len(envelopes)), timeout=30)
        check_order(record)
        assert 1 < record.most <= WIDTH
        assert len(record.log) == 2 * len(envelopes)  # each applied once
    finally:
        await bus.close()
        await client.close()


async def _count(db: Database, expected: int) -> bool:
    return bool(await db[PROCESSED].count_documents({}) >= expected)


def test_a_lane_must_be_a_field_of_the_event() -> None:
    other: Handlers[Record] = Handlers()
    with pytest.raises(TypeError, match="no field 'voter_id'"):
        other.on(PollClosed, lane="voter_id")
