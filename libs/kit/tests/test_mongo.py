"""Index setup against the real embedded store: a service that starts again on its
own data finds its indexes there and neither fails nor duplicates them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence

import pytest
from pymongo import ASCENDING, DESCENDING, GEOSPHERE, IndexModel

from veche_kit.mongo import Database, IndexConflictError, connect, ensure_indexes
from veche_kit.outbox import OUTBOX, PENDING_INDEX

# One of each kind the services declare: geo (the store adds `2dsphereIndexVersion`),
# unique, sparse, partial, compound with a descending part.
KINDS: dict[str, Sequence[IndexModel]] = {
    "things": [
        IndexModel([("location", GEOSPHERE)], name="location_2dsphere"),
        IndexModel([("email", ASCENDING)], unique=True, name="email_unique"),
        IndexModel([("phone", ASCENDING)], unique=True, sparse=True),
        IndexModel(
            [("solver_id", ASCENDING), ("_id", DESCENDING)],
            name="solver",
            partialFilterExpression={"solver_id": {"$type": "string"}},
        ),
    ],
    OUTBOX: [PENDING_INDEX],
}


@pytest.fixture
async def db(mongo_server_url: str) -> AsyncIterator[Database]:
    client = connect(mongo_server_url)
    yield client[f"kit_{uuid.uuid4().hex[:8]}"]
    await client.close()


async def index_names(db: Database, collection: str) -> list[str]:
    return sorted([index["name"] async for index in await db[collection].list_indexes()])


async def test_ensuring_indexes_again_is_a_no_op(db: Database, mongo_server_url: str) -> None:
    await ensure_indexes(db, KINDS)
    before = await index_names(db, "things")
    await ensure_indexes(db, KINDS)
    # A new client, as a restarted service has.
    again = connect(mongo_server_url)
    try:
        await ensure_indexes(again[db.name], KINDS)
    finally:
        await again.close()
    assert await index_names(db, "things") == before
    assert len(before) == 5  # _id_ and the four declared


async def test_an_index_stored_with_another_definition_is_named(db: Database) -> None:
    await db["things"].create_index([("email", ASCENDING)], name="email_unique")
    with pytest.raises(IndexConflictError, match=r"'email_unique' on kit_\w+\.things"):
        await ensure_indexes(db, KINDS)


async def test_a_missing_index_is_added_beside_existing_ones(db: Database) -> None:
    await ensure_indexes(db, {"things": list(KINDS["things"])[:2]})
    await ensure_indexes(db, KINDS)
    assert "solver" in await index_names(db, "things")
