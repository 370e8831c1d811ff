"""Two processes of every service (`VECHE_WORKERS=2`, as `make run` starts them) behind
the gateway, which uses both in turn (issue #17): the cross-service flows work, and
one polls instance SIGKILLed in the middle of the votes loses nothing and doubles
nothing (ballots, points credited and `poll.vote_cast` events counted) while the
gateway keeps answering."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from veche_kit.mongo import connect
from veche_stack.runner import Runner
from veche_stack.stack import mongo_url
from veche_stack.testing import GraphQLClient, bound_queue, eventually, take

from .flows import POTHOLE, REPORT, VOTE, admin, citizen, published_poll, runner_on, running

pytestmark = pytest.mark.stack

NAMESPACE = f"test-{uuid.uuid4().hex[:8]}."
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
VOTERS = 30
REWARD = 10  # a poll's default pointsReward
ACCEPT = """mutation($id: ID!) {
  changeIssueStatus(id: $id, status: ACCEPTED, note: "Передано в дорожную службу") { status }
}"""
INBOX = "{ me { points notifications(first: 20) { edges { node { kind link } } } } }"
POLLS = "{ polls(first: 1) { totalCount } }"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runner]:
    runner = runner_on(
        tmp_path_factory.mktemp("two-instances"),
        VECHE_WORKERS="2",
        VECHE_NAMESPACE=NAMESPACE,  # to count the events on the broker
        USERS_REGISTRATIONS_PER_CLIENT="1000",  # every voter registers from this address
    )
    with running(runner):
        yield runner


def test_every_service_runs_twice_and_the_gateway_knows_both(stack: Runner) -> None:
    names = set(stack.children())
    assert {"users", "users-2", "polls", "polls-2", "issues", "issues-2"} <= names
    health = httpx.get(stack.url("gateway", "/health")).json()
    for name in ("users", "polls", "issues"):
        instances = health["subgraphs"][name]["breaker"]["instances"]
        assert sorted(instances) == sorted([stack.url(name), stack.url(f"{name}-2")])


async def test_a_report_reaches_its_reporter_as_a_notification(stack: Runner) -> None:
    client = GraphQLClient(stack.url("gateway"))
    reporter, _ = await citizen(client, "Заявитель")
    issue = (await reporter.data(REPORT, {"input": POTHOLE}))["reportIssue"]
    await (await admin(client)).data(ACCEPT, {"id": issue["id"]})

    async def told() -> bool:
        edges = (await reporter.data(INBOX))["me"]["notifications"]["edges"]
        return {"kind": "ISSUE_STATUS_CHANGED", "link": f"issue:{issue['id']}"} in [
            e["node"] for e in edges
        ]

    await eventually(told, timeout=60)
    await client.aclose()


async def _vote_until_final(voter: GraphQLClient, poll_id: str, answers: Any) -> list[str]:
    """Votes as a client would: again after SUBGRAPH_UNAVAILABLE (the instance may have
    died before or after it wrote the ballot), until cast or ALREADY_VOTED; every
    answer's outcome."""
    outcomes: list[str] = []
    while len(outcomes) < 60:
        body = await voter.post(VOTE, {"p": poll_id, "a": answers})
        code = str(body["errors"][0]["extensions"]["code"]) if "errors" in body else "cast"
        outcomes.append(code)
        if code in ("cast", "ALREADY_VOTED"):
            return outcomes
        assert code == "SUBGRAPH_UNAVAILABLE", body
        await asyncio.sleep(0.2)
    raise AssertionError("the vote was never answered")


async def test_a_polls_instance_killed_mid_votes_loses_and_doubles_nothing(
    stack: Runner,
) -> None:
    client = GraphQLClient(stack.url("gateway"))
    poll_id, answers = await published_poll(await admin(client), "Парковка у рынка")
    voters = [await citizen(client, f"Избиратель {i}") for i in range(VOTERS)]
    async with bound_queue(AMQP_URL, NAMESPACE, "poll.vote_cast") as queue:
        done = 0
        at_once = asyncio.Semaphore(4)  # votes keep coming after the kill

        async def vote(voter: GraphQLClient) -> list[str]:
            nonlocal done
            async with at_once:
                outcomes = await _vote_until_final(voter, poll_id, answers)
            done += 1
            return outcomes

        voting = [asyncio.create_task(vote(voter)) for voter, _ in voters]

        async def a_third_voted() -> bool:
            return done >= VOTERS // 3

        await eventually(a_third_voted, timeout=120, interval=0.02)
        victim = stack.children()["polls-2"]
        os.kill(victim, signal.SIGKILL)  # a crash: nothing finished, acked or released
        at_kill = done
        answered = [await client.post(POLLS) for _ in range(10)]  # the gateway answers
        outcomes = Counter(o for each in await asyncio.gather(*voting) for o in each)
        assert at_kill < VOTERS, "the kill came too late to test anything"
        assert all("errors" not in body for body in answered), answered
        assert outcomes["SUBGRAPH_UNAVAILABLE"] >= 1, "no vote met the killed instance"
        # ALREADY_VOTED: the instance died after writing the ballot, before answering
        assert outcomes["cast"] + outcomes["ALREADY_VOTED"] == VOTERS

        async def restarted() -> bool:  # by the runner's supervisor, as `make run` does
            return stack.children().get("polls-2", victim) != victim

        await eventually(restarted, timeout=60)

        ballots = connect(mongo_url(stack.ports["mongo-polls"]))["veche_polls"]["ballots"]
        assert await ballots.count_documents({"poll_id": poll_id}) == VOTERS

        async def credited() -> list[int]:
            points = [(await voter.data(INBOX))["me"]["points"] for voter, _ in voters]
            return points if all(p >= REWARD for p in points) else []

        assert await eventually(credited, timeout=120) == [REWARD] * VOTERS
        ledger = connect(mongo_url(stack.ports["mongo-users"]))["veche_users"]["points_ledger"]
        ids = [user_id for _, user_id in voters]
        assert await ledger.count_documents({"user_id": {"$in": ids}}) == VOTERS

        events: list[dict[str, Any]] = []

        async def every_event_arrived() -> bool:
            events.extend(await take(queue))
            ours = {e["data"]["ballot_id"] for e in events if e["data"]["poll_id"] == poll_id}
            return len(ours) == VOTERS

        await eventually(every_event_arrived, timeout=60)
    ours = [e for e in events if e["data"]["poll_id"] == poll_id]
    # One event per ballot; a copy of one (a relay killed between publish and mark
    # publishes it again) carries the same event id, which the consumers absorb.
    by_ballot: dict[str, set[str]] = {}
    for event in ours:
        by_ballot.setdefault(event["data"]["ballot_id"], set()).add(event["id"])
    assert all(len(ids) == 1 for ids in by_ballot.values())
    await client.aclose()
