"""Stored shapes that change between releases: a schema version per collection, and
the ordered migrations that bring documents from one version to the next.

A migration is a filter that matches the documents still in the old shape and
either the update (operators or an aggregation pipeline) that reshapes them in
the store, or, when the new shape needs Python (stems of a new stemmer), a
`reshape` function giving each document's new fields. Running one twice changes
nothing: the second run matches nothing, or finds every document already so. A
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pymongo import UpdateOne
from pymongo.errors import DuplicateKeyError

from veche_kit.clock import utcnow
from veche_kit.mongo import Database, Document

log = logging.getLogger(__name__)

VERSIONS = "schema_versions"  # {_id: collection, version, migrated_at}
LEASE = "migration_lease"  # {_id: "lease", holder, expires_at}


Reshape = Callable[[Document], Document]  # one document -> the fields to set on it
RESHAPE_BATCH = 1000


@dataclass(frozen=True)
class Migration:
    """Brings `collection` to `version` (1 for its first change, and so on): by `change`
    in the store, or by `reshape` in Python (reading only `reads`)."""

    collection: str
    version: int
    description: str
    old_shape: Document  # matches the documents this migration may have to change
    change: Document | list[Document] | None = None
    reshape: Reshape | None = None
    reads: Document | None = None  # the fields `reshape` needs

    async def run(self, db: Database, *, dry: bool = False) -> int:
        """Documents changed (or, dry, that would change)."""
        if self.change is not None:
            if dry:
                return await db[self.collection].count_documents(self.old_shape)
            result: Any = await db[self.collection].update_many(self.old_shape, self.change)
            return int(result.modified_count)
        assert self.reshape is not None
        changed = 0
        updates: list[UpdateOne] = []
        async for document in db[self.collection].find(self.old_shape, self.reads):
            fields = self.reshape(document)
            if any(document.get(k) != v for k, v in fields.items()):
                changed += 1
                updates.append(UpdateOne({"_id": document["_id"]}, {"$set": fields}))
            if len(updates) >= RESHAPE_BATCH and not dry:
                await db[self.collection].bulk_write(updates, ordered=False)
                updates = []
        if updates and not dry:
            await db[self.collection].bulk_write(updates, ordered=False)
        return changed


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
        if (m.change is None) == (m.reshape is None):
            raise ValueError(f"migration {m.description!r} needs exactly one of change, reshape")
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
    return [Outcome(m, await m.run(db, dry=True)) for m in await pending(db, migrations)]


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
            changed = await m.run(db)
            await db[VERSIONS].update_one(
                {"_id": m.collection},
                {"$set": {"version": m.version, "migrated_at": utcnow()}},
                upsert=True,
            )
            outcomes.append(Outcome(m, changed))
            log.info(
                "migrated",
                extra={
                    "collection": m.collection,
                    "version": m.version,
                    "migration": m.description,
                    "documents": changed,
                },
            )
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
        await db[LEASE].delete_one({"_id": "lease", "holder": holder})
    return outcomes
