"""The issues service's MongoDB collections, their indexes and every query on them.

`IssueStore` is the only code that touches the collections: the service asks it
for documents and conditional updates by name, the loaders for batches, the
consumers for the users projection.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from bson import Regex
from pymongo import ASCENDING, DESCENDING, GEOSPHERE, IndexModel, ReturnDocument

from veche_issues import domain
from veche_issues.calendar import CalendarDayKind, day_kind
from veche_issues.domain import Kind, Status
from veche_kit import export, mongo, throttle
from veche_kit.clock import utcnow
from veche_kit.events import UserProfileUpdated, UserRegistered, UserRoleChanged
from veche_kit.migrations import Migration
from veche_kit.mongo import Database, Document, Session
from veche_kit.outbox import OUTBOX, PENDING_INDEX

ISSUES = "issues"
SUPPORTS = "supports"
COMMENTS = "comments"
UPLOADS = "uploads"  # photo uploads (upload_store.py)
OFFERS = "solver_offers"
CATEGORIES = "categories"
# The working-day calendar's marked days (`veche_issues.calendar`), one per date;
# named for its first kind, kept so existing stores need no migration.
HOLIDAYS = "holidays"
PARTNER_KEYS = "open311_keys"  # API keys of Open311 partners, stored as SHA-256 hashes
USERS = "users"  # a projection of the users service's accounts, fed by user.* events
# Issues and comments nobody hid: what every public list shows (see moderation.py).
SHOWN: Document = {"hidden": None}

# Where pending events live, in the order the relay drains them on each pass:
# documents that carry their own event (single-document atomicity on hot paths)
# before the outbox, so within a pass an issue.reported precedes the issue's status
# changes, an offer precedes its assignment and supports precede the threshold.
EVENT_SOURCES = (ISSUES, OFFERS, SUPPORTS, COMMENTS, OUTBOX)

INDEXES: dict[str, list[IndexModel]] = {
    **throttle.INDEXES,
    PARTNER_KEYS: [IndexModel([("key_hash", ASCENDING)], name="key_hash", unique=True)],
    ISSUES: [
        # The GeoJSON point, for MongoDB's own geo operators and tools.
        IndexModel([("location", GEOSPHERE)], name="location_2dsphere"),
        # The map grid cells the point lies in: what near queries use (see `nearest`).
        IndexModel([("geo_cells", ASCENDING)], name="geo_cells"),
        IndexModel([("search_terms", ASCENDING)], name="search_terms"),
        IndexModel([("status", ASCENDING), ("_id", DESCENDING)]),
        IndexModel([("category", ASCENDING), ("status", ASCENDING), ("_id", DESCENDING)]),
        IndexModel([("district_id", ASCENDING), ("_id", DESCENDING)]),
        IndexModel([("reporter_id", ASCENDING), ("_id", DESCENDING)]),
        IndexModel([("department_id", ASCENDING), ("status", ASCENDING)]),
        # Open311's `GET requests`: problem reports by date.
        IndexModel([("kind", ASCENDING), ("created_at", DESCENDING)], name="kind_created"),
        # Partial: only the documents each query is about, so writes stay cheap.
        IndexModel(
            [("solver_id", ASCENDING), ("_id", DESCENDING)],
            name="solver",
            partialFilterExpression={"solver_id": {"$type": "string"}},
        ),
        # An official's worklist (`issues(filter: {assigneeId})`).
        IndexModel(
            [("assignee_id", ASCENDING), ("_id", DESCENDING)],
            name="assignee",
            partialFilterExpression={"assignee_id": {"$type": "string"}},
        ),
        IndexModel(
            [("department_id", ASCENDING), ("response_hours", ASCENDING)],
            name="response_hours",
            partialFilterExpression={"response_hours": {"$exists": True}},
        ),
        IndexModel(
            [("resolved_at", ASCENDING)],
            name="resolved_at",
            partialFilterExpression={"resolved_at": {"$type": "date"}},
        ),
        PENDING_INDEX,
    ],
    # One support per user per issue: the database holds this invariant.
    SUPPORTS: [
        IndexModel([("issue_id", ASCENDING), ("user_id", ASCENDING)], unique=True, name="once"),
        IndexModel([("counted", ASCENDING), ("at", ASCENDING)]),
        PENDING_INDEX,
    ],
    COMMENTS: [IndexModel([("issue_id", ASCENDING), ("_id", ASCENDING)]), PENDING_INDEX],
    # One offer per solver per issue.
    OFFERS: [
        IndexModel([("issue_id", ASCENDING), ("solver_id", ASCENDING)], unique=True, name="once"),
        # An issue's offers oldest first (`offers_by_issues`).
        IndexModel([("issue_id", ASCENDING), ("_id", ASCENDING)], name="issue_order"),
        PENDING_INDEX,
    ],
    CATEGORIES: [],
    HOLIDAYS: [],
    USERS: [],
}


def _restemmed(issue: Document) -> Document:
    return {
        "search_terms": domain.search_terms(
            issue.get("title"), issue.get("description"), issue.get("address")
        )
    }


# How stored documents change shape between releases, oldest first (veche_kit.migrations):
# each service start runs those the store has not had yet.
MIGRATIONS = [
    # Stems from Snowball's Russian stemmer replace the light stemmer's ("ямы" -> "ям").
    Migration(
        ISSUES,
        1,
        "search terms from Snowball's stemmers",
        old_shape={},
        reshape=_restemmed,
        reads={"title": 1, "description": 1, "address": 1, "search_terms": 1},
    ),
]


def prefix_filter(terms: list[str]) -> dict[str, Any]:
    """Every term must begin one of the document's stored search terms.

    Anchored, case-sensitive prefixes on a multikey index are index range scans
    on MongoDB, and need no `$text` index (which the embedded store lacks).
    """
    if len(terms) == 1:
        return {"search_terms": {"$regex": "^" + re.escape(terms[0])}}
    return {"search_terms": {"$all": [Regex("^" + re.escape(t)) for t in terms]}}


def overdue_conditions(overdue: bool, now: datetime) -> Document:
    """Issues whose official answer is overdue at `now` (`domain.is_overdue`), or
    (`overdue` false) every other issue."""
    if overdue:
        return {
            "status": domain.AWAITING_ANSWER.value,
            "due_at": {"$lt": now},
            "answered_at": None,
        }
    return {
        "$or": [
            {"status": {"$ne": domain.AWAITING_ANSWER.value}},
            {"due_at": None},
            {"due_at": {"$gte": now}},
            {"answered_at": {"$ne": None}},
        ]
    }


def filter_conditions(
    *,
    kind: Kind | None,
    status: Status | None,
    category: str | None,
    district_id: str | None,
    terms: list[str],
    assignee_id: str | None = None,
    department_id: str | None = None,
    overdue: bool | None = None,
    now: datetime | None = None,
    with_hidden: bool = False,
) -> Document:
    """The query for `issues(filter:)`: each given part must hold; every search term
    must begin one of the issue's stored terms; `overdue` is judged at `now`; issues
    a moderator hid only `with_hidden`."""
    conditions: Document = {} if with_hidden else dict(SHOWN)
    if kind is not None:
        conditions["kind"] = kind.value
    if overdue is not None:
        conditions.update(overdue_conditions(overdue, now or utcnow()))
    if status is not None and conditions.get("status", status.value) != status.value:
        conditions["status"] = {"$in": []}  # overdue asks for ACCEPTED, the filter for another
    elif status is not None:
        conditions["status"] = status.value
    if category is not None:
        conditions["category"] = category
    if district_id is not None:
        conditions["district_id"] = district_id
    if department_id is not None:
        conditions["department_id"] = department_id
    if assignee_id is not None:
        conditions["assignee_id"] = assignee_id
    if terms:
        conditions.update(prefix_filter(terms))
    return conditions


def district_parts(district: str | None) -> list[Document]:
    """A solver's matching issues in two parts, their own district first (one part
    when they have none)."""
    if district is None:
        return [{}]
    return [{"district_id": district}, {"district_id": {"$ne": district}}]


def unmerged_open() -> Document:
    """An issue that takes part in a merge: not CLOSED or REJECTED, not merged away."""
    return {"status": {"$nin": _values(domain.FINISHED)}, "duplicate_of": None}


def collecting_at(threshold: int) -> Document:
    """An initiative still collecting that has reached `threshold` supports."""
    return {"status": Status.COLLECTING.value, "supporters_count": {"$gte": threshold}}


def request_conditions(wanted: domain.RequestFilter) -> Document:
    """Open311's `GET requests` filter as a query: problem reports only, none hidden."""
    query: Document = {"kind": Kind.PROBLEM.value, **SHOWN}
    if wanted.ids is not None:  # the spec: ids override every other parameter
        query["_id"] = {"$in": wanted.ids}
        return query
    query["created_at"] = {"$gte": wanted.start, "$lte": wanted.end}
    if wanted.service_codes is not None:
        query["category"] = {"$in": wanted.service_codes}
    if wanted.closed is not None:
        settled = [status.value for status in domain.SETTLED]
        query["status"] = {"$in": settled} if wanted.closed else {"$nin": settled}
    return query


