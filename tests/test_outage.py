"""A broker outage in the middle of steady voting (polls and users running as
`make run` runs them, the broker behind a TCP proxy the test cuts for 20 s):
afterwards every vote is counted once and every voter is credited once."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from veche_kit.mongo import connect
from veche_stack.stack import SERVICES, Stack, StackConfig
from veche_stack.testing import GraphQLClient, TcpProxy, eventually, fresh_code_async

pytestmark = pytest.mark.stack

VOTES_PER_SECOND = 50
VOTERS = 12
POLLS = 100  # 1,200 votes: 24 s of voting, the outage from second 3 to second 23
OUTAGE_STARTS, OUTAGE_SECONDS = 3.0, 20.0

REGISTER = (
    "mutation($input: RegisterInput!) { register(input: $input) { accessToken user { id } } }"
)
LOGIN = """mutation($e: String!, $p: String!, $t: String) {
  login(email: $e, password: $p, totp: $t) { accessToken }
}"""
CREATE = "mutation($input: CreatePollInput!) { createPoll(input: $input) { id questions { id options { id } } } }"
PUBLISH = "mutation($id: ID!) { publishPoll(id: $id) { status } }"
VOTE = "mutation($p: ID!, $a: [AnswerInput!]!) { castVote(pollId: $p, answers: $a) { id } }"


@pytest.fixture(scope="module")
async def proxy() -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy("127.0.0.1", 5672)
    await proxy.start()
    yield proxy
    await proxy.cut()


@pytest.fixture(scope="module")
async def stack(proxy: TcpProxy, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    config = StackConfig.for_tests(tmp_path_factory.mktemp("outage"), proxy.url)
    config.extra_env["VECHE_NAMESPACE"] = f"test-{uuid.uuid4().hex[:8]}."
    stack = Stack(config)
    stack.services = [s for s in SERVICES if s.name in ("users", "polls")]
    stack.gateway = None
    await asyncio.to_thread(stack.start)  # the proxy keeps serving on this loop meanwhile
    yield stack
    await asyncio.to_thread(stack.stop)


async def test_votes_during_a_broker_outage_are_counted_and_credited_once(
    stack: Stack, proxy: TcpProxy
) -> None:
    users = GraphQLClient(stack.url("users"))
    polls = GraphQLClient(stack.url("polls"), http=users.http)
    email, password = stack.admin_credentials()
    code = await fresh_code_async(stack.admin_totp_secret(), stack.url("users"))
    admin = polls.as_user(
        (await users.data(LOGIN, {"e": email, "p": password, "t": code}))["login"]["accessToken"]
    )
    voters: list[tuple[str, GraphQLClient]] = []
    for i in range(VOTERS):
        payload = {
            "email": f"v{i}-{uuid.uuid4().hex[:6]}@example.ru",
            "password": "outage proof 1",
            "consentVersion": "2026-12-01",  # veche_users.settings.DEFAULT_CONSENT_VERSION
            "displayName": f"Житель {i}",
            "districtId": "leninsky",
            "birthYear": 1980,
        }
        auth = (await users.data(REGISTER, {"input": payload}))["register"]
        voters.append((auth["user"]["id"], polls.as_user(auth["accessToken"])))
    ballots: list[tuple[str, str, list[dict[str, Any]]]] = []
    for n in range(POLLS):
        poll = (
            await admin.data(
                CREATE,
                {
                    "input": {
                        "title": f"Опрос {n}",
                        "audience": {"verifiedOnly": False},  # voters without a verified phone
                        "questions": [
                            {"text": "Да?", "kind": "SINGLE_CHOICE", "options": ["Да", "Нет"]}
                        ],
                    }
                },
            )
        )["createPoll"]
        await admin.data(PUBLISH, {"id": poll["id"]})
        question = poll["questions"][0]
        answer = [{"questionId": question["id"], "optionIds": [question["options"][n % 2]["id"]]}]
        ballots.extend((poll["id"], voter_id, answer) for voter_id, _ in voters)
    clients = dict(voters)

    async def cast(poll_id: str, voter_id: str, answers: list[dict[str, Any]]) -> dict[str, Any]:
        return await clients[voter_id].post(VOTE, {"p": poll_id, "a": answers})

    during: list[dict[str, Any]] = []

    async def outage() -> None:
        await asyncio.sleep(OUTAGE_STARTS)
        await proxy.cut()
        await asyncio.sleep(OUTAGE_SECONDS)
        during.append((await users.http.get(stack.url("polls", "/health"))).json())
        await proxy.restore()

    cut = asyncio.create_task(outage())
    started = time.monotonic()
    tasks = []
    for i, ballot in enumerate(ballots):  # a steady 50 votes a second
        await asyncio.sleep(max(0.0, started + i / VOTES_PER_SECOND - time.monotonic()))
        tasks.append(asyncio.create_task(cast(*ballot)))
    results = await asyncio.gather(*tasks)
    await cut
    assert [r.get("errors") for r in results if r.get("errors")] == []
    # The outage was real: polls lost the broker and its vote events waited in the outbox.
    assert during[0]["broker"] == "disconnected"
    assert during[0]["outbox"]["pending"] > 500

    users_db = connect(stack.store_url("users"))["veche_users"]
    polls_db = connect(stack.store_url("polls"))["veche_polls"]
    expected = Counter(voter_id for _, voter_id, _ in ballots)

    async def all_credited() -> bool:
        found = {
            d["_id"]: d["points"]
            async for d in users_db["users"].find({"_id": {"$in": list(expected)}})
        }
        return found == {voter: 10 * count for voter, count in expected.items()}

    await eventually(all_credited, timeout=90, interval=0.5)
    assert await users_db["points_ledger"].count_documents(
        {"user_id": {"$in": list(expected)}}
    ) == len(ballots)
    assert await polls_db["ballots"].count_documents({}) == len(ballots)
    counts = [
        await polls.data("query($id: ID!) { poll(id: $id) { votesCount } }", {"id": poll_id})
        for poll_id in dict.fromkeys(p for p, _, _ in ballots)
    ]
    assert {c["poll"]["votesCount"] for c in counts} == {VOTERS}
    await users.aclose()
