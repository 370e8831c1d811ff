"""How the users service reacts to other services' events: points and the inbox.

Each `on_<event>` runs inside the kit's idempotent consumer, so an event's
effect happens once however often it is delivered. Points are credited in the
consumer's transaction (one ledger entry per user per source event, held by a
unique index). Notifications are written in batches outside it, made
idempotent by a unique index on (user, source event), so a fan-out to a whole
district never becomes one huge transaction and a retried batch adds nothing.
A notification keeps a kind and its params, never a sentence: `notices` renders it
in the reader's language when it is read.
Order does not matter: every effect is keyed by its own event, and the
supporters projection keeps the newest fact per (issue, user).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

from veche_kit import mongo
from veche_kit.consumer import Handlers
from veche_kit.events import (
    AuditRecorded,
    CategoriesPublished,
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
from veche_kit.reference_lists import CATEGORY_LIST, ProjectedLists
from veche_users.notices import NotificationKind
from veche_users.service import UsersService
from veche_users.store import DEPARTMENTS

BATCH = 1000
K = NotificationKind

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
        kind: NotificationKind,
        params: dict[str, Any],
        link: str,
        *,
        skip: str | None = None,
    ) -> int:
        """Writes one notification per user for this event, in batches; returns how many were
        new. A notification keeps its kind and params; `notices` renders it when read."""
        written = 0
        async for batch in _batches(user_ids):
            documents = [
                {
                    "_id": mongo.new_id(),
                    "user_id": user_id,
                    "kind": kind.value,
                    "params": params,
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

    # Side by side per voter: it touches only the voter's points and poll record.
    @handlers.on(PollVoteCast, lane="voter_id")
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
        """The initiative's people first (one notice per person per event, so theirs wins
        over the district's), then everyone the poll's audience admits: only they may vote."""
        link = f"poll:{event.poll_id}"
        if event.source_initiative_id:
            initiative = await self.store.initiative(event.source_initiative_id)
            people = await self.store.supporters(event.source_initiative_id)
            if initiative is not None:
                people.insert(0, initiative["author_id"])
            await self.notify(
                envelope, people, K.INITIATIVE_PUT_TO_POLL, {"title": event.title}, link
            )
        audience = self.store.poll_audience(
            event.district_ids,
            min_age=event.min_age,
            max_age=event.max_age,
            verified_only=event.verified_only,
            year=envelope.occurred_at.year,
        )
        scope = "DISTRICT" if event.district_ids else "CITY"
        params = {"title": event.title, "scope": scope}
        await self.notify(envelope, audience, K.POLL_PUBLISHED, params, link, skip=event.author_id)

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
            K.POLL_CLOSED,
            {"title": event.title},
            f"poll:{event.poll_id}",
        )

    @handlers.on(PollDecisionRecorded)
    async def on_poll_decision_recorded(
        self, event: PollDecisionRecorded, envelope: Envelope, session: Session
    ) -> None:
        await self.notify(
            envelope,
            self.store.poll_voters(event.poll_id),
            K.POLL_DECISION_RECORDED,
            {"title": event.title, "decision": event.status, "text": event.text[:200]},
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
            K.ISSUE_REPORTED,
            {"title": event.title},
            f"issue:{event.issue_id}",
        )

    @handlers.on(IssueStatusChanged)
    async def on_issue_status_changed(
        self, event: IssueStatusChanged, envelope: Envelope, session: Session
    ) -> None:
        # An initiative crossing its threshold: initiative.threshold_reached tells its
        # author (with the count), so this change tells only its supporters.
        skip = event.reporter_id if _threshold_crossed(event) else event.by_user_id
        # A person's note is passed on; one Veche wrote itself (in English, and saying no
        # more than the status) is left out.
        note = _short(event.note) if event.by_user_id else None
        params = {"title": event.title, "status": event.to_status, "note": note}
        await self.notify(
            envelope,
            [event.reporter_id, *event.supporter_ids],
            K.ISSUE_STATUS_CHANGED,
            params,
            f"issue:{event.issue_id}",
            skip=skip,
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
                K.ISSUE_ANSWERED,
                {"title": event.title, "excerpt": event.excerpt[:200]},
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
            K.SOLVER_OFFERED,
            {"title": event.title},
            f"issue:{event.issue_id}",
        )

    @handlers.on(IssueSolverAssigned)
    async def on_issue_solver_assigned(
        self, event: IssueSolverAssigned, envelope: Envelope, session: Session
    ) -> None:
        await self.notify(
            envelope,
            [event.solver_id],
            K.OFFER_ACCEPTED,
            {"title": event.title},
            f"issue:{event.issue_id}",
        )

    @handlers.on(IssueResolved)
    async def on_issue_resolved(
        self, event: IssueResolved, envelope: Envelope, session: Session
    ) -> None:
        await self.notify(
            envelope,
            [event.reporter_id],
            K.ISSUE_RESOLVED,
            {"title": event.title},
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
                K.FIX_CONFIRMED_BY_REPORTER,
                {"title": event.title},
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
            K.FIX_CONFIRMED_BY_CITY,
            {"title": event.title},
            f"issue:{event.issue_id}",
        )

    @handlers.on(IssueOverdue)
    async def on_issue_overdue(
        self, event: IssueOverdue, envelope: Envelope, session: Session
    ) -> None:
        await self.notify(
            envelope,
            self.store.officials_of(event.department_id),
            K.ISSUE_OVERDUE,
            {"title": event.title},
            f"issue:{event.issue_id}",
        )

    @handlers.on(IssueRecategorized)
    async def on_issue_recategorized(
        self, event: IssueRecategorized, envelope: Envelope, session: Session
    ) -> None:
        """Both departments' officials hear of a rerouted issue (one notice each, whichever
        they belong to), and so does the reporter."""
        link, by = f"issue:{event.issue_id}", event.by_user_id
        params = {
            "title": event.title,
            **await self._rerouted_to(event, session),
            "reason": event.reason[:200],
        }
        if event.from_department_id != event.to_department_id:
            officials = self.store.officials_of(event.from_department_id)
            await self.notify(envelope, officials, K.ISSUE_MOVED_AWAY, params, link, skip=by)
        officials = self.store.officials_of(event.to_department_id)
        await self.notify(envelope, officials, K.ISSUE_MOVED_IN, params, link, skip=by)
        reporter = [event.reporter_id]
        await self.notify(envelope, reporter, K.ISSUE_RECATEGORIZED, params, link, skip=by)

    async def _rerouted_to(self, event: IssueRecategorized, session: Session) -> dict[str, str]:
        """The new department and category by name, as a reader knows them (the id when a
        name is not known here: a department retired, a category list not told yet)."""
        department = event.to_department_id or ""
        if department and (found := await self.store.reference(DEPARTMENTS, department)):
            department = found["name"]
        lists = ProjectedLists(self.service.db)
        category = await lists.name_of(CATEGORY_LIST, event.to_category, session)
        return {"department": department, "category": category or event.to_category}

    @handlers.on(IssueAssigned)
    async def on_issue_assigned(
        self, event: IssueAssigned, envelope: Envelope, session: Session
    ) -> None:
        await self.notify(
            envelope,
            [event.assignee_id],
            K.ISSUE_ASSIGNED,
            {"title": event.title},
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
        """The author's one notice of the crossing (the status change it comes with skips
        them)."""
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
            K.INITIATIVE_THRESHOLD_REACHED,
            {"title": event.title, "supporters": event.supporters_count},
            f"issue:{event.issue_id}",
        )

    # ───────────────────────── moderation ─────────────────────────

    @handlers.on(ContentHidden)
    async def on_content_hidden(
        self, event: ContentHidden, envelope: Envelope, session: Session
    ) -> None:
        """A hidden display name shows as a neutral one; the author learns why. A late
        decision that a newer name or decision outran changes nothing and tells no one."""
        if event.kind is ContentKind.DISPLAY_NAME:
            at = envelope.occurred_at
            if not await self.store.moderate_name(event.content_id, at, at, session):
                return
        await self.notify(
            envelope,
            [event.author_id],
            K.CONTENT_HIDDEN,
            {"content": event.kind.value, "reason": event.reason},
            _content_link(event.kind, event.content_id, event.issue_id),
        )

    @handlers.on(ContentRestored)
    async def on_content_restored(
        self, event: ContentRestored, envelope: Envelope, session: Session
    ) -> None:
        if event.kind is ContentKind.DISPLAY_NAME:
            at = envelope.occurred_at
            if not await self.store.moderate_name(event.content_id, None, at, session):
                return
        await self.notify(
            envelope,
            [event.author_id],
            K.CONTENT_RESTORED,
            {"content": event.kind.value, "reason": event.reason},
            _content_link(event.kind, event.content_id, event.issue_id),
        )

    # ───────────────────────── reference data ─────────────────────────

    @handlers.on(CategoriesPublished)
    async def on_categories_published(
        self, event: CategoriesPublished, envelope: Envelope, session: Session
    ) -> None:
        """The issue categories, the ids `becomeSolver` takes as skills: the list told last."""
        items = [category.model_dump() for category in event.categories]
        await ProjectedLists(self.service.db).replace(
            CATEGORY_LIST, items, envelope.occurred_at, session
        )


def _content_link(kind: ContentKind, content_id: str, issue_id: str | None) -> str:
    return f"issue:{issue_id}" if issue_id else f"user:{content_id}"


def _short(text: str | None) -> str | None:
    return text[:200] if text else None


def _threshold_crossed(event: IssueStatusChanged) -> bool:
    """Veche itself moved an initiative from collecting to review: its threshold."""
    return (
        event.kind == "INITIATIVE"
        and (event.from_status, event.to_status) == ("COLLECTING", "UNDER_REVIEW")
        and event.by_user_id is None
    )
