"""The users service's MongoDB collections, their indexes and the queries on them."""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel

from veche_kit.mongo import Database, Document

USERS = "users"
REFRESH_TOKENS = "refresh_tokens"
PHONE_CODES = "phone_codes"
DISTRICTS = "districts"
DEPARTMENTS = "departments"
REWARDS = "rewards"
REDEMPTIONS = "redemptions"
LEDGER = "points_ledger"
NOTIFICATIONS = "notifications"
# Projections fed by other services' events.
POLL_VOTERS = "poll_voters"
SUPPORTERS = "initiative_supporters"
INITIATIVES = "initiatives"

INDEXES: dict[str, list[IndexModel]] = {
    USERS: [
        IndexModel([("email", ASCENDING)], unique=True, name="email_unique"),
        # Set only once a phone is verified: one account per verified phone.
        IndexModel(
            [("verified_phone", ASCENDING)], unique=True, sparse=True, name="verified_phone_unique"
        ),
        IndexModel([("roles", ASCENDING), ("skills", ASCENDING), ("district_id", ASCENDING)]),
    ],
    REFRESH_TOKENS: [IndexModel([("family", ASCENDING)]), IndexModel([("user_id", ASCENDING)])],
    # One ledger entry per user per source event: a credit is never applied twice.
    LEDGER: [
        IndexModel(
            [("user_id", ASCENDING), ("source_event", ASCENDING)], unique=True, name="credit_once"
        ),
        IndexModel([("user_id", ASCENDING), ("_id", DESCENDING)]),
    ],
    REDEMPTIONS: [IndexModel([("user_id", ASCENDING), ("_id", DESCENDING)])],
    NOTIFICATIONS: [
        IndexModel([("user_id", ASCENDING), ("read", ASCENDING), ("_id", DESCENDING)]),
        # One notification per user per source event: a redelivered event adds nothing.
        IndexModel(
            [("user_id", ASCENDING), ("source_event", ASCENDING)], unique=True, name="notify_once"
        ),
    ],
    POLL_VOTERS: [IndexModel([("poll_id", ASCENDING)])],
    SUPPORTERS: [IndexModel([("issue_id", ASCENDING), ("active", ASCENDING)])],
}


def new_id() -> str:
    """Ids are ObjectId strings: unique, and growing with time for stable paging."""
    return str(ObjectId())


async def find_by_ids(db: Database, collection: str, ids: list[str]) -> list[Document | None]:
    """The documents with `ids`, in that order, None where missing (for loaders)."""
    found = {d["_id"]: d async for d in db[collection].find({"_id": {"$in": list(set(ids))}})}
    return [found.get(i) for i in ids]


async def page(
    db: Database,
    collection: str,
    query: dict[str, Any],
    *,
    first: int,
    after: str | None,
    newest_first: bool = False,
) -> tuple[list[Document], bool, int]:
    """A page ordered by `_id` after the id `after`; (documents, has_next, total)."""
    total = await db[collection].count_documents(query)
    window = dict(query)
    if after is not None:
        window["_id"] = {"$lt" if newest_first else "$gt": after}
    cursor = db[collection].find(window).sort("_id", DESCENDING if newest_first else ASCENDING)
    documents: list[Document] = await cursor.limit(first + 1).to_list()
    return documents[:first], len(documents) > first, total
