"""The event envelope and one Pydantic model per event type: the catalogue.

Every service imports its events from here. A model's `type`, `version` and
fields are a contract: change an event by adding a new version, never by
editing one that has been published. A new version says how to build its data
from the version before (`from_previous`), so an envelope written before an
upgrade (in an outbox, a queue or a dead-letter queue) is read as the current
version: `Envelope.event()` upcasts it step by step.
"""

from __future__ import annotations

import builtins
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from veche_kit.clock import utcnow


class Event(BaseModel):
    """A fact that happened in one service, told to the others."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    type: ClassVar[str]
    version: ClassVar[int] = 1
    # Carries facts about the person `user_id` (a name, a birth year...): a service's
    # dead-letter queue drops such messages when the person is erased (152-FZ).
    personal: ClassVar[bool] = False
    registry: ClassVar[dict[tuple[str, int], builtins.type[Event]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "type" in cls.__dict__:
            key = (cls.type, cls.version)
            if key in Event.registry:
                raise TypeError(f"event {key} is defined twice")
            if cls.version > 1 and "from_previous" not in cls.__dict__:
                raise TypeError(f"event {key} must say how to upcast version {cls.version - 1}")
            Event.registry[key] = cls

    @classmethod
    def from_previous(cls, data: dict[str, Any]) -> dict[str, Any]:
        """This version's data made from the previous version's (versions 2 and later)."""
        raise NotImplementedError

    @classmethod
    def latest_version(cls, event_type: str) -> int:
        return max(v for t, v in Event.registry if t == event_type)


class Envelope(BaseModel):
    """What travels on the bus: the id is the idempotency key."""

    model_config = ConfigDict(frozen=True)

    id: uuid.UUID
    type: str
    version: int
    occurred_at: datetime
    producer: str
    data: dict[str, Any]

    @classmethod
    def wrap(cls, event: Event, producer: str) -> Envelope:
        return cls(
            id=uuid.uuid4(),
            type=event.type,
            version=event.version,
            occurred_at=utcnow(),
            producer=producer,
            data=event.model_dump(mode="json"),
        )

    def event(self) -> Event:
        """The typed payload as the newest version this code knows, upcast from older
        ones; KeyError for a type or version this code does not know (a newer one)."""
        model = Event.registry[(self.type, self.version)]
        data = self.data
        for version in range(self.version + 1, Event.latest_version(self.type) + 1):
            model = Event.registry[(self.type, version)]
            data = model.from_previous(data)
        return model.model_validate(data)


# ─────────────────────────── users ───────────────────────────


class UserRegistered(Event):
    type = "user.registered"
    personal = True
    user_id: str
    display_name: str
    district_id: str | None
    birth_year: int | None
    roles: list[str]
    phone_verified: bool


class UserProfileUpdated(Event):
    """The fields other services project (audience checks, solver matching)."""

    type = "user.profile_updated"
    personal = True
    user_id: str
    display_name: str
    district_id: str | None
    birth_year: int | None
    phone_verified: bool
    skills: list[str]
    organization: str | None


class UserRoleChanged(Event):
    type = "user.role_changed"
    user_id: str
    role: str
    granted: bool
    roles: list[str]
    department_id: str | None


class UserTokensRevoked(Event):
    """The user's access tokens issued before this are stale in every service: they signed
    out (SIGNED_OUT), a refresh token was reused (REFRESH_REUSED), or an official moved to
    another department (DEPARTMENT_CHANGED). Their live sessions refresh theirs."""

    type = "user.tokens_revoked"
    user_id: str
    reason: str


def about_person(body: bytes, user_id: str) -> bool:
    """Whether a message on the bus carries personal facts about `user_id`; an unreadable
    one counts as not (it is kept for an operator to look at)."""
    try:
        envelope = Envelope.model_validate_json(body)
        model = Event.registry[(envelope.type, envelope.version)]
    except (ValueError, KeyError):
        return False
    return model.personal and envelope.data.get("user_id") == user_id


class UserErased(Event):
    """The person's account was erased (at their request, on withdrawn consent, or by an
    admin): every service drops what it keeps about `user_id`, keeps nothing new about
    them, and keeps what must stay counted (ballots, supports) without the link."""

    type = "user.erased"
    user_id: str


# ─────────────────────────── reference data ───────────────────────────


class ReferenceItem(BaseModel):
    """One row of a reference list: its id (a slug) and its name."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    name: str


