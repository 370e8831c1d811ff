"""Open deadlines follow the working-day calendar.

When an admin marks or unmarks a day, every ACCEPTED issue not yet answered whose
counted deadline runs over that date (from the local day it started counting to the
local day it is due, both in) gets its `dueAt` counted again on the new calendar, from
the same start and with the same number of working days. Each issue is updated on
its old `dueAt` (a concurrent answer, extension or recount wins, this one skips it),
with a DEADLINE_RECOUNTED step in its history; `overdue` follows `dueAt` as always,
and a deadline moved into the future may be told overdue again later.

A deadline a person set (`extendDeadline`) is a date, not a count: it stays. The
calendar change and its marker are written in one transaction; the marker is removed
when the recount is done, and the sweep runs any left by a crash.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

from pymongo import ReplaceOne, UpdateOne

from veche_issues import domain
from veche_issues.domain import AWAITING_ANSWER, StepKind
from veche_kit.clock import utcnow
from veche_kit.mongo import Database, Document, Session

if TYPE_CHECKING:
    from veche_issues.service import IssuesService

log = logging.getLogger(__name__)

RECOUNTS = "calendar_recounts"
BATCH = 200
ISSUES = "issues"


class DeadlineRecount:
    """Counts open deadlines again after a calendar change."""

    def __init__(self, issues: IssuesService) -> None:
        self.issues = issues

    @property
    def _db(self) -> Database:
        return self.issues.db

    async def mark(self, day: date, session: Session) -> None:
        """Records, in the calendar change's transaction, that `day` needs a recount."""
        marker = {"_id": day.isoformat(), "marked_at": utcnow()}
        await self._db[RECOUNTS].bulk_write(
            [ReplaceOne({"_id": marker["_id"]}, marker, upsert=True)], session=session
        )

    async def pending(self) -> int:
        """Runs every recount a crash left marked (the sweep calls it); how many issues moved."""
        moved = 0
        for marker in await self._db[RECOUNTS].find().to_list():
            moved += await self.run(date.fromisoformat(marker["_id"]))
        return moved

    async def run(self, day: date, now: datetime | None = None) -> int:
        """Counts again the open deadlines over `day`, in batches; how many moved."""
        now = now or utcnow()
        started = utcnow()
        categories: dict[str, Document | None] = {}
        moved = 0
        async for page in self._over(day):
            updates = []
            for issue in page:
                update = self._recount(issue, await self._deadline_of(issue, categories), now)
                if update is not None:
                    updates.append(update)
            if updates:  # one round trip per batch; each update still on its own old dueAt
                moved += (await self._db[ISSUES].bulk_write(updates, ordered=False)).modified_count
        # A change to the same day marked since this run began keeps its marker.
        await self._db[RECOUNTS].delete_one(
            {"_id": day.isoformat(), "marked_at": {"$lte": started}}
        )
        if moved:
            log.info("deadlines recounted", extra={"day": day.isoformat(), "issues": moved})
        return moved

    async def _over(self, day: date) -> AsyncIterator[list[Document]]:
        """ACCEPTED, unanswered issues with a counted deadline that may run over `day`,
        in pages of `BATCH` by id (no cursor held across the updates)."""
        zone = self.issues.calendar.zone
        day_starts = datetime.combine(day, time(0), zone)
        query: Document = {
            "status": AWAITING_ANSWER.value,
            "answered_at": None,
            "due_at": {"$gte": day_starts},
            "accepted_at": {"$lt": day_starts + timedelta(days=1)},
            # None: a date a person chose; missing: accepted before `due_from` was kept.
            "$or": [{"due_from": {"$ne": None}}, {"due_from": {"$exists": False}}],
        }
        after = ""
        while True:
            page = (
                await self._db[ISSUES]
                .find({**query, "_id": {"$gt": after}})
                .sort("_id", 1)
                .limit(BATCH)
                .to_list()
            )
            yield [issue for issue in page if self._counts_over(issue, day)]
            if len(page) < BATCH:
                return
            after = page[-1]["_id"]

    def _counts_over(self, issue: Document, day: date) -> bool:
        calendar = self.issues.calendar
        first, last = calendar.counted_span(_start(issue), issue["due_at"])
        return first <= day <= last and not _extended_before_counting(issue)

    async def _deadline_of(
        self, issue: Document, categories: dict[str, Document | None]
    ) -> domain.Deadline:
        if issue.get("due_days"):
            return domain.Deadline(issue["due_days"], self.issues.calendar)
        category_id = issue["category"]
        if category_id not in categories:
            categories[category_id] = await self.issues.store.category(category_id)
        return self.issues.deadline_for(categories[category_id])

    def _recount(
        self, issue: Document, deadline: domain.Deadline, now: datetime
    ) -> UpdateOne | None:
        """The conditional update that counts `issue`'s deadline again, or None if it stays."""
        old = issue["due_at"]
        new = deadline.due(_start(issue))
        if abs(new - old) < timedelta(milliseconds=1):  # the store keeps milliseconds
            return None
        detail = (
            f"Deadline {old.isoformat()} → {new.isoformat()} (the working-day calendar changed)."
        )
        entry = domain.staff_entry(
            StepKind.DEADLINE_RECOUNTED, AWAITING_ANSWER, None, None, now, detail
        )
        fields: Document = {"due_at": new, "updated_at": now}
        if new > now:
            fields["overdue_notified"] = False  # told again if the new deadline passes
        return UpdateOne(
            {"_id": issue["_id"], "status": AWAITING_ANSWER.value, "due_at": old},
            {"$set": fields, "$push": {"history": entry}},
        )


def _start(issue: Document) -> datetime:
    """What the deadline was counted from: kept since calendars had kinds, else the
    acceptance (issues accepted before)."""
    start: datetime = issue.get("due_from") or issue["accepted_at"]
    return start


def _extended_before_counting(issue: Document) -> bool:
    """An issue from before `due_from` was kept whose deadline a person moved."""
    if "due_from" in issue:
        return False
    kinds = {step.get("kind") for step in issue.get("history", [])}
    return StepKind.DEADLINE_EXTENDED.value in kinds or StepKind.RECATEGORIZED.value in kinds
