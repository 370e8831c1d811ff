"""Staff tools across the stack (issue #20): a suspension stops the person's token at
every service within seconds, the polls service's staff actions reach the one audit
log the users service keeps, and content a moderator hides in the issues service is
gone from public reads through the gateway, names included, with the author told."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from veche_stack.testing import GraphQLClient, eventually

from .flows import (
    POTHOLE,
    REPORT,
    admin,
    citizen,
    gateway_client,
    published_poll,
    runner_on,
    running,
)

pytestmark = pytest.mark.stack

SUSPEND = "mutation($u: ID!, $r: String!) { suspendUser(userId: $u, reason: $r) { id } }"
# One field of each service that needs a signed-in caller.
AT_EACH_SERVICE = {
    "users": "{ me { id } }",
    "polls": "{ pollsForMe(first: 1) { totalCount } }",
    "issues": 'mutation { supportIssue(id: "000000000000000000000000") { id } }',
}
CLOSE = "mutation($id: ID!) { closePoll(id: $id) { status } }"
DECIDE = """mutation($poll: ID!) {
  recordDecision(pollId: $poll, text: "Парковку построят к лету.", status: TAKEN) { id }
}"""
LOG = """query($id: ID!) {
  auditLog(filter: {targetId: $id}, first: 10) { edges { node { action service actorId after } } }
}"""


COMMENT = "mutation($id: ID!, $t: String!) { commentOnIssue(id: $id, text: $t) { id } }"
COMPLAIN = """mutation($t: ContentInput!) { reportContent(target: $t, reason: "Оскорбления") }"""
HIDE = (
    """mutation($t: ContentInput!) { hideContent(target: $t, reason: "Оскорбления") { status } }"""
)
READ = """query($id: ID!) { issue(id: $id) {
  reporter { displayName } comments { totalCount edges { node { id hidden { reason } } } } } }"""
INBOX = "{ me { notifications { edges { node { kind } } } } }"


async def _codes(person: GraphQLClient) -> dict[str, str | None]:
    """The error code each service answers the person's token with (None: accepted)."""
    codes: dict[str, str | None] = {}
    for service, document in AT_EACH_SERVICE.items():
        body = await person.post(document)
        errors = body.get("errors") or []
        codes[service] = errors[0]["extensions"]["code"] if errors else None
    return codes


async def _suspension_reaches_every_service(client: GraphQLClient) -> float:
    chief = await admin(client)
    person, user_id = await citizen(client, "Пётр Спамов")
    before = await _codes(person)
    assert before == {"users": None, "polls": None, "issues": "NOT_FOUND"}
    await chief.data(SUSPEND, {"u": user_id, "r": "Спам в комментариях"})
    started = time.monotonic()

    async def refused_everywhere() -> bool:
        return set((await _codes(person)).values()) == {"UNAUTHENTICATED"}

    await eventually(refused_everywhere, timeout=5, interval=0.2)
    return time.monotonic() - started


async def _poll_actions_are_audited(client: GraphQLClient) -> list[dict[str, Any]]:
    chief = await admin(client)
    poll_id, _ = await published_poll(chief, "Парковка у библиотеки")
    await chief.data(CLOSE, {"id": poll_id})
    await chief.data(DECIDE, {"poll": poll_id})

    async def logged() -> list[dict[str, Any]]:
        edges = (await chief.data(LOG, {"id": poll_id}))["auditLog"]["edges"]
        nodes = [edge["node"] for edge in edges]
        return nodes if len(nodes) >= 3 else []

    await eventually(logged, timeout=10)
    await asyncio.sleep(0.5)  # nothing more arrives: each action once
    return await logged()


async def _hidden_content_leaves_public_reads(client: GraphQLClient) -> None:
    chief = await admin(client)
    author, author_id = await citizen(client, "Грубиян")
    neighbour, _ = await citizen(client, "Соседка")
    issue_id = (await author.data(REPORT, {"input": POTHOLE}))["reportIssue"]["id"]
    comment = (await author.data(COMMENT, {"id": issue_id, "t": "Все дураки"}))["commentOnIssue"]
    target = {"kind": "COMMENT", "id": comment["id"]}
    assert (await neighbour.data(COMPLAIN, {"t": target}))["reportContent"] is True
    assert (await chief.data(HIDE, {"t": target}))["hideContent"]["status"] == "HIDDEN"

    public = (await client.data(READ, {"id": issue_id}))["issue"]["comments"]
    assert (public["totalCount"], public["edges"]) == (0, [])
    staff = (await chief.data(READ, {"id": issue_id}))["issue"]["comments"]["edges"]
    assert [e["node"]["hidden"] for e in staff] == [{"reason": "Оскорбления"}]

    async def told() -> bool:
        kinds = [
            e["node"]["kind"] for e in (await author.data(INBOX))["me"]["notifications"]["edges"]
        ]
        return "CONTENT_HIDDEN" in kinds

    async def logged() -> list[dict[str, Any]]:
        edges = (await chief.data(LOG, {"id": comment["id"]}))["auditLog"]["edges"]
        return [e["node"] for e in edges]

    await eventually(told, timeout=10)
    entries = await eventually(logged, timeout=10)
    assert [(e["action"], e["service"]) for e in entries] == [("CONTENT_HIDDEN", "issues")]

    await chief.data(HIDE, {"t": {"kind": "DISPLAY_NAME", "id": author_id}})

    async def name_hidden() -> bool:
        reporter = (await client.data(READ, {"id": issue_id}))["issue"]["reporter"]
        return bool(reporter["displayName"] == "Имя скрыто модератором")

    await eventually(name_hidden, timeout=10)


def test_staff_actions_across_the_stack(tmp_path: Path) -> None:
    with running(runner_on(tmp_path / "data")) as runner:

        async def scenario() -> None:
            async with gateway_client(runner) as client:
                took = await _suspension_reaches_every_service(client)
                assert took < 5
                entries = await _poll_actions_are_audited(client)
                actions = sorted(e["action"] for e in entries)
                assert actions == ["POLL_CLOSED", "POLL_DECISION_RECORDED", "POLL_PUBLISHED"]
                assert {e["service"] for e in entries} == {"polls"}
                closed = next(e for e in entries if e["action"] == "POLL_CLOSED")
                assert closed["after"] == {"votes_count": 0}
                await _hidden_content_leaves_public_reads(client)

        asyncio.run(scenario())
