"""The issues subgraph: types, queries, mutations and entities (Federation v2).

`User`, `Department` and `District` are owned by other subgraphs; here
they are references by id that the gateway resolves there. Issues extends
`User` with the lists of issues a person reported, solves, or could solve.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.federation.schema_directives import Key
from strawberry.federation.types import FieldSet
from strawberry.scalars import JSON

from veche_issues import domain, live
from veche_issues.catalogue_schema import CatalogueMutations, CatalogueQueries, Category
from veche_issues.context import IssuesInfo
from veche_issues.moderation import is_moderator, may_see, scope_of
from veche_issues.moderation_schema import HiddenMark, ModerationMutations, ModerationQueries
from veche_issues.photo_schema import (
    PHOTO_UPLOADS_BOUNDS,
    PHOTO_UPLOADS_DESCRIPTION,
    Photo,
    PhotoUploadInput,
    choices,
)
from veche_issues.service import IssuePage, IssueQuery, IssuesService, Near, Report
from veche_issues.staff import StaffDesk
from veche_kit import export
from veche_kit.clock import utcnow
from veche_kit.errors import ForbiddenError
from veche_kit.graphql import (
    ID_SHAPE,
    MUTATION_DESCRIPTION,
    QUERY_DESCRIPTION,
    Connection,
    FederatedSchema,
    PageAfter,
    PageFirst,
    at_most,
    connection,
    decode_cursor,
    encode_cursor,
    id_after,
    id_connection,
    page_size,
    public_enum,
)
from veche_kit.inputs import ID_CHARS, bounded
from veche_kit.mongo import Document

# Cursors of issue lists: (distance, id) nearest first, (own district first: 0 or 1, id).
NEAR_SHAPE = (float, str)
MATCHING_SHAPE = (int, str)


# ─────────────────────────── enums and values ───────────────────────────


IssueKind = domain.Kind
public_enum(
    IssueKind,
    name="IssueKind",
    description="What an issue is: a problem to fix or a citizen's proposal.",
    values={
        "PROBLEM": "A problem reported at a place (a pothole, a broken lamp); starts NEW.",
        "INITIATIVE": "A citizen's proposal; collects supports (COLLECTING) until its threshold, then goes to review.",
    },
)


IssueStatus = domain.Status
public_enum(
    IssueStatus,
    name="IssueStatus",
    description="Where an issue is in its workflow. Problems: NEW → ACCEPTED → IN_PROGRESS → RESOLVED → CLOSED "
    "(or NEW → REJECTED; RESOLVED → IN_PROGRESS when reopened). Initiatives: COLLECTING → UNDER_REVIEW → "
    "ACCEPTED or REJECTED, then as problems.",
    values={
        "NEW": "Reported; waits for a moderator or the department to accept or reject it.",
        "ACCEPTED": "Taken on by the department; `dueAt` says by when it must answer (`overdue` once late). "
        "Solvers may offer help.",
        "COLLECTING": "An initiative gathering supports; at `supportThreshold` it moves to UNDER_REVIEW by itself.",
        "UNDER_REVIEW": "An initiative with enough supports; the department decides to accept or reject it.",
        "IN_PROGRESS": "Being fixed, by the department or by the assigned solver.",
        "RESOLVED": "Reported fixed; the reporter confirms (CLOSED) or reopens it. Closes by itself after a waiting period.",
        "CLOSED": "Done: confirmed by the reporter, closed after the waiting period, or closed as a "
        "duplicate of another issue (`duplicateOf` then links to it).",
        "REJECTED": "Not taken on; the history's last note says why.",
    },
)


OfferStatus = domain.OfferStatus
public_enum(
    OfferStatus,
    name="OfferStatus",
    description="Where a solver's offer stands. Clients must tolerate values added later (show an "
    "unknown one as its name): a shipped app cannot be updated with the server.",
    values={
        "PENDING": "Waiting for the reporter or an official of the department to accept it.",
        "ACCEPTED": "Accepted: this solver is the issue's assigned solver.",
        "DECLINED": "Not taken: another solver's offer was accepted.",
    },
)


HistoryStepKind = domain.StepKind
public_enum(
    HistoryStepKind,
    name="HistoryStepKind",
    description="What one step of an issue's `history` records. Clients must tolerate values added "
    "later (show an unknown one by its `note` and `detail`).",
    values={
        "STATUS_CHANGED": "The issue moved from `from` to `to` (a workflow step).",
        "RECATEGORIZED": "Staff moved the issue to another category and so, usually, to another "
        "department (`detail`: the old and new ones; `note`: why). An ACCEPTED issue that changes "
        "department gets a new `dueAt`.",
        "MERGED_INTO": "Closed as a duplicate (`to` is CLOSED): `Issue.duplicateOf` is the issue it "
        "was merged into; its supporters now support that one.",
        "DUPLICATE_MERGED": "A duplicate was merged into this issue (`detail`: which, and how many "
        "supports it brought).",
        "DEADLINE_EXTENDED": "The department moved `dueAt` later (`detail`: old and new; `note`: why).",
        "DEADLINE_RECOUNTED": "The city's working-day calendar changed on a day the answer period "
        "counts over (an admin's `createCalendarDay`/`removeCalendarDay`): `dueAt` was counted again "
        "from the same start (`detail`: old and new; `by` null).",
        "ASSIGNED": "Handed to one official of the department (see `Issue.assignee`).",
        "UNASSIGNED": "No official is assigned any more.",
    },
)


@strawberry.type(description="A point on the map (WGS 84 degrees).")
class GeoPoint:
    lat: float = strawberry.field(description="Latitude, -90 to 90.")
    lon: float = strawberry.field(description="Longitude, -180 to 180.")


@strawberry.input(description="A point on the map (WGS 84 degrees).")
class GeoPointInput:
    lat: float = strawberry.field(description="Latitude, -90 to 90.")
    lon: float = strawberry.field(description="Longitude, -180 to 180.")


@strawberry.input(description="A circle on the map: issues within it, nearest first.")
class NearInput:
    lat: float = strawberry.field(description="Latitude of the centre, -90 to 90.")
    lon: float = strawberry.field(description="Longitude of the centre, -180 to 180.")
    radius_meters: int | None = strawberry.field(
        default=None,
        description=f"Radius in metres, 1–{domain.MAX_RADIUS_METERS} (default {domain.DEFAULT_RADIUS_METERS}).",
    )


# ─────────────────────────── references to other subgraphs ───────────────────────────


@strawberry.federation.type(
    keys=[Key(fields=FieldSet("id"), resolvable=False)],
    description="A city department (owned by the users service).",
)
class Department:
    id: strawberry.ID = strawberry.field(description="Department id, e.g. `roads`.")


@strawberry.federation.type(
    keys=[Key(fields=FieldSet("id"), resolvable=False)],
    description="A district of the city (owned by the users service).",
)
class District:
    id: strawberry.ID = strawberry.field(description="District id, e.g. `leninsky`.")


def _department(department_id: str | None) -> Department | None:
    return Department(id=strawberry.ID(department_id)) if department_id else None


def _issue_page(page: IssuePage) -> Connection[Issue]:
    return connection(
        [Issue.from_doc(d) for d in page.issues],
        [encode_cursor(c) for c in page.cursors],
        has_next=page.has_next,
        total=page.total,
    )


@strawberry.federation.type(
    keys=["id"],
    description="A person using Veche (owned by the users service); issues adds the issues they report, solve or could solve.",
)
class User:
    id: strawberry.ID = strawberry.field(description="User id.")

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> User:
        return cls(id=id)

    @strawberry.field(
        description="Issues and initiatives this user reported or proposed, newest first. Public; "
        "the ones a moderator hid are listed (marked `hidden`) only to the person and to moderators."
    )
    async def reported_issues(
        self, info: IssuesInfo, first: PageFirst = None, after: PageAfter = None
    ) -> Connection[Issue] | None:
        scope = scope_of(await info.context.principal())
        page = await info.context.issues.reported_by(
            str(self.id),
            first=page_size(first),
            after=decode_cursor(after, ID_SHAPE),
            with_hidden=scope in ("*", str(self.id)),
        )
        return _issue_page(page)

    @strawberry.field(
        description="Issues this user is the assigned solver of, newest first. Public."
    )
    async def solving_issues(
        self, info: IssuesInfo, first: PageFirst = None, after: PageAfter = None
    ) -> Connection[Issue] | None:
        page = await info.context.issues.solved_by(
            str(self.id), first=page_size(first), after=decode_cursor(after, ID_SHAPE)
        )
        return _issue_page(page)

    @strawberry.field(
        description="For a solver, seen by themself only: ACCEPTED or IN_PROGRESS issues without a solver in "
        "their skills, their own district first, then newest first. Empty for users without the SOLVER role; "
        "FORBIDDEN for anyone else."
    )
    async def matching_issues(
        self, info: IssuesInfo, first: PageFirst = None, after: PageAfter = None
    ) -> Connection[Issue] | None:
        page = await info.context.issues.matching_issues(
            await info.context.principal(),
            str(self.id),
            first=page_size(first),
            after=decode_cursor(after, MATCHING_SHAPE),
        )
        return _issue_page(page)


def _user(user_id: str | None) -> User | None:
    return User(id=strawberry.ID(user_id)) if user_id else None


# ─────────────────────────── issues ───────────────────────────


@strawberry.type(description="A solver's offer to fix an issue.")
class SolverOffer:
    id: strawberry.ID = strawberry.field(description="Offer id; pass to acceptSolverOffer.")
    message: str = strawberry.field(description="What the solver proposes to do, and when.")
    status: OfferStatus = strawberry.field(
        description="PENDING (waiting), ACCEPTED (this solver was assigned) or DECLINED (another was); "
        "tolerate values added later."
    )
    at: datetime = strawberry.field(description="When the offer was made (UTC).")
    _solver_id: strawberry.Private[str]

    @strawberry.field(description="Who offers: a citizen or an organization with the SOLVER role.")
    def solver(self) -> User | None:
        return User(id=strawberry.ID(self._solver_id))

    @classmethod
    def from_doc(cls, document: Document) -> SolverOffer:
        return cls(
            id=strawberry.ID(document["_id"]),
            message=document["message"],
            status=OfferStatus(document["status"]),
            at=document["at"],
            _solver_id=document["solver_id"],
        )


@strawberry.type(description="A comment on an issue.")
class Comment:
    id: strawberry.ID = strawberry.field(description="Comment id.")
    text: str = strawberry.field(description="The comment, plain text.")
    official: bool = strawberry.field(
        description="True for an answer from an official of the responsible department: show it as the city's answer."
    )
    at: datetime = strawberry.field(description="When it was written (UTC).")
    hidden: HiddenMark | None = strawberry.field(
        description="Set when a moderator hid this comment: then only its author and moderators "
        "see it, and it is left out of everyone else's list and count. Null when shown."
    )
    _author_id: strawberry.Private[str]
    _images: strawberry.Private[list[Document]]

    @strawberry.field(description="Who wrote it.")
    def author(self) -> User | None:
        return User(id=strawberry.ID(self._author_id))

    @strawberry.field(
        description='Photos uploaded with the comment (an official\'s "after" photo of the fix), '
        "in order. A moderator hides them with the comment."
    )
    def images(self) -> list[Photo]:
        return [Photo.of(entry, False) for entry in self._images]

    @classmethod
    def from_doc(cls, document: Document) -> Comment:
        return cls(
            id=strawberry.ID(document["_id"]),
            text=document["text"],
            official=bool(document["official"]),
            at=document["at"],
            hidden=HiddenMark.of(document),
            _author_id=document["author_id"],
            _images=list(document.get("images") or []),
        )


@strawberry.type(
    description="One step of an issue's history, kept forever: a status change, or a staff "
    "correction (see `kind`), in which `from` and `to` are both the status it stayed in."
)
class StatusChange:
    from_: IssueStatus | None = strawberry.field(
        name="from", description="The status before; null for the first step."
    )
    to: IssueStatus = strawberry.field(description="The status after.")
    kind: HistoryStepKind = strawberry.field(
        description="What the step did: a workflow move (STATUS_CHANGED) or a staff correction."
    )
    note: str | None = strawberry.field(
        description="Why: a rejection's reason, a reopening's reason, an official's remark, the "
        "reason a staff member gave for a correction. Public."
    )
    detail: str | None = strawberry.field(
        description="What a staff correction changed, in words (e.g. `Category potholes → yards; "
        "department roads → landscaping.`); null for workflow moves."
    )
    at: datetime = strawberry.field(description="When (UTC).")
    _by: strawberry.Private[str | None]

    @strawberry.field(
        description="Who made the change; null when Veche made it itself (support threshold reached, "
        "closed after the waiting period)."
    )
    def by(self) -> User | None:
        return _user(self._by)

    @classmethod
    def from_doc(cls, entry: Document) -> StatusChange:
        return cls(
            from_=IssueStatus(entry["from"]) if entry.get("from") else None,
            to=IssueStatus(entry["to"]),
            kind=HistoryStepKind(entry.get("kind", HistoryStepKind.STATUS_CHANGED.value)),
            note=entry.get("note"),
            detail=entry.get("detail"),
            at=entry["at"],
            _by=entry.get("by"),
        )


@strawberry.type(
    description="How to reach the person behind an Open311 report, given by the partner with the "
    "person's consent, so the department can answer them."
)
class ReporterContact:
    email: str | None = strawberry.field(description="E-mail address, if given.")
    phone: str | None = strawberry.field(description="Phone number, if given.")
    name: str | None = strawberry.field(description="First and last name, if given.")


@strawberry.type(
    description="A partner (a civic-tech tool, a regional platform) that files reports through "
    "Open311 with its API key."
)
class Open311Partner:
    id: strawberry.ID = strawberry.field(description="Partner id.")
    name: str = strawberry.field(description="The partner's name, as the admin gave it.")
    created_at: datetime = strawberry.field(description="When its key was issued.")
    revoked_at: datetime | None = strawberry.field(
        description="When its key was revoked; null while the key works."
    )

    @classmethod
    def from_doc(cls, doc: Document) -> Open311Partner:
        return cls(
            id=strawberry.ID(doc["_id"]),
            name=doc["name"],
            created_at=doc["created_at"],
            revoked_at=doc.get("revoked_at"),
        )


@strawberry.type(description="A new Open311 partner and its API key.")
class Open311KeyIssued:
    partner: Open311Partner = strawberry.field(description="The partner.")
    api_key: str = strawberry.field(
        description="The key the partner sends as `api_key` with `POST requests`. Shown only "
        "this once: Veche keeps only its hash. Revoke it with `revokeOpen311Key`."
    )


@strawberry.federation.type(
    keys=["id"],
    description="A problem report or a citizen initiative, with its workflow, supports, comments and solver.",
)
class Issue:
    id: strawberry.ID = strawberry.field(description="Issue id.")
    kind: IssueKind = strawberry.field(description="PROBLEM or INITIATIVE.")
    title: str = strawberry.field(description="Short summary, up to 200 characters.")
    description: str = strawberry.field(description="The details, plain text.")
    category: str = strawberry.field(
        description="Category id (see `issueCategories`); decides the responsible department."
    )
    location: GeoPoint | None = strawberry.field(
        description="Where it is; always set for problems, optional for initiatives."
    )
    address: str | None = strawberry.field(description="Address in words, as the reporter gave it.")
    status: IssueStatus = strawberry.field(description="Where the issue is in its workflow.")
    supporters_count: int = strawberry.field(
        description="How many people support it (one support per person)."
    )
    support_threshold: int | None = strawberry.field(
        description="Initiatives: supports needed to go to official review. Null for problems."
    )
    due_at: datetime | None = strawberry.field(
        description="The deadline (UTC) for the department's official answer, not for the fix: set when "
        "the issue is ACCEPTED, a number of working days later on the city's `calendar` (weekends and "
        "HOLIDAYs skipped, WORKING_WEEKENDs counted; accepted after the working day ends, counting "
        "starts the next working day and the deadline is that day's end). Counted again when an admin "
        "changes the calendar on a day it runs over (a DEADLINE_RECOUNTED step). "
        "The department answers by moving the issue on (IN_PROGRESS, or accepting a solver's offer) or "
        "by an official comment; `overdue` says whether it is late. Null before ACCEPTED."
    )
    created_at: datetime = strawberry.field(description="When it was reported or proposed (UTC).")
    updated_at: datetime = strawberry.field(description="When it last changed (UTC).")
    fix_confirmed_at: datetime | None = strawberry.field(
        description="When an official of the responsible department confirmed the solver's fix "
        "(`confirmFix`); the solver's points are paid then. Null until then."
    )
    _doc: strawberry.Private[Document]

    @classmethod
    def from_doc(cls, document: Document) -> Issue:
        point = document.get("location")
        return cls(
            id=strawberry.ID(document["_id"]),
            kind=IssueKind(document["kind"]),
            title=document["title"],
            description=document["description"],
            category=document["category"],
            location=GeoPoint(lat=point["coordinates"][1], lon=point["coordinates"][0])
            if point
            else None,
            address=document.get("address"),
            status=IssueStatus(document["status"]),
            supporters_count=int(document.get("supporters_count", 0)),
            support_threshold=document.get("support_threshold"),
            due_at=document.get("due_at"),
            created_at=document["created_at"],
            updated_at=document["updated_at"],
            fix_confirmed_at=document.get("fix_confirmed_at"),
            _doc=document,
        )

    @classmethod
    async def resolve_reference(cls, info: IssuesInfo, id: strawberry.ID) -> Issue | None:
        return await _visible_issue(info, str(id))

    @strawberry.field(
        description="Photo URLs, at most 10: the screen-size copies of uploaded photos first (see "
        "`images` for their thumbnails, sizes and alt text), then linked ones (http/https). Photos "
        "a moderator hid are left out, except for the reporter and moderators (see `hiddenPhotos`)."
    )
    async def photos(self, info: IssuesInfo) -> list[str]:
        photos: list[str] = list(self._doc.get("photos") or [])
        hidden = self._doc.get("hidden_photos") or []
        if not hidden or await _sees_hidden_photos(info, self._doc):
            return photos
        return [p for p in photos if p not in hidden]

    @strawberry.field(
        description="Photos uploaded with `POST /uploads` (linked `photos` have no copies of ours), "
        "with their thumbnail, size and alt text. Hidden ones are left out, except for the "
        "reporter and moderators (`hidden: true`)."
    )
    async def images(self, info: IssuesInfo) -> list[Photo]:
        hidden = set(self._doc.get("hidden_photos") or [])
        entries = self._doc.get("images") or []
        if any(e["url"] in hidden for e in entries) and await _sees_hidden_photos(info, self._doc):
            return [Photo.of(e, e["url"] in hidden) for e in entries]
        return [Photo.of(e, False) for e in entries if e["url"] not in hidden]

    @strawberry.field(
        description="The photos a moderator hid, for the reporter and moderators (show them greyed "
        "out); empty for everyone else."
    )
    async def hidden_photos(self, info: IssuesInfo) -> list[str]:
        hidden: list[str] = list(self._doc.get("hidden_photos") or [])
        return hidden if hidden and await _sees_hidden_photos(info, self._doc) else []

    @strawberry.field(
        description="Set when a moderator hid this issue: then only its reporter and moderators see "
        "it (anyone else gets null for it and does not find it in lists). Null when shown."
    )
    def hidden(self) -> HiddenMark | None:
        return HiddenMark.of(self._doc)

    @strawberry.field(description="The district it is in, if known.")
    def district(self) -> District | None:
        district_id = self._doc.get("district_id")
        return District(id=strawberry.ID(district_id)) if district_id else None

    @strawberry.field(
        description="Who reported the problem or proposed the initiative; null for an "
        "anonymous report (one a partner filed through Open311 without the person's consent)."
    )
    def reporter(self) -> User | None:
        reporter_id = self._doc["reporter_id"]
        return User(id=strawberry.ID(reporter_id)) if reporter_id else None

    @strawberry.field(description="The responsible department, routed by category.")
    def department(self) -> Department | None:
        return _department(self._doc.get("department_id"))

    @strawberry.field(
        description="The assigned solver, once the reporter or an official accepted an offer."
    )
    def solver(self) -> User | None:
        return _user(self._doc.get("solver_id"))

    @strawberry.field(
        description="The one official of the department this issue was handed to (`assignIssue`); "
        "null while nobody is. Cleared when the issue moves to another department."
    )
    def assignee(self) -> User | None:
        return _user(self._doc.get("assignee_id"))

    @strawberry.field(
        description="For an issue closed as a duplicate (`mergeIssues`): the issue it was merged "
        "into, where its supporters now are; follow it there. Null for every other issue."
    )
    async def duplicate_of(self, info: IssuesInfo) -> Issue | None:
        target_id = self._doc.get("duplicate_of")
        if not target_id:
            return None
        return await _visible_issue(info, target_id)

    @strawberry.field(
        description=f"Solvers' offers to fix it, oldest first: the first `first` of them "
        f"(default {domain.DEFAULT_OFFERS}, at most {domain.MAX_OFFERS}).",
        directives=at_most(domain.DEFAULT_OFFERS, sliced_by="first"),
    )
    async def solver_offers(
        self,
        info: IssuesInfo,
        first: Annotated[
            int | None,
            strawberry.argument(
                description=f"How many offers, 1–{domain.MAX_OFFERS} (default {domain.DEFAULT_OFFERS}); "
                "BAD_USER_INPUT above."
            ),
        ] = None,
    ) -> list[SolverOffer]:
        size = domain.list_size(first, "first", domain.DEFAULT_OFFERS, domain.MAX_OFFERS)
        offers = await info.context.issue_loaders.offers_by_issue.load((self._doc["_id"], size))
        return [SolverOffer.from_doc(o) for o in offers]

    @strawberry.field(
        description="The Open311 partner that filed this report, when it came through Open311."
    )
    def reported_via(self) -> str | None:
        via = self._doc.get("reported_via")
        return via["name"] if via else None

    @strawberry.field(
        description="The contact of the person behind an Open311 report, when they consented to "
        "be contacted. Only officials of the responsible department and admins may read it "
        "(FORBIDDEN for others); null when there is none."
    )
    async def reporter_contact(self, info: IssuesInfo) -> ReporterContact | None:
        contact = self._doc.get("reporter_contact")
        if not contact:
            return None
        principal = await info.context.principal()
        if principal is None or domain.Actor.OFFICIAL not in IssuesService.actors(
            principal, self._doc
        ):
            raise ForbiddenError(
                "Only officials of the responsible department may read a reporter's contact.",
                ru="Контакты автора обращения видят только сотрудники ответственного ведомства.",
            )
        return ReporterContact(
            email=contact.get("email"), phone=contact.get("phone"), name=contact.get("name")
        )

    @strawberry.field(
        description="True when the signed-in caller supports it; false when signed out."
    )
    async def supported_by_me(self, info: IssuesInfo) -> bool:
        principal = await info.context.principal()
        if principal is None:
            return False
        return await info.context.issue_loaders.supported_by_viewer(principal.user_id).load(
            self._doc["_id"]
        )

    @strawberry.field(
        description="True while the department's official answer is late: the issue is ACCEPTED, `dueAt` "
        "has passed, and the department has neither moved it on (IN_PROGRESS, a solver's offer "
        "accepted) nor answered in an official comment. False once answered, however late, and "
        "false before ACCEPTED: it is a deadline for the answer, not for the fix."
    )
    def overdue(self) -> bool:
        return domain.is_overdue(
            domain.Status(self._doc["status"]),
            self._doc.get("due_at"),
            self._doc.get("answered_at"),
            utcnow(),
        )

    @strawberry.field(description="Comments, oldest first.")
    async def comments(
        self, info: IssuesInfo, first: PageFirst = None, after: PageAfter = None
    ) -> Connection[Comment]:
        scope = scope_of(await info.context.principal())
        key = (self._doc["_id"], page_size(first), id_after(after), scope)
        page = await info.context.issue_loaders.comments_by_issue.load(key)
        return id_connection(
            [Comment.from_doc(d) for d in page.comments],
            page.comments,
            has_next=page.has_next,
            total=page.total,
        )

    @strawberry.field(
        description=f"Status changes and staff corrections (`kind`), oldest first: the latest `last` of them (default "
        f"{domain.DEFAULT_HISTORY}, at most {domain.MAX_HISTORY}), so the current status's reason "
        "is always there. A problem's whole workflow is a handful of steps: only a long run of "
        "reopenings exceeds the default, and then its earliest steps are left out.",
        directives=at_most(domain.DEFAULT_HISTORY, sliced_by="last"),
    )
    def history(
        self,
        last: Annotated[
            int | None,
            strawberry.argument(
                description=f"How many of the latest changes, 1–{domain.MAX_HISTORY} (default "
                f"{domain.DEFAULT_HISTORY}); BAD_USER_INPUT above."
            ),
        ] = None,
    ) -> list[StatusChange]:
        size = domain.list_size(last, "last", domain.DEFAULT_HISTORY, domain.MAX_HISTORY)
        return [StatusChange.from_doc(e) for e in self._doc.get("history", [])[-size:]]


@strawberry.type(description="How a department is doing: public accountability numbers.")
class DepartmentStats:
    open: int = strawberry.field(
        description="Issues routed to it that are NEW, ACCEPTED, UNDER_REVIEW or IN_PROGRESS."
    )
    overdue: int = strawberry.field(
        description="Issues whose official answer is overdue (see `Issue.overdue`): ACCEPTED, past "
        "`dueAt`, not yet answered."
    )
    resolved: int = strawberry.field(description="Issues RESOLVED or CLOSED.")
    median_response_hours: float | None = strawberry.field(
        description="Median hours from report to the department's first response (a status change or an "
        "official comment); null before its first response."
    )
    _department_id: strawberry.Private[str]

    @strawberry.field(description="The department (its name via the users service).")
    def department(self) -> Department | None:
        return Department(id=strawberry.ID(self._department_id))


# ─────────────────────────── inputs ───────────────────────────


@strawberry.input(description="Filters for `issues`; every part is optional and they combine.")
class IssueFilter:
    kind: IssueKind | None = strawberry.field(
        default=None, description="Only problems or only initiatives."
    )
    status: IssueStatus | None = strawberry.field(
        default=None, description="Only issues in this status."
    )
    category: str | None = strawberry.field(
        default=None, description="Only this category id.", metadata=bounded(chars=ID_CHARS)
    )
    district_id: strawberry.ID | None = strawberry.field(
        default=None, description="Only this district."
    )
    department_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Only issues routed to this department (a department's dashboard).",
    )
    assignee_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Only issues assigned to this official (`Issue.assignee`): an official's "
        "worklist, e.g. their own id.",
    )
    overdue: bool | None = strawberry.field(
        default=None,
        description="true: only issues whose official answer is overdue now (see `Issue.overdue`); "
        "false: only the others; left out: both. With `departmentId`, a department's list of late "
        "answers.",
    )
    near: NearInput | None = strawberry.field(
        default=None,
        description="Only issues within this circle, nearest first (otherwise the list is newest first).",
    )
    text: str | None = strawberry.field(
        default=None,
        description="Words to find in the title, description or address, Russian or English; case, ё/е "
        "and word endings do not matter, and a word's beginning is enough (`дор` finds `дорога`).",
        metadata=bounded(chars=domain.MAX_SEARCH),
    )


@strawberry.input(description="A problem to report.")
class ReportIssueInput:
    title: str = strawberry.field(
        description="Short summary.", metadata=bounded(chars=domain.MAX_TITLE)
    )
    description: str = strawberry.field(
        description="What is wrong.", metadata=bounded(chars=domain.MAX_DESCRIPTION)
    )
    category: str = strawberry.field(
        description="Category id from `issueCategories`.", metadata=bounded(chars=ID_CHARS)
    )
    location: GeoPointInput = strawberry.field(description="Where the problem is.")
    address: str | None = strawberry.field(
        default=None,
        description="The address in words.",
        metadata=bounded(chars=domain.MAX_ADDRESS),
    )
    district_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="The district (see `districts`); defaults to the reporter's own district.",
    )
    photos: list[str] | None = strawberry.field(
        default=None,
        description="Photo URLs, http:// or https:// only.",
        metadata=bounded(items=domain.MAX_PHOTOS, chars=domain.MAX_URL),
    )
    photo_uploads: list[PhotoUploadInput] | None = strawberry.field(
        default=None, description=PHOTO_UPLOADS_DESCRIPTION, metadata=PHOTO_UPLOADS_BOUNDS
    )


@strawberry.input(description="A citizen's initiative to propose.")
class ProposeInitiativeInput:
    title: str = strawberry.field(
        description="Short summary.", metadata=bounded(chars=domain.MAX_TITLE)
    )
    description: str = strawberry.field(
        description="What is proposed and why.", metadata=bounded(chars=domain.MAX_DESCRIPTION)
    )
    category: str = strawberry.field(
        description="Category id from `issueCategories`.", metadata=bounded(chars=ID_CHARS)
    )
    location: GeoPointInput | None = strawberry.field(
        default=None, description="Where, when the proposal is about a place."
    )
    address: str | None = strawberry.field(
        default=None,
        description="The address in words.",
        metadata=bounded(chars=domain.MAX_ADDRESS),
    )
    district_id: strawberry.ID | None = strawberry.field(
        default=None, description="The district; defaults to the author's own district."
    )
    photo_uploads: list[PhotoUploadInput] | None = strawberry.field(
        default=None, description=PHOTO_UPLOADS_DESCRIPTION, metadata=PHOTO_UPLOADS_BOUNDS
    )


IssueId = Annotated[strawberry.ID, strawberry.argument(description="Issue id.")]


def _point(point: GeoPointInput | None) -> tuple[float, float] | None:
    return (point.lat, point.lon) if point is not None else None


# ─────────────────────────── staff corrections ───────────────────────────


def _desk(info: IssuesInfo) -> StaffDesk:
    """The staff actions: a stateless view over the request's service."""
    return StaffDesk(info.context.issues)


