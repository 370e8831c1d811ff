"""Backups as a city runs them, with the stack running as `make run` starts it:
write in every service, back up, write more, stop, restore the issues service
alone, start again and reconcile; then the same for users. What was there before
the backup reads back through the gateway, and every point is counted once."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from veche_kit.mongo import connect
from veche_stack.runner import Runner
from veche_stack.stack import mongo_url
from veche_stack.testing import GraphQLClient, eventually

from .flows import (
    POTHOLE,
    REPORT,
    VOTE,
    admin,
    citizen,
    gateway_client,
    published_poll,
    runner_on,
)

pytestmark = pytest.mark.stack

MINE = """query($p1: ID!, $p2: ID!, $i1: ID!, $i2: ID!) {
  me { displayName points }
  first: poll(id: $p1) { votesCount myBallot { id } }
  second: poll(id: $p2) { votesCount myBallot { id } }
  before: issue(id: $i1) { title reporter { displayName } }
  after: issue(id: $i2) { id }
}"""


def backup_tool(runner: Runner, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "veche_stack.backup", *args],
        env=runner.environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


async def outboxes_drained(runner: Runner) -> bool:
    async with httpx.AsyncClient() as http:
        for name in ("users", "polls", "issues"):
            health = (await http.get(runner.url(name, "/health"))).json()
            if health["outbox"]["pending"]:
                return False
    return True


def test_restore_one_service_then_reconcile(tmp_path: Path) -> None:
    runner = runner_on(tmp_path / "data")
    ids: dict[str, Any] = {}

    async def before_backup() -> None:
        async with gateway_client(runner) as client:
            person, ids["user"] = await citizen(client, "Вера")
            ids["token"] = person.token
            city = await admin(client)
            ids["p1"], answers = await published_poll(city, "Скамейки в сквере")
            await person.data(VOTE, {"p": ids["p1"], "a": answers})
            ids["i1"] = (await person.data(REPORT, {"input": POTHOLE}))["reportIssue"]["id"]

            async def credited() -> int:
                return int((await person.data("{ me { points } }"))["me"]["points"])

            ids["reward"] = await eventually(credited, timeout=30)

    async def after_backup() -> None:
        async with gateway_client(runner) as client:
            person = client.as_user(ids["token"])
            city = await admin(client)
            ids["p2"], answers = await published_poll(city, "Фонари на набережной")
            await person.data(VOTE, {"p": ids["p2"], "a": answers})
            lost = {**POTHOLE, "title": "Сломан светофор"}
            ids["i2"] = (await person.data(REPORT, {"input": lost}))["reportIssue"]["id"]

            async def credited_twice() -> bool:
                me = (await person.data("{ me { points } }"))["me"]
                return bool(me["points"] == 2 * ids["reward"])

            await eventually(credited_twice, timeout=30)

    runner.start()
    try:
        asyncio.run(before_backup())
        made = backup_tool(runner, "all")
        assert [line.split(":")[0] for line in made.splitlines()] == ["users", "polls", "issues"]
        asyncio.run(after_backup())
    finally:
        runner.interrupt()

    restored = backup_tool(runner, "restore", "issues")
    assert "restored issues from" in restored
    runner.start()
    try:
        reconciled = backup_tool(runner, "reconcile", "issues")
        assert "polls:" in reconciled
        assert "users:" in reconciled

        async def read_back() -> dict[str, Any]:
            async with gateway_client(runner) as client:
                await eventually(lambda: outboxes_drained(runner), timeout=60)
                await asyncio.sleep(1.0)  # the last re-published events reach their consumers
                me = GraphQLClient.as_user(client, ids["token"])
                body = await me.post(
                    MINE, {"p1": ids["p1"], "p2": ids["p2"], "i1": ids["i1"], "i2": ids["i2"]}
                )
                data: dict[str, Any] = body["data"]
                return data

        view = asyncio.run(read_back())
        assert view["me"] == {"displayName": "Вера", "points": 2 * ids["reward"]}
        assert view["first"]["votesCount"] == 1
        assert view["first"]["myBallot"] is not None
        assert view["second"]["votesCount"] == 1  # polls was not restored
        assert view["before"] == {"title": POTHOLE["title"], "reporter": {"displayName": "Вера"}}
        assert view["after"] is None  # reported after the backup: what a restore gives up

        async def recount() -> tuple[int, int, int]:
            users = connect(mongo_url(runner.ports["mongo-users"]))
            polls = connect(mongo_url(runner.ports["mongo-polls"]))
            try:
                ledger = (
                    await users["veche_users"]["points_ledger"]
                    .find({"user_id": ids["user"]})
                    .to_list()
                )
                stored = await users["veche_users"]["users"].find_one({"_id": ids["user"]})
                ballots = await polls["veche_polls"]["ballots"].count_documents(
                    {"voter_id": ids["user"]}
                )
            finally:
                await users.close()
                await polls.close()
            assert stored is not None
            assert len({e["source_event"] for e in ledger}) == len(ledger)  # once each
            return sum(e["amount"] for e in ledger), int(stored["points"]), ballots

        total, points, ballots = asyncio.run(recount())
        assert ballots == 2
        assert total == points == 2 * ids["reward"]
    finally:
        runner.interrupt()

    # Now users alone: it loses the credit for the second vote, which only the
    # reconcile brings back (polls publishes that ballot's event again), once.
    backup_tool(runner, "restore", "users")
    runner.start()
    try:

        async def points_now() -> int:
            async with gateway_client(runner) as client:
                me = await client.as_user(ids["token"]).data("{ me { points } }")
                return int(me["me"]["points"])

        assert asyncio.run(points_now()) == ids["reward"]  # as at the backup
        backup_tool(runner, "reconcile", "users")

        async def caught_up() -> bool:
            return bool(await points_now() == 2 * ids["reward"])

        asyncio.run(eventually(caught_up, timeout=60))
        total, points, ballots = asyncio.run(recount())
        assert total == points == 2 * ids["reward"]
        assert ballots == 2
    finally:
        runner.interrupt()
    listed = backup_tool(runner, "list")
    assert len(listed.splitlines()) == 3
