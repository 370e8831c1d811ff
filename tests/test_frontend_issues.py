"""Issue #13's issues items, through the gateway of a whole stack: `overdue` is the
deadline for the official answer and filters a department's list; an offer's status
is an enum; `solverOffers` and `history` are bounded; a solver offers only in their
skills, which name known categories; a poll's districts are known ones (item 4)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import pytest

from veche_kit.clock import utcnow
from veche_kit.mongo import connect
from veche_stack.runner import Runner
from veche_stack.stack import mongo_url
from veche_stack.testing import GraphQLClient, eventually

from .flows import POTHOLE, REPORT, admin, enrolled, runner_on, running

pytestmark = pytest.mark.stack

PASSWORD = "frontend password 1"
REGISTER = """mutation($input: RegisterInput!) {
  register(input: $input) { accessToken refreshToken user { id } }
}"""
REFRESH = "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken refreshToken } }"
GRANT = """mutation($u: ID!, $d: ID) {
  grantRole(userId: $u, role: OFFICIAL, departmentId: $d) { roles }
}"""
CHANGE = "mutation($id: ID!, $s: IssueStatus!) { changeIssueStatus(id: $id, status: $s) { dueAt } }"
COMMENT = "mutation($id: ID!, $t: String!) { commentOnIssue(id: $id, text: $t) { official } }"
BECOME_SOLVER = "mutation($s: [String!]!) { becomeSolver(skills: $s) { roles } }"
OFFER = "mutation($id: ID!, $m: String!) { offerToSolve(id: $id, message: $m) { id status } }"
CREATE_POLL = """mutation($d: [ID!]!) {
  createPoll(input: {title: "Сквер на Кирова", audience: {districtIds: $d},
                     questions: [{text: "Нужен сквер?", kind: SINGLE_CHOICE, options: ["Да", "Нет"]}]}) {
    audience { districtIds }
  }
}"""
CREATE_DISTRICT = "mutation($id: ID!, $n: String!) { createDistrict(id: $id, name: $n) { id } }"
DASHBOARD = """query($overdue: Boolean) {
  issues(filter: {departmentId: "roads", overdue: $overdue}, first: 100) {
    totalCount edges { node { id overdue department { id } } }
  }
}"""
ISSUE = """query($id: ID!, $first: Int, $last: Int) {
  issue(id: $id) {
    overdue dueAt solverOffers(first: $first) { status } history(last: $last) { to }
  }
}"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runner]:
    with running(runner_on(tmp_path_factory.mktemp("frontend-issues"))) as runner:
        yield runner


@pytest.fixture
async def gateway(stack: Runner) -> AsyncIterator[GraphQLClient]:
    client = GraphQLClient(stack.url("gateway"))
    yield client
    await client.aclose()


class Person:
    """A signed-up citizen: their id and a client with their latest access token."""

    def __init__(self, gateway: GraphQLClient, auth: dict[str, Any], email: str) -> None:
        self.gateway, self.id, self.email = gateway, auth["user"]["id"], email
        self.api, self.refresh = gateway.as_user(auth["accessToken"]), auth["refreshToken"]

    async def renew(self) -> GraphQLClient:
        """A fresh access token (to carry a role just granted); refresh tokens rotate."""
        auth = (await self.gateway.data(REFRESH, {"t": self.refresh}))["refreshToken"]
        self.api, self.refresh = self.gateway.as_user(auth["accessToken"]), auth["refreshToken"]
        return self.api

    async def sign_in_as_staff(self) -> GraphQLClient:
        """Signed in again after a staff role was granted, enrolling in two-factor
        sign-in (a citizen's session cannot refresh into a staff one)."""
        auth = await enrolled(self.gateway, self.email, PASSWORD)
        self.api, self.refresh = self.gateway.as_user(auth["accessToken"]), auth["refreshToken"]
        return self.api


async def _person(gateway: GraphQLClient, name: str) -> Person:
    """A new citizen of Leninsky district."""
    payload = {
        "email": f"{name}-{uuid.uuid4().hex[:8]}@example.ru",
        "password": PASSWORD,
        "consentVersion": "2026-12-01",  # veche_users.settings.DEFAULT_CONSENT_VERSION
        "displayName": name,
        "districtId": "leninsky",
    }
    auth = (await gateway.data(REGISTER, {"input": payload}))["register"]
    return Person(gateway, auth, payload["email"])


async def _past_due(stack: Runner, *issue_ids: str) -> None:
    """Moves the issues' deadlines an hour into the past, as eight working days would."""
    client = connect(mongo_url(stack.ports["mongo-issues"]))
    try:
        await client["veche_issues"]["issues"].update_many(
            {"_id": {"$in": list(issue_ids)}},
            {"$set": {"due_at": utcnow() - timedelta(hours=1)}},
        )
    finally:
        await client.close()