async def nearest(
    db: Database,
    query: dict[str, Any],
    *,
    lat: float,
    lon: float,
    radius_meters: float,
    limit: int,
    after: tuple[float, str] | None = None,
) -> tuple[list[tuple[Document, float]], int]:
    """Nearest first within the radius, ties by id, each with its distance in metres;
    and how many lie within the radius in all.

    Candidates come from the grid cells covering the circle (an ordinary index),
    then exact distances decide. Portable, and fast on the embedded store, whose
    2dsphere operators scan every document (and whose `$near` does not order by
    distance). `after` is a (distance, id) cursor: an issue that arrives nearer
    than it does not shift later pages.
    """
    cells = domain.covering_cells(lat, lon, radius_meters)
    inside: dict[str, float] = {}
    coordinates = {"location.coordinates": 1}  # the least a candidate needs to carry
    async for candidate in db[ISSUES].find({"geo_cells": {"$in": cells}}, coordinates):
        c_lon, c_lat = candidate["location"]["coordinates"]
        distance = domain.distance_meters(lat, lon, c_lat, c_lon)
        if distance <= radius_meters:
            inside[candidate["_id"]] = distance
    if query and inside:
        # The other conditions, on the few candidates only (by id: fast everywhere).
        kept = db[ISSUES].find({**query, "_id": {"$in": list(inside)}}, {"_id": 1})
        matching = {d["_id"] async for d in kept}
        inside = {i: d for i, d in inside.items() if i in matching}
    ordered = sorted((distance, i) for i, distance in inside.items())
    window = [row for row in ordered if after is None or row > after][:limit]
    found = {d["_id"]: d async for d in db[ISSUES].find({"_id": {"$in": [i for _, i in window]}})}
    rows = [(found[i], distance) for distance, i in window if i in found]
    return rows, len(ordered)


