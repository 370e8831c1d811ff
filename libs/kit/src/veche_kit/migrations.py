"""Stored shapes that change between releases: a schema version per collection, and
the ordered migrations that bring documents from one version to the next.

A migration is data: a filter that matches exactly the documents still in the old
shape and the update (operators or an aggregation pipeline) that reshapes them.
Running one twice changes nothing, because the second run matches nothing. A
service runs its pending migrations at start under a lease, so one instance
migrates while the others wait; a store whose version is newer than the code
knows is refused, since old code would misread (or rewrite) newer documents.

    .venv/bin/python -m veche_stack.migrate issues --dry-run   # what would change
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError

from veche_kit.clock import utcnow
from veche_kit.mongo import Database, Document

log = logging.getLogger(__name__)

VERSIONS = "schema_versions"  # {_id: collection, version, migrated_at}
LEASE = "migration_lease"  # {_id: "lease", holder, expires_at}


@dataclass(frozen=True)
class Migration:
    """Brings `collection` to `version` (1 for its first change, and so on)."""

    collection: str
    version: int
    description: str
    old_shape: Document  # matches exactly the documents this migration must change
    change: Document | list[Document]


@dataclass(frozen=True)
class Outcome:
    """What a migration changed (or, in a dry run, would change)."""

    migration: Migration
    documents: int


class SchemaTooNewError(RuntimeError):
    """The store holds documents of a newer shape than this code knows."""


def check_order(migrations: Sequence[Migration]) -> None:
    """Versions of each collection count up from 1, in the order given."""
    last: dict[str, int] = {}
    for m in migrations:
        expected = last.get(m.collection, 0) + 1
        if m.version != expected:
            raise ValueError(
                f"migration {m.description!r} brings {m.collection} to version {m.version}, "
                f"but the next version of {m.collection} is {expected}"
            )
        last[m.collection] = m.version


async def stored_versions(db: Database) -> dict[str, int]:
    return {d["_id"]: int(d["version"]) async for d in db[VERSIONS].find()}


async def pending(db: Database, migrations: Sequence[Migration]) -> list[Migration]:
    """The migrations the store has not had yet, in order; refuses a newer store."""
    check_order(migrations)
    stored = await stored_versions(db)
    known: dict[str, int] = {}
    for m in migrations:
        known[m.collection] = m.version
    for collection, version in stored.items():
        if version > known.get(collection, 0):
            raise SchemaTooNewError(
                f"the store {db.name} holds {collection} at schema version {version}, but this "
                f"release knows versions up to {known.get(collection, 0)}: run the release "
                "that wrote it, or restore a backup taken before the upgrade"
            )
    return [m for m in migrations if m.version > stored.get(m.collection, 0)]


async def dry_run(db: Database, migrations: Sequence[Migration]) -> list[Outcome]:
    """What `migrate` would change, changing nothing."""
    return [
        Outcome(m, await db[m.collection].count_documents(m.old_shape))
        for m in await pending(db, migrations)
    ]


async def _take_lease(db: Database, holder: str, seconds: float) -> bool:
    now = utcnow()
    try:
        await db[LEASE].update_one(
            {"_id": "lease", "$or": [{"expires_at": {"$lt": now}}, {"holder": holder}]},
            {"$set": {"holder": holder, "expires_at": now + timedelta(seconds=seconds)}},
            upsert=True,
        )
    except DuplicateKeyError:
        return False  # another instance holds it
    return True


async def _keep_lease(db: Database, holder: str, seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds / 3)
        await _take_lease(db, holder, seconds)


async def migrate(
    db: Database,
    migrations: Sequence[Migration],
    *,
    lease_seconds: float = 60.0,
    wait_seconds: float = 0.5,
) -> list[Outcome]:
    """Runs the pending migrations, once across every instance sharing the store."""
    if not await pending(db, migrations):
        return []
    holder = uuid.uuid4().hex
    while not await _take_lease(db, holder, lease_seconds):
        log.info("another instance is migrating the store; waiting")
        await asyncio.sleep(wait_seconds)
        if not await pending(db, migrations):
            return []
    keeper = asyncio.create_task(_keep_lease(db, holder, lease_seconds))
    outcomes: list[Outcome] = []
    try:
        for m in await pending(db, migrations):  # read again: under the lease now
            result: Any = await db[m.collection].update_many(m.old_shape, m.change)
            await db[VERSIONS].update_one(
                {"_id": m.collection},
                {"$set": {"version": m.version, "migrated_at": utcnow()}},
                upsert=True,
            )
            outcomes.append(Outcome(m, result.modified_count))
            log.info(
                "migrated",
                extra={
                    "collection": m.collection,
                    "version": m.version,
                    "migration": m.description,
                    "documents": result.modified_count,
                },
            )
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
        await db[LEASE].delete_one({"_id": "lease", "holder": holder})
    return outcomes
