"""A citizen's day on the portal, written as a front end would write it: with a
GraphQL client made by others (`gql`, https://gql.readthedocs.io), against the
one endpoint, knowing nothing of the services behind it.

    make run      # in another terminal: the stack, gateway on :4000
    .venv/bin/python examples/frontend_client.py --endpoint http://127.0.0.1:4000/graphql

What it does, in order:
 1. reads the sign-up form (the consent text to accept, districts, categories)
    and signs up, passing the consent version it was shown;
 2. reads `pollsForMe` and votes in the newest poll; a second vote is refused
    with ALREADY_VOTED, which a front end tells apart by `extensions.code`;
 3. reports a pothole with its location;
 4. searches in Russian: "яма" finds "Ямы во дворе";
 5. follows the issue's status until an official or a moderator moves it
    (polling `issue(id)`, as a page would on refresh; up to --follow-seconds);
 6. reads the inbox, waiting briefly for the notice of that status change.

Each step prints one JSON line (`{"step": ..., ...}`), so a person can read it
and a test can check it (tests/test_gql_client.py does).

The operations live in examples/operations.graphql, the way a front end keeps
them; the same file is fed to GraphQL Code Generator for TypeScript types. The
client validates every operation against the gateway's published schema
(GET /schema.graphql) before sending it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from gql import Client, GraphQLRequest
from gql.client import AsyncClientSession
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXAsyncTransport
from graphql import (
    DefinitionNode,
    DocumentNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    OperationDefinitionNode,
    Visitor,
    parse,
    visit,
)

OPERATIONS = Path(__file__).with_name("operations.graphql")
# Near the old town of Kaluga; any point inside the city will do.
POTHOLE_AT = {"lat": 54.5138, "lon": 36.2612}

Step = Callable[..., None]


# ───────────────────────── the operations file ─────────────────────────


class _Spreads(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def enter_fragment_spread(self, node: FragmentSpreadNode, *_: Any) -> None:
        self.names.add(node.name.value)


def _needed(definition: DefinitionNode, fragments: dict[str, FragmentDefinitionNode]) -> list[str]:
    """The fragments a definition spreads, and theirs in turn."""
    found: list[str] = []
    todo = [definition]
    while todo:
        spreads = _Spreads()
        visit(todo.pop(), spreads)
        for name in sorted(spreads.names - set(found)):
            found.append(name)
            todo.append(fragments[name])
    return found


def load_operations(path: Path = OPERATIONS) -> dict[str, DocumentNode]:
    """Each named operation of the file as a document of its own, with the fragments
    it uses: what a bundler's GraphQL loader does for a front end."""
    document = parse(path.read_text(encoding="utf-8"))
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    operations: dict[str, DocumentNode] = {}
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode) and definition.name:
            used = [fragments[name] for name in _needed(definition, fragments)]
            operations[definition.name.value] = DocumentNode(definitions=(definition, *used))
    return operations


# ───────────────────────── talking to the gateway ─────────────────────────


class Portal:
    """The gateway as this front end sees it: its schema and its operations."""

    def __init__(self, endpoint: str, schema_sdl: str) -> None:
        self.endpoint = endpoint
        self.schema_sdl = schema_sdl
        self.operations = load_operations()

    @classmethod
    async def discover(cls, endpoint: str) -> Portal:
        """Reads the published SDL (GET /schema.graphql beside /graphql)."""
        schema_url = endpoint.rsplit("/graphql", 1)[0] + "/schema.graphql"
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.get(schema_url)
            response.raise_for_status()
        return cls(endpoint, response.text)

    @asynccontextmanager
    async def session(self, token: str | None = None) -> AsyncIterator[Session]:
        """One HTTP connection; signed in when a token is given."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        transport = HTTPXAsyncTransport(url=self.endpoint, headers=headers, timeout=30)
        # With the schema given, gql validates each operation before sending it.
        client = Client(transport=transport, schema=self.schema_sdl)
        async with client as gql_session:
            yield Session(gql_session, self.operations)


class Session:
    """An open connection that runs operations by name."""

    def __init__(self, session: AsyncClientSession, operations: dict[str, DocumentNode]) -> None:
        self._session = session
        self._operations = operations

    async def run(self, operation: str, **variables: Any) -> dict[str, Any]:
        """Runs a named operation of operations.graphql; GraphQL errors raise
        TransportQueryError (see `error_code`)."""
        request = GraphQLRequest(self._operations[operation], variable_values=variables)
        result: dict[str, Any] = await self._session.execute(request)
        return result


def error_code(error: TransportQueryError) -> str | None:
    """The stable code a front end branches on (`extensions.code`), not the message,
    which is for people and may change."""
    for item in error.errors or []:
        code = (item.get("extensions") or {}).get("code")
        if code:
            return str(code)
    return None


# ───────────────────────── a citizen's day ─────────────────────────


async def sign_up(portal: Portal, step: Step, district: str) -> str:
    """Returns the new account's access token."""
    async with portal.session() as anonymous:
        form = await anonymous.run("SignUpForm")
        consent = form["currentConsent"]
        # The person reads consent["text"] and ticks the box; then:
        account = {
            "email": f"citizen-{uuid.uuid4().hex[:8]}@example.ru",
            "password": "a long enough password 1",
            "displayName": "Анна",
            "districtId": district,
            "consentVersion": consent["version"],
        }
        signed_up = (await anonymous.run("SignUp", input=account))["register"]
    step("signed_up", user=signed_up["user"], consentVersion=consent["version"])
    token: str = signed_up["accessToken"]
    return token


