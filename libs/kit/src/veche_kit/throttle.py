"""Who the client is, and store-backed limits on what one client may do.

- `client_address(request, trusted)`: the caller's address. Behind proxies
  (the gateway forwards `X-Forwarded-For`, appending the address it saw), the
  header is read from the right and only hops through `trusted` proxies are
  skipped, so a client cannot pick its own address by sending the header.
  IPv6 clients count per /64, the block one subscriber usually holds.
- `RateLimiter.hit(...)`: at most `limit` hits per key per fixed window,
  counted by a conditional update in the service's store, so the limit holds
  across every instance of a service and under parallel requests.
- `RateLimiter.attempt(...)`: growing delays per key: `free` attempts, then
  each one waits `base * 2^n` seconds (up to `longest`) after the one before;
  one attempt wins at a time, the others are refused before any work.

Documents expire by a TTL index on `expires_at`; the ids carry their window,
so a store that has not yet deleted an old document never counts it again.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError
from starlette.requests import Request

from veche_kit.clock import utcnow
from veche_kit.errors import RateLimitedError
from veche_kit.mongo import Database, Document

RATE_LIMITS = "rate_limits"
INDEXES: dict[str, list[IndexModel]] = {
    RATE_LIMITS: [IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expiry")]
}
UNKNOWN_CLIENT = "unknown"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def trusted_networks(proxies: Sequence[str]) -> list[Network]:
    """Parses proxy addresses or CIDR blocks (`10.0.0.0/8`); ValueError names a bad one."""
    return [ipaddress.ip_network(p.strip(), strict=False) for p in proxies if p.strip()]


def _address(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def _key(address: Address) -> str:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def client_address(request: Request, trusted: Sequence[Network]) -> str:
    """The client this request comes from, as a rate-limit key."""
    peer = _address(request.client.host) if request.client else None
    if peer is None:
        return UNKNOWN_CLIENT
    hops = [h for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    current = peer
    # Walk back from the nearest hop while the hop that told us is a proxy we trust.
    while hops and any(current in network for network in trusted):
        told = _address(hops.pop())
        if told is None:
            break  # a trusted proxy passed on junk: the proxy itself is the best we know
        current = told
    return _key(current)


def _digest(key: str) -> str:
    # Keys hold emails and phone numbers: store them hashed.
    return hashlib.sha256(key.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Window:
    """`limit` hits per `seconds`; what to say when it is spent."""

    limit: int
    seconds: int
    message: str
    ru: str  # the message in Russian


def limited(message: str, ru: str, wait: int) -> RateLimitedError:
    """RATE_LIMITED: `message` (`ru` in Russian) and when to try again."""
    return RateLimitedError(
        f"{message} Try again in {wait} second(s).",
        retryAfterSeconds=wait,
        ru=f"{ru} Попробуйте снова через {wait} с.",
    )


class RateLimiter:
    """Counters and delays in one collection of a service's database."""

    def __init__(self, db: Database) -> None:
        self.collection = db[RATE_LIMITS]

    async def hit(self, bucket: str, key: str, window: Window, now: datetime | None = None) -> None:
        """Counts one hit; RATE_LIMITED (with `retryAfterSeconds`) once `window.limit` are spent."""
        now = now or utcnow()
        start = math.floor(now.timestamp() / window.seconds) * window.seconds
        ends = datetime.fromtimestamp(start + window.seconds, now.tzinfo)
        doc_id = f"{bucket}:{_digest(key)}:{start}"
        try:
            # Matches only below the limit; at the limit the upsert meets the existing id.
            await self.collection.update_one(
                {"_id": doc_id, "count": {"$lt": window.limit}},
                {"$inc": {"count": 1}, "$setOnInsert": {"expires_at": ends}},
                upsert=True,
            )
        except DuplicateKeyError:
            wait = max(1, math.ceil((ends - now).total_seconds()))
            raise limited(window.message, window.ru, wait) from None

    async def give_back(
        self, bucket: str, key: str, window: Window, now: datetime | None = None
    ) -> None:
        """Returns a hit (e.g. a sign-in that succeeded does not count towards a failure limit)."""
        now = now or utcnow()
        start = math.floor(now.timestamp() / window.seconds) * window.seconds
        await self.collection.update_one(
            {"_id": f"{bucket}:{_digest(key)}:{start}", "count": {"$gt": 0}},
            {"$inc": {"count": -1}},
        )

    async def attempt(
        self,
        bucket: str,
        key: str,
        *,
        free: int,
        base_seconds: float,
        longest_seconds: float,
        message: str,
        ru: str,
        now: datetime | None = None,
    ) -> None:
        """Takes the next attempt for `key`, or RATE_LIMITED saying when it may come:
        `free` at once, then each `base * 2^n` seconds after the one before."""
        now = now or utcnow()
        doc_id = f"{bucket}:{_digest(key)}"
        expires = now + timedelta(seconds=longest_seconds * 2 + 3600)
        try:
            # The free attempts: a conditional increment, so parallel ones share the budget.
            await self.collection.update_one(
                {"_id": doc_id, "attempts": {"$lt": free}},
                {"$inc": {"attempts": 1}, "$set": {"last_at": now, "expires_at": expires}},
                upsert=True,
            )
            return
        except DuplicateKeyError:
            pass
        current: Document | None = await self.collection.find_one({"_id": doc_id})
        if current is None:  # reset meanwhile: this attempt waits for the next call
            raise limited(message, ru, 1)
        delay = min(longest_seconds, base_seconds * 2 ** min(current["attempts"] - free, 40))
        allowed_at = current["last_at"] + timedelta(seconds=delay)
        if allowed_at <= now:
            # Compare-and-set on the state read: of racing attempts exactly one wins.
            won = await self.collection.find_one_and_update(
                {"_id": doc_id, "attempts": current["attempts"], "last_at": current["last_at"]},
                {"$inc": {"attempts": 1}, "$set": {"last_at": now, "expires_at": expires}},
                return_document=ReturnDocument.AFTER,
            )
            if won is not None:
                return
            allowed_at = now + timedelta(seconds=delay * 2)
        wait = max(1, math.ceil((allowed_at - now).total_seconds()))
        raise limited(message, ru, wait)

    async def reset(self, bucket: str, key: str) -> None:
        """Forgets a key's attempts (after a success)."""
        await self.collection.delete_one({"_id": f"{bucket}:{_digest(key)}"})