class CategoryItem(ReferenceItem):
    """An issue category, with the department its reports are routed to."""

    department_id: str | None


class DistrictsPublished(Event):
    """The city's whole list of districts as the users service (their owner) holds it,
    told at every start (after its demo data) and after every change. A consumer keeps
    the list told last (by `occurred_at`) in place of the one before (see
    `veche_kit.reference_lists`): polls checks a poll's audience against it."""

    type = "reference.districts_published"
    districts: list[ReferenceItem]


class DepartmentsPublished(Event):
    """The city's whole list of departments (not retired) as the users service (their
    owner) holds it, told at every start (after its demo data) and after every change.
    A consumer keeps the list told last (by `occurred_at`): issues checks a new
    category's department against it."""

    type = "reference.departments_published"
    departments: list[ReferenceItem]


class CategoriesPublished(Event):
    """The whole list of issue categories as the issues service (their owner) holds it,
    told at every start (after its demo data) and after every change. A consumer keeps
    the list told last (by `occurred_at`): users checks a solver's skills against it."""

    type = "reference.categories_published"
    categories: list[CategoryItem]


# ─────────────────────────── audit ───────────────────────────


class AuditRecorded(Event):
    """A staff action (or an admin's read of someone's private fields), told by the
    service that did it in the same transaction; the users service keeps the log.
    `before`/`after` hold the changed fields, never a person's name or contacts."""

    type = "audit.recorded"
    entry_id: str  # an ObjectId made when the action happened: the log's order and key
    actor_id: str | None  # None: the system (a schedule, a sweep)
    actor_roles: list[str]
    action: str  # veche_kit.audit_log.AuditAction
    target_type: str  # "User", "Poll", "Issue", "Reward", "ConsentVersion"...
    target_id: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    reason: str | None = None


# ─────────────────────────── moderation ───────────────────────────


class ContentKind(StrEnum):
    """What a person may report to the moderators."""

    ISSUE = "ISSUE"  # a problem report or an initiative: its title and description
    COMMENT = "COMMENT"
    PHOTO = "PHOTO"  # one photo of an issue
    DISPLAY_NAME = "DISPLAY_NAME"


class ContentFlagged(Event):
    """The word filter flagged something a person wrote in the users service (a
    display name): the issues service, which keeps the moderation queue, opens a
    case for it. `excerpt` is the flagged text, so the event is personal."""

    type = "content.flagged"
    personal = True
    kind: ContentKind
    content_id: str
    user_id: str  # the author
    excerpt: str
    word: str


class ContentHidden(Event):
    """A moderator hid a piece of content: its author is told, and the service that
    holds it (the users service, for a display name) stops showing it."""

    type = "content.hidden"
    kind: ContentKind
    content_id: str
    issue_id: str | None = None  # the issue the content is or belongs to (None: a name)
    author_id: str | None
    reason: str


class ContentRestored(Event):
    """A moderator showed hidden content again."""

    type = "content.restored"
    kind: ContentKind
    content_id: str
    issue_id: str | None = None  # the issue the content is or belongs to (None: a name)
    author_id: str | None
    reason: str


# ─────────────────────────── polls ───────────────────────────


class PollPublishedV1(Event):
    """poll.published as first told: the audience's districts only."""

    type = "poll.published"
    poll_id: str
    title: str
    author_id: str
    department_id: str | None
    district_ids: list[str]
    source_initiative_id: str | None
    starts_at: datetime | None
    ends_at: datetime | None


class PollPublished(Event):
    """A poll opened for votes, with its whole audience (districts, age range, verified
    phones only), so that those told of it are those who may vote."""

    type = "poll.published"
    version = 2
    poll_id: str
    title: str
    author_id: str
    department_id: str | None
    district_ids: list[str]
    min_age: int | None
    max_age: int | None
    verified_only: bool
    source_initiative_id: str | None
    starts_at: datetime | None
    ends_at: datetime | None

    @classmethod
    def from_previous(cls, data: dict[str, Any]) -> dict[str, Any]:
        # A version 1 event did not say: read as no age limit and no verification rule.
        return {**data, "min_age": None, "max_age": None, "verified_only": False}


