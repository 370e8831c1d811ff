"""Solvers see matching issues; the user projection comes from events."""

from __future__ import annotations

import uuid
from typing import Any

from veche_kit.events import (
    Envelope,
    Event,
    UserProfileUpdated,
    UserRegistered,
    UserRoleChanged,
)
from veche_stack.testing import eventually
from veche_stack.testing import publish as publish_envelopes

from .conftest import CHANGE, IssuesServer, Person

MATCHING = """
query($reps: [_Any!]!, $first: Int, $after: String) {
  _entities(representations: $reps) {
    ... on User {
      matchingIssues(first: $first, after: $after) {
        totalCount pageInfo { hasNextPage endCursor } edges { node { id district { id } } }
      }
    }
  }
}"""


async def publish(issues: IssuesServer, amqp_url: str, *events: Event) -> list[Envelope]:
    """Publishes as the users or polls service would (the `issues` fixture waited until the
    issues consumer was subscribed: its queue is bound)."""
    namespace = issues.settings.namespace
    envelopes = [Envelope.wrap(e, "users") for e in events]
    await publish_envelopes(amqp_url, namespace, *envelopes)
    return envelopes


async def _matching(issues: IssuesServer, solver: Person, **page: Any) -> dict[str, Any]:
    data = await solver.client.data(
        MATCHING, {"reps": [{"__typename": "User", "id": solver.id}], **page}
    )
    result: dict[str, Any] = data["_entities"][0]["matchingIssues"]
    return result


def _solver_events(solver_id: str, skill: str) -> list[Event]:
    """What the users service says of a new solver of Leninsky district with the skill."""
    return [
        UserRegistered(
            user_id=solver_id,
            display_name="Бригада",
            district_id="leninsky",
            birth_year=None,
            roles=["CITIZEN"],
            phone_verified=False,
        ),
        UserProfileUpdated(
            user_id=solver_id,
            display_name="Бригада",
            district_id="leninsky",
            birth_year=None,
            phone_verified=False,
            skills=[skill, "waste"],
            organization="ООО Дорожник",
        ),
        UserRoleChanged(
            user_id=solver_id,
            role="SOLVER",
            granted=True,
            roles=["CITIZEN", "SOLVER"],
            department_id=None,
        ),
    ]


async def _projected_solver(issues: IssuesServer, solver_id: str) -> dict[str, Any]:
    """Waits until the user projection has the solver's role; returns their document."""

    async def projected() -> Any:
        user = await issues.service.db["users"].find_one({"_id": solver_id})
        return user if user is not None and user.get("roles") == ["CITIZEN", "SOLVER"] else None

    user: dict[str, Any] = await eventually(projected)
    return user


async def _issue(
    issues: IssuesServer, reporter: Person, official: Person, skill: str, district: str, status: str
) -> str:
    """An issue of the skill's category in the district, moved on to the status."""
    made = await issues.report(reporter, category=skill, districtId=district)
    if status in ("ACCEPTED", "IN_PROGRESS"):
        await official.client.data(CHANGE, {"id": made["id"], "status": "ACCEPTED"})
    if status == "IN_PROGRESS":
        await official.client.data(CHANGE, {"id": made["id"], "status": "IN_PROGRESS"})
    return str(made["id"])


async def _matching_body(person: Person, solver: Person, **page: Any) -> dict[str, Any]:
    body: dict[str, Any] = await person.client.post(
        MATCHING, {"reps": [{"__typename": "User", "id": solver.id}], **page}
    )
    return body


async def test_matching_issues_follow_skills_and_district(
    issues: IssuesServer, amqp_url: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    skill = f"match-{tag}"
    await issues.service.db["categories"].insert_one(
        {"_id": skill, "name": f"Test {tag}", "department_id": "roads"}
    )
    solver = issues.solver(district="leninsky")
    reporter, official = issues.citizen(), issues.official("roads")
    far_accepted = await _issue(issues, reporter, official, skill, "moskovsky", "ACCEPTED")
    own_accepted = await _issue(issues, reporter, official, skill, "leninsky", "ACCEPTED")
    await _issue(issues, reporter, official, skill, "leninsky", "NEW")  # not accepted yet
    far_working = await _issue(issues, reporter, official, skill, "oktyabrsky", "IN_PROGRESS")
    taken = await issues.seed_issue(
        status="IN_PROGRESS", reporter=reporter.id, solver="someone", category=skill
    )

    # Before the users service told us the solver's skills, nothing matches.
    assert (await _matching(issues, solver))["totalCount"] == 0
    await publish(issues, amqp_url, *_solver_events(solver.id, skill))
    user = await _projected_solver(issues, solver.id)
    assert user["skills"] == [skill, "waste"]
    assert user["display_name"] == "Бригада"
    assert user["district_id"] == "leninsky"
    page = await _matching(issues, solver, first=2)
    assert page["totalCount"] == 3
    assert [e["node"]["id"] for e in page["edges"]] == [own_accepted, far_working]
    rest = await _matching(issues, solver, first=2, after=page["pageInfo"]["endCursor"])
    assert [e["node"]["id"] for e in rest["edges"]] == [far_accepted]
    assert rest["pageInfo"]["hasNextPage"] is False
    assert taken not in [e["node"]["id"] for e in page["edges"] + rest["edges"]]
    body = await _matching_body(solver, solver, after="WyJ4Il0=")  # another list's cursor: ["x"]
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}

    # Someone else asking for the solver's list is refused; a non-solver gets an empty list.
    body = await _matching_body(reporter, solver)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await _matching(issues, reporter))["totalCount"] == 0


OFFER = """mutation($id: ID!, $m: String!) { offerToSolve(id: $id, message: $m) { id status } }"""


async def test_a_solver_offers_only_in_the_categories_of_their_skills(
    issues: IssuesServer, amqp_url: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    skill = f"skill-{tag}"
    await issues.service.db["categories"].insert_one(
        {"_id": skill, "name": f"Test {tag}", "department_id": "roads"}
    )
    solver, reporter, official = issues.solver(), issues.citizen(), issues.official("roads")
    theirs = await _issue(issues, reporter, official, skill, "leninsky", "ACCEPTED")
    potholes = await _issue(issues, reporter, official, "potholes", "leninsky", "ACCEPTED")

    # Before the users service told this one the solver's skills: refused, try again later.
    early = await solver.client.post(OFFER, {"id": theirs, "m": "Сделаем"})
    assert early["errors"][0]["extensions"] == {"code": "FORBIDDEN", "skill": skill}
    assert "try again" in early["errors"][0]["message"]

    await publish(issues, amqp_url, *_solver_events(solver.id, skill))
    await _projected_solver(issues, solver.id)

    async def skills_known() -> bool:
        user = await issues.service.db["users"].find_one({"_id": solver.id})
        return user is not None and skill in (user.get("skills") or [])

    await eventually(skills_known)
    lacking = await solver.client.post(OFFER, {"id": potholes, "m": "Заделаем"})
    assert lacking["errors"][0]["extensions"] == {"code": "FORBIDDEN", "skill": "potholes"}
    assert "becomeSolver" in lacking["errors"][0]["message"]
    assert lacking["data"] is None
    offered = (await solver.client.data(OFFER, {"id": theirs, "m": "Сделаем"}))["offerToSolve"]
    assert offered["status"] == "PENDING"
    offers = issues.service.db["solver_offers"].count_documents({"solver_id": solver.id})
    assert await offers == 1
