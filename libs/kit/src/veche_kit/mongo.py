"""The MongoDB client, index setup and transactions (PyMongo's async API)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from pymongo import AsyncMongoClient, IndexModel
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