@strawberry.type(description="The outcome of `mergeIssues`.")
class IssueMerge:
    duplicate: Issue = strawberry.field(
        description="The duplicate, now CLOSED, with `duplicateOf` set to the target."
    )
    into: Issue = strawberry.field(
        description="The issue merged into, with the carried supports in `supportersCount` (an "
        "initiative that reached its threshold this way is UNDER_REVIEW)."
    )


StaffReason = Annotated[
    str,
    strawberry.argument(
        description=f"Why, for the people following the issue: shown in its public `history` and "
        f"kept in the audit log. Required, at most {domain.MAX_NOTE} characters.",
        metadata=bounded(chars=domain.MAX_NOTE),
    ),
]
_STAFF_CODES = (
    "FORBIDDEN for citizens and solvers, and for officials of another department; NOT_FOUND "
    "for an unknown id; CONFLICT when the issue changed meanwhile (reload it and try again)."
)


@strawberry.type
class StaffMutations:
    """Officials' and moderators' corrections of issues (see `staff.py`)."""

    @strawberry.mutation(
        description="Moves a misrouted issue to another category, and so to that category's "
        "department; both departments' officials are notified. An ACCEPTED issue that changes "
        "department gets a full answer period from now (a new `dueAt`, `overdue` false) and "
        "loses its assignee. Officials of the issue's current department, moderators and admins. "
        "BAD_USER_INPUT (`field` categoryId) for an unknown or the same category; CONFLICT for a "
        f"RESOLVED, CLOSED or REJECTED issue. {_STAFF_CODES}"
    )
    async def recategorize_issue(
        self,
        info: IssuesInfo,
        id: IssueId,
        category_id: Annotated[
            str,
            strawberry.argument(
                description="The new category id, from `issueCategories`.",
                metadata=bounded(chars=ID_CHARS),
            ),
        ],
        reason: StaffReason,
    ) -> Issue:
        caller = await info.context.require_user()
        document = await _desk(info).recategorize(caller, str(id), category_id, reason)
        return Issue.from_doc(document)

    @strawberry.mutation(
        description="Closes a duplicate report and carries its supporters (and, for a problem, "
        "its reporter) over to the issue it duplicates, each person once: someone who supported "
        "both counts once. The duplicate becomes CLOSED with `duplicateOf`; both histories say "
        "so. Of two officials merging the same duplicate at once, one succeeds, the other gets "
        "CONFLICT. Officials (both issues in their department), moderators and admins. "
        "BAD_USER_INPUT (`field` intoId) for merging an issue into itself, a problem with an "
        "initiative, or initiatives of different categories; CONFLICT when either issue is "
        f"CLOSED, REJECTED or merged already, or the duplicate has a solver. {_STAFF_CODES}"
    )
    async def merge_issues(
        self,
        info: IssuesInfo,
        duplicate_id: Annotated[
            strawberry.ID, strawberry.argument(description="The duplicate, to close.")
        ],
        into_id: Annotated[
            strawberry.ID, strawberry.argument(description="The issue to keep, that it duplicates.")
        ],
        reason: StaffReason,
    ) -> IssueMerge:
        caller = await info.context.require_user()
        closed, kept = await _desk(info).merge(caller, str(duplicate_id), str(into_id), reason)
        return IssueMerge(duplicate=Issue.from_doc(closed), into=Issue.from_doc(kept))

    @strawberry.mutation(
        description="Moves an ACCEPTED issue's answer deadline later; `overdue` follows the new "
        "`dueAt`, and the department is told again if that one passes too. Officials of the "
        "issue's department and admins. BAD_USER_INPUT (`field` dueAt) unless later than the "
        "current deadline and than now, at most a year ahead, with a time zone; CONFLICT when "
        f"the issue has no deadline running (not ACCEPTED). {_STAFF_CODES}"
    )
    async def extend_deadline(
        self,
        info: IssuesInfo,
        id: IssueId,
        due_at: Annotated[
            datetime,
            strawberry.argument(description="The new deadline, e.g. `2026-12-20T18:00:00Z`."),
        ],
        reason: StaffReason,
    ) -> Issue:
        caller = await info.context.require_user()
        document = await _desk(info).extend_deadline(caller, str(id), due_at, reason)
        return Issue.from_doc(document)

    @strawberry.mutation(
        description="Hands an open issue to one official of its department (`Issue.assignee`), "
        "who is notified; naming the current assignee changes nothing. Officials of the issue's "
        "department and admins. BAD_USER_INPUT (`field` officialId) when that user is not an "
        "OFFICIAL of the issue's department (a role granted a moment ago reaches this service "
        f"within seconds); CONFLICT for a RESOLVED, CLOSED or REJECTED issue. {_STAFF_CODES}"
    )
    async def assign_issue(
        self,
        info: IssuesInfo,
        id: IssueId,
        official_id: Annotated[
            strawberry.ID, strawberry.argument(description="The official's user id.")
        ],
    ) -> Issue:
        caller = await info.context.require_user()
        document = await _desk(info).assign(caller, str(id), str(official_id))
        return Issue.from_doc(document)

    @strawberry.mutation(
        description="Takes an issue back from its assignee: nobody is assigned (nothing changes "
        f"if nobody was). Officials of the issue's department and admins. {_STAFF_CODES}"
    )
    async def unassign_issue(self, info: IssuesInfo, id: IssueId) -> Issue:
        caller = await info.context.require_user()
        return Issue.from_doc(await _desk(info).assign(caller, str(id), None))


