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
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from veche_kit import audit_log, export, mongo
from veche_kit.audit_log import AuditAction
from veche_kit.auth import Principal
from veche_kit.clock import utcnow
from veche_kit.errors import (
    BadUserInputError,
    InvalidTransitionError,
    NotFoundError,
    UnauthenticatedError,
)
from veche_kit.events import PollClosed, PollDecisionRecorded, PollPublished, PollVoteCast
from veche_kit.mongo import Database, Document
from veche_kit.outbox import Outbox, OutboxRelay, Transaction
from veche_kit.reference_lists import DISTRICT_LIST, ProjectedLists
from veche_polls import audit, domain, merkle
from veche_polls.audit import TreeHead
from veche_polls.domain import AnswerDraft, DecisionStatus, PollStatus, QuestionDraft, Voter
from veche_polls.errors import AlreadyVotedError
from veche_polls.settings import PollsSettings
from veche_polls.store import AuditStore, PollStore
from veche_polls.tallies import TallyFolder, counted_in

_EDITABLE = (
    "title",
    "description",
    "questions",
    "audience",
    "starts_at",
    "ends_at",
    "points_reward",
)


@dataclass(frozen=True)
class AudienceDraft:
    """Who may vote, as the author sent it; checked once the author's role is."""

    district_ids: Sequence[str]
    min_age: int | None
    max_age: int | None
    verified_only: bool

    def cleaned(self) -> Document:
        return domain.clean_audience(
            self.district_ids, self.min_age, self.max_age, self.verified_only
        )


@dataclass(frozen=True)
class NewPoll:
    """A poll as its author drafts it."""

    title: str
    description: str | None
    questions: Sequence[QuestionDraft]
    audience: AudienceDraft | None
    starts_at: datetime | None
    ends_at: datetime | None
    points_reward: int | None
    department_id: str | None
    audit: bool = True  # a public log of anonymous ballot records, with signed heads
    receipts: bool = True  # voters get the salt that lets them prove their record


