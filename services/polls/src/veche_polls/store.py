"""The polls service's MongoDB collections and their indexes.

- `polls`: one document per poll (questions, audience, schedule, status, decision).
- `ballots`: one document per (poll, voter), held unique by an index. A ballot is
  also its own outbox record (`poll.vote_cast` rides in it until the relay sends
  it) and carries `tally_pending` until the folder adds it to the counters.
- `tallies`: one counters document per poll (see `domain.ballot_increments`).
- `voters`: the projection of user events: each voter's district, birth year
  and phone verification, with the time of the event it came from.
- `ballot_records`, `tree_heads`, `audit_logs`: each poll's public log (see
  `audit`): the anonymous records in cast order, every signed tree head, and the
  log's frontier (what an append needs).

`PollStore` holds every query and conditional update on them but the folding
of ballots into counters (`tallies`).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument

from veche_kit import export, mongo
from veche_kit.memo import BriefCaches
from veche_kit.migrations import Migration
from veche_kit.mongo import Database, Document, Session
from veche_kit.outbox import PENDING_INDEX
from veche_polls.audit import TreeHead
from veche_polls.domain import Drafts, PollStatus, Voter
from veche_polls.merkle import Frontier

POLLS = "polls"
BALLOTS = "ballots"
TALLIES = "tallies"
# How many past (district, birth year) profiles a voter's projection keeps.
MAX_PROFILES = 10
VOTERS = "voters"
BALLOT_RECORDS = "ballot_records"
TREE_HEADS = "tree_heads"
AUDIT_LOGS = "audit_logs"

INDEXES: dict[str, list[IndexModel]] = {
    POLLS: [
        IndexModel([("status", ASCENDING), ("ends_at", ASCENDING)]),
        IndexModel([("department_id", ASCENDING), ("_id", DESCENDING)]),
        # One poll per initiative, however often `initiative.threshold_reached` arrives.
        IndexModel(
            [("source_initiative_id", ASCENDING)],
            unique=True,
            sparse=True,
            name="one_poll_per_initiative",
        ),
    ],
    BALLOTS: [
        # One ballot per user per poll: the database holds it, not a read before the write.
        IndexModel(
            [("poll_id", ASCENDING), ("voter_id", ASCENDING)], unique=True, name="one_ballot"
        ),
        IndexModel([("voter_id", ASCENDING), ("_id", DESCENDING)]),
        IndexModel([("tally_pending", ASCENDING), ("poll_id", ASCENDING)], sparse=True),
        PENDING_INDEX,  # the relay's index: ballots carry their own `poll.vote_cast`
    ],
    # `_id` is "<poll>:<index>" (zero-padded), so a position is written once.
    BALLOT_RECORDS: [
        IndexModel(
            [("poll_id", ASCENDING), ("commitment", ASCENDING)], unique=True, name="commitment"
        ),
    ],
    TREE_HEADS: [IndexModel([("poll_id", ASCENDING), ("tree_size", DESCENDING)])],
}


# How stored documents change shape between releases, oldest first (veche_kit.migrations):
# each service start runs those the store has not had yet.
MIGRATIONS: list[Migration] = []


class PollStore:
    """The polls service's collections: documents in, documents out."""

    def __init__(self, db: Database, *, cache_seconds: float = 0.0, cache_size: int = 1) -> None:
        self.db = db
        # The vote path's two reads (see PollsSettings.vote_cache_seconds). The service
        # forgets a poll once its change commits; a voter's projection is forgotten
        # here as it is written (by this process's consumer).
        self._polls: BriefCaches[str, Document | None] = BriefCaches(cache_seconds, cache_size)
        self._voters: BriefCaches[str, Document | None] = BriefCaches(cache_seconds, cache_size)

    async def recent_poll(self, poll_id: str) -> Document | None:
        """`get`, up to `cache_seconds` old. The document is shared: never change it."""
        return await self._polls.get(poll_id, lambda: self.get(poll_id))

    async def recent_voter(self, user_id: str) -> Document | None:
        """`voter`, up to `cache_seconds` old. The document is shared: never change it."""
        return await self._voters.get(user_id, lambda: self.voter(user_id))

    def forget_poll(self, poll_id: str) -> None:
        """After a change to the poll has committed: this process's next vote reads it."""
        self._polls.forget(poll_id)

    # ───────────────────────── polls ─────────────────────────

    async def get(self, poll_id: str) -> Document | None:
        return await self.db[POLLS].find_one({"_id": poll_id})

    async def by_ids(self, ids: list[str]) -> list[Document | None]:
        return await mongo.find_by_ids(self.db, POLLS, ids)

    async def add(self, poll: Document, session: Session | None = None) -> None:
        await self.db[POLLS].insert_one(poll, session=session)

    async def update_draft(self, poll_id: str, fields: Document) -> Document | None:
        """Sets `fields` on a poll still in DRAFT; None once it is published."""
        saved: Document | None = await self.db[POLLS].find_one_and_update(
            {"_id": poll_id, "status": PollStatus.DRAFT.value},
            {"$set": fields},
            return_document=ReturnDocument.AFTER,
        )
        return saved

    async def publish(self, poll_id: str, now: datetime, session: Session) -> Document | None:
        """DRAFT -> ACTIVE with its counters; None when someone else published it first."""
        saved: Document | None = await self.db[POLLS].find_one_and_update(
            {"_id": poll_id, "status": PollStatus.DRAFT.value},
            {"$set": {"status": PollStatus.ACTIVE.value, "published_at": now, "updated_at": now}},
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        if saved is not None:
            # The counters exist from the start, so folders never race to create them.
            await self.db[TALLIES].update_one(
                {"_id": poll_id},
                {"$setOnInsert": {"version": 0, "total": 0}},
                upsert=True,
                session=session,
            )
        return saved

    async def close(
        self, poll_id: str, *, closed_by: str | None, now: datetime, session: Session
    ) -> Document | None:
        """ACTIVE -> CLOSED; by the system only once past its end time. None if not so."""
        condition: Document = {"_id": poll_id, "status": PollStatus.ACTIVE.value}
        if closed_by is None:
            condition["ends_at"] = {"$lte": now}
        fields = {
            "status": PollStatus.CLOSED.value,
            "closed_at": now,
            "closed_by": closed_by,
            "updated_at": now,
        }
        saved: Document | None = await self.db[POLLS].find_one_and_update(
            condition, {"$set": fields}, return_document=ReturnDocument.AFTER, session=session
        )
        return saved

    async def set_decision(self, poll_id: str, decision: Document, session: Session) -> Document:
        saved: Document | None = await self.db[POLLS].find_one_and_update(
            {"_id": poll_id},
            {"$set": {"decision": decision, "updated_at": decision["updated_at"]}},
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        assert saved is not None, "a poll is never deleted"
        return saved

    async def due_to_close(self, now: datetime) -> list[str]:
        cursor = self.db[POLLS].find(
            {"status": PollStatus.ACTIVE.value, "ends_at": {"$lte": now}}, {"_id": 1}
        )
        return [d["_id"] async for d in cursor]

    async def page(
        self, query: Document, *, first: int, after: str | None
    ) -> tuple[list[Document], bool, int]:
        return await mongo.page(self.db, POLLS, query, first=first, after=after)

    async def page_listed(
        self,
        drafts: Drafts | None,
        *,
        status: PollStatus | None,
        district_id: str | None,
        first: int,
        after: str | None,
    ) -> tuple[list[Document], bool, int]:
        """Polls newest first: published ones, and the `drafts` the caller may list."""
        scope = _drafts_query(drafts)
        rules: list[Document] = []
        if status is PollStatus.DRAFT:
            rules.append(scope if scope is not None else {"_id": {"$exists": False}})
        elif status is not None:
            rules.append({"status": status.value})
        else:
            published = {"status": {"$ne": PollStatus.DRAFT.value}}
            rules.append({"$or": [published, scope]} if scope is not None else published)
        if district_id is not None:
            rules.append(
                {"$or": [{"audience.district_ids": []}, {"audience.district_ids": district_id}]}
            )
        return await self.page({"$and": rules}, first=first, after=after)

    async def open_for(self, voter: Voter, now: datetime) -> list[str]:
        """Ids of ACTIVE polls open now whose audience includes the voter."""
        query = {
            "$and": [
                {"status": PollStatus.ACTIVE.value},
                {"$or": [{"starts_at": None}, {"starts_at": {"$lte": now}}]},
                {"$or": [{"ends_at": None}, {"ends_at": {"$gt": now}}]},
                eligibility_filter(voter, now.year),
            ]
        }
        return [d["_id"] async for d in self.db[POLLS].find(query, {"_id": 1})]

    async def for_initiatives(self, issue_ids: list[str]) -> list[Document | None]:
        found = {
            p["source_initiative_id"]: p
            async for p in self.db[POLLS].find({"source_initiative_id": {"$in": issue_ids}})
        }
        return [found.get(i) for i in issue_ids]

    async def initiative_has_poll(self, issue_id: str, session: Session) -> bool:
        found = await self.db[POLLS].find_one(
            {"source_initiative_id": issue_id}, {"_id": 1}, session=session
        )
        return found is not None

    # ───────────────────────── ballots and counters ─────────────────────────

    async def add_ballot(self, ballot: Document) -> None:
        """DuplicateKeyError when the voter has a ballot in this poll already."""
        await self.db[BALLOTS].insert_one(ballot)

    async def ballot_of(self, poll_id: str, voter_id: str) -> Document | None:
        return await self.db[BALLOTS].find_one({"poll_id": poll_id, "voter_id": voter_id})

    async def ballots_by_polls(self, voter_id: str, poll_ids: list[str]) -> list[Document | None]:
        found = {
            b["poll_id"]: b
            async for b in self.db[BALLOTS].find(
                {"voter_id": voter_id, "poll_id": {"$in": list(set(poll_ids))}},
                {"envelope": 0},
            )
        }
        return [found.get(i) for i in poll_ids]

    async def ballots_of_voters(self, poll_id: str, voter_ids: list[str]) -> dict[str, Document]:
        """The ballots these voters cast in the poll, by voter (one query for many)."""
        cursor = self.db[BALLOTS].find(
            {"poll_id": poll_id, "voter_id": {"$in": voter_ids}}, {"envelope": 0}
        )
        return {b["voter_id"]: b async for b in cursor}

    async def voted_among(self, voter_id: str, poll_ids: list[str]) -> set[str]:
        cursor = self.db[BALLOTS].find(
            {"voter_id": voter_id, "poll_id": {"$in": poll_ids}}, {"poll_id": 1}
        )
        return {b["poll_id"] async for b in cursor}

    async def ballots_page(
        self, voter_id: str, *, first: int, after: str | None
    ) -> tuple[list[Document], bool, int]:
        return await mongo.page(
            self.db,
            BALLOTS,
            {"voter_id": voter_id},
            first=first,
            after=after,
            projection={"envelope": 0},
        )

    async def unfolded_count(self, poll_id: str, session: Session) -> int:
        return await self.db[BALLOTS].count_documents(
            {"tally_pending": True, "poll_id": poll_id}, session=session
        )

    async def tallies(self, poll_ids: list[str], session: Session | None = None) -> list[Document]:
        """Each poll's counters, zero where none exist yet."""
        cursor = self.db[TALLIES].find({"_id": {"$in": poll_ids}}, session=session)
        found = {t["_id"]: t async for t in cursor}
        return [found.get(i) or _no_tally(i) for i in poll_ids]

    # ───────────────────────── the voters projection ─────────────────────────

    async def voter(self, user_id: str) -> Document | None:
        return await self.db[VOTERS].find_one({"_id": user_id})

    async def export_of(self, user_id: str) -> dict[str, list[Any]]:
        """Every record kept about the person: the voter projection and their ballots."""
        return await export.records(
            self.db, {VOTERS: {"_id": user_id}, BALLOTS: {"voter_id": user_id}}
        )

    async def erase_voter(self, user_id: str, at: datetime, session: Session) -> int:
        """Forgets the person: the projection becomes a tombstone (so a late or replayed
        profile event projects nothing), and their ballots stay counted, each linked to
        a fresh pseudonym instead. Returns how many ballots were unlinked."""
        self._voters.forget(user_id)
        await self.db[VOTERS].replace_one(
            {"_id": user_id},
            {"_id": user_id, "erased_at": at, "at": at},
            upsert=True,
            session=session,
        )
        ballots = self.db[BALLOTS]
        unlinked = 0
        async for ballot in ballots.find({"voter_id": user_id}, {"pending": 1}, session=session):
            pseudonym = "erased-" + mongo.new_id()
            change: Document = {"voter_id": pseudonym}
            if not ballot.get("pending"):  # a pending vote still credits its points first
                change["envelope.data.voter_id"] = pseudonym
            await ballots.update_one({"_id": ballot["_id"]}, {"$set": change}, session=session)
            unlinked += 1
        return unlinked

    async def project_voter(
        self, user_id: str, fields: Document, at: datetime, session: Session
    ) -> None:
        """Stores the voter's audience facts unless a newer event has already been projected.

        `profiles` keeps the last few (district, birth year) pairs with when each began,
        so a poll's audience is checked against the profile as of its publication."""
        self._voters.forget(user_id)
        voters = self.db[VOTERS]
        profile = {
            "district_id": fields.get("district_id"),
            "birth_year": fields.get("birth_year"),
            "from": at,
        }
        current = await voters.find_one({"_id": user_id}, session=session)
        if current is not None and current.get("erased_at") is not None:
            return  # erased: nothing about the person is kept again
        if current is None:
            await voters.insert_one(
                {"_id": user_id, **fields, "at": at, "profiles": [profile]}, session=session
            )
        elif current["at"] < at:
            change: Document = {"$set": {**fields, "at": at}}
            added = (
                [profile]
                if any(current.get(k) != profile[k] for k in profile if k != "from")
                else []
            )
            if not current.get("profiles"):  # projected before profiles were kept
                known = {k: current.get(k) for k in ("district_id", "birth_year")}
                added.insert(0, {**known, "from": current["at"]})
            if added:
                change["$push"] = {"profiles": {"$each": added, "$slice": -MAX_PROFILES}}
            await voters.update_one({"_id": user_id, "at": current["at"]}, change, session=session)


def _drafts_query(drafts: Drafts | None) -> Document | None:
    if drafts is None:
        return None
    if drafts.department_id is None:
        return {"status": PollStatus.DRAFT.value}
    return {"status": PollStatus.DRAFT.value, "department_id": drafts.department_id}


def _no_tally(poll_id: str) -> Document:
    return {"_id": poll_id, "version": 0, "total": 0}


def eligibility_filter(voter: Voter, year: int) -> Document:
    """The rules of `domain.check_eligible`, as a MongoDB filter over polls."""
    age = voter.age_in(year)
    rules: list[Document] = [
        {"$or": [{"audience.district_ids": []}, {"audience.district_ids": voter.district_id}]}
        if voter.district_id is not None
        else {"audience.district_ids": []},
    ]
    if age is None:
        rules += [{"audience.min_age": None}, {"audience.max_age": None}]
    else:
        rules += [
            {"$or": [{"audience.min_age": None}, {"audience.min_age": {"$lte": age}}]},
            {"$or": [{"audience.max_age": None}, {"audience.max_age": {"$gte": age}}]},
        ]
    if not voter.phone_verified:
        rules.append({"audience.verified_only": False})
    return {"$and": rules}


# ───────────────────────── the public log ─────────────────────────


def _position(poll_id: str, index: int) -> str:
    return f"{poll_id}:{index:010d}"


def frontier_of(log_state: Document | None) -> Frontier:
    if log_state is None:
        return Frontier.empty()
    return Frontier(log_state["size"], tuple(bytes.fromhex(h) for h in log_state["roots"]))


def frontier_fields(frontier: Frontier) -> Document:
    return {"size": frontier.size, "roots": [h.hex() for h in frontier.roots]}


def record_document(poll_id: str, appended: Document) -> Document:
    return {
        "_id": _position(poll_id, appended["index"]),
        "poll_id": poll_id,
        "index": appended["index"],
        "hash": appended["hash"],
        "commitment": appended["record"]["commitment"],
        "record": appended["record"],
    }


def head_document(head: TreeHead) -> Document:
    # The stored fields are the head's own, so a head reads back exactly as signed.
    return {"_id": _position(head.poll_id, head.tree_size), **dataclasses.asdict(head)}


def head_from(document: Document) -> TreeHead:
    return TreeHead(**{f.name: document[f.name] for f in dataclasses.fields(TreeHead)})


class AuditStore:
    """Reads of the public logs: heads, records, proofs' leaves."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def latest_head(self, poll_id: str) -> TreeHead | None:
        found = await self.db[TREE_HEADS].find_one(
            {"poll_id": poll_id}, sort=[("tree_size", DESCENDING)]
        )
        return head_from(found) if found else None

    async def heads_page(
        self, poll_id: str, first: int, below: int, up_to: int
    ) -> tuple[list[TreeHead], bool, int]:
        """Signed heads of sizes below `below`, largest first; (heads, has_next, how many
        heads there are up to size `up_to`)."""
        query: Document = {"poll_id": poll_id, "tree_size": {"$lt": below}}
        cursor = self.db[TREE_HEADS].find(query).sort("tree_size", DESCENDING)
        found = await cursor.limit(first + 1).to_list()
        total = await self.db[TREE_HEADS].count_documents(
            {"poll_id": poll_id, "tree_size": {"$lte": up_to}}
        )
        return [head_from(d) for d in found[:first]], len(found) > first, total

    async def head_at(self, poll_id: str, size: int) -> TreeHead | None:
        found = await self.db[TREE_HEADS].find_one({"_id": _position(poll_id, size)})
        return head_from(found) if found else None

    async def records_page(
        self, poll_id: str, first: int, after: int | None
    ) -> tuple[list[Document], bool]:
        """Records in log order after the index `after`; (records, has_next)."""
        start = _position(poll_id, after + 1 if after is not None else 0)
        cursor = (
            self.db[BALLOT_RECORDS]
            .find({"_id": {"$gte": start, "$lt": f"{poll_id};"}})
            .sort("_id", ASCENDING)
        )
        found: list[Document] = await cursor.limit(first + 1).to_list()
        return found[:first], len(found) > first

    async def record_by_commitment(self, poll_id: str, commitment: str) -> Document | None:
        return await self.db[BALLOT_RECORDS].find_one(
            {"poll_id": poll_id, "commitment": commitment}
        )

    async def leaf_hashes(self, poll_id: str, size: int) -> list[bytes]:
        """The first `size` leaf hashes of the log, for proofs."""
        cursor = (
            self.db[BALLOT_RECORDS]
            .find(
                {"_id": {"$gte": _position(poll_id, 0), "$lt": _position(poll_id, size)}},
                {"hash": 1},
            )
            .sort("_id", ASCENDING)
        )
        return [bytes.fromhex(d["hash"]) async for d in cursor]
