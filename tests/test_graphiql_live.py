"""Live updates end to end, with access tokens a minute long
(`USERS_ACCESS_TOKEN_MINUTES=1`), against the stack as `make run` starts it:

- GraphiQL, served by the gateway and opened in headless Chromium
  (veche_stack.browser), runs `subscription { pollResults … }` over its WebSocket
  with the token typed in its token field; a vote cast through the API shows up
  in the page as the new count.
- A subscription whose token expires ends with UNAUTHENTICATED at the token's
  expiry though no update came meanwhile (the gateway's timer, not the
  subgraph's check before an update).
- Subscriptions with one token share one upstream subscription (shared.py) and
  each sees the vote; another user's subscription to the same poll is still
  authorized on its own.
"""

from __future__ import annotations

import asyncio
import base64
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from veche_gateway.graphiql import DEFAULT_DIR
from veche_stack.browser import chromium, installed_chromium, open_page
from veche_stack.runner import Runner
from veche_stack.testing import GraphQLClient

from . import flows

pytestmark = pytest.mark.stack

RESULTS = """subscription Live($p: ID!) {
  pollResults(pollId: $p) { totalVotes }
}"""
WAIT = 20.0
# A token lives a minute; its expiry ends a subscription within this much after.
EXPIRY_WAIT = 90.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runner]:
    runner = flows.runner_on(
        tmp_path_factory.mktemp("stack"),
        POLLS_LIVE_INTERVAL_MS="200",
        USERS_ACCESS_TOKEN_MINUTES="1",
    )
    try:
        runner.start()
    except RuntimeError as error:
        pytest.fail(str(error))
    yield runner
    runner.interrupt()


@pytest.fixture(scope="module")
def polls(stack: Runner) -> dict[str, tuple[str, list[Any]]]:
    """Every poll the tests need, made at once while the admin's short token holds."""

    async def make() -> dict[str, tuple[str, list[Any]]]:
        async with flows.gateway_client(stack) as client:
            admin = await flows.admin(client)
            return {
                "browser": await flows.published_poll(admin, "Live: GraphiQL"),
                "expiry": await flows.published_poll(admin, "Live: expiry"),
                "shared": await flows.published_poll(admin, "Live: shared"),
            }

    return asyncio.run(make())


@pytest.fixture
async def client(stack: Runner) -> AsyncIterator[GraphQLClient]:
    async with flows.gateway_client(stack) as anonymous:
        yield anonymous


async def voter(client: GraphQLClient, poll: tuple[str, list[Any]], name: str) -> GraphQLClient:
    """A new citizen (a fresh one-minute token) who has voted in `poll`: they may see
    its results."""
    citizen, _ = await flows.citizen(client, name)
    await citizen.data(flows.VOTE, {"p": poll[0], "a": poll[1]})
    return citizen


def graphiql_url(stack: Runner, poll_id: str) -> str:
    query = urllib.parse.urlencode(
        {"query": RESULTS, "variables": orjson.dumps({"p": poll_id}).decode()}
    )
    return f"{stack.url('gateway')}?{query}"


# The response editor's text, its non-breaking spaces as spaces.
RESPONSE = (
    "(document.querySelector('.graphiql-response .view-lines')?.innerText ?? '')"
    ".replaceAll('\\u00a0', ' ')"
)


async def test_graphiql_shows_a_vote_counted_live(
    stack: Runner,
    polls: dict[str, tuple[str, list[Any]]],
    client: GraphQLClient,
    tmp_path: Path,
) -> None:
    if not (DEFAULT_DIR / "index.html").is_file():
        pytest.fail(f"GraphiQL is not built in {DEFAULT_DIR}: run gateway/graphiql/build.sh")
    poll = polls["browser"]
    watcher = await voter(client, poll, "Смотрит в GraphiQL")
    async with chromium(installed_chromium(), tmp_path / "profile") as browser:
        page = await open_page(browser, graphiql_url(stack, poll[0]))
        await page.wait_for("!!document.querySelector('.graphiql-execute-button')", "GraphiQL")
        await page.eval("document.getElementById('veche-token').focus(), true")
        await page.type(f"Bearer {watcher.token}")
        await page.eval("document.querySelector('.graphiql-execute-button').click(), true")
        await page.wait_for(f"{RESPONSE}.includes('totalVotes')", "the first update", WAIT)
        first = await page.response_text()
        assert '"totalVotes": 1' in first, first  # the watcher's own vote

        await voter(client, poll, "Голосует через API")
        await page.wait_for(
            f"{RESPONSE}.includes('\"totalVotes\": 2')", "the update after the vote", WAIT
        )
        sockets = [
            e["params"]["url"]
            for e in browser.events
            if e.get("method") == "Network.webSocketCreated"
        ]
        assert sockets == [stack.url("gateway").replace("http://", "ws://")]
        assert page.errors() == []


