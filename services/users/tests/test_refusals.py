"""The users subgraph called directly, as an attacker would: list and text maxima
hold before any cleaning, malformed input gets a coded 4xx, and permission comes
before input checks."""

from __future__ import annotations

import pytest

from veche_kit.abuse import (
    DEEP_CURSOR,
    MALFORMED,
    Malformed,
    aliased,
    cpu_allowance,
    cpu_and_body,
    refusal,
    send,
)

from .conftest import UsersServer

BECOME_SOLVER = "mutation($s: [String!]!) { becomeSolver(skills: $s) { id skills } }"
MARK_READ = "mutation($ids: [ID!]) { markNotificationsRead(ids: $ids) }"
HISTORY = "query($after: String) { me { pointsHistory(after: $after) { totalCount } } }"
GRANT = "mutation($u: ID!, $r: Role!, $d: ID) { grantRole(userId: $u, role: $r, departmentId: $d) { id } }"
CREATE_DISTRICT = "mutation($id: ID!, $n: String!) { createDistrict(id: $id, name: $n) { id } }"
CREATE_REWARD = "mutation($i: RewardInput!) { createReward(input: $i) { id } }"
UPDATE_PROFILE = "mutation($i: UpdateProfileInput!) { updateProfile(input: $i) { id } }"


@pytest.mark.parametrize("case", MALFORMED, ids=lambda case: case.name)
async def test_malformed_requests_get_a_coded_4xx(users: UsersServer, case: Malformed) -> None:
    response = await send(users.client.http, f"{users.url}/graphql", case)
    assert response.status_code == case.status
    assert refusal(response) == "BAD_USER_INPUT"


async def test_forty_thousand_skills_are_refused_by_their_count(users: UsersServer) -> None:
    client, _ = await users.citizen()
    skills = [f"skill-{i}" for i in range(40_000)]
    cpu, body = await cpu_and_body(client, BECOME_SOLVER, {"s": skills})
    error = body["errors"][0]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "skills"}
    assert "at most 20 items" in error["message"]
    assert cpu < cpu_allowance(0.1), cpu  # de-duplicated first, it blocked the service 10.5 s
    # Repeats count too: the maximum is checked before de-duplication.
    body = await client.post(BECOME_SOLVER, {"s": ["potholes"] * 21})
    assert body["errors"][0]["extensions"]["field"] == "skills"
    solver = await client.data(BECOME_SOLVER, {"s": ["potholes", "Potholes", "street-lighting"]})
    assert solver["becomeSolver"]["skills"] == ["potholes", "street-lighting"]


async def test_other_lists_and_texts_have_their_stated_maximum(users: UsersServer) -> None:
    client, _ = await users.citizen()
    cpu, body = await cpu_and_body(client, MARK_READ, {"ids": ["x"] * 40_000})
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "ids"}
    assert cpu < cpu_allowance(0.1), cpu
    body = await client.post(UPDATE_PROFILE, {"i": {"displayName": "Я" * 100_000}})
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "displayName"}
    assert "within 80 characters" in body["errors"][0]["message"]


async def test_the_maxima_are_in_the_schema(users: UsersServer) -> None:
    sdl = (await users.client.data("{ _service { sdl } }"))["_service"]["sdl"]
    assert "At most 20 items of at most 64 characters each." in sdl  # becomeSolver(skills)
    assert "At most 500 items of at most 64 characters each." in sdl  # markNotificationsRead


async def test_permission_comes_before_input_checks(users: UsersServer) -> None:
    client, auth = await users.citizen()
    me = auth["user"]["id"]
    # Each is wrong input too (no department, not a slug, a negative cost), but a citizen
    # may not make these calls at all.
    assert await client.error_code(GRANT, {"u": me, "r": "OFFICIAL", "d": None}) == "FORBIDDEN"
    assert await client.error_code(CREATE_DISTRICT, {"id": "Not A Slug!", "n": ""}) == "FORBIDDEN"
    reward = {"title": "", "cost": -1, "stock": -1}
    assert await client.error_code(CREATE_REWARD, {"i": reward}) == "FORBIDDEN"
    anonymous = users.client
    assert await anonymous.error_code(BECOME_SOLVER, {"s": ["Not A Slug!"]}) == "UNAUTHENTICATED"
    assert (
        await anonymous.error_code(UPDATE_PROFILE, {"i": {"birthYear": 3000}}) == "UNAUTHENTICATED"
    )


@pytest.mark.parametrize("cursor", ["W251bGxd", "WzEsMiwzXQ==", DEEP_CURSOR, "%%%"])
async def test_cursors_this_api_did_not_issue_are_refused(users: UsersServer, cursor: str) -> None:
    client, _ = await users.citizen()
    body = await client.post(HISTORY, {"after": cursor})
    error = body["errors"][0]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}
    assert "not one this API issued" in error["message"]


async def test_operation_limits_and_codes(users: UsersServer) -> None:
    cpu, body = await cpu_and_body(
        users.client, aliased("me { id }", users.settings.max_aliases + 1)
    )
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert cpu < cpu_allowance(0.1), cpu
    assert await users.client.error_code("{ me { id ") == "GRAPHQL_PARSE_FAILED"
    assert await users.client.error_code("{ me { nope } }") == "GRAPHQL_VALIDATION_FAILED"
