"""What a city does to a running stack, with `python -m veche_stack` as `make run`
starts it: stop it and start it again on its own data, send every process two
signals at once, kill the runner, start beside a leftover process, crash each
service under traffic. Nothing may be lost, hang, hold a port or outlive the runner."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from veche_stack.processes import port_open
from veche_stack.runner import Runner, alive, wait_gone
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
    running,
)

pytestmark = pytest.mark.stack

READ_BACK = """query($poll: ID!, $issue: ID!) {
  me {
    id displayName points
    notifications(first: 20) { totalCount edges { node { kind link } } }
  }
  poll(id: $poll) { title status votesCount myBallot { id } }
  issue(id: $issue) { title location { lat lon } reporter { id } }
}"""
# One root field per subgraph, so an answer shows which service answered.
PROBES = {
    "users": "{ districts { id } }",
    "polls": "{ polls(first: 1) { totalCount } }",
    "issues": "{ issues(first: 1) { totalCount } }",
}


@dataclass
class Written:
    """What the first run wrote, to read back after the restart."""

    token: str
    user_id: str
    poll_id: str
    issue_id: str
    reward: int


async def write_in_every_service(runner: Runner) -> Written:
    async with gateway_client(runner) as client:
        person, user_id = await citizen(client, "Ирина")
        city = await admin(client)
        poll_id, answers = await published_poll(city, "Парковка у школы")
        await person.data(VOTE, {"p": poll_id, "a": answers})
        issue = (await person.data(REPORT, {"input": POTHOLE}))["reportIssue"]

        async def settled() -> dict[str, Any]:
            # the vote credited and the new poll announced: both through users' consumer
            me: dict[str, Any] = (
                await person.data(READ_BACK, {"poll": poll_id, "issue": issue["id"]})
            )["me"]
            return me if me["points"] and me["notifications"]["totalCount"] else {}

        me = await eventually(settled, timeout=30)
        assert person.token is not None
        return Written(person.token, user_id, poll_id, issue["id"], me["points"])


def test_the_stack_starts_again_on_its_own_data(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = runner_on(data)
    with running(first):
        written = asyncio.run(write_in_every_service(first))
    assert first.process is not None
    assert first.process.returncode == 0, first.text

    again = runner_on(data)
    again.ports = first.ports
    with running(again):

        async def read_back() -> dict[str, Any]:
            async with gateway_client(again) as client:
                return await client.as_user(written.token).data(
                    READ_BACK, {"poll": written.poll_id, "issue": written.issue_id}
                )

        view = asyncio.run(read_back())
        assert view["me"]["id"] == written.user_id
        assert view["me"]["displayName"] == "Ирина"
        assert view["me"]["points"] == written.reward
        assert {"kind": "POLL_PUBLISHED", "link": f"poll:{written.poll_id}"} in [
            e["node"] for e in view["me"]["notifications"]["edges"]
        ]
        assert view["poll"] == {
            "title": "Парковка у школы",
            "status": "ACTIVE",
            "votesCount": 1,
            "myBallot": view["poll"]["myBallot"],
        }
        assert view["poll"]["myBallot"] is not None
        assert view["issue"] == {
            "title": "Яма у подъезда",
            "location": {"lat": 54.5138, "lon": 36.2612},
            "reporter": {"id": written.user_id},
        }

        # Two signals back to back to the runner and to every process it runs.
        children = again.children()
        assert set(children) == {
            "users",
            "polls",
            "issues",
            "gateway",
            "mongo-users",
            "mongo-polls",
            "mongo-issues",
        }
        for pid in (again.pid, *children.values()):
            os.kill(pid, signal.SIGINT)
            os.kill(pid, signal.SIGTERM)
        assert wait_gone(children, timeout=10) == {}
        assert again.process is not None
        again.process.wait(timeout=10)
    for name, port in again.ports.items():
        assert not port_open("127.0.0.1", port), f"{name} still holds port {port}"


def test_a_stack_refuses_to_start_beside_a_leftover_listener(tmp_path: Path) -> None:
    runner = runner_on(tmp_path / "data")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", runner.ports["issues"]))
        squatter.listen()
        process = runner.launch()
        code = process.wait(timeout=60)
    errors = [line for line in runner.output if "could not start" in line]
    assert code == 1
    assert len(errors) == 1, runner.text
    assert f"port {runner.ports['issues']} (issues) is held by PID {os.getpid()} " in errors[0], (
        errors
    )
    assert f"kill {os.getpid()}" in errors[0]
    assert "Traceback" not in runner.text


def test_production_refuses_the_embedded_store(tmp_path: Path) -> None:
    runner = runner_on(
        tmp_path / "data", VECHE_ENV="production", USERS_MONGO_URL="mongodb://db.city:27017"
    )
    code = runner.launch().wait(timeout=60)
    assert code == 1
    assert "set POLLS_MONGO_URL, ISSUES_MONGO_URL to your MongoDB replica set" in runner.text
    assert "Traceback" not in runner.text


@pytest.fixture(scope="module")
def crash_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runner]:
    with running(runner_on(tmp_path_factory.mktemp("crashes"))) as runner:
        yield runner


async def probe_until(
    client: GraphQLClient, stop: asyncio.Event, answers: dict[str, list[bool]]
) -> None:
    """Light traffic: each service's probe in turn, recording whether it answered."""
    while not stop.is_set():
        for name, query in PROBES.items():
            try:
                body = await client.post(query)
            except Exception:
                answered = False
            else:
                answered = bool(body.get("data")) and not body.get("errors")
            answers[name].append(answered)
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("victim", ["polls", "issues", "users"])
async def test_a_crashed_service_comes_back_while_the_others_serve(
    crash_stack: Runner, victim: str
) -> None:
    async with gateway_client(crash_stack) as client:
        person, _ = await citizen(client, "Пётр")
        city = await admin(client)
        poll_id, answers = await published_poll(city, f"Опрос {victim}")
        issue = (await person.data(REPORT, {"input": POTHOLE}))["reportIssue"]
        answers_seen: dict[str, list[bool]] = {name: [] for name in PROBES}
        stop = asyncio.Event()
        traffic = asyncio.create_task(probe_until(client, stop, answers_seen))
        await asyncio.sleep(0.5)

        if victim == "users":
            os.kill(crash_stack.children()["users"], signal.SIGKILL)
            # polls takes the vote while users is down; its event waits in the outbox
            await person.data(VOTE, {"p": poll_id, "a": answers})
        else:
            # the vote's event may still be in polls' outbox when polls dies
            await person.data(VOTE, {"p": poll_id, "a": answers})
            os.kill(crash_stack.children()[victim], signal.SIGKILL)

        async def back() -> bool:
            return len(answers_seen[victim]) > 3 and all(answers_seen[victim][-3:])

        began = time.monotonic()
        await asyncio.sleep(1.0)
        await eventually(back, timeout=60, interval=0.2)
        recovered = time.monotonic() - began
        stop.set()
        await traffic

        assert f"{victim} restarted" in crash_stack.text
        for name, seen in answers_seen.items():
            if name != victim:
                assert all(seen), (
                    f"{name} failed {seen.count(False)} of {len(seen)} while {victim} was down"
                )
        assert not all(answers_seen[victim]), "the crash was not noticed at all"

        # Nothing written before the crash is lost, and its event counts once.
        async def credited() -> int:
            me = (await person.data("{ me { points } }"))["me"]
            return int(me["points"] or 0)

        reward = await eventually(credited, timeout=30)
        await asyncio.sleep(1.0)  # a second delivery, if any, would land by now
        assert await credited() == reward
        poll = (
            await person.data("query($id: ID!) { poll(id: $id) { votesCount } }", {"id": poll_id})
        )["poll"]
        assert poll == {"votesCount": 1}
        found = await person.data("query($id: ID!) { issue(id: $id) { id } }", {"id": issue["id"]})
        assert found == {"issue": {"id": issue["id"]}}
        print(f"{victim} back {recovered:.1f} s after SIGKILL")