class PollsService:
    """Holds the service's dependencies; each method is one use case."""

    def __init__(
        self, store: PollStore, outbox: Outbox, settings: PollsSettings, folder: TallyFolder
    ) -> None:
        self.store = store
        self.audit = AuditStore(store.db)
        self.outbox = outbox
        self.settings = settings
        self.folder = folder

    @property
    def db(self) -> Database:
        """The service's database, for tests that set up or inspect its documents."""
        return self.store.db

    @property
    def client(self) -> AsyncMongoClient[Document]:
        return self.outbox.client

    @property
    def relay(self) -> OutboxRelay | None:
        return self.outbox.relay

    # ───────────────────────── helpers ─────────────────────────

    async def get_poll(self, poll_id: str) -> Document:
        """The poll, closed first if its end time has passed; NOT_FOUND if there is none."""
        return await self.settle(_found(await self.store.get(poll_id), poll_id))

    async def _poll_to_vote_in(self, poll_id: str) -> Document:
        """`get_poll` through the vote path's cache (PollsSettings.vote_cache_seconds)."""
        return await self.settle(_found(await self.store.recent_poll(poll_id), poll_id))

    async def polls_by_ids(self, poll_ids: list[str]) -> list[Document | None]:
        """Polls by id (for loaders), each closed first if past its end time."""
        return [await self.settle(d) if d else None for d in await self.store.by_ids(poll_ids)]

    async def settle(self, poll: Document) -> Document:
        """Closes a poll that is past its end time (the check on read beside the scheduler)."""
        now = utcnow()
        if not domain.is_due_to_close(poll, now):
            return poll
        closed = await self._close(poll["_id"], closer=None, now=now)
        if closed is not None:
            return closed
        fresh = await self.store.get(poll["_id"])
        return fresh if fresh is not None else poll

    async def voter(self, caller: Principal) -> Voter:
        """Who is voting: the projection of user events when it is newer than the token."""
        return self._voter(caller, await self.store.voter(caller.user_id))

    @staticmethod
    def _voter(caller: Principal, projected: Document | None) -> Voter:
        issued_at = caller.issued_at
        if projected is not None and projected.get("erased_at") is not None:
            # Checked here, not only through stale tokens: those are cached for a second.
            raise UnauthenticatedError(
                "This account was erased; it can no longer vote.",
                ru="Этот аккаунт удалён; голосовать он больше не может.",
            )
        if projected is not None and (issued_at is None or projected["at"] > issued_at):
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

    async def _audience(self, draft: AudienceDraft | None) -> Document:
        """The audience cleaned, its districts known to the users service's list."""
        audience = draft.cleaned() if draft else domain.whole_city()
        await self._check_districts(audience)
        return audience

    async def _check_districts(self, audience: Document) -> None:
        await ProjectedLists(self.db).require_known(
            DISTRICT_LIST,
            audience["district_ids"],
            field="audience.districtIds",
            seeded=self.settings.demo_data,
        )

    # ───────────────────────── authoring ─────────────────────────

    async def create_poll(self, caller: Principal, draft: NewPoll) -> Document:
        domain.require_author_role(caller)
        department = domain.poll_department(caller, draft.department_id)
        domain.check_schedule(draft.starts_at, draft.ends_at)
        poll = domain.new_poll(
            poll_id=mongo.new_id(),
            title=domain.clean_title(draft.title),
            description=domain.clean_text(
                draft.description, "description", domain.MAX_DESCRIPTION, required=False
            ),
            questions=domain.build_questions(draft.questions),
            audience=await self._audience(draft.audience),
            starts_at=draft.starts_at,
            ends_at=draft.ends_at,
            points_reward=domain.clean_points_reward(draft.points_reward),
            author_id=caller.user_id,
            department_id=department,
            now=utcnow(),
            audit=draft.audit,
            receipts=draft.receipts,
        )
        await self.store.add(poll)
        return poll

    async def update_poll(
        self, caller: Principal, poll_id: str, changes: dict[str, Any]
    ) -> Document:
        """`changes` holds only the fields sent, already checked by `domain` where they stand alone."""
        poll = await self.get_poll(poll_id)
        domain.require_manager(caller, poll)
        _require_status(
            poll,
            PollStatus.DRAFT,
            "Only a DRAFT poll can be changed",
            "Изменить можно только опрос в статусе DRAFT",
        )
        update = _cleaned_changes({k: v for k, v in changes.items() if k in _EDITABLE})
        if "audience" in update:
            await self._check_districts(update["audience"])
        domain.check_schedule(
            update.get("starts_at", poll.get("starts_at")),
            update.get("ends_at", poll.get("ends_at")),
        )
        update["updated_at"] = utcnow()
        saved = await self.store.update_draft(poll_id, update)
        self.store.forget_poll(poll_id)
        if saved is None:
            raise InvalidTransitionError(
                "The poll was published meanwhile; it cannot be changed.",
                ru="Опрос тем временем опубликовали; изменить его нельзя.",
            )
        return saved

    async def publish_poll(self, caller: Principal, poll_id: str) -> Document:
        poll = await self.get_poll(poll_id)
        domain.require_manager(caller, poll)
        _require_status(
            poll,
            PollStatus.DRAFT,
            "Only a DRAFT poll can be published",
            "Опубликовать можно только опрос в статусе DRAFT",
        )
        now = utcnow()
        domain.check_publishable(poll, now)

        async def work(tx: Transaction) -> Document:
            saved = await self.store.publish(poll_id, now, tx.session)
            if saved is None:
                raise InvalidTransitionError(
                    "The poll was published by someone else meanwhile.",
                    ru="Опрос тем временем опубликовал кто-то другой.",
                )
            tx.emit(
                published_event(saved),
                audit_log.entry(caller, AuditAction.POLL_PUBLISHED, "Poll", poll_id),
            )
            return saved

        saved = await self.outbox.transaction(work)
        self.store.forget_poll(poll_id)
        return saved

    async def close_poll(self, caller: Principal, poll_id: str) -> Document:
        poll = await self.get_poll(poll_id)
        domain.require_manager(caller, poll)
        _require_status(
            poll,
            PollStatus.ACTIVE,
            "Only an ACTIVE poll can be closed",
            "Закрыть можно только опрос в статусе ACTIVE",
        )
        closed = await self._close(poll_id, closer=caller, now=utcnow())
        if closed is None:
            raise InvalidTransitionError(
                "The poll has just been closed (at its end time).",
                ru="Опрос только что закрылся (наступило время окончания).",
            )
        return closed

    async def close_due(self) -> int:
        """Closes every ACTIVE poll past its end time (the scheduler's round); returns how many."""
        now = utcnow()
        closed = 0
        for poll_id in await self.store.due_to_close(now):
            if await self._close(poll_id, closer=None, now=now) is not None:
                closed += 1
        return closed

    async def _close(
        self, poll_id: str, *, closer: Principal | None, now: datetime
    ) -> Document | None:
        """ACTIVE -> CLOSED with its `poll.closed`, or None if it was not ACTIVE (or not due).
        `closer`: the official who closed it early (audited); None: its schedule.

        The conditional update and the event commit together, so however many
        closers race (the mutation, the scheduler, reads), one wins and one
        event is written.
        """

        closed_by = closer.user_id if closer is not None else None

        async def work(tx: Transaction) -> Document | None:
            saved = await self.store.close(
                poll_id, closed_by=closed_by, now=now, session=tx.session
            )
            if saved is None:
                return None
            [tally] = await self.store.tallies([poll_id], tx.session)
            votes = int(tally.get("total", 0)) + await self.store.unfolded_count(
                poll_id, tx.session
            )
            tx.emit(
                PollClosed(
                    poll_id=poll_id, title=saved["title"], votes_count=votes, closed_by=closed_by
                )
            )
            if closer is not None:
                after = {"votes_count": votes}
                tx.emit(
                    audit_log.entry(closer, AuditAction.POLL_CLOSED, "Poll", poll_id, after=after)
                )
            return saved

        saved = await self.outbox.transaction(work)
        if saved is not None:
            self.store.forget_poll(poll_id)
            await self.folder.fold_poll(poll_id)  # results complete as soon as it closes
        return saved

    async def record_decision(
        self, caller: Principal, poll_id: str, text: str, status: DecisionStatus
    ) -> Document:
        poll = await self.get_poll(poll_id)
        domain.require_manager(caller, poll)
        _require_status(
            poll,
            PollStatus.CLOSED,
            "A decision is recorded once the poll is CLOSED",
            "Решение записывают, когда опрос в статусе CLOSED",
        )
        cleaned = domain.clean_text(text, "text", domain.MAX_DECISION, required=True)
        decision = {"text": cleaned, "status": status.value, "updated_at": utcnow()}

        async def work(tx: Transaction) -> Document:
            saved = await self.store.set_decision(poll_id, decision, tx.session)
            tx.emit(
                PollDecisionRecorded(
                    poll_id=poll_id,
                    title=saved["title"],
                    text=cleaned or "",
                    status=status.value,
                    source_initiative_id=saved.get("source_initiative_id"),
                ),
                audit_log.entry(
                    caller,
                    AuditAction.POLL_DECISION_RECORDED,
                    "Poll",
                    poll_id,
                    before={"status": (poll.get("decision") or {}).get("status")},
                    after={"status": status.value},
                ),
            )
            return saved

        saved = await self.outbox.transaction(work)
        self.store.forget_poll(poll_id)
        return saved

    # ───────────────────────── voting ─────────────────────────

    async def cast_vote(
        self, caller: Principal, poll_id: str, answers: Sequence[AnswerDraft]
    ) -> Document:
        """One single-document insert: the ballot, its pending event and its pending tally."""
        poll, projected = await asyncio.gather(
            self._poll_to_vote_in(poll_id), self.store.recent_voter(caller.user_id)
        )
        voter = self._voter(caller, projected)
        now = utcnow()
        domain.check_voting_open(poll, now)
        domain.check_eligible(poll["audience"], voter, now.year)
        as_of = domain.profile_as_of(_profiles(caller, projected), poll.get("published_at"), voter)
        domain.check_eligible_when_published(poll["audience"], voter, as_of, now.year)
        ballot: Document = {
            "_id": mongo.new_id(),
            "poll_id": poll_id,
            "voter_id": caller.user_id,
            "answers": domain.clean_answers(poll["questions"], answers),
            "district_id": voter.district_id,
            "age_group": domain.age_group(voter.age_in(now.year)),
            "cast_at": now,
            "tally_pending": True,
        }
        ballot.update(audit.ballot_receipt_fields(ballot["_id"], poll))
        ballot.update(self.outbox.carry(_vote_cast(ballot, poll["points_reward"])))
        try:
            await self.store.add_ballot(ballot)
        except DuplicateKeyError as error:
            raise AlreadyVotedError(
                "You have already voted in this poll; a ballot is final.",
                ru="Вы уже проголосовали в этом опросе; бюллетень окончательный.",
            ) from error
        self.outbox.written()
        self.folder.wake()
        return ballot

    async def tally_for(self, poll_id: str, viewer_id: str | None) -> Document:
        """The counters, with the viewer's own ballot added if it is not folded in yet."""
        [tally] = await self.tallies_for([poll_id], viewer_id)
        return tally

    async def tallies_for(self, poll_ids: list[str], viewer_id: str | None) -> list[Document]:
        """`tally_for` of many polls in two queries.

        The tallies are read first and the ballots after them: a ballot pending then,
        or folded in a later version, is not in those counters (see `tallies`).
        """
        tallies = await self.store.tallies(poll_ids)
        if viewer_id is None:
            return tallies
        ballots = await self.store.ballots_by_polls(viewer_id, poll_ids)
        return [with_own(tally, ballot) for tally, ballot in zip(tallies, ballots, strict=True)]

    # ───────────────────────── reading ─────────────────────────

    def visible(self, caller: Principal | None, poll: Document) -> bool:
        return domain.can_see(caller, poll)

    async def list_polls(
        self,
        caller: Principal | None,
        *,
        status: PollStatus | None,
        district_id: str | None,
        first: int,
        after: str | None,
    ) -> tuple[list[Document], bool, int]:
        documents, has_next, total = await self.store.page_listed(
            domain.drafts_listed_for(caller),
            status=status,
            district_id=district_id,
            first=first,
            after=after,
        )
        return [await self.settle(d) for d in documents], has_next, total

    async def polls_for_me(
        self, caller: Principal, *, first: int, after: str | None
    ) -> tuple[list[Document], bool, int]:
        """ACTIVE polls open now whose audience includes the caller and that they have not voted in."""
        voter = await self.voter(caller)
        # Active polls are few (tens, not millions): their ids fit in memory.
        candidates = await self.store.open_for(voter, utcnow())
        voted = await self.store.voted_among(caller.user_id, candidates)
        open_ids = sorted((i for i in candidates if i not in voted), reverse=True)
        window = [i for i in open_ids if after is None or i < after]
        documents = [d for d in await self.store.by_ids(window[:first]) if d]
        return documents, len(window) > first, len(open_ids)

    def ballot_owner(self, caller: Principal, user_id: str) -> str:
        """The user whose ballots the caller may read: only their own."""
        domain.require_own(caller, user_id, "ballots", "бюллетени")
        return user_id

    async def ballots_of(
        self, user_id: str, *, first: int, after: str | None
    ) -> tuple[list[Document], bool, int]:
        return await self.store.ballots_page(user_id, first=first, after=after)

    async def ballots_by_polls(self, voter_id: str, poll_ids: list[str]) -> list[Document | None]:
        return await self.store.ballots_by_polls(voter_id, poll_ids)

    async def polls_for_initiatives(self, issue_ids: list[str]) -> list[Document | None]:
        return [
            await self.settle(d) if d else None for d in await self.store.for_initiatives(issue_ids)
        ]

    # ───────────────────────── the public log ─────────────────────────

    async def _audited(self, caller: Principal | None, poll_id: str) -> Document | None:
        """The poll when its log exists and the caller may see its results (the log's
        records are its results); None otherwise."""
        poll = await self.get_poll(poll_id)
        if not poll.get("audit", True):
            return None
        voted = caller is not None and await self.store.ballot_of(poll_id, caller.user_id)
        if not domain.results_visible(caller, poll, has_voted=bool(voted)):
            return None
        return poll

    async def latest_head(self, caller: Principal | None, poll_id: str) -> TreeHead | None:
        if await self._audited(caller, poll_id) is None:
            return None
        return await self.audit.latest_head(poll_id)

    async def heads_page(
        self, poll_id: str, first: int, below: int, up_to: int
    ) -> tuple[list[TreeHead], bool, int]:
        return await self.audit.heads_page(poll_id, first, below, up_to)

    async def records_page(
        self, poll_id: str, first: int, after: int | None
    ) -> tuple[list[Document], bool]:
        return await self.audit.records_page(poll_id, first, after)

    async def record_index(self, poll_id: str, commitment: str) -> int | None:
        record = await self.audit.record_by_commitment(poll_id, commitment)
        return int(record["index"]) if record else None

    async def inclusion_proof(
        self, caller: Principal | None, poll_id: str, commitment: str
    ) -> tuple[int, int, list[bytes]] | None:
        """(leaf index, tree size, path) of a record against the latest signed head."""
        head = await self.latest_head(caller, poll_id)
        index = await self.record_index(poll_id, commitment)
        if head is None or index is None or index >= head.tree_size:
            return None
        leaves = await self.audit.leaf_hashes(poll_id, head.tree_size)
        return index, head.tree_size, merkle.inclusion_proof(leaves, index)

    async def consistency_proof(
        self, caller: Principal | None, poll_id: str, old_size: int, new_size: int
    ) -> list[bytes] | None:
        """That the signed head at `old_size` is a prefix of the one at `new_size`."""
        if await self._audited(caller, poll_id) is None:
            return None
        old, new = await asyncio.gather(
            self.audit.head_at(poll_id, old_size), self.audit.head_at(poll_id, new_size)
        )
        if old is None or new is None or old_size > new_size:
            raise BadUserInputError(
                "fromSize and toSize must be the sizes of two signed heads of this poll, "
                "fromSize ≤ toSize (see pollAudit and its heads).",
                ru=(
                    "fromSize и toSize должны быть размерами двух подписанных вершин журнала этого опроса, "
                    "fromSize ≤ toSize (см. pollAudit и его heads)."
                ),
            )
        leaves = await self.audit.leaf_hashes(poll_id, new_size)
        return merkle.consistency_proof(leaves, old_size)

    async def export_of(self, caller: Principal, user_id: str) -> dict[str, list[Any]]:
        """The person's own records here (152-FZ): only they may read them."""
        export.require_owner(caller, user_id)
        return await self.store.export_of(user_id)


