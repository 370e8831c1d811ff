"""Periodic work that one instance of a service does at a time: sweeps, the poll
closer, retention.

With several instances (replicas, `VECHE_WORKERS`), each runs the loop, but a
`Lease` in the service's own store lets one of them work per round: a document per
job, taken by a conditional upsert when free or expired and renewed by its holder
each round. When the holder dies, another instance takes over once the lease runs
out. The work stays idempotent on its own (conditional updates); the lease spares
the others the duplicate reads and writes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from veche_kit.clock import utcnow
from veche_kit.mongo import Database

LEASES = "leases"
RELEASE_SECONDS = 2.0  # how long a stop waits to release a lease
log = logging.getLogger(__name__)


def holder_name() -> str:
    """This process, as lease documents name it (host, pid and a random part)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Lease:
    """The right to do the job `name` for `seconds`, held by one process at a time."""

    def __init__(self, db: Database, name: str, seconds: float, holder: str | None = None) -> None:
        self.collection = db[LEASES]
        self.name = name
        self.seconds = seconds
        self.holder = holder or holder_name()
        self._until: datetime | None = None  # when the lease this process took runs out

    async def hold(self, now: datetime | None = None) -> bool:
        """Takes or renews the lease; False while another holder's lease runs."""
        now = now or utcnow()
        self._until = None
        try:
            await self.collection.find_one_and_update(
                {"_id": self.name, "$or": [{"holder": self.holder}, {"until": {"$lt": now}}]},
                {"$set": {"holder": self.holder, "until": now + timedelta(seconds=self.seconds)}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:  # the upsert met another holder's document
            return False
        self._until = now + timedelta(seconds=self.seconds)
        return True

    async def keep(self) -> bool:
        """As `hold`, but renews in the store only once half the lease has run: for work
        that asks many times a second (the outbox relay, woken by every commit)."""
        now = utcnow()
        if self._until is not None and self._until - now > timedelta(seconds=self.seconds / 2):
            return True
        return await self.hold(now)

    async def release(self) -> None:
        """Lets another instance take over at once (on a clean stop)."""
        self._until = None
        await self.collection.delete_one({"_id": self.name, "holder": self.holder})


async def every(
    seconds: float,
    work: Callable[[], Awaitable[object]],
    *,
    lease: Lease | None = None,
    first_wait: bool = False,
) -> None:
    """Runs `work()` every `seconds` for ever (while this process holds `lease`, if
    given); a failed round is logged and the next one tries again."""
    try:
        if first_wait:
            await asyncio.sleep(seconds)
        while True:
            try:
                if lease is None or await lease.hold():
                    await work()
            except Exception:  # a store outage: the next round tries again
                log.exception("periodic work failed; retrying at the next round")
            await asyncio.sleep(seconds)
    finally:
        if lease is not None:
            await release_quietly(lease)


async def release_quietly(lease: Lease) -> None:
    """Releases `lease` on a stop, even a cancelled one; a store that is gone lets it run out."""
    try:
        # bounded: a stop must not wait for a store that is gone (the driver would)
        await asyncio.wait_for(asyncio.shield(lease.release()), RELEASE_SECONDS)
    except Exception:  # the store is gone: the lease runs out by itself
        log.warning("lease %s not released; it expires by itself", lease.name)