# ─────────────────────────── operations ───────────────────────────


@strawberry.federation.type(keys=["userId"], description=export.PERSONAL_DATA)
class PersonalData(export.PersonalDataKey):
    @strawberry.field(
        description="From the issues service: the profile it keeps for solver matching, and the person's reports and initiatives, comments, supports, solver offers and photo uploads."
    )
    async def issues(self, info: IssuesInfo) -> JSON | None:
        caller = await info.context.require_user()
        return JSON(await info.context.issues.export_of(caller, str(self.user_id)))


@strawberry.type(description=QUERY_DESCRIPTION)
class Query(ModerationQueries, CatalogueQueries):
    @strawberry.field(
        description="An issue by id; null if there is none, or if a moderator hid it (except for "
        "its reporter and moderators)."
    )
    async def issue(self, info: IssuesInfo, id: IssueId) -> Issue | None:
        return await _visible_issue(info, str(id))

    @strawberry.field(
        description="Problems and initiatives: newest first, or nearest first with `filter.near`. Pages stay "
        "correct while new issues arrive. Public."
    )
    async def issues(
        self,
        info: IssuesInfo,
        filter: Annotated[
            IssueFilter | None,
            strawberry.argument(description="What to list; all issues when left out."),
        ] = None,
        first: PageFirst = None,
        after: PageAfter = None,
    ) -> Connection[Issue] | None:
        query = IssueQuery()
        if filter is not None:
            near = filter.near
            query = IssueQuery(
                kind=filter.kind,
                status=filter.status,
                category=filter.category,
                district_id=str(filter.district_id) if filter.district_id else None,
                near=Near(near.lat, near.lon, near.radius_meters) if near else None,
                text=filter.text,
                department_id=str(filter.department_id) if filter.department_id else None,
                overdue=filter.overdue,
                assignee_id=str(filter.assignee_id) if filter.assignee_id else None,
            )
        query = replace(query, with_hidden=is_moderator(await info.context.principal()))
        page = await info.context.issues.find_issues(
            query, first=page_size(first), after=decode_cursor(after, ID_SHAPE, NEAR_SHAPE)
        )
        return _issue_page(page)

    @strawberry.field(
        description=f"Open issues of a category near a point, nearest first (at most {domain.MAX_SIMILAR}): show them to a "
        "reporter before they file a duplicate, so they can support one instead.",
        directives=at_most(domain.MAX_SIMILAR),
    )
    async def similar_issues(
        self,
        info: IssuesInfo,
        category: Annotated[
            str,
            strawberry.argument(
                description="Category id of the new report.", metadata=bounded(chars=ID_CHARS)
            ),
        ],
        near: Annotated[GeoPointInput, strawberry.argument(description="Where the new report is.")],
        radius_meters: Annotated[
            int | None,
            strawberry.argument(
                description=f"How far to look, 1–{domain.MAX_RADIUS_METERS} metres (default {domain.DEFAULT_RADIUS_METERS})."
            ),
        ] = None,
    ) -> list[Issue] | None:
        documents = await info.context.issues.similar_issues(
            category, near.lat, near.lon, radius_meters
        )
        return [Issue.from_doc(d) for d in documents]

    @strawberry.field(description="The categories a problem or initiative can have, by name.")
    async def issue_categories(self, info: IssuesInfo) -> list[Category] | None:
        issues = info.context.issues
        return [Category.from_doc(d, issues.settings) for d in await issues.categories()]

    @strawberry.field(
        description="The Open311 partners and whether their keys work. Admins only (FORBIDDEN for others)."
    )
    async def open311_partners(self, info: IssuesInfo) -> list[Open311Partner] | None:
        caller = await info.context.require_user()
        return [Open311Partner.from_doc(d) for d in await info.context.issues.partners(caller)]

    @strawberry.field(
        description="Per department: open, overdue and resolved issues and the median time to first response. Public."
    )
    async def department_stats(self, info: IssuesInfo) -> list[DepartmentStats] | None:
        return [
            DepartmentStats(
                open=s["open"],
                overdue=s["overdue"],
                resolved=s["resolved"],
                median_response_hours=s["median_response_hours"],
                _department_id=s["department_id"],
            )
            # Once per request however many aliases ask (and briefly cached by the service).
            for s in await info.context.once(
                "departmentStats", info.context.issues.department_stats
            )
        ]