def ballot_for(poll: dict[str, Any]) -> list[dict[str, Any]]:
    """An answer to every question: the first option, or the lowest point of a scale."""
    answers: list[dict[str, Any]] = []
    for question in poll["questions"]:
        if question["kind"] == "SCALE":
            answers.append({"questionId": question["id"], "value": question["scaleMin"]})
        else:
            first = question["options"][0]["id"]
            answers.append({"questionId": question["id"], "optionIds": [first]})
    return answers


async def vote(me: Session, step: Step) -> None:
    offered = (await me.run("PollsForMe", first=5))["pollsForMe"]
    if not offered["edges"]:
        step("no_polls")
        return
    poll = offered["edges"][0]["node"]
    answers = ballot_for(poll)
    ballot = (await me.run("CastVote", pollId=poll["id"], answers=answers))["castVote"]
    step("voted", poll={"id": poll["id"], "title": poll["title"]}, ballot=ballot)
    try:
        await me.run("CastVote", pollId=poll["id"], answers=answers)
    except TransportQueryError as refused:
        step("second_vote_refused", code=error_code(refused))


async def report_and_search(me: Session, step: Step, title: str, query: str) -> dict[str, Any]:
    pothole = {
        "title": title,
        "description": "Две глубокие ямы на выезде со двора, машины объезжают по тротуару.",
        "category": "potholes",
        "location": POTHOLE_AT,
    }
    issue: dict[str, Any] = (await me.run("ReportIssue", input=pothole))["reportIssue"]
    step("reported", issue=issue)
    found = (await me.run("SearchIssues", text=query, first=20))["issues"]
    titles = {edge["node"]["id"]: edge["node"]["title"] for edge in found["edges"]}
    step("searched", text=query, totalCount=found["totalCount"], found=titles)
    return issue


async def follow(me: Session, step: Step, issue_id: str, seconds: float) -> bool:
    """Polls the issue's page until its status moves on from NEW (or time is up);
    True if it moved."""
    deadline = time.monotonic() + seconds
    while True:
        issue = (await me.run("FollowIssue", id=issue_id))["issue"]
        if issue["status"] != "NEW" or time.monotonic() > deadline:
            step("followed", issue=issue)
            return bool(issue["status"] != "NEW")
        await asyncio.sleep(1)


async def read_inbox(me: Session, step: Step, awaited: str | None, seconds: float = 20) -> None:
    """Reads the inbox. With `awaited` (a link such as "issue:<id>"), waits a
    little for a notice about it: notices arrive a moment after the change they
    tell of."""
    deadline = time.monotonic() + seconds
    while True:
        inbox = (await me.run("Inbox", first=20))["me"]
        notices = [edge["node"] for edge in inbox["notifications"]["edges"]]
        arrived = awaited is None or any(n["link"] == awaited for n in notices)
        if arrived or time.monotonic() > deadline:
            step("inbox", points=inbox["points"], notifications=notices)
            return
        await asyncio.sleep(1)


async def citizen_day(endpoint: str, step: Step, *, district: str, follow_seconds: float) -> None:
    portal = await Portal.discover(endpoint)
    token = await sign_up(portal, step, district)
    async with portal.session(token) as me:
        await vote(me, step)
        tag = uuid.uuid4().hex[:6]  # one's own report among everyone's
        issue = await report_and_search(me, step, f"Ямы во дворе {tag}", f"яма {tag}")
        moved = await follow(me, step, issue["id"], follow_seconds)
        await read_inbox(me, step, f"issue:{issue['id']}" if moved else None)


def print_step(step: str, **details: Any) -> None:
    print(json.dumps({"step": step, **details}, ensure_ascii=False), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", default="http://127.0.0.1:4000/graphql")
    parser.add_argument("--district", default="leninsky", help="a district id (see `districts`)")
    parser.add_argument(
        "--follow-seconds", type=float, default=60, help="how long to wait for a status change"
    )
    args = parser.parse_args(argv)
    asyncio.run(
        citizen_day(
            args.endpoint, print_step, district=args.district, follow_seconds=args.follow_seconds
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