OFFER_PENDING = domain.OfferStatus.PENDING.value
OFFER_ACCEPTED = domain.OfferStatus.ACCEPTED.value
OFFER_DECLINED = domain.OfferStatus.DECLINED.value


def _values(statuses: Iterable[Status]) -> list[str]:
    return [s.value for s in statuses]


class IssueStore:
    """The issues service's collections: documents in, documents out."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # How many departments' stats were computed: each is five store round trips.
        self.stats_computed = 0

    # ───────────────────────── reference data ─────────────────────────

    async def category(self, category_id: str) -> Document | None:
        return await self.db[CATEGORIES].find_one({"_id": category_id})

    async def categories(self, session: Session | None = None) -> list[Document]:
        """The categories offered (not retired), by name."""
        cursor = self.db[CATEGORIES].find({"retired_at": None}, session=session).sort("name", 1)
        found: list[Document] = await cursor.to_list()
        return found

    async def add_category(self, document: Document, session: Session) -> None:
        """DuplicateKeyError when the id is taken (retired ones included)."""
        await self.db[CATEGORIES].insert_one(document, session=session)

    async def update_category(
        self, category_id: str, fields: Document, session: Session
    ) -> Document | None:
        """Sets `fields` on a category not retired; it as it was before, or None."""
        found: Document | None = await self.db[CATEGORIES].find_one_and_update(
            {"_id": category_id, "retired_at": None}, {"$set": fields}, session=session
        )
        return found

    async def calendar_days(self) -> dict[date, CalendarDayKind]:
        """Every marked day and its kind (a document without one is a HOLIDAY)."""
        documents = await self.db[HOLIDAYS].find({}, {"_id": 1, "kind": 1}).to_list()
        return {date.fromisoformat(d["_id"]): day_kind(d) for d in documents}

    async def calendar_range(self, first: date, last: date) -> list[Document]:
        """The marked days from `first` to `last`, both included, by date."""
        span = {"_id": {"$gte": first.isoformat(), "$lte": last.isoformat()}}
        found: list[Document] = await self.db[HOLIDAYS].find(span).sort("_id", 1).to_list()
        return found

    async def holiday_list(self) -> list[Document]:
        holidays = {"kind": {"$in": [None, CalendarDayKind.HOLIDAY.value]}}
        found: list[Document] = await self.db[HOLIDAYS].find(holidays).sort("_id", 1).to_list()
        return found

    async def add_calendar_day(self, document: Document, session: Session) -> None:
        """DuplicateKeyError when the day is marked already."""
        await self.db[HOLIDAYS].insert_one(document, session=session)

    async def remove_calendar_day(
        self, day: date, session: Session, kind: CalendarDayKind | None = None
    ) -> Document | None:
        """Unmarks `day` (only if of `kind`, when given); the document removed, or None."""
        query: Document = {"_id": day.isoformat()}
        if kind is CalendarDayKind.HOLIDAY:
            query["kind"] = {"$in": [None, kind.value]}
        elif kind is not None:
            query["kind"] = kind.value
        found: Document | None = await self.db[HOLIDAYS].find_one_and_delete(query, session=session)
        return found

    # ───────────────────────── issues ─────────────────────────

    async def get(self, issue_id: str) -> Document | None:
        return await self.db[ISSUES].find_one({"_id": issue_id})

    async def by_ids(self, ids: list[str]) -> list[Document | None]:
        return await mongo.find_by_ids(self.db, ISSUES, ids)

    async def add(self, issue: Document) -> None:
        await self.db[ISSUES].insert_one(issue)

    async def page(
        self, query: Document, *, first: int, after: str | None
    ) -> tuple[list[Document], bool, int]:
        """Newest first: (issues, has_next, total)."""
        return await mongo.page(self.db, ISSUES, query, first=first, after=after)

    async def page_reported_by(
        self, user_id: str, *, first: int, after: str | None, with_hidden: bool = False
    ) -> tuple[list[Document], bool, int]:
        query = {"reporter_id": user_id, **({} if with_hidden else SHOWN)}
        return await self.page(query, first=first, after=after)

    async def page_solved_by(
        self, user_id: str, *, first: int, after: str | None
    ) -> tuple[list[Document], bool, int]:
        return await self.page({"solver_id": user_id, **SHOWN}, first=first, after=after)

    async def page_nearest(
        self,
        query: Document,
        *,
        lat: float,
        lon: float,
        radius_meters: float,
        first: int,
        after: tuple[float, str] | None,
    ) -> tuple[list[tuple[Document, float]], bool, int]:
        """A page of `nearest`: (rows, has_next, total)."""
        rows, total = await nearest(
            self.db,
            query,
            lat=lat,
            lon=lon,
            radius_meters=radius_meters,
            limit=first + 1,
            after=after,
        )
        return rows[:first], len(rows) > first, total

    async def service_requests(self, wanted: domain.RequestFilter, limit: int) -> list[Document]:
        """Open311's `GET requests`: newest first, or nearest first around `wanted.near`
        (lat, lon, radius in metres)."""
        query = request_conditions(wanted)
        if wanted.near is not None:
            lat, lon, radius = wanted.near
            rows, _ = await nearest(
                self.db, query, lat=lat, lon=lon, radius_meters=radius, limit=limit
            )
            return [document for document, _ in rows]
        return await self.db[ISSUES].find(query).sort("created_at", DESCENDING).to_list(limit)

    async def add_partner_key(self, partner: Document) -> None:
        await self.db[PARTNER_KEYS].insert_one(partner)

    async def partner_by_key_hash(self, key_hash: str) -> Document | None:
        return await self.db[PARTNER_KEYS].find_one({"key_hash": key_hash, "revoked_at": None})

    async def partners(self) -> list[Document]:
        found: list[Document] = await self.db[PARTNER_KEYS].find().sort("_id", 1).to_list()
        return found

    async def revoke_partner_key(self, partner_id: str, now: datetime) -> Document | None:
        """Revokes a key once; returns the partner (None: no such partner)."""
        await self.db[PARTNER_KEYS].update_one(
            {"_id": partner_id, "revoked_at": None}, {"$set": {"revoked_at": now}}
        )
        return await self.db[PARTNER_KEYS].find_one({"_id": partner_id})

    async def open_near(
        self, category: str, *, lat: float, lon: float, radius_meters: float, limit: int
    ) -> list[Document]:
        """Unsettled issues of a category near a point, nearest first."""
        query = {"category": category, "status": {"$nin": _values(domain.SETTLED)}, **SHOWN}
        rows, _ = await nearest(
            self.db, query, lat=lat, lon=lon, radius_meters=radius_meters, limit=limit
        )
        return [document for document, _ in rows]

    async def count_matching(self, skills: list[str]) -> int:
        return await self.db[ISSUES].count_documents(_matching(skills))

    async def matching(
        self,
        skills: list[str],
        district: Document,
        *,
        before_id: str | None,
        limit: int,
    ) -> list[Document]:
        """Solvable issues without a solver in `skills` whose district matches the
        `district` condition, newest first, before the id `before_id`."""
        query: Document = {**_matching(skills), **district}
        if before_id is not None:
            query["_id"] = {"$lt": before_id}
        found: list[Document] = (
            await self.db[ISSUES].find(query).sort("_id", DESCENDING).limit(limit).to_list()
        )
        return found

    async def apply_transition(
        self,
        issue_id: str,
        expected: Document,
        change: domain.Change,
        session: Session,
    ) -> Document | None:
        """Applies `change` if the issue still matches `expected` (its status, say);
        the saved issue, or None when another writer got there first."""
        update: Document = {"$set": change.fields}
        if change.entry is not None:
            update["$push"] = {"history": change.entry}
        if change.first_response is not None:
            update["$min"] = change.first_response  # keeps the earliest, sets a missing one
        saved: Document | None = await self.db[ISSUES].find_one_and_update(
            {"_id": issue_id, **expected},
            update,
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        return saved

    async def absorb_duplicate(
        self, target_id: str, carried: int, entry: Document, now: datetime, session: Session
    ) -> Document | None:
        """Counts `carried` supports a merge brings in and records the step, if the target
        is still open and unmerged; the saved target, or None."""
        saved: Document | None = await self.db[ISSUES].find_one_and_update(
            {"_id": target_id, **unmerged_open()},
            {
                "$inc": {"supporters_count": carried},
                "$push": {"history": entry},
                "$set": {"updated_at": now},
            },
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        return saved

    async def add_carried_supports(self, supports: list[Document], session: Session) -> None:
        """The supports a merge carries over, counted already (BulkWriteError when one of
        those people supported the target meanwhile: the merge is tried again)."""
        if supports:
            await self.db[SUPPORTS].insert_many(supports, session=session)

    async def keep_first_response(self, issue_id: str, first_response: Document) -> None:
        await self.db[ISSUES].update_one({"_id": issue_id}, {"$min": first_response})

    async def mark_answered(self, issue_id: str, now: datetime) -> None:
        """Records the department's official answer to an ACCEPTED issue, once: from then
        on it is not overdue (a conditional update, so racing comments keep the first)."""
        await self.db[ISSUES].update_one(
            {"_id": issue_id, "status": domain.AWAITING_ANSWER.value, "answered_at": None},
            {"$set": {"answered_at": now}},
        )

    async def resolved_before(self, cutoff: datetime) -> list[str]:
        cursor = self.db[ISSUES].find(
            {"status": Status.RESOLVED.value, "resolved_at": {"$lt": cutoff}}, {"_id": 1}
        )
        return [d["_id"] for d in await cursor.to_list()]

    async def collecting_initiatives(self) -> list[Document]:
        query = {"kind": Kind.INITIATIVE.value, "status": Status.COLLECTING.value}
        found: list[Document] = await self.db[ISSUES].find(query).to_list()
        return found

    async def overdue_unflagged(self, now: datetime) -> list[str]:
        cursor = self.db[ISSUES].find(_late(now), {"_id": 1})
        return [d["_id"] for d in await cursor.to_list()]

    async def flag_overdue(self, issue_id: str, now: datetime, session: Session) -> Document | None:
        """Marks the issue told-overdue unless it was already; the issue, or None."""
        flagged: Document | None = await self.db[ISSUES].find_one_and_update(
            {"_id": issue_id, **_late(now)},
            {"$set": {"overdue_notified": True}},
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        return flagged

    async def department_ids(self) -> list[str]:
        """Every department some category routes to, sorted."""
        return sorted(await self.db[CATEGORIES].distinct("department_id"))

    async def department_stats(self, department_id: str, now: datetime) -> Document:
        """Open, overdue and resolved counts and the median hours to a first response."""
        self.stats_computed += 1
        issues = self.db[ISSUES]
        mine = {"department_id": department_id}
        open_now = {**mine, "status": {"$in": _values(domain.OPEN)}}
        return {
            "department_id": department_id,
            "open": await issues.count_documents(open_now),
            "overdue": await issues.count_documents({**mine, **overdue_conditions(True, now)}),
            "resolved": await issues.count_documents(
                {**mine, "status": {"$in": [Status.RESOLVED.value, Status.CLOSED.value]}}
            ),
            "median_response_hours": await self._median_response(mine),
        }

    async def _median_response(self, mine: Document) -> float | None:
        answered = {**mine, "response_hours": {"$gte": 0}}
        count = await self.db[ISSUES].count_documents(answered)
        if not count:
            return None
        middle = (
            await self.db[ISSUES]
            .find(answered, {"response_hours": 1})
            .sort("response_hours", ASCENDING)
            .skip((count - 1) // 2)
            .limit(1 if count % 2 else 2)
            .to_list()
        )
        hours: float = sum(d["response_hours"] for d in middle) / len(middle)
        return round(hours, 2)

    # ───────────────────────── supports ─────────────────────────

    async def insert_support(self, support: Document) -> None:
        """DuplicateKeyError when the user supports the issue already (a unique index)."""
        await self.db[SUPPORTS].insert_one(support)

    async def count_support(self, issue_id: str, step: int) -> Document | None:
        """Adds `step` (1 or -1) to the issue's supporters; never below zero."""
        condition: Document = {"_id": issue_id}
        if step < 0:
            condition["supporters_count"] = {"$gt": 0}
        saved: Document | None = await self.db[ISSUES].find_one_and_update(
            condition, {"$inc": {"supporters_count": step}}, return_document=ReturnDocument.AFTER
        )
        return saved

    async def mark_counted(self, support_id: str, carried: Document) -> bool:
        """Marks a support counted with its event; False when it was withdrawn meanwhile."""
        marked = await self.db[SUPPORTS].update_one(
            {"_id": support_id}, {"$set": {"counted": True, **carried}}
        )
        return marked.matched_count > 0

    async def repair_counted(self, support_id: str, carried: Document) -> None:
        """Marks a support the sweep recounted, unless its writer marked it meanwhile."""
        await self.db[SUPPORTS].update_one(
            {"_id": support_id, "counted": False}, {"$set": {"counted": True, **carried}}
        )

    async def withdraw_support(
        self, issue_id: str, user_id: str, session: Session
    ) -> Document | None:
        """Removes a counted support and uncounts it; the issue, or None when there was
        nothing counted to withdraw (a support still being counted: its writer uncounts it)."""
        removed = await self.db[SUPPORTS].find_one_and_delete(
            {"issue_id": issue_id, "user_id": user_id}, session=session
        )
        if removed is None or not removed.get("counted"):
            return None
        saved: Document | None = await self.db[ISSUES].find_one_and_update(
            {"_id": issue_id, "supporters_count": {"$gt": 0}},
            {"$inc": {"supporters_count": -1}},
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        return saved

    async def supporter_ids(self, issue_id: str, session: Session | None = None) -> list[str]:
        cursor = self.db[SUPPORTS].find({"issue_id": issue_id}, {"user_id": 1}, session=session)
        return [d["user_id"] async for d in cursor]

    async def supported_among(self, user_id: str, issue_ids: list[str]) -> set[str]:
        """Which of `issue_ids` the user supports."""
        cursor = self.db[SUPPORTS].find(
            {"user_id": user_id, "issue_id": {"$in": list(set(issue_ids))}}, {"issue_id": 1}
        )
        return {d["issue_id"] async for d in cursor}

    async def stale_supports(self, cutoff: datetime) -> list[Document]:
        found: list[Document] = (
            await self.db[SUPPORTS].find({"counted": False, "at": {"$lt": cutoff}}).to_list()
        )
        return found

    async def recount(self, issue_id: str, seen_count: int, cutoff: datetime) -> int | None:
        """Sets the exact count (counted supports plus those older than `cutoff`; fresh
        uncounted ones count themselves) if the count is still `seen_count`."""
        exact = await self.db[SUPPORTS].count_documents(
            {"issue_id": issue_id, "$or": [{"counted": True}, {"at": {"$lt": cutoff}}]}
        )
        done = await self.db[ISSUES].update_one(
            {"_id": issue_id, "supporters_count": seen_count},
            {"$set": {"supporters_count": exact}},
        )
        return exact if done.matched_count else None

    # ───────────────────────── comments ─────────────────────────

    async def add_comment(self, comment: Document) -> None:
        await self.db[COMMENTS].insert_one(comment)

    async def comments_pages(
        self, issue_ids: list[str], *, first: int, after: str | None, shown: Document
    ) -> dict[str, tuple[list[Document], bool, int]]:
        """Per issue: its comments the viewer may see (`shown`, a condition) oldest first
        after the id `after` (at most `first`), whether more follow, and how many there
        are; two queries for any number of issues."""
        wanted = list(dict.fromkeys(issue_ids))
        totals = {
            row["_id"]: row["n"]
            async for row in await self.db[COMMENTS].aggregate(
                [
                    {"$match": {"issue_id": {"$in": wanted}, **shown}},
                    {"$group": {"_id": "$issue_id", "n": {"$sum": 1}}},
                ]
            )
        }
        window: Document = {"issue_id": {"$in": [i for i in wanted if totals.get(i)]}, **shown}
        if after is not None:
            window["_id"] = {"$gt": after}
        found: dict[str, list[Document]] = {i: [] for i in wanted}
        if window["issue_id"]["$in"]:
            async for comment in self.db[COMMENTS].find(window).sort("_id", ASCENDING):
                found[comment["issue_id"]].append(comment)
        return {i: (found[i][:first], len(found[i]) > first, totals.get(i, 0)) for i in wanted}

    # ───────────────────────── solver offers ─────────────────────────

    async def get_offer(self, offer_id: str) -> Document | None:
        return await self.db[OFFERS].find_one({"_id": offer_id})

    async def add_offer(self, offer: Document) -> None:
        """DuplicateKeyError when the solver offered already (a unique index)."""
        await self.db[OFFERS].insert_one(offer)

    async def offers_by_issues(
        self, issue_ids: list[str], *, limit: int
    ) -> dict[str, list[Document]]:
        """Each issue's first `limit` offers, oldest first: one bounded query per issue
        (on the (issue, id) index), however many offers an issue has."""
        wanted = list(dict.fromkeys(issue_ids))

        async def oldest(issue_id: str) -> list[Document]:
            cursor = self.db[OFFERS].find({"issue_id": issue_id}).sort("_id", ASCENDING)
            found: list[Document] = await cursor.limit(limit).to_list()
            return found

        pages = await asyncio.gather(*(oldest(i) for i in wanted))
        return dict(zip(wanted, pages, strict=True))

    async def take_offer(
        self, offer_id: str, issue_id: str, now: datetime, session: Session
    ) -> bool:
        """Accepts a pending offer and declines the issue's others; False when it
        was withdrawn or decided meanwhile."""
        taken = await self.db[OFFERS].update_one(
            {"_id": offer_id, "status": OFFER_PENDING},
            {"$set": {"status": OFFER_ACCEPTED, "decided_at": now}},
            session=session,
        )
        if taken.matched_count == 0:
            return False
        await self.db[OFFERS].update_many(
            {"issue_id": issue_id, "status": OFFER_PENDING},
            {"$set": {"status": OFFER_DECLINED, "decided_at": now}},
            session=session,
        )
        return True

    # ───────────────────────── the users projection ─────────────────────────

    async def user(self, user_id: str) -> Document | None:
        return await self.db[USERS].find_one({"_id": user_id, "erased_at": None})

    async def project_registered(self, event: UserRegistered, session: Session) -> None:
        # Only on insert: a profile or role event that overtook this one has newer facts.
        fields = {
            "display_name": event.display_name,
            "district_id": event.district_id,
            "roles": event.roles,
            "skills": [],
            "department_id": None,
            "phone_verified": event.phone_verified,
        }
        await self._project(event.user_id, {"$setOnInsert": fields}, session)

    async def project_profile(self, event: UserProfileUpdated, session: Session) -> None:
        fields = {
            "display_name": event.display_name,
            "district_id": event.district_id,
            "skills": event.skills,
            "organization": event.organization,
            "phone_verified": event.phone_verified,
        }
        await self._project(event.user_id, {"$set": fields}, session)

    async def project_roles(self, event: UserRoleChanged, session: Session) -> None:
        fields = {"roles": event.roles, "department_id": event.department_id}
        await self._project(event.user_id, {"$set": fields}, session)

    async def _project(self, user_id: str, update: Document, session: Session) -> None:
        users = self.db[USERS]
        if await users.find_one({"_id": user_id, "erased_at": {"$ne": None}}, session=session):
            return  # erased: a late or replayed event projects nothing about the person
        await users.update_one({"_id": user_id}, update, upsert=True, session=session)

    async def export_of(self, user_id: str) -> dict[str, list[Any]]:
        """Every record kept about the person: the projection, what they reported or
        proposed, their comments, supports, solver offers and photo uploads."""
        mine = {"user_id": user_id}
        return await export.records(
            self.db,
            {
                USERS: {"_id": user_id},
                ISSUES: {"reporter_id": user_id},
                COMMENTS: {"author_id": user_id},
                SUPPORTS: mine,
                OFFERS: {"solver_id": user_id},
                UPLOADS: {"owner_id": user_id},
            },
        )

    async def erase_user(self, user_id: str, at: datetime, session: Session) -> None:
        """Forgets the person's projected facts, leaving a tombstone. Their reports,
        comments and supports stay (counts and histories unchanged); the users
        subgraph answers their author's name with a neutral one."""
        await self.db[USERS].replace_one(
            {"_id": user_id}, {"_id": user_id, "erased_at": at}, upsert=True, session=session
        )


def _matching(skills: list[str]) -> Document:
    return {
        "status": {"$in": _values(domain.SOLVABLE)},
        "solver_id": None,
        "category": {"$in": skills},
        **SHOWN,
    }


def _late(now: datetime) -> Document:
    return {**overdue_conditions(True, now), "overdue_notified": {"$ne": True}}