@strawberry.type(description=MUTATION_DESCRIPTION)
class Mutation(ModerationMutations, StaffMutations, CatalogueMutations):
    @strawberry.mutation(
        description="Reports a problem (signed-in users); it starts NEW and is routed to its category's "
        "department. BAD_USER_INPUT with `field` for invalid input."
    )
    async def report_issue(
        self,
        info: IssuesInfo,
        input: Annotated[ReportIssueInput, strawberry.argument(description="The problem.")],
    ) -> Issue:
        caller = await info.context.require_user()
        report = Report(
            title=input.title,
            description=input.description,
            category=input.category,
            location=(input.location.lat, input.location.lon),
            address=input.address,
            district_id=str(input.district_id) if input.district_id else None,
            photos=input.photos,
            photo_uploads=choices(input.photo_uploads),
        )
        document = await info.context.issues.report_issue(caller, report)
        return Issue.from_doc(document)

    @strawberry.mutation(
        description="Proposes an initiative (signed-in users); it starts COLLECTING supports towards its "
        "`supportThreshold`."
    )
    async def propose_initiative(
        self,
        info: IssuesInfo,
        input: Annotated[ProposeInitiativeInput, strawberry.argument(description="The proposal.")],
    ) -> Issue:
        caller = await info.context.require_user()
        report = Report(
            title=input.title,
            description=input.description,
            category=input.category,
            location=_point(input.location),
            address=input.address,
            district_id=str(input.district_id) if input.district_id else None,
            photo_uploads=choices(input.photo_uploads),
        )
        document = await info.context.issues.propose_initiative(caller, report)
        return Issue.from_doc(document)

    @strawberry.mutation(
        description="Supports a problem or an initiative; once per person, repeating changes nothing. "
        "CONFLICT once the issue is CLOSED or REJECTED; for a duplicate merged into another, "
        "`extensions.duplicateOf` names the issue to support instead. Initiatives of a category with "
        "`verifiedSupportsOnly` (the default) take supports from phone-verified accounts only: "
        "NOT_ELIGIBLE with `reason` VERIFICATION otherwise."
    )
    async def support_issue(self, info: IssuesInfo, id: IssueId) -> Issue:
        caller = await info.context.require_user()
        return Issue.from_doc(await info.context.issues.support(caller, str(id)))

    @strawberry.mutation(
        description="Withdraws the caller's support; nothing changes if they did not support it."
    )
    async def withdraw_support(self, info: IssuesInfo, id: IssueId) -> Issue:
        caller = await info.context.require_user()
        return Issue.from_doc(await info.context.issues.withdraw_support(caller, str(id)))

    @strawberry.mutation(
        description="Comments on an issue (signed-in users). Comments of the responsible department's "
        "officials are marked `official`."
    )
    async def comment_on_issue(
        self,
        info: IssuesInfo,
        id: IssueId,
        text: Annotated[
            str,
            strawberry.argument(
                description="The comment.", metadata=bounded(chars=domain.MAX_COMMENT)
            ),
        ],
        photo_uploads: Annotated[
            list[PhotoUploadInput] | None,
            strawberry.argument(
                description="Photos uploaded with `POST /uploads` to show with the comment, in "
                f"order, at most {domain.MAX_PHOTOS} (each upload once, only by its uploader).",
                metadata=PHOTO_UPLOADS_BOUNDS,
            ),
        ] = None,
    ) -> Comment:
        caller = await info.context.require_user()
        comment = await info.context.issues.comment(caller, str(id), text, choices(photo_uploads))
        return Comment.from_doc(comment)

    @strawberry.mutation(
        description="Moves an issue along its workflow, if the caller's role allows that step: moderators and "
        "the department's officials accept or reject NEW problems; officials decide initiatives UNDER_REVIEW, "
        "start and resolve work; the assigned solver resolves; the reporter closes or reopens a RESOLVED issue. "
        "INVALID_TRANSITION (with `allowed`) for a step the workflow lacks, FORBIDDEN for the wrong role."
    )
    async def change_issue_status(
        self,
        info: IssuesInfo,
        id: IssueId,
        status: Annotated[IssueStatus, strawberry.argument(description="The status to move to.")],
        note: Annotated[
            str | None,
            strawberry.argument(
                description="Why; required when rejecting and when reopening. Shown in `history`.",
                metadata=bounded(chars=domain.MAX_NOTE),
            ),
        ] = None,
    ) -> Issue:
        caller = await info.context.require_user()
        document = await info.context.issues.change_status(caller, str(id), status, note)
        return Issue.from_doc(document)

    @strawberry.mutation(
        description="Offers to fix an ACCEPTED or IN_PROGRESS issue that has no solver yet (SOLVER role); "
        "once per issue (CONFLICT the second time). The reporter cannot offer on their own issue "
        "(FORBIDDEN): fixes are paid in points."
    )
    async def offer_to_solve(
        self,
        info: IssuesInfo,
        id: IssueId,
        message: Annotated[
            str,
            strawberry.argument(
                description="What you propose to do and when, for the reporter.",
                metadata=bounded(chars=domain.MAX_OFFER),
            ),
        ],
    ) -> SolverOffer:
        caller = await info.context.require_user()
        return SolverOffer.from_doc(
            await info.context.issues.offer_to_solve(caller, str(id), message)
        )

    @strawberry.mutation(
        description="Assigns the offering solver (the reporter or an official of the department); an ACCEPTED "
        "issue moves to IN_PROGRESS and the other offers are declined. An offer by the issue's "
        "own reporter is refused (FORBIDDEN)."
    )
    async def accept_solver_offer(
        self,
        info: IssuesInfo,
        offer_id: Annotated[
            strawberry.ID, strawberry.argument(description="The offer (see `solverOffers`).")
        ],
    ) -> Issue:
        caller = await info.context.require_user()
        return Issue.from_doc(await info.context.issues.accept_offer(caller, str(offer_id)))

    @strawberry.mutation(
        description="The assigned solver (or an official) reports an IN_PROGRESS issue fixed: it becomes "
        "RESOLVED and the reporter is asked to confirm."
    )
    async def mark_solved(
        self,
        info: IssuesInfo,
        id: IssueId,
        note: Annotated[
            str | None,
            strawberry.argument(
                description="What was done; shown in `history`.",
                metadata=bounded(chars=domain.MAX_NOTE),
            ),
        ] = None,
    ) -> Issue:
        caller = await info.context.require_user()
        return Issue.from_doc(await info.context.issues.mark_solved(caller, str(id), note))

    @strawberry.mutation(
        description="The reporter confirms a RESOLVED issue is fixed: it becomes CLOSED. This pays "
        "the solver nothing by itself: see `confirmFix`."
    )
    async def confirm_resolution(self, info: IssuesInfo, id: IssueId) -> Issue:
        caller = await info.context.require_user()
        return Issue.from_doc(await info.context.issues.confirm_resolution(caller, str(id)))

    @strawberry.mutation(
        description="An official of the responsible department confirms the assigned solver's fix "
        "of a RESOLVED or CLOSED issue, once; only then are the solver's points paid. FORBIDDEN for "
        "anyone else, and for the solver or the reporter themselves; CONFLICT when confirmed already "
        "or there is no solver; INVALID_TRANSITION before RESOLVED."
    )
    async def confirm_fix(self, info: IssuesInfo, id: IssueId) -> Issue:
        caller = await info.context.require_user()
        return Issue.from_doc(await info.context.issues.confirm_fix(caller, str(id)))

    @strawberry.mutation(
        description="Issues an Open311 API key to a partner (admins only): with it the partner files "
        "problem reports through `POST /open311/v2/requests.json`. The key is shown only in this answer."
    )
    async def create_open311_key(
        self,
        info: IssuesInfo,
        name: Annotated[
            str,
            strawberry.argument(
                description=f"The partner's name, up to {domain.MAX_PARTNER_NAME} characters."
            ),
        ],
    ) -> Open311KeyIssued:
        caller = await info.context.require_user()
        partner, key = await info.context.issues.create_partner_key(caller, name)
        return Open311KeyIssued(partner=Open311Partner.from_doc(partner), api_key=key)

    @strawberry.mutation(
        description="Revokes a partner's Open311 API key (admins only); its reports stay. Revoking twice "
        "changes nothing."
    )
    async def revoke_open311_key(
        self,
        info: IssuesInfo,
        id: Annotated[strawberry.ID, strawberry.argument(description="The partner's id.")],
    ) -> Open311Partner:
        caller = await info.context.require_user()
        return Open311Partner.from_doc(
            await info.context.issues.revoke_partner_key(caller, str(id))
        )

    @strawberry.mutation(
        description="The reporter says a RESOLVED issue is not fixed: it goes back to IN_PROGRESS."
    )
    async def reopen_issue(
        self,
        info: IssuesInfo,
        id: IssueId,
        reason: Annotated[
            str,
            strawberry.argument(
                description="What is still wrong; shown in `history`.",
                metadata=bounded(chars=domain.MAX_NOTE),
            ),
        ],
    ) -> Issue:
        caller = await info.context.require_user()
        return Issue.from_doc(await info.context.issues.reopen(caller, str(id), reason))


