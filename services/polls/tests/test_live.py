"""`Subscription.pollResults` on the polls service itself, over graphql-transport-ws:
one wake of a poll's subscribers reads the store the same few times however many
subscribe (`veche_polls.live.PollWatch`), and each still sees its own view."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from veche_kit.live import LiveHub
from veche_polls import live
from veche_stack.testing import GraphQLClient, eventually

from .conftest import ANSWERS, VOTE, PollsServer, outbox_drained, polls_settings, running

RESULTS = """subscription($p: ID!) {
  pollResults(pollId: $p) { totalVotes questions { question { id } options { option { id } votes } } }
}"""
STORE_COUNT = re.compile(
    r'^veche_store_command_duration_seconds_count\{command="(\w+)"\} (\S+)$', re.M
)
PROTOCOL = Subprotocol("graphql-transport-ws")


class Subscription:
    """One pollResults subscription: every message it got so far."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    @property
    def totals(self) -> list[int | None]:
        """totalVotes of each update (None for an update that was an error)."""
        return [
            (m["payload"].get("data") or {}).get("pollResults", {}).get("totalVotes")
            if m["type"] == "next" and m["payload"].get("data")
            else None
            for m in self.messages
        ]

    def codes(self) -> list[str]:
        return [
            e["extensions"]["code"]
            for m in self.messages
            if m["type"] in ("next", "error")
            for e in (m["payload"] if m["type"] == "error" else m["payload"].get("errors", []))
        ]


@contextlib.asynccontextmanager
async def subscribed(server: PollsServer, token: str, poll_id: str) -> AsyncIterator[Subscription]:
    """A subscription straight to the service, its messages collected in the background."""
    url = server.url.replace("http://", "ws://") + "/graphql"
    subscription = Subscription()
    async with connect(url, subprotocols=[PROTOCOL], ping_interval=None) as socket:
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        await socket.send(orjson.dumps(init).decode())
        assert orjson.loads(await socket.recv())["type"] == "connection_ack"
        payload = {"query": RESULTS, "variables": {"p": poll_id}}
        await socket.send(
            orjson.dumps({"id": "1", "type": "subscribe", "payload": payload}).decode()
        )

        async def collect() -> None:
            async for raw in socket:
                subscription.messages.append(orjson.loads(raw))

        task = asyncio.create_task(collect())
        try:
            await eventually(lambda: _true(bool(subscription.messages)), timeout=15, interval=0.02)
            yield subscription
        finally:
            task.cancel()


async def _true(value: bool) -> bool:
    return value


def token_of(client: GraphQLClient) -> str:
    token = client.token
    assert token is not None
    return token


