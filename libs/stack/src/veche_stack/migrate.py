"""`python -m veche_stack.migrate all|users|polls|issues [--dry-run]`: a service's
pending migrations (its `store.MIGRATIONS`), run now or only reported.

Services run their migrations at start anyway; this is for a release rehearsal
(`--dry-run` on a copy of production, to see how many documents would change)
and for migrating before the new release's instances start. The store must be
running (`make run`, or a real MongoDB at `*_MONGO_URL`).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
from collections.abc import Sequence

from veche_kit.migrations import Migration, dry_run, migrate
from veche_kit.mongo import connect
from veche_stack.stack import SERVICES, Stack, StackConfig


def migrations_of(service: str) -> Sequence[Migration]:
    store = importlib.import_module(f"veche_{service}.store")
    found: Sequence[Migration] = store.MIGRATIONS
    return found


async def run(names: list[str], only_report: bool) -> None:
    stack = Stack(StackConfig.from_env())
    for name in names:
        [spec] = [s for s in SERVICES if s.name == name]
        client = connect(stack.store_url(name))
        try:
            db = client[spec.mongo_db()]
            work = dry_run if only_report else migrate
            outcomes = await work(db, migrations_of(name))
        finally:
            await client.close()
        verb = "would change" if only_report else "changed"
        if not outcomes:
            print(f"{name}: nothing pending")
        for outcome in outcomes:
            m = outcome.migration
            print(
                f"{name}: {m.collection} -> version {m.version} ({m.description}): "
                f"{verb} {outcome.documents} document(s)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m veche_stack.migrate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("service", choices=["all", *(s.name for s in SERVICES)])
    parser.add_argument("--dry-run", action="store_true", help="report, change nothing")
    args = parser.parse_args()
    names = [s.name for s in SERVICES] if args.service == "all" else [args.service]
    asyncio.run(run(names, args.dry_run))


if __name__ == "__main__":
    main()