@strawberry.type(
    description="Live updates over graphql-transport-ws (WebSocket) or Server-Sent Events at the gateway's /graphql. Each field first sends the current state, then a new one after changes; on reconnect, subscribe again (the first message is the state at that moment)."
)
class Subscription:
    @strawberry.subscription(
        description="An issue, now and then after each change: its status, supports, comments, solver or resolution (select e.g. `status supportersCount comments { totalCount }`). At most one update per issue every ISSUES_LIVE_INTERVAL_MS (500 ms by default). NOT_FOUND for an issue there is none of, or that a moderator hid from you."
    )
    async def issue_updated(self, info: IssuesInfo, id: IssueId) -> AsyncIterator[Issue | None]:
        async for document in live.watch_issue(info.context, str(id)):
            yield Issue.from_doc(document)


schema = FederatedSchema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    types=[User, Issue, Department, District, PersonalData],
)


async def _visible_issue(info: IssuesInfo, issue_id: str) -> Issue | None:
    """The issue, unless a moderator hid it from this viewer."""
    document = await info.context.issue_loaders.issue_by_id.load(issue_id)
    if document is None or not may_see(await info.context.principal(), document, "reporter_id"):
        return None
    return Issue.from_doc(document)


async def _sees_hidden_photos(info: IssuesInfo, issue: Document) -> bool:
    scope = scope_of(await info.context.principal())
    return scope is not None and scope in ("*", issue.get("reporter_id"))
