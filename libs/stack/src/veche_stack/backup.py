"""Backups of each service's store, restore, and reconcile after a partial restore.

    python -m veche_stack.backup all|users|polls|issues     # while the stack runs
    python -m veche_stack.backup restore issues [--from ARCHIVE]   # the stack stopped
    python -m veche_stack.backup reconcile issues           # the stack running again
    python -m veche_stack.backup list

Archives go to `VECHE_BACKUP_DIR` (default `<data dir>/backups`), one file per
service and time, and the newest `VECHE_BACKUP_KEEP` (default 14) of each service
are kept. The embedded store is copied as a consistent snapshot of its storage (a
checkpoint, then the files); a real MongoDB (`*_MONGO_URL`) is dumped through the
driver in a snapshot session into mongodump's layout (`<db>/<collection>.bson` and
`.metadata.json`), which `mongorestore` reads too.

A restore replaces one store with an older copy, so the other services know facts
it has lost and it has missed facts they told. `reconcile` makes every service
publish again the events it has kept since the backup was taken, with their own
ids: each consumer applies only those it never applied (its processed-event
ids), so the restored service catches up and nothing is counted twice.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import bson
from bson import ObjectId, json_util
from pymongo import UpdateOne
from secantus.storage import extract_backup_archive

from veche_kit.clock import utcnow
from veche_kit.mongo import Database, connect
from veche_stack.leftovers import find_holdings
from veche_stack.stack import SERVICES, ServiceSpec, Stack, StackConfig

STAMP = "%Y%m%dT%H%M%SZ"
# Events sent shortly before a backup may have been applied by their consumers only
# after it: reconcile publishes again from this long before the backup (harmless,
# since consumers skip what they applied).
RECONCILE_MARGIN = timedelta(hours=1)
RESTORED = "restored.json"  # beside a restored store: which backup, taken when


@dataclass(frozen=True)
class Archive:
    service: str
    taken_at: datetime
    path: Path

    @classmethod
    def parse(cls, path: Path) -> Archive | None:
        service, _, rest = path.name.partition("-")
        stamp = rest.split(".", 1)[0]
        try:
            taken = datetime.strptime(stamp, STAMP).replace(tzinfo=utcnow().tzinfo)
        except ValueError:
            return None
        return cls(service, taken, path)

    @property
    def embedded(self) -> bool:
        return self.path.name.endswith(".store.tar.gz")


class Backups:
    """The stack's stores as the backup tool sees them."""

    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        self.stack = Stack(StackConfig.from_env(environ))
        data_dir = self.stack.config.data_dir
        self.directory = Path(environ.get("VECHE_BACKUP_DIR", data_dir / "backups")).resolve()
        self.keep = int(environ.get("VECHE_BACKUP_KEEP", "14"))
        self.environ = environ

    def spec(self, name: str) -> ServiceSpec:
        for spec in SERVICES:
            if spec.name == name:
                return spec
        raise SystemExit(
            f"no service {name!r}; choose one of {', '.join(s.name for s in SERVICES)}"
        )

    def db_name(self, spec: ServiceSpec) -> str:
        return spec.mongo_db(self.environ)

    def embedded(self, spec: ServiceSpec) -> bool:
        return spec.name not in self.stack.config.mongo_urls

    def archives(self, service: str) -> list[Archive]:
        found = [Archive.parse(p) for p in self.directory.glob(f"{service}-*.tar.gz")]
        return sorted((a for a in found if a is not None), key=lambda a: a.taken_at)

    # ─────────────────────────── backup ───────────────────────────

    async def backup(self, spec: ServiceSpec) -> Archive:
        self.directory.mkdir(parents=True, exist_ok=True)
        taken = utcnow().replace(microsecond=0)
        stamp = taken.strftime(STAMP)
        client = connect(self.stack.store_url(spec.name))
        try:
            if self.embedded(spec):
                path = self.directory / f"{spec.name}-{stamp}.store.tar.gz"
                # The store checkpoints and archives its own files: one consistent moment.
                await client.admin.command(
                    {"secantusAdmin.backupArchive": 1, "outputPath": str(path)}
                )
            else:
                path = self.directory / f"{spec.name}-{stamp}.dump.tar.gz"
                await dump(client[self.db_name(spec)], path, snapshot=True)
        finally:
            await client.close()
        self._prune(spec.name)
        return Archive(spec.name, taken, path)

    def _prune(self, service: str) -> None:
        archives = self.archives(service)
        for old in archives[: max(0, len(archives) - self.keep)]:
            old.path.unlink()

    # ─────────────────────────── restore ───────────────────────────

    async def restore(self, spec: ServiceSpec, archive: Archive) -> str:
        if archive.embedded != self.embedded(spec):
            kind = "embedded store" if archive.embedded else "MongoDB dump"
            raise SystemExit(f"{archive.path} is a {kind} archive; {spec.name}'s store is not")
        if self.embedded(spec):
            return self._restore_embedded(spec, archive)
        client = connect(self.stack.store_url(spec.name))
        try:
            db = client[self.db_name(spec)]
            await load_dump(db, archive.path)
            await db["_restored"].replace_one(
                {"_id": "last"}, {"backup_at": archive.taken_at}, upsert=True
            )
        finally:
            await client.close()
        return f"restored {spec.name} ({self.db_name(spec)}) from {archive.path}"

    def _restore_embedded(self, spec: ServiceSpec, archive: Archive) -> str:
        store = self.stack.store_dir(spec)
        held = find_holdings(
            {f"{spec.name} store": self.stack.config.mongo_ports[spec.name]}, {spec.name: store}
        )
        if held:
            raise SystemExit(f"stop the stack first (Ctrl-C in `make run`): {held[0].message()}")
        aside = store.with_name(f"{store.name}.replaced-{utcnow().strftime(STAMP)}")
        staging = store.with_name(f"{store.name}.restoring")
        shutil.rmtree(staging, ignore_errors=True)
        extract_backup_archive(str(archive.path), str(staging))
        (staging / RESTORED).write_text(json.dumps({"backup_at": archive.taken_at.isoformat()}))
        if store.exists():
            store.rename(aside)
        staging.rename(store)
        kept = f"; the replaced store is kept in {aside}" if aside.exists() else ""
        return f"restored {spec.name} from {archive.path}{kept}"

    async def restored_backup_time(self, spec: ServiceSpec) -> datetime | None:
        if self.embedded(spec):
            record = self.stack.store_dir(spec) / RESTORED
            if not record.exists():
                return None
            return datetime.fromisoformat(json.loads(record.read_text())["backup_at"])
        client = connect(self.stack.store_url(spec.name))
        try:
            found = await client[self.db_name(spec)]["_restored"].find_one({"_id": "last"})
        finally:
            await client.close()
        return found["backup_at"] if found else None

    # ─────────────────────────── reconcile ───────────────────────────

    async def reconcile(self, restored: ServiceSpec, since: datetime | None) -> dict[str, int]:
        """Every service publishes again what it kept since `since`; returns the counts."""
        counts: dict[str, int] = {}
        for spec in self.stack.services:
            client = connect(self.stack.store_url(spec.name))
            try:
                counts[spec.name] = await republish(client[self.db_name(spec)], since)
            finally:
                await client.close()
        return counts


