"""The front-end example (examples/frontend_client.py, the `gql` client) run as a
script against the stack as `make run` starts it, and GraphQL Code Generator's
TypeScript types generated from the gateway's /schema.graphql and the example's
operations (tests/codegen/, npm packages pinned in its package-lock.json,
installed here with `npm ci` when missing or older than the lock)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from veche_stack.runner import Runner
from veche_stack.testing import GraphQLClient, eventually

from . import flows

pytestmark = pytest.mark.stack

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "frontend_client.py"
OPERATIONS = ROOT / "examples" / "operations.graphql"
CODEGEN = Path(__file__).parent / "codegen"

CONSENT = "{ currentConsent { version } }"
ACCEPT = """mutation($id: ID!, $note: String) {
  changeIssueStatus(id: $id, status: ACCEPTED, note: $note) { status }
}"""
VOTES = "query($id: ID!) { poll(id: $id) { votesCount } }"
NOTE = "Передано в дорожную службу"
STEPS = [
    "signed_up",
    "voted",
    "second_vote_refused",
    "reported",
    "searched",
    "followed",
    "inbox",
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runner]:
    runner = flows.runner_on(tmp_path_factory.mktemp("stack"))
    try:
        runner.start()
    except RuntimeError as error:
        pytest.fail(str(error))
    yield runner
    runner.interrupt()


@pytest.fixture
async def admin(stack: Runner) -> AsyncIterator[GraphQLClient]:
    async with flows.gateway_client(stack) as client:
        yield await flows.admin(client)


async def run_example(stack: Runner, admin: GraphQLClient) -> dict[str, dict[str, Any]]:
    """Runs the script; when it has reported its pothole, an admin accepts it (as a
    moderator would), so the script sees the status move. Returns its steps by name."""
    script = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        "--endpoint",
        stack.url("gateway"),
        "--follow-seconds",
        "60",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert script.stdout is not None
    assert script.stderr is not None
    steps: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    async with asyncio.timeout(150):
        async for line in script.stdout:
            step = json.loads(line)
            order.append(step["step"])
            steps[step["step"]] = step
            if step["step"] == "reported":
                await admin.data(ACCEPT, {"id": step["issue"]["id"], "note": NOTE})
        errors = (await script.stderr.read()).decode()
        assert await script.wait() == 0, errors
    assert order == STEPS, errors
    return steps


async def test_the_front_end_example_lives_a_citizens_day(
    stack: Runner, admin: GraphQLClient, unique: str
) -> None:
    poll_id, _ = await flows.published_poll(admin, f"Пешеходный переход у школы {unique}")
    consent = (await admin.data(CONSENT))["currentConsent"]["version"]

    steps = await run_example(stack, admin)

    assert steps["signed_up"]["consentVersion"] == consent
    assert steps["signed_up"]["user"]["district"]["id"] == "leninsky"
    # The newest poll offered is ours, published a moment before; the vote counts once.
    assert steps["voted"]["poll"]["id"] == poll_id
    assert len(steps["voted"]["ballot"]["receipt"]["commitment"]) == 64
    assert steps["second_vote_refused"]["code"] == "ALREADY_VOTED"

    async def counted() -> bool:
        return bool((await admin.data(VOTES, {"id": poll_id}))["poll"]["votesCount"] == 1)

    await eventually(counted, timeout=30)

    issue = steps["reported"]["issue"]
    assert issue["title"].startswith("Ямы во дворе ")
    assert (issue["status"], issue["location"]) == ("NEW", {"lat": 54.5138, "lon": 36.2612})
    assert issue["department"] is not None
    # "яма" finds "Ямы": the search ignores word endings.
    assert steps["searched"]["text"].startswith("яма ")
    assert steps["searched"]["found"] == {issue["id"]: issue["title"]}

    followed = steps["followed"]["issue"]
    assert (followed["id"], followed["status"], followed["overdue"]) == (
        issue["id"],
        "ACCEPTED",
        False,
    )
    assert followed["dueAt"] is not None
    assert [(h["from"], h["to"], h["note"]) for h in followed["history"]] == [
        ("NEW", "ACCEPTED", NOTE)
    ]
    told = [n for n in steps["inbox"]["notifications"] if n["link"] == f"issue:{issue['id']}"]
    assert [(n["kind"], n["read"]) for n in told] == [("ISSUE_STATUS_CHANGED", False)]


# ───────────────────────── codegen ─────────────────────────


@pytest.fixture(scope="session")
def codegen() -> Path:
    """tests/codegen with its npm packages installed."""
    flows.npm_installed(CODEGEN, "GraphQL Code Generator")
    return CODEGEN


@pytest.fixture
async def published_schema(stack: Runner, tmp_path: Path) -> Path:
    async with httpx.AsyncClient() as http:
        response = await http.get(stack.url("gateway", "/schema.graphql"))
    assert response.status_code == 200
    path = tmp_path / "schema.graphql"
    path.write_text(response.text, encoding="utf-8")
    return path


def generate(
    codegen: Path, schema: Path, documents: Path, out: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(codegen / "node_modules" / ".bin" / "graphql-codegen"), "--config", "codegen.ts"],
        cwd=codegen,
        env={
            **os.environ,
            "VECHE_SCHEMA": str(schema),
            "VECHE_DOCUMENTS": str(documents),
            "VECHE_TYPES_OUT": str(out),
        },
        capture_output=True,
        text=True,
        timeout=180,
    )


def type_check(codegen: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    tsc = codegen / "node_modules" / ".bin" / "tsc"
    flags = ["--noEmit", "--strict", "--target", "es2022", "--module", "esnext"]
    flags += ["--moduleResolution", "bundler", "--verbatimModuleSyntax"]
    return subprocess.run(
        [str(tsc), *flags, *map(str, files)], capture_output=True, text=True, timeout=180
    )


def test_codegen_types_the_published_schema_and_the_example_operations(
    codegen: Path, published_schema: Path, tmp_path: Path
) -> None:
    out = tmp_path / "types"
    run = generate(codegen, published_schema, OPERATIONS, out)
    assert run.returncode == 0, run.stdout + run.stderr
    schema_ts = (out / "schema.ts").read_text()
    operations_ts = (out / "operations.ts").read_text()
    assert "export type Query = {" in schema_ts
    assert "export type Mutation = {" in schema_ts
    for operation in ("SignUpFormQuery", "SignUpMutation", "PollsForMeQuery", "CastVoteMutation"):
        assert f"export type {operation} = " in operations_ts
    for operation in ("ReportIssueMutation", "SearchIssuesQuery", "FollowIssueQuery", "InboxQuery"):
        assert f"export type {operation} = " in operations_ts
    assert "export type IssueProgressFragment = " in operations_ts
    checked = type_check(codegen, out / "schema.ts", out / "operations.ts")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_codegen_refuses_an_operation_the_schema_does_not_have(
    codegen: Path, published_schema: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.graphql"
    broken.write_text("query Broken($id: ID!) { issue(id: $id) { id colour } }\n")
    run = generate(codegen, published_schema, broken, tmp_path / "types")
    assert run.returncode != 0
    assert 'Cannot query field "colour" on type "Issue"' in run.stdout + run.stderr
    assert not (tmp_path / "types" / "operations.ts").exists()
