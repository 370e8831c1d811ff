"""One upstream subscription shared by identical client subscriptions.

Identical means the same subgraph, root document and variables, and the same
forwarded headers but the request id: the same `Authorization` (one token is
one principal, so every client of a feed is authorized exactly as the one whose
subscription opened it: the subgraph's refusals, its checks before each update
and its end on logout reach them all), the same language, the same client
address. Subscriptions of different users are never shared: `pollResults`
depends on the viewer (who may see the results; the counters include the
viewer's own ballot until it is folded in).

Only state-like root fields are shared (`Settings.shared_subscription_fields`:
each event the whole current state), because a client that joins a running
feed gets its latest event at once, as its first, which is what a new upstream
subscription would have sent. A slow client gets the newest state, not a
backlog (one slot per client). The feed's upstream closes with its last client.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable, Hashable, Mapping
from typing import Any

import orjson
from graphql import FieldNode, GraphQLError, OperationDefinitionNode, parse

Body = dict[str, Any]


class _Done:
    """The feed ended: `error` is what each client's stream raises (None: completed)."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class _Client:
    """One client of a feed: the newest event not yet taken (as JSON: each client
    gets its own copy to shape), or the feed's end."""

    def __init__(self) -> None:
        self.latest: bytes | None = None
        self.done: _Done | None = None
        self._wake = asyncio.Event()

    def put(self, body: bytes) -> None:
        self.latest = body
        self._wake.set()

    def end(self, done: _Done) -> None:
        self.done = done
        self._wake.set()

    async def take(self) -> bytes | _Done:
        while self.latest is None and self.done is None:
            await self._wake.wait()
            self._wake.clear()
        if self.latest is not None:
            body, self.latest = self.latest, None
            return body
        assert self.done is not None
        return self.done


class _Feed:
    def __init__(self, feeds: Feeds, key: Hashable, source: AsyncIterator[Body]) -> None:
        self.clients: set[_Client] = set()
        self.latest: bytes | None = None
        self._feeds = feeds
        self._key = key
        self._task = asyncio.create_task(self._pump(source))

    async def _pump(self, source: AsyncIterator[Body]) -> None:
        try:
            async for body in source:
                self.latest = orjson.dumps(body)
                for client in list(self.clients):
                    client.put(self.latest)
            done = _Done(None)
        except asyncio.CancelledError:
            raise  # the last client left
        except Exception as exc:
            done = _Done(exc)
        self._feeds.forget(self._key, self)  # first: no one joins an ended feed
        for client in list(self.clients):
            client.end(done)

    def join(self) -> _Client:
        client = _Client()
        if self.latest is not None:
            client.put(self.latest)
        self.clients.add(client)
        return client

    async def leave(self, client: _Client) -> None:
        self.clients.discard(client)
        if not self.clients:
            self._feeds.forget(self._key, self)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


class Feeds:
    """The gateway's shared upstream subscriptions, by `key`."""

    def __init__(self) -> None:
        self._feeds: dict[Hashable, _Feed] = {}

    def __len__(self) -> int:
        return len(self._feeds)

    def forget(self, key: Hashable, feed: _Feed) -> None:
        if self._feeds.get(key) is feed:
            del self._feeds[key]

    async def bodies(
        self, key: Hashable, open_source: Callable[[], AsyncIterator[Body]]
    ) -> AsyncIterator[Body]:
        """The events of the feed for `key`, opened with `open_source()` if none runs."""
        feed = self._feeds.get(key)
        if feed is None:
            feed = self._feeds[key] = _Feed(self, key, open_source())
        client = feed.join()
        try:
            while True:
                item = await client.take()
                if isinstance(item, _Done):
                    if item.error is not None:
                        raise item.error
                    return
                copy: Body = orjson.loads(item)
                yield copy
        finally:
            await feed.leave(client)


def feed_key(
    url: str, document: str, variables: Mapping[str, Any], headers: Mapping[str, str]
) -> Hashable:
    """What makes two subscriptions identical (see the module doc); `url` the subgraph's."""
    forwarded = tuple(
        sorted((k.lower(), v) for k, v in headers.items() if k.lower() != "x-request-id")
    )
    return (url, document, orjson.dumps(variables, option=orjson.OPT_SORT_KEYS), forwarded)


@functools.lru_cache(maxsize=1024)
def root_field(document: str) -> str | None:
    """The name of the one root field a subscription's root fetch selects."""
    try:
        parsed = parse(document)
    except GraphQLError:
        return None
    for definition in parsed.definitions:
        if isinstance(definition, OperationDefinitionNode):
            first = definition.selection_set.selections[0]
            return first.name.value if isinstance(first, FieldNode) else None
    return None