async def dump(db: Database, path: Path, *, snapshot: bool) -> None:
    """Every collection of `db` in mongodump's layout, tarred and gzipped at `path`."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / db.name
        folder.mkdir()
        async with db.client.start_session(snapshot=snapshot) as session:
            for name in await db.list_collection_names(session=session):
                indexes = [i async for i in await db[name].list_indexes(session=session)]
                metadata = {"options": {}, "indexes": indexes, "collectionName": name}
                (folder / f"{name}.metadata.json").write_text(json_util.dumps(metadata))
                with (folder / f"{name}.bson").open("wb") as out:
                    async for document in db[name].find({}, session=session):
                        out.write(bson.encode(document))
        with tarfile.open(path, "w:gz") as tar:
            tar.add(folder, arcname=db.name)


async def load_dump(db: Database, path: Path) -> None:
    """Replaces `db`'s collections with those of a `dump` archive."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = _extract(path, Path(tmp))
        for metadata_path in sorted(folder.glob("*.metadata.json")):
            name = metadata_path.name.removesuffix(".metadata.json")
            metadata = json_util.loads(metadata_path.read_text())
            await db[name].drop()
            documents = bson.decode_all((folder / f"{name}.bson").read_bytes())
            for start in range(0, len(documents), 1000):
                await db[name].insert_many(documents[start : start + 1000])
            for index in metadata["indexes"]:
                if index["name"] == "_id_":
                    continue
                options = {k: v for k, v in index.items() if k not in ("key", "v", "ns")}
                await db[name].create_index(list(index["key"].items()), **options)


