"""Identical subscriptions share one upstream subscription (shared.Feeds): one source
per key, a late joiner starts from the latest event, the source's end or failure
reaches every client, and the last client to leave closes it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from veche_gateway.shared import Feeds, feed_key, root_field


class Source:
    """An upstream subscription the test feeds by hand; counts how often it opened."""

    def __init__(self) -> None:
        self.opened = 0
        self.closed = 0
        self.queue: asyncio.Queue[dict[str, Any] | Exception | None] = asyncio.Queue()

    def open(self) -> AsyncIterator[dict[str, Any]]:
        self.opened += 1
        return self._events()

    async def _events(self) -> AsyncIterator[dict[str, Any]]:
        try:
            while (item := await self.queue.get()) is not None:
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            self.closed += 1


def body(total: int) -> dict[str, Any]:
    return {"data": {"pollResults": {"totalVotes": total}}}


async def test_identical_subscriptions_share_one_source_and_a_late_one_starts_from_the_latest() -> (
    None
):
    feeds, source = Feeds(), Source()
    first = feeds.bodies("k", source.open)
    source.queue.put_nowait(body(0))
    assert await asyncio.wait_for(anext(first), 5) == body(0)

    second = feeds.bodies("k", source.open)
    assert await asyncio.wait_for(anext(second), 5) == body(0)  # at once, no new event
    source.queue.put_nowait(body(1))
    one, two = await asyncio.wait_for(asyncio.gather(anext(first), anext(second)), 5)
    assert one == two == body(1)
    assert source.opened == 1
    one["data"] = None  # each client shapes its own copy
    assert two == body(1)

    await first.aclose()  # type: ignore[attr-defined]
    assert source.closed == 0  # the other client still listens
    await second.aclose()  # type: ignore[attr-defined]
    assert source.closed == 1
    assert len(feeds) == 0


async def test_different_keys_get_sources_of_their_own() -> None:
    feeds, a, b = Feeds(), Source(), Source()
    first, second = feeds.bodies("a", a.open), feeds.bodies("b", b.open)
    a.queue.put_nowait(body(1))
    b.queue.put_nowait(body(2))
    assert await asyncio.wait_for(anext(first), 5) == body(1)
    assert await asyncio.wait_for(anext(second), 5) == body(2)
    assert (a.opened, b.opened) == (1, 1)
    await first.aclose()  # type: ignore[attr-defined]
    await second.aclose()  # type: ignore[attr-defined]


async def test_a_failure_reaches_every_client_and_the_next_subscription_opens_anew() -> None:
    feeds, source = Feeds(), Source()
    clients = [feeds.bodies("k", source.open) for _ in range(2)]
    source.queue.put_nowait(body(0))
    for client in clients:
        assert await asyncio.wait_for(anext(client), 5) == body(0)
    source.queue.put_nowait(RuntimeError("the subgraph went away"))
    for client in clients:
        with pytest.raises(RuntimeError, match="went away"):
            await asyncio.wait_for(anext(client), 5)
    assert len(feeds) == 0

    again = feeds.bodies("k", source.open)
    source.queue.put_nowait(body(5))
    assert await asyncio.wait_for(anext(again), 5) == body(5)
    assert source.opened == 2
    source.queue.put_nowait(None)  # the subgraph completes
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(again), 5)


def test_the_key_holds_the_token_and_the_language_but_not_the_request_id() -> None:
    def key(**headers: str) -> Any:
        return feed_key("http://polls/graphql", "subscription { x }", {"p": "1"}, headers)

    anna = {"authorization": "Bearer anna", "accept-language": "en"}
    assert key(**anna, **{"X-Request-Id": "1"}) == key(**anna, **{"X-Request-Id": "2"})
    assert key(**anna) != key(authorization="Bearer boris", **{"accept-language": "en"})
    assert key(**anna) != key(authorization="Bearer anna", **{"accept-language": "ru"})
    assert key(**anna) != key()
    swapped = feed_key("http://polls/graphql", "subscription { x }", {"p": "2"}, anna)
    assert key(**anna) != swapped


def test_the_root_field_of_a_root_fetch() -> None:
    assert root_field("subscription($p: ID!) { pollResults(pollId: $p) { totalVotes } }") == (
        "pollResults"
    )
    assert root_field("subscription { r: issueUpdated(id: 1) { status } }") == "issueUpdated"
    assert root_field("not graphql {") is None
