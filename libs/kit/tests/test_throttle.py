"""The client address behind proxies, and limits that hold across instances of a
service: two limiters on two store clients (as two replicas would be) share one budget."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from starlette.requests import Request

from veche_kit.clock import utcnow
from veche_kit.errors import RateLimitedError
from veche_kit.mongo import connect, ensure_indexes
from veche_kit.throttle import INDEXES, RateLimiter, Window, client_address, trusted_networks

TRUSTED = trusted_networks(["127.0.0.1", "10.0.0.0/8"])


def request(peer: str, forwarded: str | None = None) -> Request:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded is not None else []
    return Request({"type": "http", "client": (peer, 5000), "headers": headers})


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.7", None, "203.0.113.7"),
        # An untrusted peer's header is not believed: it could name anyone.
        ("203.0.113.7", "198.51.100.1", "203.0.113.7"),
        # Through the gateway: the hop it appended is the client; a forged one before it is not.
        ("127.0.0.1", "6.6.6.6, 198.51.100.1", "198.51.100.1"),
        # Through two trusted proxies.
        ("127.0.0.1", "198.51.100.1, 10.1.2.3", "198.51.100.1"),
        # A trusted proxy that passed on junk: the proxy is the best we know.
        ("127.0.0.1", "not-an-address", "127.0.0.1"),
        # IPv6 clients count per /64.
        ("2001:db8:1:2:aaaa::1", None, "2001:db8:1:2::/64"),
        ("::ffff:198.51.100.9", None, "198.51.100.9"),
    ],
)
def test_client_address(peer: str, forwarded: str | None, client: str) -> None:
    assert client_address(request(peer, forwarded), TRUSTED) == client


@pytest.fixture
async def two_instances(mongo_server_url: str) -> AsyncIterator[tuple[RateLimiter, RateLimiter]]:
    name = f"kit_{uuid.uuid4().hex[:8]}"
    first, second = connect(mongo_server_url), connect(mongo_server_url)
    await ensure_indexes(first[name], dict(INDEXES))
    yield RateLimiter(first[name]), RateLimiter(second[name])
    await first.close()
    await second.close()


async def test_a_window_holds_across_instances_under_parallel_hits(
    two_instances: tuple[RateLimiter, RateLimiter],
) -> None:
    window = Window(7, 3600, "Too many.", "Слишком много.")
    limiters = [two_instances[i % 2] for i in range(30)]
    results = await asyncio.gather(
        *(limiter.hit("b", "client-1", window) for limiter in limiters), return_exceptions=True
    )
    refused = [r for r in results if isinstance(r, RateLimitedError)]
    assert len(refused) == 30 - 7
    assert all(r is None or isinstance(r, RateLimitedError) for r in results)
    assert refused[0].code == "RATE_LIMITED"
    assert 0 < refused[0].extensions["retryAfterSeconds"] <= 3600
    await two_instances[0].hit("b", "client-2", window)  # another key, its own budget


async def test_delays_grow_and_one_racer_wins(
    two_instances: tuple[RateLimiter, RateLimiter],
) -> None:
    now = utcnow()
    options = {
        "free": 2,
        "base_seconds": 10.0,
        "longest_seconds": 40.0,
        "message": "Wait.",
        "ru": "Ждите.",
    }

    async def attempt(limiter: RateLimiter, at: timedelta) -> bool:
        try:
            await limiter.attempt("login", "key", now=now + at, **options)  # type: ignore[arg-type]
        except RateLimitedError:
            return False
        return True

    racing = [attempt(two_instances[i % 2], timedelta(0)) for i in range(12)]
    assert sum(await asyncio.gather(*racing)) == 2  # the free attempts only
    assert not await attempt(two_instances[0], timedelta(seconds=9))
    racing = [attempt(two_instances[i % 2], timedelta(seconds=10)) for i in range(8)]
    assert sum(await asyncio.gather(*racing)) == 1  # then one at a time, 10 s after
    assert not await attempt(two_instances[0], timedelta(seconds=29))
    assert await attempt(two_instances[1], timedelta(seconds=30))  # then 20 s
    assert not await attempt(two_instances[1], timedelta(seconds=69))
    assert await attempt(two_instances[1], timedelta(seconds=70))  # capped at 40 s
    assert await attempt(two_instances[0], timedelta(seconds=110))
    await two_instances[0].reset("login", "key")
    assert await attempt(two_instances[0], timedelta(seconds=111))