class PollVoteCast(Event):
    type = "poll.vote_cast"
    poll_id: str
    ballot_id: str
    voter_id: str
    points_reward: int
    district_id: str | None
    age_group: str | None


class PollClosed(Event):
    type = "poll.closed"
    poll_id: str
    title: str
    votes_count: int
    closed_by: str | None  # None: closed by its schedule


class PollDecisionRecorded(Event):
    type = "poll.decision_recorded"
    poll_id: str
    title: str
    text: str
    status: str
    source_initiative_id: str | None


# ─────────────────────────── issues ──────────────────────────


class IssueReported(Event):
    """A problem was reported. Here and in every later issue event, `reporter_id`
    is None for an anonymous report (an Open311 partner's, without consent)."""

    type = "issue.reported"
    issue_id: str
    title: str
    category: str
    department_id: str | None
    district_id: str | None
    reporter_id: str | None


class IssueStatusChanged(Event):
    """Carries everyone to notify, so consumers never call back."""

    type = "issue.status_changed"
    issue_id: str
    kind: str
    title: str
    from_status: str | None
    to_status: str
    by_user_id: str | None
    note: str | None
    reporter_id: str | None
    solver_id: str | None
    department_id: str | None
    supporter_ids: list[str]


class IssueSupported(Event):
    type = "issue.supported"
    issue_id: str
    kind: str
    user_id: str
    supporters_count: int


class IssueCommented(Event):
    type = "issue.commented"
    issue_id: str
    title: str
    comment_id: str
    author_id: str
    official: bool
    excerpt: str
    reporter_id: str | None
    supporter_ids: list[str]


class IssueSolverOffered(Event):
    type = "issue.solver_offered"
    issue_id: str
    title: str
    offer_id: str
    solver_id: str
    reporter_id: str | None
    message: str


class IssueSolverAssigned(Event):
    type = "issue.solver_assigned"
    issue_id: str
    title: str
    offer_id: str
    solver_id: str
    reporter_id: str | None


class IssueResolved(Event):
    type = "issue.resolved"
    issue_id: str
    title: str
    reporter_id: str | None
    solver_id: str | None
    resolved_by: str


class IssueClosed(Event):
    type = "issue.closed"
    issue_id: str
    title: str
    reporter_id: str | None
    solver_id: str | None
    confirmed_by: str | None  # None: closed automatically after the waiting period


class IssueFixConfirmed(Event):
    """An official of the responsible department confirmed the solver's fix: the solver's
    points for it are paid on this event (never on the reporter's word alone)."""

    type = "issue.fix_confirmed"
    issue_id: str
    title: str
    solver_id: str
    reporter_id: str
    department_id: str | None
    confirmed_by: str


class InitiativeProposed(Event):
    type = "initiative.proposed"
    issue_id: str
    title: str
    category: str
    author_id: str
    district_id: str | None
    support_threshold: int


class InitiativeThresholdReached(Event):
    type = "initiative.threshold_reached"
    issue_id: str
    title: str
    description: str
    category: str
    author_id: str
    department_id: str | None
    district_id: str | None
    supporters_count: int
    support_threshold: int


class IssueSupportWithdrawn(Event):
    """A supporter took their support back (projections of supporters need it)."""

    type = "issue.support_withdrawn"
    issue_id: str
    kind: str
    user_id: str
    supporters_count: int


class IssueOverdue(Event):
    """An accepted issue passed its dueAt without the department's answer (no move to
    IN_PROGRESS, no accepted offer, no official comment); published once per issue."""

    type = "issue.overdue"
    issue_id: str
    title: str
    department_id: str | None
    due_at: datetime
    reporter_id: str | None


class IssueRecategorized(Event):
    """Staff moved an issue to another category, and so (usually) to another department;
    both departments' officials are told. `due_at` is the new deadline when one runs."""

    type = "issue.recategorized"
    issue_id: str
    title: str
    from_category: str
    to_category: str
    from_department_id: str | None
    to_department_id: str | None
    due_at: datetime | None
    by_user_id: str
    reason: str
    reporter_id: str | None


class IssueAssigned(Event):
    """An official handed an issue to one official of its department (`assignee_id`), or
    took it back (`assignee_id` None); the new assignee is told."""

    type = "issue.assigned"
    issue_id: str
    title: str
    department_id: str | None
    assignee_id: str | None
    previous_assignee_id: str | None
    by_user_id: str