async def _code(client: GraphQLClient, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    body = await client.post(query, variables)
    assert body.get("errors"), body
    error: dict[str, Any] = body["errors"][0]
    return error


async def test_a_departments_overdue_answers(stack: Runner, gateway: GraphQLClient) -> None:
    city = await admin(gateway)
    chief = await _person(gateway, "Official")
    await city.data(GRANT, {"u": chief.id, "d": "roads"})
    official = await chief.sign_in_as_staff()
    reporter = (await _person(gateway, "Reporter")).api
    late, answered, working = [
        (await reporter.data(REPORT, {"input": POTHOLE}))["reportIssue"]["id"] for _ in range(3)
    ]
    for issue_id in (late, answered, working):
        await official.data(CHANGE, {"id": issue_id, "s": "ACCEPTED"})
    await official.data(CHANGE, {"id": working, "s": "IN_PROGRESS"})
    said = await official.data(COMMENT, {"id": answered, "t": "Выедем в четверг."})
    assert said["commentOnIssue"]["official"] is True
    await _past_due(stack, late, answered, working)

    views = [(await gateway.data(ISSUE, {"id": i}))["issue"] for i in (late, answered, working)]
    assert [v["overdue"] for v in views] == [True, False, False]
    assert all(v["dueAt"] is not None for v in views)
    overdue = (await gateway.data(DASHBOARD, {"overdue": True}))["issues"]
    listed = {e["node"]["id"] for e in overdue["edges"]}
    assert late in listed
    assert not listed & {answered, working}
    assert overdue["totalCount"] == len(listed)
    assert {(e["node"]["overdue"], e["node"]["department"]["id"]) for e in overdue["edges"]} == {
        (True, "roads")
    }
    on_time = (await gateway.data(DASHBOARD, {"overdue": False}))["issues"]["edges"]
    assert {answered, working} <= {e["node"]["id"] for e in on_time}
    assert late not in {e["node"]["id"] for e in on_time}


async def test_a_solver_offers_in_their_skills_and_lists_are_bounded(
    gateway: GraphQLClient,
) -> None:
    city = await admin(gateway)
    reporter = (await _person(gateway, "Reporter")).api
    issue_id = (await reporter.data(REPORT, {"input": POTHOLE}))["reportIssue"]["id"]
    await city.data(CHANGE, {"id": issue_id, "s": "ACCEPTED"})  # the admin moderates
    electrician = await _person(gateway, "Electrician")
    await electrician.api.data(BECOME_SOLVER, {"s": ["street-lighting"]})
    solver = await electrician.renew()

    async def refused_for_the_skill() -> dict[str, Any]:
        error = await _code(solver, OFFER, {"id": issue_id, "m": "Заделаю"})
        return error if "not among your solver skills" in error["message"] else {}

    error = await eventually(refused_for_the_skill, timeout=20)  # once issues knows the skills
    assert (error["extensions"]["code"], error["extensions"]["skill"]) == ("FORBIDDEN", "potholes")

    await solver.data(BECOME_SOLVER, {"s": ["street-lighting", "potholes"]})

    async def offered() -> dict[str, Any]:
        body = await solver.post(OFFER, {"id": issue_id, "m": "Заделаю"})
        return {} if body.get("errors") else dict(body["data"]["offerToSolve"])

    assert (await eventually(offered, timeout=20))["status"] == "PENDING"
    view = (await gateway.data(ISSUE, {"id": issue_id, "first": 1, "last": 1}))["issue"]
    assert view["solverOffers"] == [{"status": "PENDING"}]
    assert view["history"] == [{"to": "ACCEPTED"}]
    for bounds, field in (({"first": 51}, "first"), ({"last": 101}, "last")):
        error = await _code(gateway, ISSUE, {"id": issue_id, **bounds})
        assert (error["extensions"]["code"], error["extensions"]["field"]) == (
            "BAD_USER_INPUT",
            field,
        )


async def test_unknown_districts_and_skills_are_refused_and_new_districts_reach_others(
    gateway: GraphQLClient,
) -> None:
    city = await admin(gateway)
    error = await _code(city, CREATE_POLL, {"d": ["leninsky", "atlantis"]})
    extensions = error["extensions"]
    assert (extensions["code"], extensions["field"]) == ("BAD_USER_INPUT", "audience.districtIds")
    assert "'atlantis'" in error["message"]
    assert "`districts`" in error["message"]
    # A district the admin adds in users reaches polls and issues through the bus.
    new = f"d{uuid.uuid4().hex[:8]}"
    await city.data(CREATE_DISTRICT, {"id": new, "n": "Новый округ"})

    async def accepted() -> list[str]:
        body = await city.post(CREATE_POLL, {"d": ["leninsky", new]})
        return (
            []
            if body.get("errors")
            else list(body["data"]["createPoll"]["audience"]["districtIds"])
        )

    assert await eventually(accepted, timeout=20) == ["leninsky", new]
    person = (await _person(gateway, "Solver")).api

    async def reported() -> bool:  # and issues, for reports
        body = await person.post(REPORT, {"input": {**POTHOLE, "districtId": new}})
        return not body.get("errors")

    assert await eventually(reported, timeout=20)
    error = await _code(person, BECOME_SOLVER, {"s": ["potholes", "atlantis-repair"]})
    extensions = error["extensions"]
    assert (extensions["code"], extensions["field"]) == ("BAD_USER_INPUT", "skills")
    assert "'atlantis-repair'" in error["message"]
    assert "`issueCategories`" in error["message"]
    assert (await person.data(BECOME_SOLVER, {"s": ["potholes"]}))["becomeSolver"]["roles"] == [
        "CITIZEN",
        "SOLVER",
    ]
