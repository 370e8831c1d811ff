"""Gaming the city (issue #11), through the gateway of a whole stack: self-dealing pays
nothing, a revoked role and a sign-out stop working in the other services within
seconds, and the gateway passes the client's address on to the registration limit."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from veche_stack.runner import Runner
from veche_stack.testing import GraphQLClient, eventually, fresh_code_async

from .flows import ADMIN_TOTP_SECRET, POTHOLE, REPORT, enrolled, runner_on, running

pytestmark = pytest.mark.stack

ADMIN_PASSWORD = "gaming-admin-pass-1"
REGISTRATIONS = 3
PASSWORD = "gaming password 1"
REGISTER = """mutation($input: RegisterInput!) {
  register(input: $input) { accessToken refreshToken user { id } }
}"""
LOGIN = """mutation($e: String!, $p: String!, $t: String) {
  login(email: $e, password: $p, totp: $t) { accessToken refreshToken }
}"""
REFRESH = "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken refreshToken } }"
LOGOUT = "mutation($t: String!) { logout(refreshToken: $t) }"
GRANT = """mutation($u: ID!, $r: Role!, $d: ID) {
  grantRole(userId: $u, role: $r, departmentId: $d) { roles }
}"""
REVOKE = "mutation($u: ID!, $r: Role!) { revokeRole(userId: $u, role: $r) { roles } }"
BECOME_SOLVER = """mutation { becomeSolver(skills: ["potholes"]) { roles } }"""
CHANGE = (
    "mutation($id: ID!, $s: IssueStatus!) { changeIssueStatus(id: $id, status: $s) { status } }"
)
OFFER = "mutation($id: ID!, $m: String!) { offerToSolve(id: $id, message: $m) { id } }"
ACCEPT = "mutation($o: ID!) { acceptSolverOffer(offerId: $o) { status } }"
MARK_SOLVED = "mutation($id: ID!) { markSolved(id: $id) { status } }"
CONFIRM = "mutation($id: ID!) { confirmResolution(id: $id) { status } }"
CONFIRM_FIX = "mutation($id: ID!) { confirmFix(id: $id) { status fixConfirmedAt } }"
POINTS = "{ me { points notifications(first: 50) { edges { node { kind } } } } }"
CREATE_POLL = """mutation($input: CreatePollInput!) { createPoll(input: $input) { id } }"""
POLL = {
    "title": "Сквер",
    "questions": [{"text": "Да?", "kind": "SINGLE_CHOICE", "options": ["Да", "Нет"]}],
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runner]:
    data = tmp_path_factory.mktemp("gaming")
    with running(
        runner_on(
            data,
            VECHE_ADMIN_PASSWORD=ADMIN_PASSWORD,
            USERS_REGISTRATIONS_PER_CLIENT=str(REGISTRATIONS),
        )
    ) as runner:
        yield runner


def address() -> str:
    n = uuid.uuid4().int
    return f"203.0.{n % 250}.{n // 250 % 250 + 1}"


class Caller:
    """Someone at their own client address, talking to the gateway."""

    def __init__(self, url: str, client: str | None = None) -> None:
        self.http = httpx.AsyncClient(timeout=60, headers={"X-Forwarded-For": client or address()})
        self.anonymous = GraphQLClient(url, http=self.http)
        self.api = self.anonymous
        self.id = ""
        self.email = ""
        self.refresh = ""

    def signed_in(self, auth: dict[str, Any]) -> Caller:
        self.api = self.anonymous.as_user(auth["accessToken"])
        self.refresh = auth["refreshToken"]
        return self

    async def renew(self) -> None:
        """Swaps the access token for a new one (to see a role just granted)."""
        body = await self.anonymous.data(REFRESH, {"t": self.refresh})
        self.signed_in(body["refreshToken"])

    async def enrol(self) -> None:
        """Signs in again after a staff role was granted: a staff session needs two-factor
        sign-in, which a refresh of the citizen's session cannot give."""
        self.signed_in(await enrolled(self.anonymous, self.email, PASSWORD))


@pytest.fixture
async def callers(stack: Runner) -> AsyncIterator[list[Caller]]:
    made: list[Caller] = []
    yield made
    for caller in made:
        await caller.http.aclose()


async def citizen(stack: Runner, callers: list[Caller], name: str) -> Caller:
    caller = Caller(stack.url("gateway"))
    callers.append(caller)
    payload = {
        "email": f"{name}-{uuid.uuid4().hex[:8]}@example.ru",
        "password": PASSWORD,
        "consentVersion": "2026-12-01",  # veche_users.settings.DEFAULT_CONSENT_VERSION
        "displayName": name,
        "districtId": "leninsky",
    }
    auth = (await caller.anonymous.data(REGISTER, {"input": payload}))["register"]
    caller.id, caller.email = auth["user"]["id"], payload["email"]
    return caller.signed_in(auth)


async def admin(stack: Runner, callers: list[Caller]) -> Caller:
    caller = Caller(stack.url("gateway"))
    callers.append(caller)
    code = await fresh_code_async(ADMIN_TOTP_SECRET, stack.url("gateway"))
    sign_in = {"e": "admin@veche.local", "p": ADMIN_PASSWORD, "t": code}
    auth = await caller.anonymous.data(LOGIN, sign_in)
    return caller.signed_in(auth["login"])


