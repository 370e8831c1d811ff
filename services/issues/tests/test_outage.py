"""A broker outage delays the issues service's events, from every collection that
carries them, and drops none."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aio_pika.abc import AbstractQueue

from veche_issues.app import create_app
from veche_kit.auth import Principal
from veche_stack.testing import (
    GraphQLClient,
    TcpProxy,
    TokenMint,
    bound_queue,
    eventually,
    serve,
    take,
)

from .conftest import CHANGE, PROPOSE, REPORT, issues_settings, project_solver

SUPPORT = "mutation($id: ID!) { supportIssue(id: $id) { id } }"
COMMENT = "mutation($id: ID!, $t: String!) { commentOnIssue(id: $id, text: $t) { id } }"
OFFER = "mutation($id: ID!, $m: String!) { offerToSolve(id: $id, message: $m) { id } }"


ISSUE = {
    "title": "Яма",
    "description": "Яма у дома.",
    "category": "potholes",
    "location": {"lat": 54.52, "lon": 36.27},
}
INITIATIVE = {"title": "Сквер", "description": "Сквер у дома.", "category": "yards"}
# Each collection that carries events gives one: six in all.
ONE_OF_EACH = {
    "issue.reported": 1,
    "initiative.proposed": 1,
    "issue.supported": 1,
    "issue.commented": 1,
    "issue.status_changed": 1,
    "issue.solver_offered": 1,
    "audit.recorded": 1,  # the official's move
}


class Callers:
    """Clients of the service for any user of Leninsky district."""

    def __init__(self, base: GraphQLClient, mint: TokenMint) -> None:
        self.base, self.mint = base, mint

    def __call__(self, user: str, *roles: str, department: str | None = None) -> GraphQLClient:
        principal = Principal(
            user_id=user,
            roles=frozenset({"CITIZEN", *roles}),
            department_id=department,
            district_id="leninsky",
        )
        return self.base.as_user(self.mint.token(principal))


async def _one_event_of_each_kind(client: Callers) -> None:
    reporter, official = (
        client("outage-reporter"),
        client("o", "OFFICIAL", department="roads"),
    )
    issue_id = (await reporter.data(REPORT, {"input": ISSUE}))["reportIssue"]["id"]
    await reporter.data(PROPOSE, {"input": INITIATIVE})
    await client("fan").data(SUPPORT, {"id": issue_id})
    await official.data(COMMENT, {"id": issue_id, "t": "Приняли."})
    await official.data(CHANGE, {"id": issue_id, "status": "ACCEPTED"})
    await client("fixer", "SOLVER").data(OFFER, {"id": issue_id, "m": "Починю."})


async def _everything_relayed(
    queue: AbstractQueue, backlog: Callable[[], Awaitable[int]]
) -> list[dict[str, Any]]:
    """Waits for the six events and an empty outbox; returns every event received."""
    received: list[dict[str, Any]] = []

    async def all_arrived() -> bool:
        received.extend(await take(queue))
        return len(received) >= len(ONE_OF_EACH)

    await eventually(all_arrived, timeout=30)
    await eventually(lambda: _zero(backlog))
    received.extend(await take(queue))  # any duplicate sent late
    return received


async def test_events_wait_for_the_broker_and_all_arrive_once(
    mongo_server_url: str, amqp_url: str, tmp_path: Path
) -> None:
    proxy = TcpProxy("127.0.0.1", 5672)
    await proxy.start()
    settings = issues_settings(mongo_server_url, proxy.url, tmp_path)
    mint = TokenMint()
    app = create_app(settings, verifier=mint.verifier())
    runtime = app.state.runtime

    async def disconnected() -> bool:
        return not runtime.bus.connected

    async def backlog() -> int:
        return int((await runtime.relay.backlog()).pending)

    async with (
        bound_queue(amqp_url, settings.namespace, "issue.#", "initiative.#", "audit.#") as queue,
        serve(app) as url,
    ):
        base = GraphQLClient(f"{url}/graphql")
        # Ready, not merely connected: a cut while the channel and exchange are still being
        # set up would leave the bus never ready, and the relay waiting for it.
        await runtime.bus.wait_ready(15)
        # The categories told at start have gone out: the backlog below is the test's.
        await eventually(lambda: _zero(backlog))
        await proxy.cut()
        await eventually(disconnected)

        await project_solver(app.state.service.db, "fixer")
        await _one_event_of_each_kind(Callers(base, mint))
        assert await backlog() == len(ONE_OF_EACH)

        await proxy.restore()
        received = await _everything_relayed(queue, backlog)
        await base.aclose()
    await proxy.cut()
    assert Counter(e["type"] for e in received) == ONE_OF_EACH
    assert len({e["id"] for e in received}) == len(received)


async def _zero(backlog: Any) -> bool:
    return bool(await backlog() == 0)
