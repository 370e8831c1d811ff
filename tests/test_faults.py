"""Faults across processes, each run as `make run` runs them: nothing lost,
nothing counted twice.

- the users service SIGKILLed while hundreds of events are queued for it;
- every event of a scenario delivered twice.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from pymongo import AsyncMongoClient

from veche_kit.bus import EventBus
from veche_kit.events import Envelope, PollVoteCast
from veche_kit.mongo import Document, connect
from veche_stack.stack import SERVICES, Stack, StackConfig
from veche_stack.testing import GraphQLClient, eventually

pytestmark = pytest.mark.stack

USERS = next(s for s in SERVICES if s.name == "users")
REGISTER = """mutation($input: RegisterInput!) { register(input: $input) { user { id } } }"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, amqp_url: str) -> Iterator[Stack]:
    config = StackConfig.for_tests(tmp_path_factory.mktemp("faults"), amqp_url)
    config.extra_env["VECHE_NAMESPACE"] = f"test-{uuid.uuid4().hex[:8]}."
    stack = Stack(config)
    stack.services = [USERS]  # these faults concern the users service alone
    stack.gateway = None
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
async def users_db(stack: Stack) -> AsyncIterator[AsyncMongoClient[Document]]:
    client = connect(stack.store_url("users"))
    yield client
    await client.close()


@pytest.fixture(scope="module")
async def publisher(stack: Stack) -> AsyncIterator[EventBus]:
    bus = EventBus(
        stack.amqp_url, "fault-producer", namespace=stack.config.extra_env["VECHE_NAMESPACE"]
    )
    bus.start()
    await bus.wait_ready(10)
    yield bus
    await bus.close()


async def register_voters(stack: Stack, count: int) -> list[str]:
    client = GraphQLClient(stack.url("users"))
    ids = []
    for i in range(count):
        payload = {
            "email": f"voter-{i}-{uuid.uuid4().hex[:6]}@example.ru",
            "password": "fault tolerant 1",
            "consentVersion": "2026-12-01",  # veche_users.settings.DEFAULT_CONSENT_VERSION
            "displayName": f"Избиратель {i}",
        }
        ids.append((await client.data(REGISTER, {"input": payload}))["register"]["user"]["id"])
    await client.aclose()
    return ids


def vote_events(voters: list[str], *, polls: int, reward: int) -> list[Envelope]:
    """`poll.vote_cast` as the polls service would publish it: every voter in every poll."""
    return [
        Envelope.wrap(
            PollVoteCast(
                poll_id=f"poll-{n}-{uuid.uuid4().hex[:6]}",
                ballot_id=uuid.uuid4().hex,
                voter_id=voter,
                points_reward=reward,
                district_id=None,
                age_group=None,
            ),
            "polls",
        )
        for n in range(polls)
        for voter in voters
    ]


async def points(client: AsyncMongoClient[Document], user_ids: list[str]) -> dict[str, int]:
    db = client["veche_users"]
    return {d["_id"]: d["points"] async for d in db["users"].find({"_id": {"$in": user_ids}})}


async def test_users_killed_with_events_queued_applies_each_exactly_once(
    stack: Stack, users_db: AsyncMongoClient[Document], publisher: EventBus
) -> None:
    voters = await register_voters(stack, 10)
    votes = vote_events(voters, polls=50, reward=10)
    processed = users_db["veche_users"]["processed_events"]
    before = await processed.count_documents({})
    for envelope in votes:  # 500 events, confirmed by the broker
        await publisher.publish(envelope)

    async def some_applied() -> bool:
        return await processed.count_documents({}) - before >= 50

    await eventually(some_applied, timeout=60, interval=0.02)
    stack.processes["users"].kill()  # SIGKILL: no chance to finish or ack anything in flight
    applied_before_restart = await processed.count_documents({}) - before
    assert applied_before_restart < len(votes), "the kill came too late to test anything"
    stack.start_service(USERS).wait_http(stack.url("users", "/ready"))

    async def all_applied() -> bool:
        return await processed.count_documents({}) - before == len(votes)

    await eventually(all_applied, timeout=120, interval=0.2)
    assert await points(users_db, voters) == dict.fromkeys(voters, 500)
    ledger = users_db["veche_users"]["points_ledger"]
    assert await ledger.count_documents({"user_id": {"$in": voters}}) == len(votes)


async def test_every_event_delivered_twice_has_one_effect(
    stack: Stack, users_db: AsyncMongoClient[Document], publisher: EventBus
) -> None:
    voters = await register_voters(stack, 3)
    votes = vote_events(voters, polls=20, reward=7)
    processed = users_db["veche_users"]["processed_events"]
    # The consumer handles its queue in order: once the sentinel is applied, every
    # duplicate before it has been seen (and skipped).
    sentinel = Envelope.wrap(
        PollVoteCast(
            poll_id="sentinel",
            ballot_id="s",
            voter_id=voters[0],
            points_reward=0,
            district_id=None,
            age_group=None,
        ),
        "polls",
    )
    for envelope in [*votes, *votes, sentinel]:
        await publisher.publish(envelope)

    async def sentinel_applied() -> bool:
        return await processed.count_documents({"_id": str(sentinel.id)}) == 1

    await eventually(sentinel_applied, timeout=60)
    assert await processed.count_documents({"_id": {"$in": [str(e.id) for e in votes]}}) == len(
        votes
    )
    assert await points(users_db, voters) == dict.fromkeys(voters, 140)
