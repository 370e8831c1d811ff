"""Folding ballots into the per-poll counters, in batches, idempotently.

castVote writes only its own ballot (one single-document insert), marked
`tally_pending`. The folder picks pending ballots up in batches and, in one
transaction per poll and batch, adds their increments to the poll's tally
(bumping its `version`) and clears `tally_pending` on exactly those ballots,
stamping `folded_in` with the new version. A ballot is thus counted exactly
once: a batch that another folder got to first matches fewer ballots than it
read, and is abandoned whole.

`folded_in` lets a reader add their own ballot exactly: having read a tally at
version V, a ballot still pending or folded in a version after V is not in it.

In the same transaction the batch's audited ballots are appended, in cast order,
to the poll's public log (`audit`), and a tree head binding the log's new root to
the new counters is signed and kept: the counters and the log never disagree.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict

from pymongo import AsyncMongoClient, ReturnDocument

from veche_kit.clock import utcnow
from veche_kit.mongo import Database, Document, Session, in_transaction
from veche_kit.signing import SigningKey
from veche_polls import audit, store
from veche_polls.domain import ballot_increments, merge_increments

log = logging.getLogger(__name__)

_BALLOT_FIELDS = {"poll_id": 1, "answers": 1, "district_id": 1, "age_group": 1, "commitment": 1}


class _Overtaken(Exception):
    """Another folder folded part of this batch first; the batch is left to be re-read."""


class TallyFolder:
    """Adds pending ballots to the counters; `run` keeps doing it in the background."""

    def __init__(
        self,
        client: AsyncMongoClient[Document],
        db: Database,
        *,
        audit_key: SigningKey,
        min_group: int = 10,
        batch_size: int = 500,
        idle_seconds: float = 0.5,
    ) -> None:
        self.client = client
        self.db = db
        self.audit_key = audit_key
        self.min_group = min_group
        self.batch_size = batch_size
        self.idle_seconds = idle_seconds
        self.folded = 0
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Called after a ballot is written, so it is folded without waiting."""
        self._wake.set()

    async def run(self) -> None:
        """Folds forever: whenever woken, and every `idle_seconds` in any case."""
        while True:
            self._wake.clear()  # before reading, so a wake during the fold is not lost
            try:
                folded = await self.fold_pending()
            except Exception:
                log.exception("folding ballots failed; retrying")
                folded = 0
                await asyncio.sleep(1.0)
            if folded == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.idle_seconds)

    async def fold_pending(self, poll_id: str | None = None) -> int:
        """Folds one batch of pending ballots (of one poll, or any); returns how many."""
        query: Document = {"tally_pending": True}
        if poll_id is not None:
            query["poll_id"] = poll_id
        batch = (
            await self.db[store.BALLOTS]
            .find(query, _BALLOT_FIELDS)
            .sort("_id", 1)  # cast order: the order of the public log
            .limit(self.batch_size)
            .to_list()
        )
        by_poll: dict[str, list[Document]] = defaultdict(list)
        for ballot in batch:
            by_poll[ballot["poll_id"]].append(ballot)
        folded = 0
        for pid, ballots in by_poll.items():
            folded += await self._fold(pid, ballots)
        return folded

    async def fold_poll(self, poll_id: str) -> int:
        """Folds every ballot of the poll pending now (e.g. when it closes)."""
        total = 0
        while folded := await self.fold_pending(poll_id):
            total += folded
        return total

    async def _fold(self, poll_id: str, ballots: list[Document]) -> int:
        increments: dict[str, int] = {}
        for ballot in ballots:
            merge_increments(increments, ballot_increments(ballot))
        ids = [b["_id"] for b in ballots]

        async def work(session: Session) -> None:
            tally = await self.db[store.TALLIES].find_one_and_update(
                {"_id": poll_id},
                {"$inc": {**increments, "version": 1}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
                session=session,
            )
            assert tally is not None
            marked = await self.db[store.BALLOTS].update_many(
                {"_id": {"$in": ids}, "tally_pending": True},
                {"$unset": {"tally_pending": ""}, "$set": {"folded_in": tally["version"]}},
                session=session,
            )
            if marked.modified_count != len(ids):
                raise _Overtaken
            audited = [b for b in ballots if b.get("commitment")]
            if audited:
                await self._append_to_log(poll_id, audited, tally, session)

        try:
            await in_transaction(self.client, work)
        except _Overtaken:
            log.info("ballot batch folded elsewhere first; re-reading", extra={"poll_id": poll_id})
            return 0
        self.folded += len(ids)
        return len(ids)

    async def _append_to_log(
        self, poll_id: str, ballots: list[Document], tally: Document, session: Session
    ) -> None:
        log_state = await self.db[store.AUDIT_LOGS].find_one({"_id": poll_id}, session=session)
        frontier = store.frontier_of(log_state)
        appended = audit.append(frontier, poll_id, ballots)
        await self.db[store.BALLOT_RECORDS].insert_many(
            [store.record_document(poll_id, r) for r in appended.records], session=session
        )
        # Conditional on the size read: a concurrent folder's append fails this one.
        await self.db[store.AUDIT_LOGS].update_one(
            {"_id": poll_id, "size": frontier.size},
            {"$set": store.frontier_fields(appended.frontier)},
            upsert=True,
            session=session,
        )
        head = audit.TreeHead.sign(
            self.audit_key,
            poll_id,
            appended.frontier,
            audit.public_tallies(tally, self.min_group),
            utcnow(),
        )
        await self.db[store.TREE_HEADS].insert_one(store.head_document(head), session=session)


async def read_tally(db: Database, poll_id: str, session: Session | None = None) -> Document:
    tally = await db[store.TALLIES].find_one({"_id": poll_id}, session=session)
    return tally if tally is not None else {"_id": poll_id, "version": 0, "total": 0}


def counted_in(ballot: Document, tally: Document) -> bool:
    """Whether `ballot` (read after `tally`) is already in those counters."""
    folded_in = ballot.get("folded_in")
    return folded_in is not None and folded_in <= tally.get("version", 0)
