"""The issues service's MongoDB collections, their indexes and the queries on them."""

from __future__ import annotations

import re
from typing import Any

from bson import Regex
from pymongo import ASCENDING, DESCENDING, GEOSPHERE, IndexModel

from veche_issues import domain
from veche_kit.migrations import Migration
from veche_kit.mongo import Database, Document
from veche_kit.outbox import OUTBOX, PENDING_INDEX

ISSUES = "issues"
SUPPORTS = "supports"
COMMENTS = "comments"
OFFERS = "solver_offers"
CATEGORIES = "categories"
DISTRICTS = "districts"
HOLIDAYS = "holidays"
USERS = "users"  # a projection of the users service's accounts, fed by user.* events

# Where pending events live, in the order the relay drains them on each pass:
# documents that carry their own event (single-document atomicity on hot paths)
# before the outbox, so within a pass an issue.reported precedes the issue's status
# changes, an offer precedes its assignment and supports precede the threshold.
EVENT_SOURCES = (ISSUES, OFFERS, SUPPORTS, COMMENTS, OUTBOX)

INDEXES: dict[str, list[IndexModel]] = {
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
        # Partial: only the documents each query is about, so writes stay cheap.
        IndexModel(
            [("solver_id", ASCENDING), ("_id", DESCENDING)],
            name="solver",
            partialFilterExpression={"solver_id": {"$type": "string"}},
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
        PENDING_INDEX,
    ],
    CATEGORIES: [],
    DISTRICTS: [],
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


async def page_nearest(
    db: Database,
    query: dict[str, Any],
    *,
    lat: float,
    lon: float,
    radius_meters: float,
    first: int,
    after: tuple[float, str] | None,
) -> tuple[list[tuple[Document, float]], bool, int]:
    """A page of `nearest`: (rows, has_next, total)."""
    rows, total = await nearest(
        db, query, lat=lat, lon=lon, radius_meters=radius_meters, limit=first + 1, after=after
    )
    return rows[:first], len(rows) > first, total
