"""Erasure across the stack (152-FZ): a citizen who voted, reported, commented,
supported, became a solver and redeemed a reward deletes their account, and within
10 s no collection of any service (outboxes included) and no dead-letter queue holds
their name or e-mail,
while results, supporters counts and histories stay as they were."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from veche_kit.bus import dead_letter_queue
from veche_kit.events import Envelope, UserProfileUpdated
from veche_kit.mongo import connect
from veche_kit.settings import DEFAULT_AMQP_URL
from veche_stack.runner import Runner
from veche_stack.stack import mongo_url
from veche_stack.testing import GraphQLClient, eventually
from veche_users.settings import DEFAULT_CONSENT_VERSION

from .flows import (
    POTHOLE,
    REGISTER,
    REPORT,
    VOTE,
    admin,
    gateway_client,
    published_poll,
    runner_on,
    running,
)

pytestmark = pytest.mark.stack

PASSWORD = "erasure password 1"
COMMENT = "mutation($id: ID!, $t: String!) { commentOnIssue(id: $id, text: $t) { id } }"
PROPOSE = (
    """mutation($input: ProposeInitiativeInput!) { proposeInitiative(input: $input) { id } }"""
)
SUPPORT = "mutation($id: ID!) { supportIssue(id: $id) { id } }"
SOLVER = 'mutation { becomeSolver(skills: ["potholes"], organization: "ИП Иванова") { id } }'
REWARD = "mutation($input: RewardInput!) { createReward(input: $input) { id } }"
REDEEM = "mutation($id: ID!) { redeemReward(rewardId: $id) { id } }"
DELETE = "mutation($p: String!) { deleteMyAccount(password: $p) }"
STATE = """query($poll: ID!, $issue: ID!, $idea: ID!) {
  poll(id: $poll) { votesCount }
  issue(id: $issue) { reporter { displayName } history { to note } comments(first: 5) { totalCount } }
  idea: issue(id: $idea) { supportersCount }
}"""
EXPORT = "{ exportMyData { userId generatedAt account polls issues } }"
SERVICES = ("users", "polls", "issues")
# What the person did, as record kinds of the export and how many of each.
EXPORTED = {
    "account": {
        "users": 1,
        "refresh_tokens": 1,
        "redemptions": 1,
        "initiative_supporters": 1,
        "consents": 1,
    },
    "polls": {"voters": 1, "ballots": 1},
    "issues": {"users": 1, "issues": 1, "comments": 1, "supports": 1, "solver_offers": 0},
}


async def _act(client: GraphQLClient, marker: str) -> dict[str, Any]:
    """Everything the person does, then the ids a check needs."""
    chief = await admin(client)
    poll_id, answers = await published_poll(chief, "Парковка у школы")
    idea = {"title": "Сквер", "description": "Разбить сквер.", "category": "yards"}
    idea_id = (await chief.data(PROPOSE, {"input": idea}))["proposeInitiative"]["id"]
    signup = {
        "email": f"maria.{marker}@example.ru",
        "password": PASSWORD,
        "displayName": f"Мария {marker}",
        "districtId": "leninsky",
        "consentVersion": DEFAULT_CONSENT_VERSION,
    }
    token = (await client.data(REGISTER, {"input": signup}))["register"]["accessToken"]
    me = client.as_user(token)
    await me.data(VOTE, {"p": poll_id, "a": answers})
    issue_id = (await me.data(REPORT, {"input": POTHOLE}))["reportIssue"]["id"]
    await me.data(COMMENT, {"id": issue_id, "t": "Жду ответа"})
    await me.data(SUPPORT, {"id": idea_id})
    await me.data(SOLVER)
    await eventually(lambda: _points(me))  # the vote's points, credited from its event
    reward = {"title": "Билет в музей", "cost": 1, "stock": 5}
    reward_id = (await chief.data(REWARD, {"input": reward}))["createReward"]["id"]
    await me.data(REDEEM, {"id": reward_id})
    return {"me": me, "poll": poll_id, "issue": issue_id, "idea": idea_id}


async def _check_export(me: GraphQLClient, marker: str) -> None:
    """The export holds each of the person's records, from all three services."""
    exported = (await me.data(EXPORT))["exportMyData"]
    counts = {
        part: {kind: len(exported[part][kind]) for kind in kinds}
        for part, kinds in EXPORTED.items()
    }
    assert counts == EXPORTED
    assert len(exported["account"]["points_ledger"]) >= 1  # the vote's credit
    assert exported["account"]["users"][0]["display_name"] == f"Мария {marker}"
    assert "password_hash" not in exported["account"]["users"][0]
    assert exported["polls"]["ballots"][0]["answers"]


