"""The moderation queue's collections and the hidden marks on content.

A case is one piece of content (its `key`, e.g. "COMMENT:<id>") with every
complaint about it; `content_reports` holds one complaint per person per case (a
unique index), so a second report by the same person counts nothing. Hiding
writes a mark on the content itself (`hidden` on an issue or a comment, the URL in
`hidden_photos`), which every public query excludes.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from veche_issues.store import COMMENTS, ISSUES
from veche_kit import mongo
from veche_kit.events import ContentKind
from veche_kit.mongo import Database, Document, Session

CASES = "moderation_cases"
REPORTS = "content_reports"
# How many of the latest complaints a case shows the moderator.
KEPT_REASONS = 5

INDEXES: dict[str, list[IndexModel]] = {
    CASES: [
        IndexModel([("key", ASCENDING)], name="key", unique=True),
        IndexModel([("status", ASCENDING), ("_id", DESCENDING)], name="status"),
        IndexModel([("author_id", ASCENDING)], name="author"),
    ],
    REPORTS: [
        IndexModel([("case_id", ASCENDING), ("reporter_id", ASCENDING)], unique=True),
        IndexModel([("reporter_id", ASCENDING)], name="reporter"),
    ],
}


def visible(scope: str | None, author_field: str) -> Document:
    """Which documents a viewer sees: "*" (a moderator) all, a user id the shown ones
    and their own, None (anonymous) the shown ones."""
    if scope == "*":
        return {}
    if scope is None:
        return {"hidden": None}
    return {"$or": [{"hidden": None}, {author_field: scope}]}


class ModerationStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def comment(self, comment_id: str) -> Document | None:
        return await self.db[COMMENTS].find_one({"_id": comment_id})

    async def case(self, key: str) -> Document | None:
        return await self.db[CASES].find_one({"key": key})

    async def open_case(
        self, key: str, fields: Document, at: datetime, session: Session | None = None
    ) -> Document:
        """The case of `key`, made now if there is none (a concurrent maker wins, and
        this one reads it)."""
        new = {
            **fields,
            "status": "OPEN",
            "reports_count": 0,
            "reasons": [],
            "first_reported_at": at,
        }
        for attempt in range(5):
            try:
                found: Document | None = await self.db[CASES].find_one_and_update(
                    {"key": key},
                    {"$setOnInsert": {"_id": mongo.new_id(), **new}},
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                    session=session,
                )
            except DuplicateKeyError:
                found = await self.db[CASES].find_one({"key": key}, session=session)
            if found is not None:
                return found
            # The other maker's insert hit the unique index before it could be read.
            await asyncio.sleep(0.01 * (attempt + 1))
        raise RuntimeError(f"moderation case {key} neither made nor found")

    async def add_report(self, case: Document, reporter_id: str, reason: str, at: datetime) -> bool:
        """Counts one person's complaint once; False when they had made it already."""
        try:
            await self.db[REPORTS].insert_one(
                {
                    "_id": mongo.new_id(),
                    "case_id": case["_id"],
                    "reporter_id": reporter_id,
                    "reason": reason,
                    "at": at,
                }
            )
        except DuplicateKeyError:
            return False
        await self.db[CASES].update_one(
            {"_id": case["_id"]},
            {
                "$inc": {"reports_count": 1},
                "$set": {"last_reported_at": at},
                "$push": {
                    "reasons": {
                        "$each": [{"by": reporter_id, "text": reason, "at": at}],
                        "$slice": -KEPT_REASONS,
                    }
                },
            },
        )
        return True

    async def flag(
        self, key: str, fields: Document, word: str, at: datetime, session: Session | None = None
    ) -> None:
        """The word filter's mark on the case of `key` (opened with `fields` if need be):
        it waits in the queue for a moderator. Flagging twice changes nothing more."""
        case = await self.open_case(key, fields, at, session)
        await self.db[CASES].update_one(
            {"_id": case["_id"]},
            {"$set": {"flagged_word": word, "last_reported_at": at}},
            session=session,
        )

    async def decide(
        self, key: str, hidden: bool, decision: Document, session: Session
    ) -> Document | None:
        """Hides (or restores) the case's content; None when it already was."""
        found: Document | None = await self.db[CASES].find_one_and_update(
            {"key": key, "status": {"$ne": "HIDDEN"} if hidden else "HIDDEN"},
            {"$set": {"status": "HIDDEN" if hidden else "RESTORED", **decision}},
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        return found

    async def mark(self, case: Document, mark: Document | None, session: Session) -> None:
        """Writes (or, with None, removes) the hidden mark on the case's content."""
        kind, content_id = ContentKind(case["kind"]), case["content_id"]
        if kind is ContentKind.PHOTO:
            change = "$addToSet" if mark is not None else "$pull"
            await self.db[ISSUES].update_one(
                {"_id": case["issue_id"]},
                {change: {"hidden_photos": case["photo_url"]}},
                session=session,
            )
        elif kind in (ContentKind.ISSUE, ContentKind.COMMENT):
            collection = ISSUES if kind is ContentKind.ISSUE else COMMENTS
            await self.db[collection].update_one(
                {"_id": content_id}, {"$set": {"hidden": mark}}, session=session
            )

    async def page(
        self, status: str | None, *, first: int, after: str | None
    ) -> tuple[list[Document], bool, int]:
        """Cases newest first, of one status or all."""
        query: Document = {"status": status} if status is not None else {}
        return await mongo.page(self.db, CASES, query, first=first, after=after)

    async def export_of(self, user_id: str) -> dict[str, Any]:
        """The complaints the person made (the cases about their content are staff records)."""
        found = await self.db[REPORTS].find({"reporter_id": user_id}, {"_id": 0}).to_list()
        return {REPORTS: found}

    async def erase_user(self, user_id: str, session: Session) -> None:
        """Forgets the person's complaints and what they wrote; the counts and the
        decisions stay."""
        await self.db[REPORTS].delete_many({"reporter_id": user_id}, session=session)
        await self.db[CASES].update_many(
            {"reasons.by": user_id}, {"$pull": {"reasons": {"by": user_id}}}, session=session
        )
        await self.db[CASES].update_many(
            {"author_id": user_id}, {"$set": {"author_id": None, "excerpt": None}}, session=session
        )