def test_no_child_outlives_a_killed_runner(crash_stack: Runner) -> None:
    children = crash_stack.children()
    assert len(children) == 7
    assert crash_stack.process is not None
    crash_stack.process.kill()  # SIGKILL: the runner can clean nothing up
    crash_stack.process.wait()
    left = wait_gone(children, timeout=30)
    assert left == {}, f"still running after the runner died: {left}"
    for name, port in crash_stack.ports.items():
        assert not port_open("127.0.0.1", port), f"{name} still holds port {port}"
    assert not any(alive(pid) for pid in children.values())


def test_the_supervisor_gives_up_on_a_crash_loop(tmp_path: Path) -> None:
    """A service that keeps dying is restarted a bounded number of times; then the
    runner stops everything and says why."""
    runner = runner_on(tmp_path / "data", VECHE_RESTART_MAX="2", VECHE_RESTART_WINDOW="60")
    with running(runner):
        assert runner.process is not None
        killed: set[int] = set()
        deadline = time.monotonic() + 60
        while runner.process.poll() is None and time.monotonic() < deadline:
            pid = runner.children().get("issues")
            if pid is not None and pid not in killed:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            time.sleep(0.05)
        assert runner.process.wait(timeout=30) == 1
    assert len(killed) == 3  # the first start and two restarts
    assert "issues stopped 3 times within 60 s (last exit code -9); giving up" in runner.text
    for name, port in runner.ports.items():
        assert not port_open("127.0.0.1", port), f"{name} still holds port {port}"