def is_stale(body: dict[str, Any]) -> bool:
    """Refused by a subgraph as a stale token (the gateway adds `serviceName`)."""
    extensions = (body.get("errors") or [{}])[0].get("extensions", {})
    return bool(
        extensions.get("code") == "UNAUTHENTICATED" and extensions.get("reason") == "TOKEN_STALE"
    )


async def refusal(api: GraphQLClient, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    body = await api.post(query, variables)
    assert body.get("errors"), body
    error: dict[str, Any] = body["errors"][0]
    return error


async def test_self_dealing_earns_nothing(stack: Runner, callers: list[Caller]) -> None:
    city = await admin(stack, callers)
    reporter = await citizen(stack, callers, "Reporter")
    issue_id = (await reporter.api.data(REPORT, {"input": POTHOLE}))["reportIssue"]["id"]
    await city.api.data(CHANGE, {"id": issue_id, "s": "ACCEPTED"})  # a moderator accepts
    # The same citizen becomes a solver and offers to fix their own report: refused.
    await reporter.api.data(BECOME_SOLVER)
    await reporter.renew()
    error = await refusal(reporter.api, OFFER, {"id": issue_id, "m": "Сам заделаю"})
    assert error["extensions"]["code"] == "FORBIDDEN"

    # A second account (a friend, or the same person) solves it; the reporter confirms.
    friend = await citizen(stack, callers, "Friend")
    await friend.api.data(BECOME_SOLVER)
    await friend.renew()

    async def offered() -> dict[str, Any]:
        """The friend's offer, once their skills have reached the issues service."""
        body = await friend.api.post(OFFER, {"id": issue_id, "m": "Заделаю"})
        errors = body.get("errors") or []
        if errors and "not reached" in errors[0]["message"]:
            return {}
        assert not errors, errors
        return dict(body["data"]["offerToSolve"])

    offer = await eventually(offered, timeout=10)
    await reporter.api.data(ACCEPT, {"o": offer["id"]})
    await friend.api.data(MARK_SOLVED, {"id": issue_id})
    assert (await reporter.api.data(CONFIRM, {"id": issue_id}))["confirmResolution"] == {
        "status": "CLOSED"
    }

    async def told_of_the_close() -> bool:
        me = (await friend.api.data(POINTS))["me"]
        return any(
            e["node"]["kind"] == "FIX_CONFIRMED_BY_REPORTER" for e in me["notifications"]["edges"]
        )

    await eventually(told_of_the_close, timeout=30)  # issue.closed has reached users
    assert (await friend.api.data(POINTS))["me"]["points"] == 0
    # Neither of them can confirm the fix; an official of the roads department can.
    for who in (reporter, friend):
        error = await refusal(who.api, CONFIRM_FIX, {"id": issue_id})
        assert error["extensions"]["code"] == "FORBIDDEN"
    official = await citizen(stack, callers, "Official")
    await city.api.data(GRANT, {"u": official.id, "r": "OFFICIAL", "d": "roads"})
    await official.enrol()
    confirmed = (await official.api.data(CONFIRM_FIX, {"id": issue_id}))["confirmFix"]
    assert confirmed["fixConfirmedAt"] is not None

    async def paid() -> bool:
        return bool((await friend.api.data(POINTS))["me"]["points"] == 100)

    await eventually(paid, timeout=30)


async def test_a_revoked_role_stops_working_in_polls_within_seconds(
    stack: Runner, callers: list[Caller]
) -> None:
    city = await admin(stack, callers)
    official = await citizen(stack, callers, "Official")
    await city.api.data(GRANT, {"u": official.id, "r": "OFFICIAL", "d": "roads"})
    await official.enrol()
    await official.api.data(CREATE_POLL, {"input": POLL})  # the role works in polls
    await city.api.data(REVOKE, {"u": official.id, "r": "OFFICIAL"})
    revoked_at = time.monotonic()

    async def refused() -> bool:
        return is_stale(await official.api.post(CREATE_POLL, {"input": POLL}))

    await eventually(refused, timeout=10)
    # Generous: the access token itself would have lived for minutes.
    assert time.monotonic() - revoked_at < 10


async def test_a_signed_out_token_is_refused_by_issues(
    stack: Runner, callers: list[Caller]
) -> None:
    person = await citizen(stack, callers, "Leaver")
    await person.api.data(REPORT, {"input": POTHOLE})
    assert (await person.anonymous.data(LOGOUT, {"t": person.refresh}))["logout"] is True

    async def refused() -> bool:
        return is_stale(await person.api.post(REPORT, {"input": POTHOLE}))

    await eventually(refused, timeout=10)


async def test_the_gateway_passes_the_client_address_to_the_registration_limit(
    stack: Runner, callers: list[Caller]
) -> None:
    farm = Caller(stack.url("gateway"))
    callers.append(farm)
    codes = []
    for i in range(REGISTRATIONS + 2):
        payload = {
            "email": f"farm-{i}-{uuid.uuid4().hex[:6]}@example.ru",
            "password": PASSWORD,
            "consentVersion": "2026-12-01",  # veche_users.settings.DEFAULT_CONSENT_VERSION
            "displayName": f"Бот {i}",
        }
        body = await farm.anonymous.post(REGISTER, {"input": payload})
        codes.append(body["errors"][0]["extensions"]["code"] if body.get("errors") else None)
    assert codes == [None] * REGISTRATIONS + ["RATE_LIMITED"] * 2
    # Another client is not held up by the farm.
    assert (await citizen(stack, callers, "Neighbour")).id