async def store_commands(server: PollsServer) -> float:
    """The service's store commands so far, as its /metrics counts them."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{server.url}/metrics")).text
    return sum(float(n) for _, n in STORE_COUNT.findall(text))


@pytest.fixture
async def quiet_polls(
    mongo_server_url: str, amqp_url: str, tmp_path: Path
) -> AsyncIterator[tuple[PollsServer, LiveHub[None]]]:
    """A polls service whose background work is idle unless woken (no periodic reads
    beside a wake's), and whose per-user token recheck is read once: a wake's store
    commands are the wake's own."""
    settings = polls_settings(
        mongo_server_url,
        amqp_url,
        tmp_path,
        outbox_poll_seconds=3600,
        close_check_seconds=3600,
        fold_idle_seconds=3600,
        live_interval_ms=50,
    )
    apps: dict[str, Starlette] = {}

    def prepare(app: Starlette) -> None:
        apps["app"] = app
        stale = app.state.runtime.verifier.stale
        stale.cache_seconds = 3600  # the token recheck (one read for all, once a second) stays out

    async with running(settings, prepare) as server:
        hub: LiveHub[None] = apps["app"].state.live
        yield server, hub


async def _voted(server: PollsServer, poll_id: str, count: int) -> list[GraphQLClient]:
    voters = [server.citizen() for _ in range(count)]
    await asyncio.gather(*(v.data(VOTE, {"poll": poll_id, "answers": ANSWERS}) for v in voters))
    return voters


async def _one_wake(
    server: PollsServer, hub: LiveHub[None], poll_id: str, subs: list[Subscription]
) -> float:
    """The store commands one wake of the poll's subscribers costs (each gets its update)."""
    seen = [len(s.messages) for s in subs]
    scraped = await store_commands(server)
    before = await store_commands(server)
    scrape = before - scraped  # /metrics reads the outbox's backlog: its own commands
    hub.touch(live.topic(poll_id))
    await eventually(
        lambda: _true(all(len(s.messages) > n for s, n in zip(subs, seen, strict=True))),
        timeout=15,
        interval=0.02,
    )
    await asyncio.sleep(0.2)  # nothing else due: late commands of the wake would show here
    return await store_commands(server) - before - scrape


async def test_a_wake_reads_as_much_for_twenty_subscribers_as_for_one(
    quiet_polls: tuple[PollsServer, LiveHub[None]],
) -> None:
    server, hub = quiet_polls
    poll_id = await server.active_poll()
    voters = await _voted(server, poll_id, 20)
    await server.service.folder.fold_poll(poll_id)
    await eventually(lambda: outbox_drained(server), timeout=15)  # their events are out
    async with contextlib.AsyncExitStack() as stack:
        first = await stack.enter_async_context(subscribed(server, token_of(voters[0]), poll_id))
        alone = await _one_wake(server, hub, poll_id, [first])
        subs = [first] + [
            await stack.enter_async_context(subscribed(server, token_of(v), poll_id))
            for v in voters[1:]
        ]
        together = await _one_wake(server, hub, poll_id, subs)
        again = await _one_wake(server, hub, poll_id, subs)
    assert all(s.totals[-1] == 20 for s in subs), [s.totals for s in subs]
    assert 0 < alone <= 4, alone  # the poll, pending ballots, the counters (+ voters' ballots)
    assert together == alone, (alone, together)
    assert again == alone, (alone, again)


@pytest.fixture
async def unfolded_polls(
    mongo_server_url: str, amqp_url: str, tmp_path: Path
) -> AsyncIterator[PollsServer]:
    """A polls service whose ballots stay pending until the test folds them."""
    settings = polls_settings(mongo_server_url, amqp_url, tmp_path, live_interval_ms=50)

    def prepare(app: Starlette) -> None:
        del app.state.runtime.background["tally-folder"]

    async with running(settings, prepare) as server:
        yield server


def _updated(subscription: Subscription, since: int) -> bool:
    return len(subscription.messages) > since + 1  # a wake strictly after `since`


async def test_each_subscriber_sees_its_own_view_of_one_shared_read(
    unfolded_polls: PollsServer,
) -> None:
    server = unfolded_polls
    official = server.official()
    poll_id = await server.active_poll(official)
    [early] = await _voted(server, poll_id, 1)  # pending: no folder runs
    onlooker = server.citizen()
    async with contextlib.AsyncExitStack() as stack:
        manager = await stack.enter_async_context(subscribed(server, token_of(official), poll_id))
        voter = await stack.enter_async_context(subscribed(server, token_of(early), poll_id))
        hidden = await stack.enter_async_context(subscribed(server, token_of(onlooker), poll_id))
        assert hidden.codes() == ["FORBIDDEN"]
        assert (manager.totals[-1], voter.totals[-1]) == (0, 1)  # their own, pending, for them only
        seen = [len(manager.messages), len(voter.messages)]
        [late] = await _voted(server, poll_id, 1)
        latecomer = await stack.enter_async_context(subscribed(server, token_of(late), poll_id))
        await eventually(
            lambda: _true(all(_updated(s, n) for s, n in zip((manager, voter), seen, strict=True)))
        )
        assert (manager.totals[-1], voter.totals[-1], latecomer.totals[-1]) == (0, 1, 1)
        await server.service.folder.fold_poll(poll_id)
        await eventually(lambda: _true(manager.totals[-1] == 2))
        await eventually(lambda: _true(voter.totals[-1] == latecomer.totals[-1] == 2))
        assert voter.totals[-1] == 2  # folded in: counted once, not again as their own
    assert hidden.codes() == ["FORBIDDEN"]
