"""How the users service reacts to other services' events: points and the inbox.

Each `on_<event>` runs inside the kit's idempotent consumer, so an event's
effect happens once however often it is delivered. Points are credited in the
consumer's transaction (one ledger entry per user per source event, held by a
unique index). Notifications are written in batches outside it, made
idempotent by a unique index on (user, source event), so a fan-out to a whole
district never becomes one huge transaction and a retried batch adds nothing.
Order does not matter: every effect is keyed by its own event, and the
supporters projection keeps the newest fact per (issue, user).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import Any

from pymongo.errors import BulkWriteError, DuplicateKeyError

from veche_kit import mongo
from veche_kit.consumer import Handlers
from veche_kit.events import (
    Envelope,
    InitiativeProposed,
    InitiativeThresholdReached,
    IssueClosed,
    IssueCommented,
    IssueOverdue,
    IssueReported,
    IssueResolved,
    IssueSolverAssigned,
    IssueSolverOffered,
    IssueStatusChanged,
    IssueSupported,
    IssueSupportWithdrawn,
    PollClosed,
    PollDecisionRecorded,
    PollPublished,
    PollVoteCast,
)
from veche_kit.mongo import Database, Session
from veche_users import store
from veche_users.domain import Role
from veche_users.service import UsersService

BATCH = 1000
DUPLICATE_KEY = 11000

handlers: Handlers[Reactions] = Handlers()


async def _batches(
    ids: AsyncIterator[str] | Iterable[str], size: int = BATCH
) -> AsyncIterator[list[str]]:
    batch: list[str] = []
    if isinstance(ids, AsyncIterator):
        async for user_id in ids:
            batch.append(user_id)
            if len(batch) == size:
                yield batch
                batch = []
    else:
        for user_id in ids:
            batch.append(user_id)
            if len(batch) == size:
                yield batch
                batch = []
    if batch:
        yield batch


class Reactions:
    """The users service's handlers: each `@handlers.on` method below, bound to one service."""

    def __init__(self, service: UsersService) -> None:
        self.service = service
        self.db: Database = service.db
        self.settings = service.settings

    # ───────────────────────── helpers ─────────────────────────

    async def notify(
        self,
        envelope: Envelope,
        user_ids: AsyncIterator[str] | Iterable[str],
        text: str,
        link: str,
        *,
        skip: str | None = None,
    ) -> int:
        """Writes one notification per user for this event, in batches; returns how many were new."""
        written = 0
        async for batch in _batches(user_ids):
            documents = [
                {
                    "_id": mongo.new_id(),
                    "user_id": user_id,
                    "kind": envelope.type,
                    "text": text,
                    "link": link,
                    "read": False,
                    "at": envelope.occurred_at,
                    "source_event": str(envelope.id),
                }
                for user_id in dict.fromkeys(batch)
                if user_id and user_id != skip
            ]
            if not documents:
                continue
            try:
                result = await self.db[store.NOTIFICATIONS].insert_many(documents, ordered=False)
                written += len(result.inserted_ids)
            except BulkWriteError as error:
                # Already written by an earlier try of this event: those are skipped.
                if any(
                    e.get("code") != DUPLICATE_KEY for e in error.details.get("writeErrors", [])
                ):
                    raise
                written += error.details.get("nInserted", 0)
        return written

    async def credit(
        self, envelope: Envelope, user_id: str, amount: int, reason: str, session: Session
    ) -> None:
        if amount > 0:
            await self.service.credit_points(
                user_id, amount, reason, str(envelope.id), session=session
            )

    async def _officials(self, department_id: str | None) -> AsyncIterator[str]:
        if not department_id:
            return
        cursor = self.db[store.USERS].find(
            {"roles": Role.OFFICIAL.value, "department_id": department_id}, {"_id": 1}
        )
        async for document in cursor:
            yield document["_id"]

    async def _voters(self, poll_id: str) -> AsyncIterator[str]:
        async for document in self.db[store.POLL_VOTERS].find({"poll_id": poll_id}, {"user_id": 1}):
            yield document["user_id"]

    async def _supporters(self, issue_id: str) -> list[str]:
        cursor = self.db[store.SUPPORTERS].find(
            {"issue_id": issue_id, "active": True}, {"user_id": 1}
        )
        return [d["user_id"] async for d in cursor]

    # ───────────────────────── polls ─────────────────────────

    @handlers.on(PollVoteCast)
    async def on_poll_vote_cast(
        self, event: PollVoteCast, envelope: Envelope, session: Session
    ) -> None:
        await self.credit(
            envelope, event.voter_id, event.points_reward, "Voted in a city poll", session
        )
        await self.db[store.POLL_VOTERS].update_one(
            {"_id": f"{event.poll_id}:{event.voter_id}"},
            {"$setOnInsert": {"poll_id": event.poll_id, "user_id": event.voter_id}},
            upsert=True,
            session=session,
        )

    @handlers.on(PollPublished)
    async def on_poll_published(
        self, event: PollPublished, envelope: Envelope, session: Session
    ) -> None:
        query: dict[str, Any] = (
            {"district_id": {"$in": event.district_ids}} if event.district_ids else {}
        )
        citizens = (d["_id"] async for d in self.db[store.USERS].find(query, {"_id": 1}))
        where = "your district" if event.district_ids else "the city"
        await self.notify(
            envelope,
            citizens,
            f"A new poll for {where}: «{event.title}».",
            f"poll:{event.poll_id}",
            skip=event.author_id,
        )
        if event.source_initiative_id:
            initiative = await self.db[store.INITIATIVES].find_one(
                {"_id": event.source_initiative_id}
            )
            people = await self._supporters(event.source_initiative_id)
            if initiative is not None:
                people.insert(0, initiative["author_id"])
            await self.notify(
                envelope,
                people,
                f"The initiative you backed is now put to a city poll: «{event.title}».",
                f"poll:{event.poll_id}",
            )

    @handlers.on(PollClosed)
    async def on_poll_closed(self, event: PollClosed, envelope: Envelope, session: Session) -> None:
        await self.notify(
            envelope,
            self._voters(event.poll_id),
            f"The poll «{event.title}» you voted in has closed; see the results.",
            f"poll:{event.poll_id}",
        )

    @handlers.on(PollDecisionRecorded)
    async def on_poll_decision_recorded(
        self, event: PollDecisionRecorded, envelope: Envelope, session: Session
    ) -> None:
        status = event.status.replace("_", " ").lower()
        await self.notify(
            envelope,
            self._voters(event.poll_id),
            f"The city recorded a decision ({status}) on the poll «{event.title}»: {event.text[:200]}",
            f"poll:{event.poll_id}",
        )

    # ───────────────────────── issues ─────────────────────────

    @handlers.on(IssueReported)
    async def on_issue_reported(
        self, event: IssueReported, envelope: Envelope, session: Session
    ) -> None:
        await self.notify(
            envelope,
            self._officials(event.department_id),
            f"A new problem was routed to your department: «{event.title}».",
            f"issue:{event.issue_id}",
        )

    @handlers.on(IssueStatusChanged)
    async def on_issue_status_changed(
        self, event: IssueStatusChanged, envelope: Envelope, session: Session
    ) -> None:
        status = event.to_status.replace("_", " ").lower()
        note = f" Note: {event.note[:200]}" if event.note else ""
        await self.notify(
            envelope,
            [event.reporter_id, *event.supporter_ids],
            f"«{event.title}» is now {status}.{note}",
            f"issue:{event.issue_id}",
            skip=event.by_user_id,
        )
        if event.to_status == "ACCEPTED" and event.kind == "PROBLEM":
            await self.credit(
                envelope,
                event.reporter_id,
                self.settings.points_report_accepted,
                "Your problem report was accepted",
                session,
            )

    @handlers.on(IssueCommented)
    async def on_issue_commented(
        self, event: IssueCommented, envelope: Envelope, session: Session
    ) -> None:
        if event.official:
            await self.notify(
                envelope,
                [event.reporter_id, *event.supporter_ids],
                f"The city answered on «{event.title}»: {event.excerpt[:200]}",
                f"issue:{event.issue_id}",
                skip=event.author_id,
            )

    @handlers.on(IssueSolverOffered)
    async def on_issue_solver_offered(
        self, event: IssueSolverOffered, envelope: Envelope, session: Session
    ) -> None:
        await self.notify(
            envelope,
            [event.reporter_id],
            f"Someone offered to fix «{event.title}».",
            f"issue:{event.issue_id}",
        )

    @handlers.on(IssueSolverAssigned)
    async def on_issue_solver_assigned(
        self, event: IssueSolverAssigned, envelope: Envelope, session: Session
    ) -> None:
        await self.notify(
            envelope,
            [event.solver_id],
            f"Your offer to fix «{event.title}» was accepted.",
            f"issue:{event.issue_id}",
        )

    @handlers.on(IssueResolved)
    async def on_issue_resolved(
        self, event: IssueResolved, envelope: Envelope, session: Session
    ) -> None:
        await self.notify(
            envelope,
            [event.reporter_id],
            f"«{event.title}» is marked solved: confirm it, or reopen it if it is not.",
            f"issue:{event.issue_id}",
            skip=event.resolved_by,
        )

    @handlers.on(IssueClosed)
    async def on_issue_closed(
        self, event: IssueClosed, envelope: Envelope, session: Session
    ) -> None:
        if event.solver_id and event.confirmed_by:
            await self.credit(
                envelope,
                event.solver_id,
                self.settings.points_issue_solved,
                "A problem you solved was confirmed",
                session,
            )
            await self.notify(
                envelope,
                [event.solver_id],
                f"The reporter confirmed your fix of «{event.title}».",
                f"issue:{event.issue_id}",
            )

    @handlers.on(IssueOverdue)
    async def on_issue_overdue(
        self, event: IssueOverdue, envelope: Envelope, session: Session
    ) -> None:
        await self.notify(
            envelope,
            self._officials(event.department_id),
            f"«{event.title}» is past its response deadline.",
            f"issue:{event.issue_id}",
        )

    async def _support(self, issue_id: str, user_id: str, active: bool, at: datetime) -> None:
        # Keep the newest fact per (issue, user), whatever order events arrive in. Outside the
        # transaction: a stale fact hits the unique _id, which would abort a transaction.
        with contextlib.suppress(DuplicateKeyError):
            await self.db[store.SUPPORTERS].update_one(
                {"_id": f"{issue_id}:{user_id}", "at": {"$lt": at}},
                {"$set": {"issue_id": issue_id, "user_id": user_id, "active": active, "at": at}},
                upsert=True,
            )

    @handlers.on(IssueSupported)
    async def on_issue_supported(
        self, event: IssueSupported, envelope: Envelope, session: Session
    ) -> None:
        await self._support(event.issue_id, event.user_id, True, envelope.occurred_at)

    @handlers.on(IssueSupportWithdrawn)
    async def on_issue_support_withdrawn(
        self, event: IssueSupportWithdrawn, envelope: Envelope, session: Session
    ) -> None:
        await self._support(event.issue_id, event.user_id, False, envelope.occurred_at)

    @handlers.on(InitiativeProposed)
    async def on_initiative_proposed(
        self, event: InitiativeProposed, envelope: Envelope, session: Session
    ) -> None:
        await self.db[store.INITIATIVES].update_one(
            {"_id": event.issue_id},
            {"$set": {"author_id": event.author_id, "title": event.title}},
            upsert=True,
            session=session,
        )

    @handlers.on(InitiativeThresholdReached)
    async def on_initiative_threshold_reached(
        self, event: InitiativeThresholdReached, envelope: Envelope, session: Session
    ) -> None:
        await self.db[store.INITIATIVES].update_one(
            {"_id": event.issue_id},
            {"$set": {"author_id": event.author_id, "title": event.title}},
            upsert=True,
            session=session,
        )
        await self.credit(
            envelope,
            event.author_id,
            self.settings.points_initiative_threshold,
            "Your initiative reached its support threshold",
            session,
        )
        await self.notify(
            envelope,
            [event.author_id],
            f"Your initiative «{event.title}» gathered {event.supporters_count} supporters and goes "
            "to the city for review.",
            f"issue:{event.issue_id}",
        )
