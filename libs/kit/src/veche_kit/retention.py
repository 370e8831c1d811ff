"""How long a service keeps what it need not keep for ever (152-FZ: no longer than the
purpose needs).

Each `Rule` names a collection, the date field that starts the clock and, optionally,
which documents it applies to. `Retention.sweep` deletes what is older than its rule
allows; `run` sweeps every `every_seconds` for the service's life, on one instance at
a time when given a `Lease`. A sweep is one `delete_many` per rule on an indexed date
field, so two instances sweeping at once would only repeat each other's harmless deletes. (MongoDB's TTL indexes would do it
too, but not every MongoDB-wire server runs a TTL monitor, and a rule here is tested.)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from veche_kit.clock import utcnow
from veche_kit.mongo import Database, Document
from veche_kit.periodic import Lease, every

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rule:
    collection: str
    date_field: str  # when the clock starts (a datetime field)
    keep: timedelta  # how long after it the document goes
    only: Document = field(default_factory=dict)  # e.g. {"read": True}


class Retention:
    def __init__(self, db: Database, rules: Sequence[Rule], every_seconds: float = 600.0) -> None:
        self.db = db
        self.rules = tuple(rules)
        self.every_seconds = every_seconds

    async def sweep(self, now: datetime | None = None) -> dict[str, int]:
        """Deletes what every rule no longer keeps; collection -> how many went."""
        now = now or utcnow()
        removed: dict[str, int] = {}
        for rule in self.rules:
            query = {**rule.only, rule.date_field: {"$lt": now - rule.keep}}
            result = await self.db[rule.collection].delete_many(query)
            removed[rule.collection] = removed.get(rule.collection, 0) + result.deleted_count
        return removed

    async def run(self, lease: Lease | None = None) -> None:
        """Sweeps every `every_seconds` (while this instance holds `lease`, if given)."""
        await every(self.every_seconds, self._sweep_and_tell, lease=lease)

    async def _sweep_and_tell(self) -> None:
        removed = await self.sweep()
        if any(removed.values()):
            log.info("retention sweep", extra={"removed": removed})