async def _points(me: GraphQLClient) -> int:
    return int((await me.data("{ me { points } }"))["me"]["points"])


async def _known_to_users_and_issues(runner: Runner, marker: str) -> bool:
    return {"users", "issues"} <= {trace.split("/")[0] for trace in await _traces(runner, marker)}


async def _traces(runner: Runner, marker: str) -> list[str]:
    """`service/collection` for every collection of every store that holds the marker."""
    found = []
    for service in SERVICES:
        client = connect(mongo_url(runner.ports[f"mongo-{service}"]))
        try:
            db = client[f"veche_{service}"]
            for name in await db.list_collection_names():
                async for document in db[name].find():
                    if marker in repr(document):
                        found.append(f"{service}/{name}")
                        break
        finally:
            await client.close()
    return found


async def _park_dead_letters(namespace: str, user_id: str, marker: str) -> None:
    """A profile event naming the person, parked in polls' and issues' dead letters as a
    failed delivery would leave it."""
    event = UserProfileUpdated(
        user_id=user_id,
        display_name=f"Мария {marker}",
        district_id="leninsky",
        birth_year=None,
        phone_verified=False,
        skills=[],
        organization=None,
    )
    connection = await aio_pika.connect(DEFAULT_AMQP_URL)
    async with connection, connection.channel() as channel:
        for service in ("polls", "issues"):
            body = Envelope.wrap(event, "users").model_dump_json().encode()
            await channel.default_exchange.publish(
                aio_pika.Message(body=body), routing_key=dead_letter_queue(service, namespace)
            )


async def _dead_letters_naming(namespace: str, marker: str) -> list[str]:
    """The services whose dead-letter queue holds the marker (read, then put back)."""
    found = []
    connection = await aio_pika.connect(DEFAULT_AMQP_URL)
    async with connection:
        for service in SERVICES:
            async with connection.channel() as channel:  # its close returns what it read
                queue = await channel.declare_queue(
                    dead_letter_queue(service, namespace), durable=True
                )
                while (message := await queue.get(no_ack=False, fail=False)) is not None:
                    if marker.encode() in message.body:
                        found.append(service)
    return sorted(set(found))


async def _dead_letters(namespace: str) -> int:
    """Messages parked in all three dead-letter queues, counted without reading them (a
    reader holds what it reads, out of the reach of the services' own clean-up)."""
    total = 0
    connection = await aio_pika.connect(DEFAULT_AMQP_URL)
    async with connection, connection.channel() as channel:
        for service in SERVICES:
            queue = await channel.declare_queue(dead_letter_queue(service, namespace), durable=True)
            total += queue.declaration_result.message_count or 0
    return total


def test_an_erased_citizen_leaves_no_trace_in_any_store(tmp_path: Path) -> None:
    marker = uuid.uuid4().hex[:12]
    namespace = f"test-{marker}."
    # The citizen has not verified a phone: supports of yards' initiatives take them here.
    env = {
        "ISSUES_VERIFIED_SUPPORTS_BY_CATEGORY": '{"yards": false}',
        "VECHE_NAMESPACE": namespace,
    }
    with running(runner_on(tmp_path / "data", **env)) as runner:

        async def scenario() -> None:
            async with gateway_client(runner) as client:
                done = await _act(client, marker)
                ids = {"poll": done["poll"], "issue": done["issue"], "idea": done["idea"]}
                # The name has reached the issues service's projection too.
                await eventually(lambda: _known_to_users_and_issues(runner, marker))
                await _check_export(done["me"], marker)
                before = await client.data(STATE, ids)
                assert before["issue"]["reporter"]["displayName"] == f"Мария {marker}"
                user_id = (await done["me"].data("{ me { id } }"))["me"]["id"]
                await _park_dead_letters(namespace, user_id, marker)
                assert await _dead_letters_naming(namespace, marker) == ["issues", "polls"]

                assert (await done["me"].data(DELETE, {"p": PASSWORD}))["deleteMyAccount"]

                async def gone() -> bool:
                    traces = await _traces(runner, marker)
                    return traces == [] and await _dead_letters(namespace) == 0

                await eventually(gone, timeout=10)
                assert await _dead_letters_naming(namespace, marker) == []
                await asyncio.sleep(0.5)  # the other services' consumers have reacted
                after = await client.data(STATE, ids)
                assert after["poll"] == before["poll"]
                assert after["idea"] == before["idea"]
                assert after["issue"]["history"] == before["issue"]["history"]
                assert after["issue"]["comments"] == before["issue"]["comments"]
                assert after["issue"]["reporter"] == {"displayName": "Удалённый пользователь"}

        asyncio.run(scenario())
