"""The MongoDB client, index setup, transactions and the queries every store shares
(PyMongo's async API)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel, monitoring
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

Document = dict[str, Any]
Database = AsyncDatabase[Document]
Session = AsyncClientSession
T = TypeVar("T")


def connect(
    url: str, listeners: Sequence[monitoring.CommandListener] = ()
) -> AsyncMongoClient[Document]:
    """A client for one event loop; datetimes come back timezone-aware (UTC). `listeners`
    see every command (the service's metrics time them)."""
    return AsyncMongoClient(
        url, tz_aware=True, uuidRepresentation="standard", event_listeners=list(listeners)
    )


class IndexConflictError(RuntimeError):
    """A stored index has the name of one the code declares but another definition."""


def _same_index(declared: Mapping[str, Any], stored: Mapping[str, Any]) -> bool:
    """True when `stored` has the key and every option `declared` sets. A store may add
    options of its own (`2dsphereIndexVersion`, `v`): those are not a difference."""
    if list(declared["key"].items()) != list(stored["key"].items()):
        return False
    return all(stored.get(option) == value for option, value in declared.items() if option != "key")


async def ensure_indexes(db: Database, indexes: Mapping[str, Sequence[IndexModel]]) -> None:
    """Creates each collection's missing indexes, so a restart on existing data is a no-op.

    Compared with what the store reports rather than re-sent: the embedded store refuses
    `createIndexes` for an index it already holds with options it added itself.
    """
    for collection, models in indexes.items():
        if not models:
            continue
        stored = {index["name"]: index async for index in await db[collection].list_indexes()}
        missing: list[IndexModel] = []
        for model in models:
            declared = model.document
            existing = stored.get(declared["name"])
            if existing is None:
                missing.append(model)
            elif not _same_index(declared, existing):
                raise IndexConflictError(
                    f"index {declared['name']!r} on {db.name}.{collection} is stored as "
                    f"{dict(existing)} but the code declares {dict(declared)}: drop it "
                    f"(db.{collection}.dropIndex) or migrate it before starting"
                )
        if missing:
            await db[collection].create_indexes(missing)


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
