"""Migrations against the real embedded store: 100,000 documents reshaped once,
a second run that changes nothing, two instances starting at once, a dry run, and
a store newer than the code refused."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from veche_kit.migrations import (
    LEASE,
    VERSIONS,
    Migration,
    SchemaTooNewError,
    dry_run,
    migrate,
    pending,
)
from veche_kit.mongo import Database, connect

# Photos stored as URL strings become objects with a `url` (room for size, alt text).
PHOTOS_AS_OBJECTS = Migration(
    collection="issues",
    version=1,
    description="issue photos: URL strings become {url} objects",
    old_shape={"photos": {"$elemMatch": {"$type": "string"}}},
    change=[
        {
            "$set": {
                "photos": {
                    "$map": {
                        "input": "$photos",
                        "as": "photo",
                        "in": {
                            "$cond": [
                                {"$eq": [{"$type": "$$photo"}, "string"]},
                                {"url": "$$photo"},
                                "$$photo",
                            ]
                        },
                    }
                }
            }
        }
    ],
)
PHOTO_COUNT = Migration(
    collection="issues",
    version=2,
    description="issue photos counted",
    old_shape={"photo_count": {"$exists": False}},
    change=[{"$set": {"photo_count": {"$size": "$photos"}}}],
)


@pytest.fixture
async def db(mongo_server_url: str) -> AsyncIterator[Database]:
    client = connect(mongo_server_url)
    yield client[f"migrations_{uuid.uuid4().hex[:8]}"]
    await client.close()


async def old_issues(db: Database, count: int) -> None:
    batch = 10_000
    for start in range(0, count, batch):
        await db["issues"].insert_many(
            [
                {"_id": f"i{n}", "photos": [f"https://photos.example/{n}.jpg"]}
                for n in range(start, min(start + batch, count))
            ]
        )


async def test_a_migration_reshapes_20000_documents_once(db: Database) -> None:
    # Twenty batches of RESHAPE_BATCH; the 100,000 it once wrote took 84 s of the suite.
    await old_issues(db, 20_000)
    [planned] = await dry_run(db, [PHOTOS_AS_OBJECTS])
    assert planned.documents == 20_000
    assert await db["issues"].count_documents({"photos.url": {"$exists": True}}) == 0  # dry

    [done] = await migrate(db, [PHOTOS_AS_OBJECTS])
    assert done.documents == 20_000
    assert await db["issues"].find_one({"_id": "i19999"}) == {
        "_id": "i19999",
        "photos": [{"url": "https://photos.example/19999.jpg"}],
    }
    assert await db[VERSIONS].find_one({"_id": "issues"}, {"_id": 0, "version": 1}) == {
        "version": 1
    }
    assert await migrate(db, [PHOTOS_AS_OBJECTS]) == []  # recorded: nothing pending
    # Even forced to run again (a version record lost), it finds nothing to change.
    await db[VERSIONS].delete_many({})
    [again] = await migrate(db, [PHOTOS_AS_OBJECTS])
    assert again.documents == 0
    assert await db[LEASE].count_documents({}) == 0


async def test_two_instances_starting_at_once_migrate_once(db: Database) -> None:
    await old_issues(db, 2_000)
    first, second = await asyncio.gather(
        migrate(db, [PHOTOS_AS_OBJECTS, PHOTO_COUNT], wait_seconds=0.05),
        migrate(db, [PHOTOS_AS_OBJECTS, PHOTO_COUNT], wait_seconds=0.05),
    )
    outcomes = [*first, *second]
    assert sorted((o.migration.version, o.documents) for o in outcomes) == [(1, 2000), (2, 2000)]
    assert [] in (first, second)  # one instance did it all, the other waited
    assert await db["issues"].count_documents({"photo_count": 1}) == 2000


async def test_a_store_newer_than_the_code_is_refused(db: Database) -> None:
    await db[VERSIONS].insert_one({"_id": "issues", "version": 3})
    with pytest.raises(
        SchemaTooNewError,
        match=r"issues at schema version 3, but this release knows versions up to 1",
    ):
        await migrate(db, [PHOTOS_AS_OBJECTS])
    assert await pending(db, [PHOTOS_AS_OBJECTS, PHOTO_COUNT, *_up_to(3)]) == []


def _up_to(version: int) -> list[Migration]:
    return [
        Migration("issues", v, f"step {v}", {"never": True}, {"$set": {"x": v}})
        for v in range(3, version + 1)
    ]


async def test_versions_out_of_order_are_a_mistake_in_the_code(db: Database) -> None:
    with pytest.raises(ValueError, match="the next version of issues is 1"):
        await migrate(db, [PHOTO_COUNT])
