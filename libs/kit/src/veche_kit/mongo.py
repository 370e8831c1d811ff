"""The MongoDB client, index setup, transactions and the queries every store shares
(PyMongo's async API)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

Document = dict[str, Any]
Database = AsyncDatabase[Document]
Session = AsyncClientSession
T = TypeVar("T")


def connect(url: str) -> AsyncMongoClient[Document]:
    """A client for one event loop; datetimes come back timezone-aware (UTC)."""
    return AsyncMongoClient(url, tz_aware=True, uuidRepresentation="standard")


async def ensure_indexes(db: Database, indexes: dict[str, Sequence[IndexModel]]) -> None:
    """Creates each collection's indexes; creating an existing index is a no-op."""
    for collection, models in indexes.items():
        if models:
            await db[collection].create_indexes(list(models))


async def in_transaction(
    client: AsyncMongoClient[Document], work: Callable[[Session], Awaitable[T]]
) -> T:
    """Runs `work` in one multi-document transaction, retried on transient conflicts."""
    async with client.start_session() as session:
        return await session.with_transaction(work)


def new_id() -> str:
    """Ids are ObjectId strings: unique, and growing with time for stable paging."""
    return str(ObjectId())


async def find_by_ids(db: Database, collection: str, ids: list[str]) -> list[Document | None]:
    """The documents with `ids`, in that order, None where missing (for loaders)."""
    found = {d["_id"]: d async for d in db[collection].find({"_id": {"$in": list(set(ids))}})}
    return [found.get(i) for i in ids]


async def page(
    db: Database,
    collection: str,
    query: Document,
    *,
    first: int,
    after: str | None,
    newest_first: bool = True,
    projection: Document | None = None,
) -> tuple[list[Document], bool, int]:
    """A page ordered by `_id` (newest or oldest first) after the id `after`;
    (documents, has_next, total). A cursor is the last id seen, so new arrivals
    never shift later pages.
    """
    # Without conditions the collection's metadata count (exact but after an unclean
    # shutdown) spares a scan of every document.
    total = await (
        db[collection].count_documents(query)
        if query
        else db[collection].estimated_document_count()
    )
    window = query
    if after is not None:
        position = {"_id": {"$lt" if newest_first else "$gt": after}}
        # Conditions side by side rather than under `$and` (the embedded store plans
        # those better), unless the query has its own `_id` condition to keep.
        window = {"$and": [query, position]} if "_id" in query else {**query, **position}
    cursor = db[collection].find(window, projection)
    cursor = cursor.sort("_id", DESCENDING if newest_first else ASCENDING)
    documents: list[Document] = await cursor.limit(first + 1).to_list()
    return documents[:first], len(documents) > first, total
