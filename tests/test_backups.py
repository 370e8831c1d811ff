"""Backups as a city runs them, with the stack running as `make run` starts it:
write in every service, back up, write more, stop, restore the issues service
alone, start again and reconcile; then the same for users. What was there before
the backup reads back through the gateway, and every point is counted once."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from veche_issues.store import INDEXES as ISSUES_INDEXES
from veche_kit.mongo import connect, ensure_indexes
from veche_stack.backup import Backups, dump, load_dump
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

MINE = """query($p1: ID!, $p2: ID!, $i1: ID!, $i2: ID!) {
  me { displayName points }
  first: poll(id: $p1) { votesCount myBallot { id } }
  second: poll(id: $p2) { votesCount myBallot { id } }
  before: issue(id: $i1) { title reporter { displayName } }
  after: issue(id: $i2) { id }
}"""


def backup_tool(runner: Runner, *args: str, module: str = "veche_stack.backup") -> str:
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
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


@pytest.mark.stack
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
        rehearsal = backup_tool(runner, "all", "--dry-run", module="veche_stack.migrate")
        assert rehearsal.splitlines() == [
            f"{s}: nothing pending" for s in ("users", "polls", "issues")
        ]
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


async def test_a_dump_in_mongodumps_layout_loads_back_with_its_indexes(
    mongo_server_url: str, tmp_path: Path
) -> None:
    """The path a real MongoDB takes (its snapshot session is not isolating on the
    embedded store, so this checks the layout and the round trip, not the snapshot)."""
    client = connect(mongo_server_url)
    source = client[f"dump_{uuid.uuid4().hex[:8]}"]
    target = client[f"load_{uuid.uuid4().hex[:8]}"]
    try:
        await ensure_indexes(source, ISSUES_INDEXES)
        issues = [
            {
                "_id": f"i{n}",
                "title": "Яма",
                "location": {"type": "Point", "coordinates": [36.26, 54.51]},
            }
            for n in range(2500)
        ]
        await source["issues"].insert_many(issues)
        await source["outbox"].insert_one({"_id": "e1", "envelope": {"type": "issue.reported"}})
        archive = tmp_path / "issues-20261202T030000Z.dump.tar.gz"
        await dump(source, archive, snapshot=False)
        with tarfile.open(archive) as tar:
            names = set(tar.getnames())
        assert f"{source.name}/issues.bson" in names
        assert f"{source.name}/issues.metadata.json" in names
        await target["issues"].insert_one({"_id": "stale"})  # replaced, not merged
        await load_dump(target, archive)
        assert await target["issues"].find().sort("_id", 1).to_list() == sorted(
            issues, key=lambda d: str(d["_id"])
        )
        assert await target["outbox"].count_documents({}) == 1
        assert set(await target["issues"].index_information()) == set(
            await source["issues"].index_information()
        )
    finally:
        await client.drop_database(source.name)
        await client.drop_database(target.name)
        await client.close()


def test_old_backups_beyond_the_retention_are_removed(tmp_path: Path) -> None:
    backups = Backups({"VECHE_DATA_DIR": str(tmp_path), "VECHE_BACKUP_KEEP": "2"})
    backups.directory.mkdir(parents=True)
    for hour in range(10, 15):
        (backups.directory / f"issues-20261202T{hour}0000Z.store.tar.gz").write_bytes(b"")
    (backups.directory / "polls-20261202T100000Z.store.tar.gz").write_bytes(b"")
    backups._prune("issues")
    assert [a.taken_at.hour for a in backups.archives("issues")] == [13, 14]
    assert len(backups.archives("polls")) == 1