def _require_status(poll: Document, status: PollStatus, what: str, ru: str) -> None:
    if poll["status"] != status:
        raise InvalidTransitionError(
            f"{what}; this one is {poll['status']}.",
            ru=f"{ru}; этот опрос в статусе {poll['status']}.",
        )


def _cleaned_changes(update: dict[str, Any]) -> dict[str, Any]:
    """The sent fields of a DRAFT's change, each checked as when the poll was created."""
    if "title" in update:
        update["title"] = domain.clean_title(update["title"] or "")
    if "description" in update:
        update["description"] = domain.clean_text(
            update["description"], "description", domain.MAX_DESCRIPTION, required=False
        )
    if "questions" in update:
        update["questions"] = domain.build_questions(update["questions"] or [])
    if "audience" in update:
        audience: AudienceDraft | None = update["audience"]
        update["audience"] = audience.cleaned() if audience else domain.whole_city()
    if "points_reward" in update:
        update["points_reward"] = domain.clean_points_reward(update["points_reward"])
    return update


def with_own(tally: Document, ballot: Document | None) -> Document:
    """The counters as the ballot's voter sees them: with their own ballot even before
    it is folded in (`ballot` read after `tally`)."""
    if ballot is None or counted_in(ballot, tally):
        return tally
    return domain.apply_increments(copy.deepcopy(tally), domain.ballot_increments(ballot))


