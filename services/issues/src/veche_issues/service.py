"""Use cases of the issues service: load, decide, save with its events.

Where events are written:
- a new issue, a support, a comment and a solver offer each carry their own
  pending event inside the one document they insert or update (single-document
  atomicity, no transaction on the hot paths);
- a status change updates the issue conditionally on its current status and
  writes its events to the outbox in the same transaction, so exactly one of
  two racing changes wins and only the winner's events exist.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient, ReturnDocument
from pymongo.errors import DuplicateKeyError

from veche_issues import domain, store
from veche_issues.domain import Actor, Kind, Status
from veche_issues.settings import IssuesSettings
from veche_kit import mongo
from veche_kit.auth import Principal
from veche_kit.clock import utcnow
from veche_kit.errors import (
    BadUserInputError,
    ConflictError,
    DomainError,
    ForbiddenError,
    InvalidTransitionError,
    NotFoundError,
)
from veche_kit.events import (
    Envelope,
    Event,
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
)
from veche_kit.mongo import Database, Document, Session, in_transaction
from veche_kit.outbox import OutboxRelay, add_event, pending_fields

log = logging.getLogger(__name__)

OFFER_PENDING = "PENDING"
OFFER_ACCEPTED = "ACCEPTED"
OFFER_DECLINED = "DECLINED"
# A support not counted within this time was cut off by a crash; the sweep repairs it.
SUPPORT_REPAIR_AFTER = timedelta(seconds=60)
CITY = frozenset({Actor.OFFICIAL, Actor.MODERATOR})


@dataclass(frozen=True)
class Near:
    lat: float
    lon: float
    radius_meters: int | None


@dataclass(frozen=True)
class IssueQuery:
    """What `issues(filter:)` asks for; every part is optional."""

    kind: Kind | None = None
    status: Status | None = None
    category: str | None = None
    district_id: str | None = None
    near: Near | None = None
    text: str | None = None


@dataclass(frozen=True)
class IssuePage:
    issues: list[Document]
    cursors: list[list[Any]]
    has_next: bool
    total: int


def _id_text(value: str) -> str:
    return value[:40]


class IssuesService:
    """Holds the service's dependencies; each method is one use case."""

    def __init__(
        self,
        client: AsyncMongoClient[Document],
        db: Database,
        settings: IssuesSettings,
        relay: OutboxRelay | None = None,
    ) -> None:
        self.client = client
        self.db = db
        self.settings = settings
        self.relay = relay
        self.holidays: frozenset[date] = frozenset()

    # ───────────────────────── helpers ─────────────────────────

    def _envelope(self, event: Event) -> Document:
        return pending_fields(Envelope.wrap(event, self.settings.service_name))

    async def _emit(self, session: Session, *events: Event) -> None:
        for event in events:
            await add_event(self.db, event, producer=self.settings.service_name, session=session)

    def _after_commit(self) -> None:
        if self.relay is not None:
            self.relay.wake()

    async def load_holidays(self) -> None:
        documents = await self.db[store.HOLIDAYS].find({}, {"_id": 1}).to_list()
        self.holidays = frozenset(date.fromisoformat(d["_id"]) for d in documents)

    def due_at(self, accepted_at: datetime) -> datetime:
        return domain.add_working_days(
            accepted_at,
            self.settings.response_working_days,
            self.holidays,
            self.settings.city_utc_offset_hours,
        )

    async def category(self, category_id: str, field: str = "category") -> Document:
        document = await self.db[store.CATEGORIES].find_one({"_id": category_id})
        if document is None:
            raise BadUserInputError(
                f"Unknown category '{_id_text(category_id)}'; pick one from `issueCategories`.",
                field=field,
            )
        return document

    async def check_district(self, district_id: str | None, field: str = "districtId") -> None:
        if (
            district_id is not None
            and await self.db[store.DISTRICTS].count_documents({"_id": district_id}) == 0
        ):
            raise BadUserInputError(
                f"Unknown district '{_id_text(district_id)}'; pick one from `districts`.",
                field=field,
            )

    async def get_issue(self, issue_id: str) -> Document:
        issue = await self.db[store.ISSUES].find_one({"_id": issue_id})
        if issue is None:
            raise NotFoundError(f"No issue with id '{_id_text(issue_id)}'.")
        return issue

    async def supporter_ids(self, issue_id: str, session: Session | None = None) -> list[str]:
        cursor = self.db[store.SUPPORTS].find(
            {"issue_id": issue_id}, {"user_id": 1}, session=session
        )
        return [d["user_id"] async for d in cursor]

    @staticmethod
    def actors(principal: Principal | None, issue: Document) -> frozenset[Actor]:
        return domain.actors_of(
            principal,
            reporter_id=issue["reporter_id"],
            department_id=issue.get("department_id"),
            solver_id=issue.get("solver_id"),
        )

    @staticmethod
    def _first_response(issue: Document, now: datetime) -> dict[str, Any]:
        """`$min` keeps the earliest answer from the city (and sets a missing field)."""
        hours = (now - issue["created_at"]).total_seconds() / 3600
        return {"first_response_at": now, "response_hours": round(hours, 4)}

    # ───────────────────────── reporting ─────────────────────────

    async def _new_issue(
        self,
        caller: Principal,
        kind: Kind,
        *,
        title: str,
        description: str,
        category: str,
        location: tuple[float, float] | None,
        address: str | None,
        district_id: str | None,
        photos: list[str] | None,
    ) -> Document:
        clean_title = domain.required_text(title, "title", domain.MAX_TITLE)
        clean_description = domain.required_text(description, "description", domain.MAX_DESCRIPTION)
        clean_address = domain.clean_text(address, "address", domain.MAX_ADDRESS, required=False)
        clean_photos = domain.clean_photos(photos)
        point = domain.check_point(*location) if location is not None else None
        routed = await self.category(category)
        district = district_id if district_id is not None else caller.district_id
        await self.check_district(district)
        now = utcnow()
        issue_id = mongo.new_id()
        threshold = self.settings.threshold_for(category) if kind is Kind.INITIATIVE else None
        event: Event
        if kind is Kind.PROBLEM:
            event = IssueReported(
                issue_id=issue_id,
                title=clean_title,
                category=category,
                department_id=routed["department_id"],
                district_id=district,
                reporter_id=caller.user_id,
            )
        else:
            assert threshold is not None
            event = InitiativeProposed(
                issue_id=issue_id,
                title=clean_title,
                category=category,
                author_id=caller.user_id,
                district_id=district,
                support_threshold=threshold,
            )
        issue: Document = {
            "_id": issue_id,
            "kind": kind.value,
            "title": clean_title,
            "description": clean_description,
            "category": category,
            "department_id": routed["department_id"],
            "address": clean_address,
            "district_id": district,
            "photos": clean_photos,
            "status": domain.initial_status(kind).value,
            "reporter_id": caller.user_id,
            "solver_id": None,
            "supporters_count": 0,
            "support_threshold": threshold,
            "due_at": None,
            "history": [],
            "search_terms": domain.search_terms(clean_title, clean_description, clean_address),
            "created_at": now,
            "updated_at": now,
            **self._envelope(event),
        }
        if point is not None:
            issue["location"] = domain.geo_point(*point)
            issue["geo_cells"] = domain.geo_cells(*point)
        await self.db[store.ISSUES].insert_one(issue)
        self._after_commit()
        return issue

    async def report_issue(
        self,
        caller: Principal,
        *,
        title: str,
        description: str,
        category: str,
        location: tuple[float, float],
        address: str | None,
        district_id: str | None,
        photos: list[str] | None,
    ) -> Document:
        return await self._new_issue(
            caller,
            Kind.PROBLEM,
            title=title,
            description=description,
            category=category,
            location=location,
            address=address,
            district_id=district_id,
            photos=photos,
        )

    async def propose_initiative(
        self,
        caller: Principal,
        *,
        title: str,
        description: str,
        category: str,
        location: tuple[float, float] | None,
        address: str | None,
        district_id: str | None,
    ) -> Document:
        return await self._new_issue(
            caller,
            Kind.INITIATIVE,
            title=title,
            description=description,
            category=category,
            location=location,
            address=address,
            district_id=district_id,
            photos=None,
        )

    # ───────────────────────── reading ─────────────────────────

    def _filter(self, query: IssueQuery) -> dict[str, Any]:
        conditions: dict[str, Any] = {}
        if query.kind is not None:
            conditions["kind"] = query.kind.value
        if query.status is not None:
            conditions["status"] = query.status.value
        if query.category is not None:
            conditions["category"] = query.category
        if query.district_id is not None:
            conditions["district_id"] = query.district_id
        if query.text is not None:
            text = domain.clean_text(query.text, "filter.text", domain.MAX_SEARCH, required=False)
            terms = domain.query_terms(text or "")
            if terms:
                conditions.update(store.prefix_filter(terms))
        return conditions

    async def find_issues(
        self, query: IssueQuery, *, first: int, after: list[Any] | None
    ) -> IssuePage:
        """A page of issues: nearest first with `near`, newest first otherwise."""
        conditions = self._filter(query)
        if query.near is not None:
            near = query.near
            domain.check_point(near.lat, near.lon, "filter.near")
            radius = domain.check_radius(near.radius_meters, "filter.near.radiusMeters")
            position: tuple[float, str] | None = None
            if after is not None:
                if len(after) != 2 or not isinstance(after[0], int | float):
                    raise BadUserInputError(
                        "`after` is a cursor from a list without `near`.", field="after"
                    )
                position = (float(after[0]), str(after[1]))
            rows, has_next, total = await store.page_nearest(
                self.db,
                conditions,
                lat=near.lat,
                lon=near.lon,
                radius_meters=radius,
                first=first,
                after=position,
            )
            return IssuePage(
                [d for d, _ in rows], [[dist, d["_id"]] for d, dist in rows], has_next, total
            )
        if after is not None and len(after) != 1:
            raise BadUserInputError("`after` is a cursor from a list with `near`.", field="after")
        documents, has_next, total = await mongo.page(
            self.db,
            store.ISSUES,
            conditions,
            first=first,
            after=str(after[0]) if after else None,
        )
        return IssuePage(documents, [[d["_id"]] for d in documents], has_next, total)

    async def similar_issues(
        self, category: str, lat: float, lon: float, radius_meters: int | None
    ) -> list[Document]:
        """Open issues of the category near a point, nearest first (at most 20)."""
        await self.category(category)
        domain.check_point(lat, lon, "near")
        radius = domain.check_radius(radius_meters)
        rows, _ = await store.nearest(
            self.db,
            {"category": category, "status": {"$nin": [s.value for s in domain.SETTLED]}},
            lat=lat,
            lon=lon,
            radius_meters=radius,
            limit=20,
        )
        return [document for document, _ in rows]

    async def page_by(
        self, field: str, user_id: str, *, first: int, after: list[Any] | None
    ) -> IssuePage:
        """A user's reported or solving issues, newest first."""
        documents, has_next, total = await mongo.page(
            self.db,
            store.ISSUES,
            {field: user_id},
            first=first,
            after=str(after[0]) if after else None,
        )
        return IssuePage(documents, [[d["_id"]] for d in documents], has_next, total)

    async def matching_issues(
        self, viewer: Principal | None, user_id: str, *, first: int, after: list[Any] | None
    ) -> IssuePage:
        """Accepted or in-progress issues without a solver in the solver's skills,
        their own district first, newest first within each part."""
        if viewer is None or viewer.user_id != user_id:
            raise ForbiddenError("Only the solver themself can see the issues matching them.")
        empty = IssuePage([], [], False, 0)
        if not viewer.has_role("SOLVER"):
            return empty
        profile = await self.db[store.USERS].find_one({"_id": user_id}) or {}
        skills = list(profile.get("skills") or [])
        if not skills:
            return empty
        district = viewer.district_id or profile.get("district_id")
        base: dict[str, Any] = {
            "status": {"$in": [s.value for s in domain.SOLVABLE]},
            "solver_id": None,
            "category": {"$in": skills},
        }
        parts: list[dict[str, Any]] = (
            [{"district_id": district}, {"district_id": {"$ne": district}}] if district else [{}]
        )
        total = await self.db[store.ISSUES].count_documents(base)
        start_part, last_id = 0, None
        if after is not None:
            if len(after) != 2 or after[0] not in (0, 1) or not isinstance(after[1], str):
                raise BadUserInputError("`after` is not a cursor from this list.", field="after")
            start_part, last_id = int(after[0]), after[1]
        documents: list[Document] = []
        cursors: list[list[Any]] = []
        for part in range(start_part, len(parts)):
            query: dict[str, Any] = {**base, **parts[part]}
            if part == start_part and last_id is not None:
                query["_id"] = {"$lt": last_id}
            wanted = first + 1 - len(documents)
            found = await self.db[store.ISSUES].find(query).sort("_id", -1).limit(wanted).to_list()
            documents += found
            cursors += [[part, d["_id"]] for d in found]
            if len(documents) > first:
                break
        return IssuePage(documents[:first], cursors[:first], len(documents) > first, total)

    # ───────────────────────── supports ─────────────────────────

    async def support(self, caller: Principal, issue_id: str) -> Document:
        """One support per user (a unique index); repeating it changes nothing."""
        issue = await self.get_issue(issue_id)
        if Status(issue["status"]) in domain.FINISHED:
            raise ConflictError(f"This issue is {issue['status']}; it takes no more supports.")
        support_id = mongo.new_id()
        try:
            await self.db[store.SUPPORTS].insert_one(
                {
                    "_id": support_id,
                    "issue_id": issue_id,
                    "user_id": caller.user_id,
                    "at": utcnow(),
                    "counted": False,
                }
            )
        except DuplicateKeyError:
            return issue
        saved = await self.db[store.ISSUES].find_one_and_update(
            {"_id": issue_id},
            {"$inc": {"supporters_count": 1}},
            return_document=ReturnDocument.AFTER,
        )
        assert saved is not None
        event = IssueSupported(
            issue_id=issue_id,
            kind=saved["kind"],
            user_id=caller.user_id,
            supporters_count=saved["supporters_count"],
        )
        marked = await self.db[store.SUPPORTS].update_one(
            {"_id": support_id}, {"$set": {"counted": True, **self._envelope(event)}}
        )
        if marked.matched_count == 0:
            # Withdrawn while being counted: withdrawSupport left the count to us.
            saved = await self._uncount(issue_id) or saved
        self._after_commit()
        crossed = await self._check_threshold(saved)
        if crossed is not None:
            return crossed
        if self._due_for_review(saved):
            # Another support crossed the threshold meanwhile: show the status it set.
            return await self.get_issue(issue_id)
        return saved

    @staticmethod
    def _due_for_review(issue: Document) -> bool:
        threshold = issue.get("support_threshold")
        return (
            issue["kind"] == Kind.INITIATIVE.value
            and issue["status"] == Status.COLLECTING.value
            and threshold is not None
            and issue["supporters_count"] >= threshold
        )

    async def _uncount(self, issue_id: str) -> Document | None:
        return await self.db[store.ISSUES].find_one_and_update(
            {"_id": issue_id, "supporters_count": {"$gt": 0}},
            {"$inc": {"supporters_count": -1}},
            return_document=ReturnDocument.AFTER,
        )

    async def withdraw_support(self, caller: Principal, issue_id: str) -> Document:
        issue = await self.get_issue(issue_id)
        if Status(issue["status"]) in domain.FINISHED:
            raise ConflictError(f"This issue is {issue['status']}; its supports are final.")

        async def work(session: Session) -> Document | None:
            removed = await self.db[store.SUPPORTS].find_one_and_delete(
                {"issue_id": issue_id, "user_id": caller.user_id}, session=session
            )
            if removed is None or not removed.get("counted"):
                # Nothing to withdraw, or a support still being counted: its writer uncounts it.
                return None
            saved = await self.db[store.ISSUES].find_one_and_update(
                {"_id": issue_id, "supporters_count": {"$gt": 0}},
                {"$inc": {"supporters_count": -1}},
                return_document=ReturnDocument.AFTER,
                session=session,
            )
            if saved is not None:
                await self._emit(
                    session,
                    IssueSupportWithdrawn(
                        issue_id=issue_id,
                        kind=saved["kind"],
                        user_id=caller.user_id,
                        supporters_count=saved["supporters_count"],
                    ),
                )
            return saved

        saved = await in_transaction(self.client, work)
        if saved is None:
            return issue
        self._after_commit()
        return saved

    async def _check_threshold(self, issue: Document) -> Document | None:
        """COLLECTING -> UNDER_REVIEW once, by whichever writer's conditional update wins."""
        if not self._due_for_review(issue):
            return None
        threshold = issue["support_threshold"]
        now = utcnow()
        entry = {
            "from": Status.COLLECTING.value,
            "to": Status.UNDER_REVIEW.value,
            "by": None,
            "note": f"{threshold} supports reached: handed to the department for review.",
            "at": now,
        }

        async def work(session: Session) -> Document | None:
            saved = await self.db[store.ISSUES].find_one_and_update(
                {
                    "_id": issue["_id"],
                    "status": Status.COLLECTING.value,
                    "supporters_count": {"$gte": threshold},
                },
                {
                    "$set": {"status": Status.UNDER_REVIEW.value, "updated_at": now},
                    "$push": {"history": entry},
                },
                return_document=ReturnDocument.AFTER,
                session=session,
            )
            if saved is None:
                return None
            supporters = await self.supporter_ids(issue["_id"], session)
            await self._emit(
                session,
                InitiativeThresholdReached(
                    issue_id=saved["_id"],
                    title=saved["title"],
                    description=saved["description"],
                    category=saved["category"],
                    author_id=saved["reporter_id"],
                    department_id=saved.get("department_id"),
                    district_id=saved.get("district_id"),
                    supporters_count=saved["supporters_count"],
                    support_threshold=threshold,
                ),
                self._status_event(saved, entry, supporters),
            )
            return saved

        saved = await in_transaction(self.client, work)
        if saved is not None:
            self._after_commit()
        return saved

    # ───────────────────────── comments ─────────────────────────

    async def comment(self, caller: Principal, issue_id: str, text: str) -> Document:
        clean = domain.required_text(text, "text", domain.MAX_COMMENT)
        issue = await self.get_issue(issue_id)
        official = (
            caller.has_role("OFFICIAL")
            and issue.get("department_id") is not None
            and caller.department_id == issue.get("department_id")
        )
        now = utcnow()
        comment_id = mongo.new_id()
        event = IssueCommented(
            issue_id=issue_id,
            title=issue["title"],
            comment_id=comment_id,
            author_id=caller.user_id,
            official=official,
            excerpt=clean[:200],
            reporter_id=issue["reporter_id"],
            supporter_ids=await self.supporter_ids(issue_id),
        )
        comment: Document = {
            "_id": comment_id,
            "issue_id": issue_id,
            "author_id": caller.user_id,
            "text": clean,
            "official": official,
            "at": now,
            **self._envelope(event),
        }
        await self.db[store.COMMENTS].insert_one(comment)
        if official:
            await self.db[store.ISSUES].update_one(
                {"_id": issue_id}, {"$min": self._first_response(issue, now)}
            )
        self._after_commit()
        return comment

    # ───────────────────────── the workflow ─────────────────────────

    def _status_event(
        self, issue: Document, entry: Document, supporters: list[str]
    ) -> IssueStatusChanged:
        return IssueStatusChanged(
            issue_id=issue["_id"],
            kind=issue["kind"],
            title=issue["title"],
            from_status=entry["from"],
            to_status=entry["to"],
            by_user_id=entry["by"],
            note=entry["note"],
            reporter_id=issue["reporter_id"],
            solver_id=issue.get("solver_id"),
            department_id=issue.get("department_id"),
            supporter_ids=supporters,
        )

    async def change_status(
        self,
        caller: Principal | None,
        issue_id: str,
        target: Status,
        note: str | None = None,
        *,
        expect: Status | None = None,
    ) -> Document:
        """Moves an issue along the workflow if the caller may (None: the system).

        `expect` pins the current status a specialised action needs (e.g.
        confirmResolution needs RESOLVED), so it refuses with the workflow's words.
        """
        issue = await self.get_issue(issue_id)
        kind, current = Kind(issue["kind"]), Status(issue["status"])
        if expect is not None and current is not expect:
            raise InvalidTransitionError(
                f"This needs the issue in {expect.value}; it is {current.value}. "
                f"From {current.value} it can move to "
                f"{', '.join(s.value for s in domain.next_statuses(kind, current)) or 'nowhere'}.",
                allowed=[s.value for s in domain.next_statuses(kind, current)],
                current=current.value,
            )
        actors = self.actors(caller, issue)
        rule = domain.check_transition(kind, current, target, actors, note)
        clean_note = domain.clean_text(note, "note", domain.MAX_NOTE, required=False)
        now = utcnow()
        changes: dict[str, Any] = {"status": target.value, "updated_at": now}
        update: dict[str, Any] = {"$set": changes}
        if target is Status.ACCEPTED:
            changes["accepted_at"] = now
            changes["due_at"] = self.due_at(now)
        if target is Status.RESOLVED:
            changes["resolved_at"] = now
        if current is Status.RESOLVED and target is Status.IN_PROGRESS:
            changes["resolved_at"] = None
        if rule.actors & actors & CITY:
            update["$min"] = self._first_response(issue, now)
        entry = {
            "from": current.value,
            "to": target.value,
            "by": caller.user_id if caller is not None else None,
            "note": clean_note,
            "at": now,
        }
        update["$push"] = {"history": entry}

        async def work(session: Session) -> Document:
            saved = await self.db[store.ISSUES].find_one_and_update(
                {"_id": issue_id, "status": current.value},
                update,
                return_document=ReturnDocument.AFTER,
                session=session,
            )
            if saved is None:
                raise ConflictError("The issue changed meanwhile; reload it and try again.")
            events: list[Event] = [
                self._status_event(saved, entry, await self.supporter_ids(issue_id, session))
            ]
            if target is Status.RESOLVED:
                events.append(
                    IssueResolved(
                        issue_id=issue_id,
                        title=saved["title"],
                        reporter_id=saved["reporter_id"],
                        solver_id=saved.get("solver_id"),
                        resolved_by=entry["by"] or "system",
                    )
                )
            if target is Status.CLOSED:
                events.append(
                    IssueClosed(
                        issue_id=issue_id,
                        title=saved["title"],
                        reporter_id=saved["reporter_id"],
                        solver_id=saved.get("solver_id"),
                        confirmed_by=entry["by"],
                    )
                )
            await self._emit(session, *events)
            return saved

        saved = await in_transaction(self.client, work)
        self._after_commit()
        return saved

    async def mark_solved(self, caller: Principal, issue_id: str, note: str | None) -> Document:
        return await self.change_status(
            caller, issue_id, Status.RESOLVED, note, expect=Status.IN_PROGRESS
        )

    async def confirm_resolution(self, caller: Principal, issue_id: str) -> Document:
        return await self.change_status(
            caller, issue_id, Status.CLOSED, "Confirmed by the reporter.", expect=Status.RESOLVED
        )

    async def reopen(self, caller: Principal, issue_id: str, reason: str) -> Document:
        domain.required_text(reason, "reason", domain.MAX_NOTE)
        return await self.change_status(
            caller, issue_id, Status.IN_PROGRESS, reason, expect=Status.RESOLVED
        )

    # ───────────────────────── solvers ─────────────────────────

    async def offer_to_solve(self, caller: Principal, issue_id: str, message: str) -> Document:
        caller.require_role("SOLVER")
        clean = domain.required_text(message, "message", domain.MAX_OFFER)
        issue = await self.get_issue(issue_id)
        if Status(issue["status"]) not in domain.SOLVABLE:
            raise InvalidTransitionError(
                f"Solvers can offer help once an issue is ACCEPTED; this one is {issue['status']}.",
                current=issue["status"],
            )
        if issue.get("solver_id"):
            raise ConflictError("This issue already has a solver.")
        offer_id = mongo.new_id()
        event = IssueSolverOffered(
            issue_id=issue_id,
            title=issue["title"],
            offer_id=offer_id,
            solver_id=caller.user_id,
            reporter_id=issue["reporter_id"],
            message=clean,
        )
        offer: Document = {
            "_id": offer_id,
            "issue_id": issue_id,
            "solver_id": caller.user_id,
            "message": clean,
            "status": OFFER_PENDING,
            "at": utcnow(),
            **self._envelope(event),
        }
        try:
            await self.db[store.OFFERS].insert_one(offer)
        except DuplicateKeyError as error:
            raise ConflictError("You have already offered to solve this issue.") from error
        self._after_commit()
        return offer

    async def offers_of(self, issue_id: str) -> list[Document]:
        cursor = self.db[store.OFFERS].find({"issue_id": issue_id}).sort("_id", ASCENDING)
        documents: list[Document] = await cursor.to_list()
        return documents

    async def accept_offer(self, caller: Principal, offer_id: str) -> Document:
        """The reporter or an official picks a solver; an ACCEPTED issue moves to IN_PROGRESS."""
        offer = await self.db[store.OFFERS].find_one({"_id": offer_id})
        if offer is None:
            raise NotFoundError(f"No solver offer with id '{_id_text(offer_id)}'.")
        issue = await self.get_issue(offer["issue_id"])
        actors = self.actors(caller, issue)
        if not actors & {Actor.REPORTER, Actor.OFFICIAL}:
            raise ForbiddenError(
                "Only the reporter or an official of the responsible department can accept an offer."
            )
        if offer["status"] != OFFER_PENDING:
            raise ConflictError(f"This offer is {offer['status']} already.")
        if issue.get("solver_id"):
            raise ConflictError("This issue already has a solver.")
        current = Status(issue["status"])
        if current not in domain.SOLVABLE:
            raise InvalidTransitionError(
                f"A solver can be assigned to an ACCEPTED or IN_PROGRESS issue; this one is {current.value}.",
                current=current.value,
            )
        now = utcnow()
        moving = current is Status.ACCEPTED
        update: dict[str, Any] = {"$set": {"solver_id": offer["solver_id"], "updated_at": now}}
        entry = {
            "from": current.value,
            "to": Status.IN_PROGRESS.value,
            "by": caller.user_id,
            "note": "Solver offer accepted.",
            "at": now,
        }
        if moving:
            update["$set"]["status"] = Status.IN_PROGRESS.value
            update["$push"] = {"history": entry}
        if actors & CITY:
            update["$min"] = self._first_response(issue, now)

        async def work(session: Session) -> Document:
            saved = await self.db[store.ISSUES].find_one_and_update(
                {"_id": issue["_id"], "status": current.value, "solver_id": None},
                update,
                return_document=ReturnDocument.AFTER,
                session=session,
            )
            if saved is None:
                raise ConflictError("The issue changed meanwhile; reload it and try again.")
            taken = await self.db[store.OFFERS].update_one(
                {"_id": offer_id, "status": OFFER_PENDING},
                {"$set": {"status": OFFER_ACCEPTED, "decided_at": now}},
                session=session,
            )
            if taken.matched_count == 0:
                raise ConflictError("This offer was withdrawn or decided meanwhile.")
            await self.db[store.OFFERS].update_many(
                {"issue_id": issue["_id"], "status": OFFER_PENDING},
                {"$set": {"status": OFFER_DECLINED, "decided_at": now}},
                session=session,
            )
            events: list[Event] = [
                IssueSolverAssigned(
                    issue_id=saved["_id"],
                    title=saved["title"],
                    offer_id=offer_id,
                    solver_id=offer["solver_id"],
                    reporter_id=saved["reporter_id"],
                )
            ]
            if moving:
                supporters = await self.supporter_ids(saved["_id"], session)
                events.append(self._status_event(saved, entry, supporters))
            await self._emit(session, *events)
            return saved

        saved = await in_transaction(self.client, work)
        self._after_commit()
        return saved

    # ───────────────────────── accountability ─────────────────────────

    async def department_stats(self, now: datetime | None = None) -> list[Document]:
        """Per department routed to by some category: open, overdue, resolved, median response."""
        now = now or utcnow()
        departments = sorted(await self.db[store.CATEGORIES].distinct("department_id"))
        issues = self.db[store.ISSUES]
        open_statuses = [s.value for s in domain.OPEN]
        stats: list[Document] = []
        for department in departments:
            mine = {"department_id": department}
            answered = {**mine, "response_hours": {"$gte": 0}}
            answered_count = await issues.count_documents(answered)
            median: float | None = None
            if answered_count:
                middle = (
                    await issues.find(answered, {"response_hours": 1})
                    .sort("response_hours", ASCENDING)
                    .skip((answered_count - 1) // 2)
                    .limit(1 if answered_count % 2 else 2)
                    .to_list()
                )
                median = round(sum(d["response_hours"] for d in middle) / len(middle), 2)
            stats.append(
                {
                    "department_id": department,
                    "open": await issues.count_documents(
                        {**mine, "status": {"$in": open_statuses}}
                    ),
                    "overdue": await issues.count_documents(
                        {**mine, "status": {"$in": open_statuses}, "due_at": {"$lt": now}}
                    ),
                    "resolved": await issues.count_documents(
                        {**mine, "status": {"$in": [Status.RESOLVED.value, Status.CLOSED.value]}}
                    ),
                    "median_response_hours": median,
                }
            )
        return stats

    # ───────────────────────── the periodic sweep ─────────────────────────

    async def sweep(self, now: datetime | None = None) -> dict[str, int]:
        """Closes issues the reporter left RESOLVED too long, repairs supports a crash
        left uncounted, finishes threshold crossings, reloads holidays. Idempotent."""
        now = now or utcnow()
        await self.load_holidays()
        closed = 0
        cutoff = now - timedelta(days=self.settings.auto_close_days)
        waiting = self.db[store.ISSUES].find(
            {"status": Status.RESOLVED.value, "resolved_at": {"$lt": cutoff}}, {"_id": 1}
        )
        for document in await waiting.to_list():
            try:
                await self.change_status(
                    None,
                    document["_id"],
                    Status.CLOSED,
                    f"Closed automatically: no answer from the reporter within "
                    f"{self.settings.auto_close_days} days.",
                )
                closed += 1
            except DomainError as error:
                log.info(
                    "auto-close skipped", extra={"issue_id": document["_id"], "why": error.message}
                )
        repaired = await self._repair_supports(now)
        overdue = await self.flag_overdue(now)
        crossed = 0
        collecting = self.db[store.ISSUES].find(
            {"kind": Kind.INITIATIVE.value, "status": Status.COLLECTING.value}
        )
        for document in await collecting.to_list():
            if await self._check_threshold(document) is not None:
                crossed += 1
        return {"closed": closed, "repaired": repaired, "crossed": crossed, "overdue": overdue}

    async def flag_overdue(self, now: datetime) -> int:
        """Publishes `issue.overdue` once per issue that passed its dueAt unresolved.

        A conditional update on the issue (`overdue_notified` not yet set) decides,
        in the same transaction as the outbox row, so sweeps that overlap, or run
        in several replicas, tell the department once.
        """
        late = {
            "status": {"$in": [s.value for s in domain.OPEN]},
            "due_at": {"$lt": now},
            "overdue_notified": {"$ne": True},
        }
        flagged = 0
        for document in await self.db[store.ISSUES].find(late, {"_id": 1}).to_list():

            async def work(session: Session, issue_id: str = document["_id"]) -> bool:
                issue = await self.db[store.ISSUES].find_one_and_update(
                    {"_id": issue_id, **late},
                    {"$set": {"overdue_notified": True}},
                    return_document=ReturnDocument.AFTER,
                    session=session,
                )
                if issue is None:
                    return False
                await self._emit(
                    session,
                    IssueOverdue(
                        issue_id=issue_id,
                        title=issue["title"],
                        department_id=issue.get("department_id"),
                        due_at=issue["due_at"],
                        reporter_id=issue["reporter_id"],
                    ),
                )
                return True

            if await in_transaction(self.client, work):
                flagged += 1
        if flagged:
            self._after_commit()
        return flagged

    async def _repair_supports(self, now: datetime) -> int:
        cutoff = now - SUPPORT_REPAIR_AFTER
        stale = (
            await self.db[store.SUPPORTS].find({"counted": False, "at": {"$lt": cutoff}}).to_list()
        )
        for issue_id in {s["issue_id"] for s in stale}:
            mine = [s for s in stale if s["issue_id"] == issue_id]
            for _ in range(5):  # optimistic: retried while supports keep arriving
                issue = await self.db[store.ISSUES].find_one({"_id": issue_id})
                if issue is None:
                    break
                # Counted supports plus the stale ones; fresh uncounted ones count themselves.
                exact = await self.db[store.SUPPORTS].count_documents(
                    {"issue_id": issue_id, "$or": [{"counted": True}, {"at": {"$lt": cutoff}}]}
                )
                done = await self.db[store.ISSUES].update_one(
                    {"_id": issue_id, "supporters_count": issue["supporters_count"]},
                    {"$set": {"supporters_count": exact}},
                )
                if done.matched_count:
                    for support in mine:
                        event = IssueSupported(
                            issue_id=issue_id,
                            kind=issue["kind"],
                            user_id=support["user_id"],
                            supporters_count=exact,
                        )
                        await self.db[store.SUPPORTS].update_one(
                            {"_id": support["_id"], "counted": False},
                            {"$set": {"counted": True, **self._envelope(event)}},
                        )
                    break
        if stale:
            log.warning("uncounted supports repaired", extra={"supports": len(stale)})
            self._after_commit()
        return len(stale)
