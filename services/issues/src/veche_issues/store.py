"""The issues service's MongoDB collections, their indexes and the queries on them."""

from __future__ import annotations

import math
import re
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, GEOSPHERE, IndexModel

from veche_kit.mongo import Database, Document
from veche_kit.outbox import PENDING_INDEX

ISSUES = "issues"
SUPPORTS = "supports"
COMMENTS = "comments"
OFFERS = "solver_offers"
CATEGORIES = "categories"
DISTRICTS = "districts"
HOLIDAYS = "holidays"
USERS = "users"  # a projection of the users service's accounts, fed by user.* events

# Documents in these collections may carry their own pending event (single-document
# atomicity on hot paths); the relay publishes from them as from the outbox.
EVENT_CARRIERS = (ISSUES, SUPPORTS, COMMENTS, OFFERS)

INDEXES: dict[str, list[IndexModel]] = {
    ISSUES: [
        IndexModel([("location", GEOSPHERE)], name="location_2dsphere"),
        IndexModel([("search_terms", ASCENDING), ("_id", DESCENDING)], name="search_terms"),
        IndexModel([("status", ASCENDING), ("_id", DESCENDING)]),
        IndexModel([("category", ASCENDING), ("status", ASCENDING), ("_id", DESCENDING)]),
        IndexModel([("district_id", ASCENDING), ("_id", DESCENDING)]),
        IndexModel([("reporter_id", ASCENDING), ("_id", DESCENDING)]),
        IndexModel([("solver_id", ASCENDING), ("_id", DESCENDING)]),
        IndexModel([("department_id", ASCENDING), ("status", ASCENDING)]),
        IndexModel([("department_id", ASCENDING), ("response_hours", ASCENDING)]),
        IndexModel([("status", ASCENDING), ("resolved_at", ASCENDING)]),
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

EARTH_RADIUS_METERS = 6378100.0  # the radius MongoDB measures 2dsphere distances with


def new_id() -> str:
    """Ids are ObjectId strings: unique, and growing with time for stable paging."""
    return str(ObjectId())


async def find_by_ids(db: Database, collection: str, ids: list[str]) -> list[Document | None]:
    """The documents with `ids`, in that order, None where missing (for loaders)."""
    found = {d["_id"]: d async for d in db[collection].find({"_id": {"$in": list(set(ids))}})}
    return [found.get(i) for i in ids]


def prefix_filter(terms: list[str]) -> dict[str, Any]:
    """Every term must begin one of the document's stored search terms.

    Anchored, case-sensitive prefixes on a multikey index are index range scans
    on MongoDB, and need no `$text` index (which the embedded store lacks).
    """
    return {"$and": [{"search_terms": {"$regex": "^" + re.escape(t)}} for t in terms]}


def within(lat: float, lon: float, radius_meters: float) -> dict[str, Any]:
    """`$geoWithin` a circle: counts what `$geoNear` would list, without the order."""
    return {
        "location": {
            "$geoWithin": {"$centerSphere": [[lon, lat], radius_meters / EARTH_RADIUS_METERS]}
        }
    }


async def page_newest(
    db: Database, collection: str, query: dict[str, Any], *, first: int, after: str | None
) -> tuple[list[Document], bool, int]:
    """Newest first by `_id`; a cursor is the last id seen, so new arrivals never shift pages."""
    total = await db[collection].count_documents(query)
    window = query if after is None else {"$and": [query, {"_id": {"$lt": after}}]}
    cursor = db[collection].find(window).sort("_id", DESCENDING)
    documents: list[Document] = await cursor.limit(first + 1).to_list()
    return documents[:first], len(documents) > first, total


async def page_oldest(
    db: Database, collection: str, query: dict[str, Any], *, first: int, after: str | None
) -> tuple[list[Document], bool, int]:
    """Oldest first by `_id` (conversations read top to bottom)."""
    total = await db[collection].count_documents(query)
    window = query if after is None else {"$and": [query, {"_id": {"$gt": after}}]}
    cursor = db[collection].find(window).sort("_id", ASCENDING)
    documents: list[Document] = await cursor.limit(first + 1).to_list()
    return documents[:first], len(documents) > first, total


async def nearest(
    db: Database,
    query: dict[str, Any],
    *,
    lat: float,
    lon: float,
    radius_meters: float,
    limit: int,
    after: tuple[float, str] | None = None,
) -> list[tuple[Document, float]]:
    """Nearest first within the radius, ties by id, with each one's distance in metres.

    `$geoNear` rather than `$near`: it orders by distance on MongoDB and on the
    embedded store alike (whose `$near` returns index order), and it tells the
    distance, which the cursor needs.
    """
    pipeline: list[dict[str, Any]] = [
        {
            "$geoNear": {
                "near": {"type": "Point", "coordinates": [lon, lat]},
                "distanceField": "distance",
                "maxDistance": radius_meters,
                "query": query,
                "spherical": True,
            }
        },
    ]
    if after is not None:
        distance, last_id = after
        pipeline.append(
            {
                "$match": {
                    "$or": [
                        {"distance": {"$gt": distance}},
                        {"distance": distance, "_id": {"$gt": last_id}},
                    ]
                }
            }
        )
    pipeline += [{"$sort": {"distance": 1, "_id": 1}}, {"$limit": limit}]
    documents: list[Document] = await (await db[ISSUES].aggregate(pipeline)).to_list()
    return [(d, float(d.pop("distance"))) for d in documents]


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
    """A page of `nearest`; the cursor is (distance, id), so an issue that arrives
    nearer than the cursor does not shift later pages."""
    circle = within(lat, lon, radius_meters)
    total = await db[ISSUES].count_documents({"$and": [query, circle]} if query else circle)
    rows = await nearest(
        db, query, lat=lat, lon=lon, radius_meters=radius_meters, limit=first + 1, after=after
    )
    return rows[:first], len(rows) > first, total


def haversine_meters(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance on MongoDB's sphere, for tests and tie-breaking."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_METERS * math.asin(math.sqrt(a))
