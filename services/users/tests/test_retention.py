"""Retention: expired sessions and phone codes, and read notifications past their
days, are swept; everything else stays."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from veche_kit.clock import utcnow
from veche_kit.mongo import Database
from veche_kit.retention import Retention
from veche_users import store

from .conftest import UsersServer


async def _seed(db: Database, tag: str, now: datetime) -> None:
    """Notifications old and fresh, read and unread; a session and a code past expiry."""
    old, fresh = now - timedelta(days=91), now - timedelta(days=89)
    await db[store.NOTIFICATIONS].insert_many(
        [
            {"_id": f"{tag}-{name}", "user_id": tag, "source_event": name, "read": read, "at": at}
            for name, read, at in (
                ("old-read", True, old),
                ("old-unread", False, old),
                ("fresh-read", True, fresh),
            )
        ]
    )
    await db[store.REFRESH_TOKENS].insert_many(
        [
            {"_id": f"{tag}-expired", "user_id": tag, "expires_at": now - timedelta(seconds=1)},
            {"_id": f"{tag}-valid", "user_id": tag, "expires_at": now + timedelta(days=1)},
        ]
    )
    await db[store.PHONE_CODES].insert_one({"_id": tag, "expires_at": now - timedelta(minutes=1)})
    await db[store.EMAIL_CODES].insert_many(
        [
            {"_id": f"used:{tag}", "user_id": tag, "expires_at": now - timedelta(minutes=1)},
            {"_id": f"pending:{tag}", "user_id": tag, "expires_at": now + timedelta(minutes=30)},
        ]
    )


async def test_the_sweep_removes_only_what_is_past_its_time(users: UsersServer) -> None:
    db = users.service.db
    now = utcnow()
    tag = uuid.uuid4().hex
    await _seed(db, tag, now)

    removed = await Retention(db, store.retention_rules(90, 1826)).sweep(now)

    assert removed[store.NOTIFICATIONS] >= 1
    kept = await db[store.NOTIFICATIONS].find({"user_id": tag}).distinct("_id")
    assert sorted(kept) == [f"{tag}-fresh-read", f"{tag}-old-unread"]
    tokens = await db[store.REFRESH_TOKENS].find({"user_id": tag}).distinct("_id")
    assert tokens == [f"{tag}-valid"]
    assert await db[store.PHONE_CODES].find_one({"_id": tag}) is None
    codes = await db[store.EMAIL_CODES].find({"user_id": tag}).distinct("_id")
    assert codes == [f"pending:{tag}"]
    assert users.settings.read_notification_days == 90  # the default the rule was given