def published_event(poll: Document) -> PollPublished:
    """poll.published for a poll just published, with its whole audience (the users service
    tells those it admits, and no one else)."""
    audience = poll["audience"]
    return PollPublished(
        poll_id=poll["_id"],
        title=poll["title"],
        author_id=poll["author_id"],
        department_id=poll.get("department_id"),
        district_ids=audience["district_ids"],
        min_age=audience.get("min_age"),
        max_age=audience.get("max_age"),
        verified_only=bool(audience.get("verified_only")),
        source_initiative_id=poll.get("source_initiative_id"),
        starts_at=poll.get("starts_at"),
        ends_at=poll.get("ends_at"),
    )


def _vote_cast(ballot: Document, points_reward: int) -> PollVoteCast:
    return PollVoteCast(
        poll_id=ballot["poll_id"],
        ballot_id=ballot["_id"],
        voter_id=ballot["voter_id"],
        points_reward=points_reward,
        district_id=ballot["district_id"],
        age_group=ballot["age_group"],
    )


def _profiles(caller: Principal, projected: Document | None) -> list[Document]:
    """The voter's profiles over time: the projection's, then the token's when it is newer
    (a change not projected yet was in effect from the token's issue at the latest)."""
    profiles: list[Document] = list(projected.get("profiles", [])) if projected else []
    issued_at = caller.issued_at
    if profiles and projected is not None and issued_at is not None and projected["at"] < issued_at:
        token = {"district_id": caller.district_id, "birth_year": caller.birth_year}
        if any(profiles[-1].get(k) != v for k, v in token.items()):
            profiles.append({**token, "from": issued_at})
    return profiles


def _found(poll: Document | None, poll_id: str) -> Document:
    if poll is None:
        raise NotFoundError(
            f"No poll with id '{poll_id[:40]}'.", ru=f"Опроса с id «{poll_id[:40]}» нет."
        )
    return poll
