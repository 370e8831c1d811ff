"""`veche_kit.retention`: a sweep deletes what its rules no longer keep, nothing else,
and a second sweep finds nothing more."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from veche_kit.clock import utcnow
from veche_kit.mongo import Database, connect
from veche_kit.retention import Retention, Rule


@pytest.fixture
async def db(mongo_server_url: str) -> AsyncIterator[Database]:
    client = connect(mongo_server_url)
    yield client[f"retention_{uuid.uuid4().hex[:8]}"]
    await client.close()


async def test_a_sweep_keeps_what_is_young_or_outside_the_rule(db: Database) -> None:
    now = utcnow()
    await db["codes"].insert_many(
        [{"_id": "expired", "at": now - timedelta(hours=2)}, {"_id": "young", "at": now}]
    )
    await db["notes"].insert_many(
        [
            {"_id": "old-read", "read": True, "at": now - timedelta(days=10)},
            {"_id": "old-unread", "read": False, "at": now - timedelta(days=10)},
        ]
    )
    rules = [
        Rule("codes", "at", timedelta(hours=1)),
        Rule("notes", "at", timedelta(days=7), only={"read": True}),
    ]
    retention = Retention(db, rules)

    assert await retention.sweep(now) == {"codes": 1, "notes": 1}
    assert await db["codes"].distinct("_id") == ["young"]
    assert await db["notes"].distinct("_id") == ["old-unread"]
    assert await retention.sweep(now) == {"codes": 0, "notes": 0}