async def subscribed(url: str, token: str, ids: list[str], poll_id: str) -> Any:
    """A graphql-transport-ws socket with a `pollResults` subscription per id."""
    socket = await connect(url, subprotocols=[Subprotocol("graphql-transport-ws")])
    init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
    await socket.send(orjson.dumps(init).decode())
    assert orjson.loads(await socket.recv())["type"] == "connection_ack"
    for operation_id in ids:
        request = {"query": RESULTS, "variables": {"p": poll_id}}
        message = {"id": operation_id, "type": "subscribe", "payload": request}
        await socket.send(orjson.dumps(message).decode())
    return socket


async def totals(socket: Any, ids: set[str], total: int) -> set[str]:
    """Reads until each of `ids` has seen `total` votes; the ids that did."""
    counted: set[str] = set()
    while counted != ids:
        message = orjson.loads(await asyncio.wait_for(socket.recv(), WAIT))
        assert message["type"] == "next", message
        if message["payload"]["data"]["pollResults"]["totalVotes"] == total:
            counted.add(message["id"])
    return counted


async def test_subscriptions_of_one_token_share_a_feed_and_others_are_authorized_alone(
    stack: Runner, polls: dict[str, tuple[str, list[Any]]], client: GraphQLClient
) -> None:
    poll = polls["shared"]
    watcher = await voter(client, poll, "Две вкладки")
    assert watcher.token is not None
    url = stack.url("gateway").replace("http://", "ws://")
    first = await subscribed(url, watcher.token, ["a", "b"], poll[0])
    second = await subscribed(url, watcher.token, ["c"], poll[0])  # joins a running feed
    try:
        assert await totals(first, {"a", "b"}, 1) == {"a", "b"}
        assert await totals(second, {"c"}, 1) == {"c"}
        outsider, _ = await flows.citizen(client, "Не голосовал")  # results hidden from them
        assert outsider.token is not None
        refused = await subscribed(url, outsider.token, ["x"], poll[0])
        answer = orjson.loads(await asyncio.wait_for(refused.recv(), WAIT))
        await refused.close()
        # pollResults is nullable: the refusal is a result with data null and the error
        assert answer["type"] == "next", answer
        assert answer["payload"]["data"] == {"pollResults": None}, answer
        assert answer["payload"]["errors"][0]["extensions"]["code"] == "FORBIDDEN", answer

        await voter(client, poll, "Ещё голос")
        assert await totals(first, {"a", "b"}, 2) == {"a", "b"}
        assert await totals(second, {"c"}, 2) == {"c"}
    finally:
        await first.close()
        await second.close()


def token_exp(token: str) -> int:
    claims = token.split(".")[1]
    exp: int = orjson.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))["exp"]
    return exp


async def test_a_subscription_ends_unauthenticated_when_its_token_expires(
    stack: Runner, polls: dict[str, tuple[str, list[Any]]], client: GraphQLClient
) -> None:
    poll = polls["expiry"]
    watcher = await voter(client, poll, "Токен истечёт")
    assert watcher.token is not None
    url = stack.url("gateway").replace("http://", "ws://")
    protocol = Subprotocol("graphql-transport-ws")
    async with connect(url, subprotocols=[protocol]) as socket:
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {watcher.token}"}}
        await socket.send(orjson.dumps(init).decode())
        assert orjson.loads(await socket.recv())["type"] == "connection_ack"
        request = {"query": RESULTS, "variables": {"p": poll[0]}}
        subscribe = {"id": "1", "type": "subscribe", "payload": request}
        await socket.send(orjson.dumps(subscribe).decode())
        first = orjson.loads(await asyncio.wait_for(socket.recv(), WAIT))
        assert first["type"] == "next", first
        assert first["payload"]["data"]["pollResults"]["totalVotes"] == 1

        # No vote meanwhile (at most a repeat of the count, once the watcher's own ballot
        # is folded in): nothing but the token's expiry ends it.
        async def last_message() -> dict[str, Any]:
            while True:
                message: dict[str, Any] = orjson.loads(await socket.recv())
                if message["type"] != "next":
                    return message
                assert message["payload"]["data"]["pollResults"]["totalVotes"] == 1, message

        last = await asyncio.wait_for(last_message(), EXPIRY_WAIT)
        ended_at = time.time()
    assert last["type"] == "error", last
    assert last["id"] == "1"
    error = last["payload"][0]
    assert error["extensions"] == {"code": "UNAUTHENTICATED", "reason": "TOKEN_EXPIRED"}, error
    assert ended_at >= token_exp(watcher.token)