def _extract(archive: Path, into: Path) -> Path:
    """Unpacks a `dump` archive; returns its one database folder."""
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(into, filter="data")
    [folder] = [p for p in into.iterdir() if p.is_dir()]
    return folder


async def republish(db: Database, since: datetime | None) -> int:
    """Marks the envelopes `db` kept (sent since `since`) pending again, in the order
    they occurred, so its relay publishes them again with their own ids."""
    query: dict[str, Any] = {"envelope": {"$exists": True}, "sent_at": {"$exists": True}}
    if since is not None:
        query["sent_at"] = {"$gte": since}
    marked = 0
    for name in await db.list_collection_names():
        found = db[name].find(query, {"envelope.occurred_at": 1}).sort("_id", 1)
        documents = sorted(
            await found.to_list(),
            key=lambda d: datetime.fromisoformat(d["envelope"]["occurred_at"]),
        )
        updates = [
            UpdateOne({"_id": d["_id"]}, {"$set": {"pending": True, "seq": ObjectId()}})
            for d in documents
        ]
        for start in range(0, len(updates), 1000):
            await db[name].bulk_write(updates[start : start + 1000], ordered=True)
        marked += len(updates)
    return marked


async def _main(args: argparse.Namespace) -> int:
    backups = Backups()
    if args.command == "list":
        for spec in SERVICES:
            for archive in backups.archives(spec.name):
                print(f"{spec.name:<7} {archive.taken_at.isoformat()}  {archive.path}")
        return 0
    if args.command in ("restore", "reconcile"):
        spec = backups.spec(args.target)
        if args.command == "restore":
            archives = backups.archives(spec.name)
            if args.source:
                chosen = Archive.parse(args.source)
                if chosen is None:
                    print(f"{args.source} is not a backup archive's name", file=sys.stderr)
                    return 1
            elif archives:
                chosen = archives[-1]
            else:
                print(f"no backup of {spec.name} in {backups.directory}", file=sys.stderr)
                return 1
            print(await backups.restore(spec, chosen))
            print(
                f"next: start the stack, then `python -m veche_stack.backup reconcile {spec.name}`"
            )
            return 0
        since = datetime.fromisoformat(args.since) if args.since else None
        if since is None:
            backup_at = await backups.restored_backup_time(spec)
            since = backup_at - RECONCILE_MARGIN if backup_at else None
        counts = await backups.reconcile(spec, since)
        where = f"since {since.isoformat()}" if since else "(all kept events)"
        for name, count in counts.items():
            print(f"{name}: {count} event(s) {where} published again")
        return 0
    names = [s.name for s in backups.stack.services] if args.command == "all" else [args.command]
    for name in names:
        archive = await backups.backup(backups.spec(name))
        print(f"{name}: {archive.path}")
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m veche_stack.backup",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", help="all, a service name, restore, reconcile or list")
    parser.add_argument("target", nargs="?", help="restore/reconcile: the service")
    parser.add_argument("--from", dest="source", help="restore: the archive (default: newest)")
    parser.add_argument("--since", help="reconcile: events sent since (ISO time)")
    args = parser.parse_args(argv)
    if args.source:
        args.source = Path(args.source).resolve()
    if args.command in ("restore", "reconcile") and not args.target:
        parser.error(f"{args.command} needs a service")
    raise SystemExit(asyncio.run(_main(args)))


if __name__ == "__main__":
    main()
