"""`Outbox`: a unit of work commits with exactly the events it emitted, or neither."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from veche_kit.events import UserRoleChanged
from veche_kit.mongo import Database, connect, ensure_indexes
from veche_kit.outbox import OUTBOX, PENDING_INDEX, Outbox, Transaction


class WakeCounter:
    """Stands in for the relay: only `wake` is used by the outbox."""

    def __init__(self) -> None:
        self.wakes = 0

    def wake(self) -> None:
        self.wakes += 1


def role(user_id: str) -> UserRoleChanged:
    return UserRoleChanged(
        user_id=user_id, role="CITIZEN", granted=True, roles=["CITIZEN"], department_id=None
    )


@pytest.fixture
async def db(mongo_server_url: str) -> AsyncIterator[Database]:
    client = connect(mongo_server_url)
    database = client[f"outbox_{uuid.uuid4().hex[:8]}"]
    await ensure_indexes(database, {OUTBOX: [PENDING_INDEX]})
    yield database
    await client.close()


def outbox_of(db: Database, relay: WakeCounter) -> Outbox:
    return Outbox(db.client, db, "tests", relay)  # type: ignore[arg-type]


async def test_a_committed_unit_writes_its_events_in_order_and_wakes_the_relay(
    db: Database,
) -> None:
    relay = WakeCounter()

    async def work(tx: Transaction) -> str:
        await db["things"].insert_one({"_id": "a"}, session=tx.session)
        tx.emit(role("u1"), role("u2"))
        return "done"

    assert await outbox_of(db, relay).transaction(work) == "done"
    rows = await db[OUTBOX].find({}).sort("seq", 1).to_list()
    assert [r["envelope"]["data"]["user_id"] for r in rows] == ["u1", "u2"]
    assert all(r["pending"] and r["envelope"]["producer"] == "tests" for r in rows)
    assert await db["things"].count_documents({}) == 1
    assert relay.wakes == 1


async def test_a_failed_unit_leaves_neither_change_nor_events(db: Database) -> None:
    relay = WakeCounter()

    async def work(tx: Transaction) -> None:
        await db["things"].insert_one({"_id": "b"}, session=tx.session)
        tx.emit(role("u3"))
        raise LookupError("refused after writing")

    with pytest.raises(LookupError):
        await outbox_of(db, relay).transaction(work)
    assert await db[OUTBOX].count_documents({}) == 0
    assert await db["things"].count_documents({}) == 0
    assert relay.wakes == 0


async def test_a_unit_without_events_does_not_wake_the_relay(db: Database) -> None:
    relay = WakeCounter()

    async def work(tx: Transaction) -> None:
        await db["things"].insert_one({"_id": "c"}, session=tx.session)

    await outbox_of(db, relay).transaction(work)
    assert relay.wakes == 0


async def test_a_carried_event_is_pending_in_the_document_itself(db: Database) -> None:
    fields = outbox_of(db, WakeCounter()).carry(role("u4"))
    assert fields["pending"] is True
    assert fields["envelope"]["type"] == "user.role_changed"
    assert fields["envelope"]["data"]["user_id"] == "u4"
