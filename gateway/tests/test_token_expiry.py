"""A subscription's end at its access token's expiry (subscriptions.until_expiry): the
`exp` read from the bearer token, and the timer that ends a quiet stream at it."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from veche_gateway.subscriptions import SubscriptionFailed, token_expiry, until_expiry


def bearer(claims: Any) -> dict[str, str]:
    body = base64.urlsafe_b64encode(orjson.dumps(claims)).rstrip(b"=").decode()
    return {"authorization": f"Bearer header.{body}.signature"}


def test_the_exp_claim_is_read_from_a_bearer_token() -> None:
    assert token_expiry(bearer({"sub": "u1", "exp": 1_800_000_000})) == 1_800_000_000
    assert token_expiry({}) is None
    assert token_expiry({"authorization": "Basic dTE6cHc="}) is None
    assert token_expiry({"authorization": "Bearer not-a-jwt"}) is None
    assert token_expiry({"authorization": "Bearer a.%%%.c"}) is None
    assert token_expiry(bearer({"sub": "u1"})) is None
    assert token_expiry(bearer({"exp": "soon"})) is None
    assert token_expiry(bearer({"exp": True})) is None
    assert token_expiry(bearer([1, 2])) is None


async def quiet(first: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    """One item, then nothing until cancelled (a subscription with no updates)."""
    yield first
    await asyncio.Event().wait()


async def test_a_quiet_stream_ends_unauthenticated_at_expiry() -> None:
    stream = until_expiry(quiet({"n": 1}), time.time() + 0.3)
    assert await anext(stream) == {"n": 1}
    with pytest.raises(SubscriptionFailed) as failed:
        await asyncio.wait_for(anext(stream), 10)
    assert failed.value.errors[0]["extensions"] == {
        "code": "UNAUTHENTICATED",
        "reason": "TOKEN_EXPIRED",
    }


async def test_an_expired_token_gets_nothing_and_no_token_means_no_timer() -> None:
    with pytest.raises(SubscriptionFailed):
        await anext(until_expiry(quiet({"n": 1}), time.time() - 1))

    async def three() -> AsyncIterator[dict[str, Any]]:
        for n in range(3):
            yield {"n": n}

    assert [item async for item in until_expiry(three(), None)] == [{"n": n} for n in range(3)]
