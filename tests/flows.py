"""What the stack tests do through the gateway, as a person would: sign up, sign in
as the admin, publish a poll, report a problem."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from veche_stack.runner import Runner
from veche_stack.testing import GraphQLClient, fresh_code_async

ADMIN_PASSWORD = "operations-admin-1"
# The admin signs in with a code from this two-factor secret (`fresh_code_async`).
ADMIN_TOTP_SECRET = "KRUGKIDROVUWG2ZAMJZG653OEBTG66BA"
REGISTER = """mutation($input: RegisterInput!) {
  register(input: $input) { accessToken user { id } }
}"""
LOGIN = """mutation($e: String!, $p: String!, $t: String) {
  login(email: $e, password: $p, totp: $t) { accessToken refreshToken }
}"""
START_TOTP = """mutation($t: String) { startTotpEnrolment(ticket: $t) { secret } }"""
CONFIRM_TOTP = """mutation($t: String, $c: String!) {
  confirmTotpEnrolment(ticket: $t, code: $c) { auth { accessToken refreshToken } }
}"""
CREATE_POLL = """mutation($input: CreatePollInput!) {
  createPoll(input: $input) { id pointsReward questions { id options { id } } }
}"""
PUBLISH = "mutation($id: ID!) { publishPoll(id: $id) { status } }"
VOTE = "mutation($p: ID!, $a: [AnswerInput!]!) { castVote(pollId: $p, answers: $a) { id } }"
REPORT = """mutation($input: ReportIssueInput!) {
  reportIssue(input: $input) { id location { lat lon } }
}"""
POTHOLE = {
    "title": "Яма у подъезда",
    "description": "Глубокая яма на выезде со двора.",
    "category": "potholes",
    "location": {"lat": 54.5138, "lon": 36.2612},
}


def runner_on(data_dir: Path, **env: str) -> Runner:
    return Runner(
        data_dir,
        env={
            "VECHE_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "VECHE_ADMIN_TOTP_SECRET": ADMIN_TOTP_SECRET,
            "VECHE_RESTART_FIRST_DELAY": "0.2",
            **env,
        },
    )


@contextlib.contextmanager
def running(runner: Runner) -> Iterator[Runner]:
    runner.start()
    try:
        yield runner
    finally:
        runner.interrupt()


@contextlib.asynccontextmanager
async def gateway_client(runner: Runner) -> AsyncIterator[GraphQLClient]:
    client = GraphQLClient(runner.url("gateway"))
    try:
        yield client
    finally:
        await client.aclose()


async def citizen(
    client: GraphQLClient, name: str, district: str = "leninsky"
) -> tuple[GraphQLClient, str]:
    """A new resident of `district`, signed in; with their user id."""
    payload = {
        "email": f"{uuid.uuid4().hex[:8]}@example.ru",
        "password": "operations password 1",
        "consentVersion": "2026-12-01",  # veche_users.settings.DEFAULT_CONSENT_VERSION
        "displayName": name,
        "districtId": district,
    }
    registered = (await client.data(REGISTER, {"input": payload}))["register"]
    return client.as_user(registered["accessToken"]), registered["user"]["id"]


async def admin(client: GraphQLClient, secret: str = ADMIN_TOTP_SECRET) -> GraphQLClient:
    """Signed in as the seeded admin, with a TOTP code no earlier sign-in used."""
    code = await fresh_code_async(secret, client.url)  # each stack's steps are its own
    login = await client.data(LOGIN, {"e": "admin@veche.local", "p": ADMIN_PASSWORD, "t": code})
    return client.as_user(login["login"]["accessToken"])


async def enrolled(client: GraphQLClient, email: str, password: str) -> dict[str, Any]:
    """Signs a person just granted a staff role in: the refused login's enrolment
    ticket, a new TOTP secret and its first code. Their new tokens (an older session
    cannot refresh into a staff one)."""
    body = await client.post(LOGIN, {"e": email, "p": password})
    extensions = body["errors"][0]["extensions"]
    assert extensions["reason"] == "TOTP_ENROLMENT_REQUIRED", body
    ticket = extensions["enrolmentTicket"]
    secret = (await client.data(START_TOTP, {"t": ticket}))["startTotpEnrolment"]["secret"]
    confirm = {"t": ticket, "c": await fresh_code_async(secret)}
    auth: dict[str, Any] = (await client.data(CONFIRM_TOTP, confirm))["confirmTotpEnrolment"][
        "auth"
    ]
    return auth


async def published_poll(admin: GraphQLClient, title: str) -> tuple[str, list[dict[str, Any]]]:
    question = {"text": "Нужна ли парковка?", "kind": "SINGLE_CHOICE", "options": ["Да", "Нет"]}
    # The citizens of these flows have not verified a phone: the poll is open to them.
    poll_input = {"title": title, "questions": [question], "audience": {"verifiedOnly": False}}
    poll = (await admin.data(CREATE_POLL, {"input": poll_input}))["createPoll"]
    await admin.data(PUBLISH, {"id": poll["id"]})
    first = poll["questions"][0]
    return poll["id"], [{"questionId": first["id"], "optionIds": [first["options"][0]["id"]]}]


def npm_installed(folder: Path, needed_for: str) -> None:
    """`folder`'s npm packages installed from its lock (again when the lock is newer)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail(f"Node.js 20+ and npm are needed to run {needed_for}")
    installed = folder / "node_modules" / ".package-lock.json"
    lock = folder / "package-lock.json"
    if not installed.is_file() or lock.stat().st_mtime > installed.stat().st_mtime:
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=folder,
            check=True,
            timeout=300,
        )
