"""Leases against the real MongoDB-wire server: one holder at a time, even when many
ask at once; renewed by its holder, taken over once it runs out, released on stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from veche_kit.clock import utcnow
from veche_kit.mongo import Database, connect
from veche_kit.periodic import LEASES, Lease, every


@pytest.fixture
async def db(mongo_server_url: str, unique: str) -> AsyncIterator[Database]:
    client = connect(mongo_server_url)
    yield client[f"lease_{unique}"]
    await client.close()


async def test_one_holder_at_a_time_however_many_ask(db: Database) -> None:
    leases = [Lease(db, "sweep", 30, holder=f"instance-{i}") for i in range(8)]
    held = await asyncio.gather(*(lease.hold() for lease in leases))
    assert sum(held) == 1
    winner = leases[held.index(True)]
    assert await winner.hold()  # renewed by its holder
    assert not any([await lease.hold() for lease in leases if lease is not winner])


async def test_another_instance_takes_over_when_the_lease_runs_out(db: Database) -> None:
    first, second = Lease(db, "closer", 10, "a"), Lease(db, "closer", 10, "b")
    now = utcnow()
    assert await first.hold(now)
    assert not await second.hold(now + timedelta(seconds=9))
    assert await second.hold(now + timedelta(seconds=11))
    assert not await first.hold(now + timedelta(seconds=12))
    await second.release()
    assert await first.hold(now + timedelta(seconds=12))
    assert await db[LEASES].count_documents({}) == 1


async def test_every_works_only_while_holding_and_releases_on_stop(db: Database) -> None:
    ours, theirs = Lease(db, "retention", 30, "ours"), Lease(db, "retention", 30, "theirs")
    assert await theirs.hold()
    rounds: list[str] = []

    async def work() -> None:
        rounds.append("worked")

    async def failing() -> None:
        raise RuntimeError("store down")

    task = asyncio.create_task(every(0.05, work, lease=ours))
    await asyncio.sleep(0.3)
    assert rounds == []  # the other instance holds it
    await theirs.release()
    await asyncio.sleep(0.3)
    assert len(rounds) >= 2
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await db[LEASES].count_documents({"holder": "ours"}) == 0
    flaky = asyncio.create_task(every(0.05, failing))  # a failed round does not end the loop
    await asyncio.sleep(0.2)
    assert not flaky.done()
    flaky.cancel()
