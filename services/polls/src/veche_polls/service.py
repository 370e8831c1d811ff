"""Use cases of the polls service: load, decide, save (with the outbox) atomically.

Poll lifecycle changes are rare: each is one transaction writing the poll and
its event to the outbox. castVote is the hot path: one single-document insert
of a ballot that carries its own `poll.vote_cast` (the relay reads ballots as
an outbox) and waits to be folded into the counters (see `tallies`).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import AsyncMongoClient, ReturnDocument
from pymongo.errors import DuplicateKeyError

from veche_kit import mongo
from veche_kit.auth import Principal
from veche_kit.clock import utcnow
from veche_kit.errors import (
    AlreadyVotedError,
    BadUserInputError,
    ForbiddenError,
    InvalidTransitionError,
    NotFoundError,
)
from veche_kit.events import (
    Envelope,
    Event,
    PollClosed,
    PollDecisionRecorded,
    PollPublished,
    PollVoteCast,
)
from veche_kit.mongo import Database, Document, Session, in_transaction
from veche_kit.outbox import OutboxRelay, add_event, pending_fields
from veche_polls import domain, store
from veche_polls.domain import AnswerDraft, DecisionStatus, PollStatus, QuestionDraft, Voter
from veche_polls.settings import PollsSettings
from veche_polls.tallies import TallyFolder, counted_in, read_tally

_EDITABLE = (
    "title",
    "description",
    "questions",
    "audience",
    "starts_at",
    "ends_at",
    "points_reward",
)


class PollsService:
    """Holds the service's dependencies; each method is one use case."""

    def __init__(
        self,
        client: AsyncMongoClient[Document],
        db: Database,
        settings: PollsSettings,
        folder: TallyFolder,
        relay: OutboxRelay | None = None,
    ) -> None:
        self.client = client
        self.db = db
        self.settings = settings
        self.folder = folder
        self.relay = relay

    # ───────────────────────── helpers ─────────────────────────

    async def _emit(self, session: Session, *events: Event) -> None:
        for event in events:
            await add_event(self.db, event, producer=self.settings.service_name, session=session)

    def _after_commit(self) -> None:
        if self.relay is not None:
            self.relay.wake()

    async def get_poll(self, poll_id: str) -> Document:
        """The poll, closed first if its end time has passed; NOT_FOUND if there is none."""
        poll = await self.db[store.POLLS].find_one({"_id": poll_id})
        if poll is None:
            raise NotFoundError(f"No poll with id '{poll_id[:40]}'.")
        return await self.settle(poll)

    async def settle(self, poll: Document) -> Document:
        """Closes a poll that is past its end time (the check on read beside the scheduler)."""
        now = utcnow()
        if not domain.is_due_to_close(poll, now):
            return poll
        closed = await self._close(poll["_id"], closed_by=None, now=now)
        if closed is not None:
            return closed
        fresh = await self.db[store.POLLS].find_one({"_id": poll["_id"]})
        return fresh if fresh is not None else poll

    async def voter(self, caller: Principal, token_issued_at: datetime | None) -> Voter:
        """Who is voting: the projection of user events when it is newer than the token."""
        projected = await self.db[store.VOTERS].find_one({"_id": caller.user_id})
        if projected is not None and (token_issued_at is None or projected["at"] > token_issued_at):
            return Voter(
                user_id=caller.user_id,
                district_id=projected.get("district_id"),
                birth_year=projected.get("birth_year"),
                phone_verified=bool(projected.get("phone_verified")),
            )
        return Voter(
            user_id=caller.user_id,
            district_id=caller.district_id,
            birth_year=caller.birth_year,
            phone_verified=caller.phone_verified,
        )

    # ───────────────────────── authoring ─────────────────────────

    async def create_poll(
        self,
        caller: Principal,
        *,
        title: str,
        description: str | None,
        questions: Sequence[QuestionDraft],
        audience: Document | None,
        starts_at: datetime | None,
        ends_at: datetime | None,
        points_reward: int | None,
        department_id: str | None,
    ) -> Document:
        domain.require_author_role(caller)
        if caller.is_admin:
            department = department_id.strip().lower() if department_id else None
            if department is not None and not domain.is_slug(department):
                raise BadUserInputError(
                    f"'{department[:40]}' is not a department id (see `departments`).",
                    field="departmentId",
                )
        else:
            department = caller.department_id
            if department_id is not None and department_id != department:
                raise ForbiddenError("Officials create polls for their own department only.")
        domain.check_schedule(starts_at, ends_at)
        poll = domain.new_poll(
            poll_id=mongo.new_id(),
            title=domain.clean_title(title),
            description=domain.clean_text(
                description, "description", domain.MAX_DESCRIPTION, required=False
            ),
            questions=domain.build_questions(questions),
            audience=audience if audience is not None else domain.whole_city(),
            starts_at=starts_at,
            ends_at=ends_at,
            points_reward=domain.clean_points_reward(points_reward),
            author_id=caller.user_id,
            department_id=department,
            now=utcnow(),
        )
        await self.db[store.POLLS].insert_one(poll)
        return poll

    async def update_poll(
        self, caller: Principal, poll_id: str, changes: dict[str, Any]
    ) -> Document:
        """`changes` holds only the fields sent, already checked by `domain` where they stand alone."""
        poll = await self.get_poll(poll_id)
        domain.require_manager(caller, poll)
        _require_status(poll, PollStatus.DRAFT, "Only a DRAFT poll can be changed")
        update = {k: v for k, v in changes.items() if k in _EDITABLE}
        if "title" in update:
            update["title"] = domain.clean_title(update["title"] or "")
        if "description" in update:
            update["description"] = domain.clean_text(
                update["description"], "description", domain.MAX_DESCRIPTION, required=False
            )
        if "questions" in update:
            update["questions"] = domain.build_questions(update["questions"] or [])
        if "audience" in update and update["audience"] is None:
            update["audience"] = domain.whole_city()
        if "points_reward" in update:
            update["points_reward"] = domain.clean_points_reward(update["points_reward"])
        domain.check_schedule(
            update.get("starts_at", poll.get("starts_at")),
            update.get("ends_at", poll.get("ends_at")),
        )
        update["updated_at"] = utcnow()
        saved = await self.db[store.POLLS].find_one_and_update(
            {"_id": poll_id, "status": PollStatus.DRAFT.value},
            {"$set": update},
            return_document=ReturnDocument.AFTER,
        )
        if saved is None:
            raise InvalidTransitionError("The poll was published meanwhile; it cannot be changed.")
        return saved

    async def publish_poll(self, caller: Principal, poll_id: str) -> Document:
        poll = await self.get_poll(poll_id)
        domain.require_manager(caller, poll)
        _require_status(poll, PollStatus.DRAFT, "Only a DRAFT poll can be published")
        now = utcnow()
        domain.check_publishable(poll, now)

        async def work(session: Session) -> Document:
            saved = await self.db[store.POLLS].find_one_and_update(
                {"_id": poll_id, "status": PollStatus.DRAFT.value},
                {
                    "$set": {
                        "status": PollStatus.ACTIVE.value,
                        "published_at": now,
                        "updated_at": now,
                    }
                },
                return_document=ReturnDocument.AFTER,
                session=session,
            )
            if saved is None:
                raise InvalidTransitionError("The poll was published by someone else meanwhile.")
            # The counters exist from the start, so folders never race to create them.
            await self.db[store.TALLIES].update_one(
                {"_id": poll_id},
                {"$setOnInsert": {"version": 0, "total": 0}},
                upsert=True,
                session=session,
            )
            await self._emit(
                session,
                PollPublished(
                    poll_id=poll_id,
                    title=saved["title"],
                    author_id=saved["author_id"],
                    department_id=saved.get("department_id"),
                    district_ids=saved["audience"]["district_ids"],
                    source_initiative_id=saved.get("source_initiative_id"),
                    starts_at=saved.get("starts_at"),
                    ends_at=saved.get("ends_at"),
                ),
            )
            return saved

        saved = await in_transaction(self.client, work)
        self._after_commit()
        return saved

    async def close_poll(self, caller: Principal, poll_id: str) -> Document:
        poll = await self.get_poll(poll_id)
        domain.require_manager(caller, poll)
        _require_status(poll, PollStatus.ACTIVE, "Only an ACTIVE poll can be closed")
        closed = await self._close(poll_id, closed_by=caller.user_id, now=utcnow())
        if closed is None:
            raise InvalidTransitionError("The poll has just been closed (at its end time).")
        return closed

    async def close_due(self) -> int:
        """Closes every ACTIVE poll past its end time (the scheduler's round); returns how many."""
        now = utcnow()
        due = self.db[store.POLLS].find(
            {"status": PollStatus.ACTIVE.value, "ends_at": {"$lte": now}}, {"_id": 1}
        )
        closed = 0
        async for poll in due:
            if await self._close(poll["_id"], closed_by=None, now=now) is not None:
                closed += 1
        return closed

    async def _close(
        self, poll_id: str, *, closed_by: str | None, now: datetime
    ) -> Document | None:
        """ACTIVE -> CLOSED with its `poll.closed`, or None if it was not ACTIVE (or not due).

        The conditional update and the event commit together, so however many
        closers race (the mutation, the scheduler, reads), one wins and one
        event is written.
        """
        condition: Document = {"_id": poll_id, "status": PollStatus.ACTIVE.value}
        if closed_by is None:
            condition["ends_at"] = {"$lte": now}

        async def work(session: Session) -> Document | None:
            saved = await self.db[store.POLLS].find_one_and_update(
                condition,
                {
                    "$set": {
                        "status": PollStatus.CLOSED.value,
                        "closed_at": now,
                        "closed_by": closed_by,
                        "updated_at": now,
                    }
                },
                return_document=ReturnDocument.AFTER,
                session=session,
            )
            if saved is None:
                return None
            tally = await read_tally(self.db, poll_id, session)
            pending = await self.db[store.BALLOTS].count_documents(
                {"tally_pending": True, "poll_id": poll_id}, session=session
            )
            await self._emit(
                session,
                PollClosed(
                    poll_id=poll_id,
                    title=saved["title"],
                    votes_count=int(tally.get("total", 0)) + pending,
                    closed_by=closed_by,
                ),
            )
            return saved

        saved = await in_transaction(self.client, work)
        if saved is not None:
            self._after_commit()
            await self.folder.fold_poll(poll_id)  # results complete as soon as it closes
        return saved

    async def record_decision(
        self, caller: Principal, poll_id: str, text: str, status: DecisionStatus
    ) -> Document:
        poll = await self.get_poll(poll_id)
        domain.require_manager(caller, poll)
        _require_status(poll, PollStatus.CLOSED, "A decision is recorded once the poll is CLOSED")
        cleaned = domain.clean_text(text, "text", domain.MAX_DECISION, required=True)
        now = utcnow()

        async def work(session: Session) -> Document:
            saved = await self.db[store.POLLS].find_one_and_update(
                {"_id": poll_id},
                {
                    "$set": {
                        "decision": {"text": cleaned, "status": status.value, "updated_at": now},
                        "updated_at": now,
                    }
                },
                return_document=ReturnDocument.AFTER,
                session=session,
            )
            assert saved is not None
            await self._emit(
                session,
                PollDecisionRecorded(
                    poll_id=poll_id,
                    title=saved["title"],
                    text=cleaned or "",
                    status=status.value,
                    source_initiative_id=saved.get("source_initiative_id"),
                ),
            )
            return saved

        saved = await in_transaction(self.client, work)
        self._after_commit()
        return saved

    # ───────────────────────── voting ─────────────────────────

    async def cast_vote(
        self,
        caller: Principal,
        poll_id: str,
        answers: Sequence[AnswerDraft],
        *,
        token_issued_at: datetime | None = None,
    ) -> Document:
        """One single-document insert: the ballot, its pending event and its pending tally."""
        poll, voter = await asyncio.gather(
            self.get_poll(poll_id), self.voter(caller, token_issued_at)
        )
        now = utcnow()
        domain.check_voting_open(poll, now)
        domain.check_eligible(poll["audience"], voter, now.year)
        cleaned = domain.clean_answers(poll["questions"], answers)
        group = domain.age_group(voter.age_in(now.year))
        ballot_id = mongo.new_id()
        event = PollVoteCast(
            poll_id=poll_id,
            ballot_id=ballot_id,
            voter_id=caller.user_id,
            points_reward=poll["points_reward"],
            district_id=voter.district_id,
            age_group=group,
        )
        ballot: Document = {
            "_id": ballot_id,
            "poll_id": poll_id,
            "voter_id": caller.user_id,
            "answers": cleaned,
            "district_id": voter.district_id,
            "age_group": group,
            "cast_at": now,
            "tally_pending": True,
            **pending_fields(Envelope.wrap(event, self.settings.service_name)),
        }
        try:
            await self.db[store.BALLOTS].insert_one(ballot)
        except DuplicateKeyError as error:
            raise AlreadyVotedError(
                "You have already voted in this poll; a ballot is final."
            ) from error
        self._after_commit()
        self.folder.wake()
        return ballot

    async def tally_for(self, poll_id: str, viewer_id: str | None) -> Document:
        """The counters, with the viewer's own ballot added if it is not folded in yet.

        The tally is read first and the ballot after it: a ballot pending then, or
        folded in a later version, is not in those counters (see `tallies`).
        """
        tally = await read_tally(self.db, poll_id)
        if viewer_id is None:
            return tally
        ballot = await self.db[store.BALLOTS].find_one({"poll_id": poll_id, "voter_id": viewer_id})
        if ballot is None or counted_in(ballot, tally):
            return tally
        return domain.apply_increments(copy.deepcopy(tally), domain.ballot_increments(ballot))

    # ───────────────────────── reading ─────────────────────────

    def visible(self, caller: Principal | None, poll: Document) -> bool:
        """Drafts are seen by those who manage them; published polls by everyone."""
        return poll["status"] != PollStatus.DRAFT or domain.can_manage(caller, poll)

    def _draft_scope(self, caller: Principal | None) -> Document | None:
        """Which drafts the caller may list (None: none)."""
        if caller is None:
            return None
        if caller.is_admin:
            return {"status": PollStatus.DRAFT.value}
        if caller.has_role("OFFICIAL") and caller.department_id:
            return {"status": PollStatus.DRAFT.value, "department_id": caller.department_id}
        return None

    async def list_polls(
        self,
        caller: Principal | None,
        *,
        status: PollStatus | None,
        district_id: str | None,
        first: int,
        after: str | None,
    ) -> tuple[list[Document], bool, int]:
        rules: list[Document] = []
        drafts = self._draft_scope(caller)
        if status is PollStatus.DRAFT:
            rules.append(drafts if drafts is not None else {"_id": {"$exists": False}})
        elif status is not None:
            rules.append({"status": status.value})
        else:
            published = {"status": {"$ne": PollStatus.DRAFT.value}}
            rules.append({"$or": [published, drafts]} if drafts is not None else published)
        if district_id is not None:
            rules.append(
                {"$or": [{"audience.district_ids": []}, {"audience.district_ids": district_id}]}
            )
        documents, has_next, total = await mongo.page(
            self.db, store.POLLS, {"$and": rules}, first=first, after=after
        )
        return [await self.settle(d) for d in documents], has_next, total

    async def polls_for_me(
        self, caller: Principal, token_issued_at: datetime | None, *, first: int, after: str | None
    ) -> tuple[list[Document], bool, int]:
        """ACTIVE polls open now whose audience includes the caller and that they have not voted in."""
        now = utcnow()
        voter = await self.voter(caller, token_issued_at)
        query = {
            "$and": [
                {"status": PollStatus.ACTIVE.value},
                {"$or": [{"starts_at": None}, {"starts_at": {"$lte": now}}]},
                {"$or": [{"ends_at": None}, {"ends_at": {"$gt": now}}]},
                domain.eligibility_filter(voter, now.year),
            ]
        }
        # Active polls are few (tens, not millions): their ids fit in memory.
        candidates = [d["_id"] async for d in self.db[store.POLLS].find(query, {"_id": 1})]
        voted = {
            b["poll_id"]
            async for b in self.db[store.BALLOTS].find(
                {"voter_id": caller.user_id, "poll_id": {"$in": candidates}}, {"poll_id": 1}
            )
        }
        open_ids = sorted((i for i in candidates if i not in voted), reverse=True)
        window = [i for i in open_ids if after is None or i < after]
        chosen = window[:first]
        documents = [d for d in await mongo.find_by_ids(self.db, store.POLLS, chosen) if d]
        return documents, len(window) > first, len(open_ids)

    async def ballots_of(
        self, user_id: str, *, first: int, after: str | None
    ) -> tuple[list[Document], bool, int]:
        return await mongo.page(
            self.db,
            store.BALLOTS,
            {"voter_id": user_id},
            first=first,
            after=after,
            projection={"envelope": 0},
        )

    async def ballots_by_polls(self, voter_id: str, poll_ids: list[str]) -> list[Document | None]:
        found = {
            b["poll_id"]: b
            async for b in self.db[store.BALLOTS].find(
                {"voter_id": voter_id, "poll_id": {"$in": list(set(poll_ids))}},
                {"envelope": 0},
            )
        }
        return [found.get(i) for i in poll_ids]

    async def polls_for_initiatives(self, issue_ids: list[str]) -> list[Document | None]:
        found = {
            p["source_initiative_id"]: p
            async for p in self.db[store.POLLS].find({"source_initiative_id": {"$in": issue_ids}})
        }
        return [found.get(i) for i in issue_ids]


def _require_status(poll: Document, status: PollStatus, what: str) -> None:
    if poll["status"] != status:
        raise InvalidTransitionError(f"{what}; this one is {poll['status']}.")
