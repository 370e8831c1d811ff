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

from collections.abc import AsyncIterator, Iterable

from veche_kit import mongo
from veche_kit.consumer import Handlers
from veche_kit.events import (
    AuditRecorded,
    ContentHidden,
    ContentKind,
    ContentRestored,
    Envelope,
    InitiativeProposed,
    InitiativeThresholdReached,
    IssueAssigned,
    IssueClosed,
    IssueCommented,
    IssueFixConfirmed,
    IssueOverdue,
    IssueRecategorized,
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
from veche_kit.mongo import Session
from veche_users.service import UsersService

BATCH = 1000

handlers: Handlers[Reactions] = Handlers()


async def _batches(
    ids: AsyncIterator[str] | Iterable[str | None], size: int = BATCH
) -> AsyncIterator[list[str]]:
    """Batches of user ids; a None (an anonymous reporter) is nobody to notify."""
    batch: list[str] = []
    if isinstance(ids, AsyncIterator):
        async for user_id in ids:
            batch.append(user_id)
            if len(batch) == size:
                yield batch
                batch = []
    else:
        for maybe_id in ids:
            if maybe_id is None:
                continue
            batch.append(maybe_id)
            if len(batch) == size:
                yield batch
                batch = []
    if batch:
        yield batch


class Reactions:
    """The users service's handlers: each `@handlers.on` method below, bound to one service."""

    def __init__(self, service: UsersService) -> None:
        self.service = service
        self.store = service.store
        self.settings = service.settings

    # ───────────────────────── helpers ─────────────────────────

    async def notify(
        self,
        envelope: Envelope,
        user_ids: AsyncIterator[str] | Iterable[str | None],
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
            written += await self.store.add_notifications(documents)
        return written

    async def credit(
        self, envelope: Envelope, user_id: str | None, amount: int, reason: str, session: Session
    ) -> None:
        if amount > 0 and user_id is not None:  # an anonymous reporter earns nothing
            await self.service.credit_points(
                user_id, amount, reason, str(envelope.id), session=session
            )

    # ───────────────────────── polls ─────────────────────────

    @handlers.on(PollVoteCast)
    async def on_poll_vote_cast(
        self, event: PollVoteCast, envelope: Envelope, session: Session
    ) -> None:
        await self.credit(
            envelope, event.voter_id, event.points_reward, "Voted in a city poll", session
        )
        await self.store.add_poll_voter(event.poll_id, event.voter_id, session)

    @handlers.on(PollPublished)
    async def on_poll_published(
        self, event: PollPublished, envelope: Envelope, session: Session
    ) -> None:
        citizens = self.store.citizens_in(event.district_ids)
        where = "your district" if event.district_ids else "the city"
        await self.notify(
            envelope,
            citizens,
            f"A new poll for {where}: «{event.title}».",
            f"poll:{event.poll_id}",
            skip=event.author_id,
        )
        if event.source_initiative_id:
            initiative = await self.store.initiative(event.source_initiative_id)
            people = await self.store.supporters(event.source_initiative_id)
            if initiative is not None:
                people.insert(0, initiative["author_id"])
            await self.notify(
                envelope,
                people,
                f"The initiative you backed is now put to a city poll: «{event.title}».",
                f"poll:{event.poll_id}",
            )

    @handlers.on(AuditRecorded)
    async def on_audit_recorded(
        self, event: AuditRecorded, envelope: Envelope, session: Session
    ) -> None:
        """Every service's staff actions, kept here: the one log admins and auditors read."""
        await self.store.add_audit_entry(
            {
                "_id": event.entry_id,
                "at": envelope.occurred_at,
                "service": envelope.producer,
                **event.model_dump(mode="json", exclude={"entry_id"}),
            },
            session,
        )

    @handlers.on(PollClosed)
    async def on_poll_closed(self, event: PollClosed, envelope: Envelope, session: Session) -> None:
        await self.notify(
            envelope,
            self.store.poll_voters(event.poll_id),
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
            self.store.poll_voters(event.poll_id),
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
            self.store.officials_of(event.department_id),
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
        # No points here: the reporter's word alone would pay a self-dealing pair of
        # accounts. The solver is paid on issue.fix_confirmed, an official's confirmation.
        if event.solver_id and event.confirmed_by:
            await self.notify(
                envelope,
                [event.solver_id],
                f"The reporter confirmed your fix of «{event.title}».",
                f"issue:{event.issue_id}",
            )

    @handlers.on(IssueFixConfirmed)
    async def on_issue_fix_confirmed(
        self, event: IssueFixConfirmed, envelope: Envelope, session: Session
    ) -> None:
        await self.credit(
            envelope,
            event.solver_id,
            self.settings.points_issue_solved,
            "The city confirmed a problem you solved",
            session,
        )
        await self.notify(
            envelope,
            [event.solver_id],
            f"The city confirmed your fix of «{event.title}».",
            f"issue:{event.issue_id}",
        )

    @handlers.on(IssueOverdue)
    async def on_issue_overdue(
        self, event: IssueOverdue, envelope: Envelope, session: Session
    ) -> None:
        await self.notify(
            envelope,
            self.store.officials_of(event.department_id),
            f"«{event.title}» is past its response deadline.",
            f"issue:{event.issue_id}",
        )

    @handlers.on(IssueRecategorized)
    async def on_issue_recategorized(
        self, event: IssueRecategorized, envelope: Envelope, session: Session
    ) -> None:
        """Both departments' officials hear of a rerouted issue (one notice each, whichever
        they belong to), and so does the reporter."""
        link = f"issue:{event.issue_id}"
        reason = event.reason[:200]
        if event.from_department_id != event.to_department_id:
            await self.notify(
                envelope,
                self.store.officials_of(event.from_department_id),
                f"«{event.title}» was passed to the department '{event.to_department_id}': {reason}",
                link,
                skip=event.by_user_id,
            )
        await self.notify(
            envelope,
            self.store.officials_of(event.to_department_id),
            f"«{event.title}» is now in the category '{event.to_category}', handled by your "
            f"department: {reason}",
            link,
            skip=event.by_user_id,
        )
        await self.notify(
            envelope,
            [event.reporter_id],
            f"«{event.title}» was passed to the department that handles '{event.to_category}'.",
            link,
            skip=event.by_user_id,
        )

    @handlers.on(IssueAssigned)
    async def on_issue_assigned(
        self, event: IssueAssigned, envelope: Envelope, session: Session
    ) -> None:
        await self.notify(
            envelope,
            [event.assignee_id],
            f"«{event.title}» was assigned to you.",
            f"issue:{event.issue_id}",
            skip=event.by_user_id,
        )

    @handlers.on(IssueSupported)
    async def on_issue_supported(
        self, event: IssueSupported, envelope: Envelope, session: Session
    ) -> None:
        await self.store.set_support(event.issue_id, event.user_id, True, envelope.occurred_at)

    @handlers.on(IssueSupportWithdrawn)
    async def on_issue_support_withdrawn(
        self, event: IssueSupportWithdrawn, envelope: Envelope, session: Session
    ) -> None:
        await self.store.set_support(event.issue_id, event.user_id, False, envelope.occurred_at)

    @handlers.on(InitiativeProposed)
    async def on_initiative_proposed(
        self, event: InitiativeProposed, envelope: Envelope, session: Session
    ) -> None:
        await self.store.put_initiative(event.issue_id, event.author_id, event.title, session)

    @handlers.on(InitiativeThresholdReached)
    async def on_initiative_threshold_reached(
        self, event: InitiativeThresholdReached, envelope: Envelope, session: Session
    ) -> None:
        await self.store.put_initiative(event.issue_id, event.author_id, event.title, session)
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

    # ───────────────────────── moderation ─────────────────────────

    @handlers.on(ContentHidden)
    async def on_content_hidden(
        self, event: ContentHidden, envelope: Envelope, session: Session
    ) -> None:
        """A hidden display name shows as a neutral one; the author learns why."""
        if event.kind is ContentKind.DISPLAY_NAME:
            at = envelope.occurred_at
            await self.store.moderate_name(event.content_id, at, at, session)
        what = _CONTENT_NAMES[event.kind]
        await self.notify(
            envelope,
            [event.author_id],
            f"A moderator hid your {what}: {event.reason}",
            _content_link(event.kind, event.content_id, event.issue_id),
        )

    @handlers.on(ContentRestored)
    async def on_content_restored(
        self, event: ContentRestored, envelope: Envelope, session: Session
    ) -> None:
        if event.kind is ContentKind.DISPLAY_NAME:
            await self.store.moderate_name(event.content_id, None, envelope.occurred_at, session)
        what = _CONTENT_NAMES[event.kind]
        await self.notify(
            envelope,
            [event.author_id],
            f"A moderator showed your {what} again: {event.reason}",
            _content_link(event.kind, event.content_id, event.issue_id),
        )


_CONTENT_NAMES = {
    ContentKind.ISSUE: "report",
    ContentKind.COMMENT: "comment",
    ContentKind.PHOTO: "photo",
    ContentKind.DISPLAY_NAME: "display name",
}


def _content_link(kind: ContentKind, content_id: str, issue_id: str | None) -> str:
    return f"issue:{issue_id}" if issue_id else f"user:{content_id}"
