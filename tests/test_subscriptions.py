"""Subscriptions through the gateway with real clients against the stack as
`make run` starts it: `Subscription.pollResults` over graphql-transport-ws (the
`gql` client's websockets transport) and over Server-Sent Events (httpx
streaming); a vote is cast and the update with the new count arrives. Refusals
keep their codes: an unknown poll, hidden results, a bad token."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from veche_stack.runner import Runner
from veche_stack.testing import GraphQLClient, eventually

from . import flows

pytestmark = pytest.mark.stack

PROTOCOL = Subprotocol("graphql-transport-ws")
RESULTS = """subscription($p: ID!) {
  pollResults(pollId: $p) { totalVotes questions { question { text } options { votes } } }
}"""
WAIT = 20.0
NODE_CLIENT = Path(__file__).parent / "live_node"
MAX_SUBSCRIPTIONS = 3
MAX_CONNECTIONS = 8


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runner]:
    runner = flows.runner_on(
        tmp_path_factory.mktemp("stack"),
        POLLS_LIVE_INTERVAL_MS="200",
        MAX_SUBSCRIPTIONS_PER_CONNECTION=str(MAX_SUBSCRIPTIONS),
        MAX_LIVE_CONNECTIONS_PER_CLIENT=str(MAX_CONNECTIONS),
    )
    try:
        runner.start()
    except RuntimeError as error:
        pytest.fail(str(error))
    yield runner
    runner.interrupt()


@pytest.fixture(scope="module")
def admin_token(stack: Runner) -> str:
    """The admin signs in once: each sign-in waits for a fresh two-factor code."""

    async def sign_in() -> str:
        async with flows.gateway_client(stack) as client:
            token = (await flows.admin(client)).token
        assert token is not None
        return token

    return asyncio.run(sign_in())


@pytest.fixture
async def admin(stack: Runner, admin_token: str) -> AsyncIterator[GraphQLClient]:
    async with flows.gateway_client(stack) as client:
        yield client.as_user(admin_token)


def ws_url(stack: Runner) -> str:
    return stack.url("gateway").replace("http://", "ws://")


def transport(stack: Runner, token: str | None) -> WebsocketsTransport:
    payload = {"Authorization": f"Bearer {token}"} if token else {}
    # close_timeout: gql waits that long for a `complete` the protocol never sends back
    return WebsocketsTransport(url=ws_url(stack), init_payload=payload, close_timeout=1)


async def vote_as_citizen(admin: GraphQLClient, poll_id: str, answers: list[Any]) -> None:
    voter, _ = await flows.citizen(admin.as_user(None), "Голосующий")
    await voter.data(flows.VOTE, {"p": poll_id, "a": answers})


# `District.name` is the users subgraph's: resolved for every update, as in a query.
BY_DISTRICT = """subscription($p: ID!) {
  pollResults(pollId: $p) {
    totalVotes questions { question { text } options { votes } }
    byDistrict { district { id name } totalVotes }
  }
}"""


async def test_gql_over_websocket_sees_a_vote_counted(stack: Runner, admin: GraphQLClient) -> None:
    poll_id, answers = await flows.published_poll(admin, "Live: websocket")
    request = GraphQLRequest(BY_DISTRICT, variable_values={"p": poll_id})
    async with Client(transport=transport(stack, admin.token)) as session:
        updates = session.subscribe(request)
        first = await asyncio.wait_for(anext(updates), WAIT)
        assert first["pollResults"]["totalVotes"] == 0
        assert first["pollResults"]["questions"][0]["question"]["text"] == "Нужна ли парковка?"
        await vote_as_citizen(admin, poll_id, answers)

        async def counted() -> dict[str, Any]:
            async for update in updates:
                if update["pollResults"]["totalVotes"] == 1:
                    return dict(update["pollResults"])
            raise AssertionError("the subscription ended before the vote was counted")

        results = await asyncio.wait_for(counted(), WAIT)
    assert [o["votes"] for o in results["questions"][0]["options"]] == [1, 0]
    voters_district = [d for d in results["byDistrict"] if d["totalVotes"] == 1]
    assert [d["district"]["id"] for d in voters_district] == ["leninsky"]
    assert voters_district[0]["district"]["name"]  # from the users subgraph


async def sse_events(stack: Runner, token: str, variables: dict[str, Any]) -> AsyncIterator[Any]:
    headers = {"Accept": "text/event-stream", "Authorization": f"Bearer {token}"}
    body = {"query": RESULTS, "variables": variables}
    async with (
        httpx.AsyncClient(timeout=WAIT) as http,
        http.stream("POST", stack.url("gateway"), json=body, headers=headers) as response,
    ):
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        kind = None
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                kind = line[len("event: ") :]
            elif line.startswith("data: ") and kind == "next":
                yield orjson.loads(line[len("data: ") :])
            elif line.startswith("data:") and kind == "complete":
                return


async def test_sse_stream_sees_a_vote_counted(stack: Runner, admin: GraphQLClient) -> None:
    poll_id, answers = await flows.published_poll(admin, "Live: SSE")
    assert admin.token is not None
    events = sse_events(stack, admin.token, {"p": poll_id})
    first = await asyncio.wait_for(anext(events), WAIT)
    assert first["data"]["pollResults"]["totalVotes"] == 0
    await vote_as_citizen(admin, poll_id, answers)

    async def counted() -> int:
        async for update in events:
            if update["data"]["pollResults"]["totalVotes"] == 1:
                return 1
        raise AssertionError("the stream ended before the vote was counted")

    assert await asyncio.wait_for(counted(), WAIT) == 1
    await events.aclose()  # type: ignore[attr-defined]


async def refusal(stack: Runner, token: str | None, poll_id: str) -> dict[str, Any]:
    request = GraphQLRequest(RESULTS, variable_values={"p": poll_id})
    async with Client(transport=transport(stack, token)) as session:
        with pytest.raises(TransportQueryError) as refused:
            await asyncio.wait_for(anext(session.subscribe(request)), WAIT)
    errors = refused.value.errors
    assert errors, refused.value
    first: dict[str, Any] = errors[0]
    return first


async def test_an_unknown_poll_is_not_found(stack: Runner, admin: GraphQLClient) -> None:
    error = await refusal(stack, admin.token, "no-such-poll")
    assert error["extensions"]["code"] == "NOT_FOUND", error


async def test_hidden_results_are_forbidden(stack: Runner, admin: GraphQLClient) -> None:
    poll_id, _ = await flows.published_poll(admin, "Live: hidden")
    citizen, _ = await flows.citizen(admin.as_user(None), "Не голосовал")
    error = await refusal(stack, citizen.token, poll_id)  # has not voted: hidden
    assert error["extensions"]["code"] == "FORBIDDEN", error


async def test_a_bad_token_is_unauthenticated(stack: Runner, admin: GraphQLClient) -> None:
    poll_id, _ = await flows.published_poll(admin, "Live: bad token")
    error = await refusal(stack, "not-a-token", poll_id)
    assert error["extensions"]["code"] == "UNAUTHENTICATED", error


async def test_a_polls_restart_ends_the_subscription_and_a_resubscribe_works(
    stack: Runner, admin: GraphQLClient
) -> None:
    poll_id, _ = await flows.published_poll(admin, "Live: restart")
    request = GraphQLRequest(RESULTS, variable_values={"p": poll_id})
    async with Client(transport=transport(stack, admin.token)) as session:
        updates = session.subscribe(request)
        await asyncio.wait_for(anext(updates), WAIT)
        os.kill(stack.children()["polls"], signal.SIGTERM)  # the runner starts it again
        with pytest.raises(TransportQueryError) as ended:
            await asyncio.wait_for(anext(updates), WAIT)
    assert ended.value.errors is not None
    assert ended.value.errors[0]["extensions"]["code"] == "SUBGRAPH_UNAVAILABLE"

    async def resubscribed() -> int | None:
        async with Client(transport=transport(stack, admin.token)) as again:
            try:
                first = await asyncio.wait_for(anext(again.subscribe(request)), WAIT)
            except TransportQueryError:
                return None  # polls is not back yet
        return int(first["pollResults"]["totalVotes"]) + 1

    assert await eventually(resubscribed, timeout=60, interval=0.5) == 1


@pytest.fixture(scope="session")
def node_client() -> Path:
    """tests/live_node with its npm packages (graphql-ws, ws) installed."""
    flows.npm_installed(NODE_CLIENT, "the graphql-ws client")
    return NODE_CLIENT / "subscribe.mjs"


async def test_the_graphql_ws_npm_client_sees_a_vote_counted(
    stack: Runner, admin: GraphQLClient, node_client: Path
) -> None:
    poll_id, answers = await flows.published_poll(admin, "Live: graphql-ws")
    assert admin.token is not None
    node = await asyncio.create_subprocess_exec(
        "node", str(node_client), ws_url(stack), admin.token, poll_id, stdout=subprocess.PIPE
    )
    assert node.stdout is not None
    try:
        first = orjson.loads(await asyncio.wait_for(node.stdout.readline(), WAIT))
        assert first["data"]["pollResults"]["totalVotes"] == 0, first
        await vote_as_citizen(admin, poll_id, answers)

        async def counted() -> int:
            while line := await node.stdout.readline():  # type: ignore[union-attr]
                update = orjson.loads(line)
                assert "error" not in update, update
                if update["data"]["pollResults"]["totalVotes"] == 1:
                    return 1
            raise AssertionError("the graphql-ws client stopped before the vote was counted")

        assert await asyncio.wait_for(counted(), WAIT) == 1
    finally:
        node.kill()
        await node.wait()


# ───────────────────────── the protocol, message by message ─────────────────────────


async def send(socket: ClientConnection, message: dict[str, Any]) -> None:
    await socket.send(orjson.dumps(message).decode())


async def receive(socket: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = orjson.loads(await asyncio.wait_for(socket.recv(), WAIT))
    return message


async def closed_with(socket: ClientConnection) -> int | None:
    """The close code the gateway ends the socket with (messages before it skipped)."""

    async def drain() -> None:
        while True:
            await asyncio.wait_for(socket.recv(), WAIT)

    with pytest.raises(ConnectionClosed):
        await drain()
    return socket.close_code


def subscribe(operation_id: str, poll_id: str, query: str = RESULTS) -> dict[str, Any]:
    payload = {"query": query, "variables": {"p": poll_id}}
    return {"id": operation_id, "type": "subscribe", "payload": payload}


@pytest.fixture
async def acked(stack: Runner, admin: GraphQLClient) -> AsyncIterator[ClientConnection]:
    """A socket past connection_ack, as the admin, asking for no language (Russian)."""
    async with acked_socket(stack, admin, {}) as socket:
        yield socket


@contextlib.asynccontextmanager
async def acked_socket(
    stack: Runner, admin: GraphQLClient, headers: dict[str, str]
) -> AsyncIterator[ClientConnection]:
    """A socket past connection_ack, as the admin, upgraded with `headers`."""
    async with connect(
        ws_url(stack), subprotocols=[PROTOCOL], additional_headers=headers
    ) as socket:
        await send(
            socket,
            {"type": "connection_init", "payload": {"Authorization": f"Bearer {admin.token}"}},
        )
        assert (await receive(socket))["type"] == "connection_ack"
        yield socket


async def test_a_subscribe_before_connection_init_closes_4401(stack: Runner) -> None:
    async with connect(ws_url(stack), subprotocols=[PROTOCOL]) as socket:
        await send(socket, subscribe("1", "any"))
        assert await closed_with(socket) == 4401


async def test_ping_pong_and_a_second_connection_init_closes_4429(
    acked: ClientConnection,
) -> None:
    await send(acked, {"type": "ping"})
    assert (await receive(acked))["type"] == "pong"
    await send(acked, {"type": "connection_init"})
    assert await closed_with(acked) == 4429


async def test_a_malformed_message_closes_4400(acked: ClientConnection) -> None:
    await acked.send("{not json")
    assert await closed_with(acked) == 4400


async def test_a_subscription_id_in_use_closes_4409(
    admin: GraphQLClient, acked: ClientConnection
) -> None:
    poll_id, _ = await flows.published_poll(admin, "Live: same id")
    await send(acked, subscribe("same", poll_id))
    assert (await receive(acked))["type"] == "next"
    await send(acked, subscribe("same", poll_id))
    assert await closed_with(acked) == 4409


async def test_subscriptions_past_the_cap_are_refused_and_the_socket_stays(
    admin: GraphQLClient, acked: ClientConnection
) -> None:
    poll_id, _ = await flows.published_poll(admin, "Live: cap")
    for n in range(MAX_SUBSCRIPTIONS):
        await send(acked, subscribe(f"s{n}", poll_id))
        assert (await receive(acked))["type"] == "next"
    await send(acked, subscribe("over", poll_id))
    refused = await receive(acked)
    assert (refused["id"], refused["type"]) == ("over", "error")
    assert refused["payload"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert refused["payload"][0]["message"].startswith("Не больше 3 подписок")
    await send(acked, {"id": "s0", "type": "complete"})
    await send(acked, subscribe("again", poll_id))
    assert (await receive(acked))["id"] == "again"


async def test_the_cap_refusal_reads_english_when_the_upgrade_asks_for_it(
    stack: Runner, admin: GraphQLClient
) -> None:
    poll_id, _ = await flows.published_poll(admin, "Live: cap in English")
    async with acked_socket(stack, admin, {"Accept-Language": "en-GB, ru;q=0.5"}) as socket:
        for n in range(MAX_SUBSCRIPTIONS + 1):
            await send(socket, subscribe(f"s{n}", poll_id))
        replies = [await receive(socket) for _ in range(MAX_SUBSCRIPTIONS + 1)]
    refused = next(reply for reply in replies if reply["type"] == "error")
    assert refused["payload"][0]["message"] == (
        "At most 3 subscriptions per connection: complete one first"
    )


async def test_the_gateways_limits_apply_to_subscriptions(
    admin: GraphQLClient, acked: ClientConnection
) -> None:
    poll_id, _ = await flows.published_poll(admin, "Live: limits")
    aliases = " ".join(f"a{n}: totalVotes" for n in range(40))
    query = f"subscription($p: ID!) {{ pollResults(pollId: $p) {{ {aliases} }} }}"
    await send(acked, subscribe("wide", poll_id, query))
    refused = await receive(acked)
    assert refused["type"] == "error", refused
    assert refused["payload"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"


async def test_connections_past_the_cap_per_address_close_4429(stack: Runner) -> None:
    async with contextlib.AsyncExitStack() as held:
        for _ in range(MAX_CONNECTIONS):
            await held.enter_async_context(connect(ws_url(stack), subprotocols=[PROTOCOL]))
        async with connect(ws_url(stack), subprotocols=[PROTOCOL]) as one_more:
            assert await closed_with(one_more) == 4429


async def test_a_query_over_the_socket_gets_one_next_then_complete(
    acked: ClientConnection,
) -> None:
    await send(acked, {"id": "q", "type": "subscribe", "payload": {"query": "{ __typename }"}})
    answered = await receive(acked)
    assert (answered["type"], answered["payload"]) == ("next", {"data": {"__typename": "Query"}})
    assert await receive(acked) == {"id": "q", "type": "complete"}


async def test_a_query_from_a_client_that_accepts_streams_too_gets_json(stack: Runner) -> None:
    # urql's default Accept names text/event-stream for every operation
    accept = "application/graphql-response+json, application/json, text/event-stream"
    async with httpx.AsyncClient(timeout=WAIT) as http:
        response = await http.post(
            stack.url("gateway"), json={"query": "{ __typename }"}, headers={"Accept": accept}
        )
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


# ───────────────────────── issueUpdated ─────────────────────────

ISSUE_UPDATED = """subscription($id: ID!) {
  issueUpdated(id: $id) { status supportersCount comments { totalCount } }
}"""
ACCEPT = "mutation($id: ID!) { changeIssueStatus(id: $id, status: ACCEPTED) { status } }"
SUPPORT = "mutation($id: ID!) { supportIssue(id: $id) { id } }"
COMMENT = "mutation($id: ID!, $t: String!) { commentOnIssue(id: $id, text: $t) { id } }"


async def test_an_issue_s_status_supports_and_comments_arrive_live(
    stack: Runner, admin: GraphQLClient
) -> None:
    reporter, _ = await flows.citizen(admin.as_user(None), "Заявитель")
    issue_id = (await reporter.data(flows.REPORT, {"input": flows.POTHOLE}))["reportIssue"]["id"]
    request = GraphQLRequest(ISSUE_UPDATED, variable_values={"id": issue_id})
    async with Client(transport=transport(stack, reporter.token)) as session:
        updates = session.subscribe(request)
        first = (await asyncio.wait_for(anext(updates), WAIT))["issueUpdated"]
        assert (first["supportersCount"], first["comments"]["totalCount"]) == (0, 0)
        assert first["status"] != "ACCEPTED"
        supporter, _ = await flows.citizen(admin.as_user(None), "Сторонник")
        await supporter.data(SUPPORT, {"id": issue_id})
        await supporter.data(COMMENT, {"id": issue_id, "t": "Тоже вижу эту яму"})
        await admin.data(ACCEPT, {"id": issue_id})

        async def caught_up() -> dict[str, Any]:
            async for update in updates:
                issue = update["issueUpdated"]
                if issue["status"] == "ACCEPTED" and issue["comments"]["totalCount"] == 1:
                    return dict(issue)
            raise AssertionError("the subscription ended before the changes arrived")

        issue = await asyncio.wait_for(caught_up(), WAIT)
    assert issue["supportersCount"] == 1


async def test_an_unknown_issue_is_not_found(stack: Runner, admin: GraphQLClient) -> None:
    request = GraphQLRequest(ISSUE_UPDATED, variable_values={"id": "000000000000000000000000"})
    async with Client(transport=transport(stack, admin.token)) as session:
        with pytest.raises(TransportQueryError) as refused:
            await asyncio.wait_for(anext(session.subscribe(request)), WAIT)
    assert refused.value.errors is not None
    assert refused.value.errors[0]["extensions"]["code"] == "NOT_FOUND"


# ───────────────────────── myNotifications ─────────────────────────

MY_NOTIFICATIONS = "subscription { myNotifications { kind link read } }"


async def test_a_new_notification_arrives_live(stack: Runner, admin: GraphQLClient) -> None:
    reporter, _ = await flows.citizen(admin.as_user(None), "Ждёт ответа")
    issue_id = (await reporter.data(flows.REPORT, {"input": flows.POTHOLE}))["reportIssue"]["id"]
    async with Client(transport=transport(stack, reporter.token)) as session:
        updates = session.subscribe(GraphQLRequest(MY_NOTIFICATIONS))
        pending = asyncio.ensure_future(anext(updates))
        await asyncio.sleep(1.0)  # subscribed before the status changes
        await admin.data(ACCEPT, {"id": issue_id})
        notification = (await asyncio.wait_for(pending, WAIT))["myNotifications"]
    assert notification["link"] == f"issue:{issue_id}"
    assert notification["read"] is False


async def test_my_notifications_needs_a_signed_in_user(stack: Runner) -> None:
    async with Client(transport=transport(stack, None)) as session:
        with pytest.raises(TransportQueryError) as refused:
            await asyncio.wait_for(anext(session.subscribe(GraphQLRequest(MY_NOTIFICATIONS))), WAIT)
    assert refused.value.errors is not None
    assert refused.value.errors[0]["extensions"]["code"] == "UNAUTHENTICATED"


# ───────────────────────── the token, checked again ─────────────────────────


async def _until_error(updates: AsyncIterator[dict[str, Any]]) -> None:
    """Updates skipped until the subscription fails (gql raises its error)."""
    async for _ in updates:
        pass


REGISTER = """mutation($input: RegisterInput!) {
  register(input: $input) { accessToken refreshToken }
}"""
LOGOUT = "mutation($t: String!) { logout(refreshToken: $t) }"
FOR_ME = "{ pollsForMe { totalCount } }"


async def test_signing_out_ends_the_subscription_with_unauthenticated(
    stack: Runner, admin: GraphQLClient
) -> None:
    poll_id, answers = await flows.published_poll(admin, "Live: sign-out")
    anonymous = admin.as_user(None)
    person = {
        "email": f"{uuid.uuid4().hex[:8]}@example.ru",
        "password": "operations password 1",
        "consentVersion": "2026-12-01",
        "displayName": "Уходящий",
        "districtId": "leninsky",
    }
    tokens = (await anonymous.data(REGISTER, {"input": person}))["register"]
    voter = anonymous.as_user(tokens["accessToken"])
    await voter.data(flows.VOTE, {"p": poll_id, "a": answers})  # results visible to a voter
    request = GraphQLRequest(RESULTS, variable_values={"p": poll_id})
    async with Client(transport=transport(stack, tokens["accessToken"])) as session:
        updates = session.subscribe(request)
        await asyncio.wait_for(anext(updates), WAIT)
        assert (await anonymous.data(LOGOUT, {"t": tokens["refreshToken"]}))["logout"] is True

        async def polls_refuses_the_token() -> bool:
            body = await voter.post(FOR_ME)
            return bool(body.get("errors"))

        await eventually(polls_refuses_the_token, timeout=10)
        await vote_as_citizen(admin, poll_id, answers)  # an update, which is refused
        with pytest.raises(TransportQueryError) as ended:
            await asyncio.wait_for(_until_error(updates), WAIT)
    assert ended.value.errors is not None
    assert ended.value.errors[0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_the_upgrade_s_authorization_header_signs_the_socket_in(
    stack: Runner, admin: GraphQLClient
) -> None:
    poll_id, _ = await flows.published_poll(admin, "Live: header")  # results: managers only
    authorization = {"Authorization": f"Bearer {admin.token}"}
    async with connect(
        ws_url(stack), subprotocols=[PROTOCOL], additional_headers=authorization
    ) as socket:
        await send(socket, {"type": "connection_init"})
        assert (await receive(socket))["type"] == "connection_ack"
        await send(socket, subscribe("1", poll_id))
        first = await receive(socket)
    assert first["type"] == "next", first
    assert first["payload"]["data"]["pollResults"]["totalVotes"] == 0
