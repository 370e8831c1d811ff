"""Phone verification, roles, solvers and reference data over HTTP."""

from __future__ import annotations

from datetime import timedelta

from veche_kit.clock import utcnow

from .conftest import UsersServer

REQUEST_CODE = "mutation($p: String!) { requestPhoneCode(phone: $p) }"
VERIFY = "mutation($c: String!) { verifyPhone(code: $c) { phoneVerified } }"
GRANT = """mutation($u: ID!, $r: Role!, $d: ID) {
  grantRole(userId: $u, role: $r, departmentId: $d) { roles department { id name } }
}"""
REVOKE = (
    "mutation($u: ID!, $r: Role!) { revokeRole(userId: $u, role: $r) { roles department { id } } }"
)
BECOME_SOLVER = """mutation($s: [String!]!, $o: String) {
  becomeSolver(skills: $s, organization: $o) { roles skills organization }
}"""
SOLVERS = """query($skill: String, $d: ID, $first: Int, $after: String) {
  solvers(skill: $skill, districtId: $d, first: $first, after: $after) {
    totalCount edges { cursor node { id displayName skills } } pageInfo { hasNextPage endCursor }
  }
}"""
REFERENCE = "{ districts { id name } departments { id name } }"
CREATE_DISTRICT = (
    "mutation($id: ID!, $n: String!) { createDistrict(id: $id, name: $n) { id name } }"
)


async def test_phone_verification(users: UsersServer) -> None:
    client, _ = await users.citizen()
    phone = f"+7910{utcnow().microsecond:07d}"
    assert (await client.data(REQUEST_CODE, {"p": phone}))["requestPhoneCode"] is True
    # A second code within a minute is refused.
    assert await client.error_code(REQUEST_CODE, {"p": phone}) == "RATE_LIMITED"
    code = users.sender.sent[phone]
    wrong = "000000" if code != "000000" else "111111"
    body = await client.post(VERIFY, {"c": wrong})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "4 attempt(s) left" in body["errors"][0]["message"]
    assert (await client.data(VERIFY, {"c": code}))["verifyPhone"] == {"phoneVerified": True}
    # The same phone cannot be verified by a second account.
    other, _ = await users.citizen()
    await other.data(REQUEST_CODE, {"p": phone})
    assert await other.error_code(VERIFY, {"c": users.sender.sent[phone]}) == "CONFLICT"


async def test_phone_code_attempts_and_expiry_are_limited(users: UsersServer) -> None:
    client, auth = await users.citizen()
    phone = f"+7920{utcnow().microsecond:07d}"
    await client.data(REQUEST_CODE, {"p": phone})
    code = users.sender.sent[phone]
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(users.settings.phone_code_attempts):
        assert await client.error_code(VERIFY, {"c": wrong}) == "BAD_USER_INPUT"
    # Out of attempts: even the right code is refused until a new one is requested.
    assert await client.error_code(VERIFY, {"c": code}) == "RATE_LIMITED"
    codes = users.service.db["phone_codes"]
    await codes.update_one(
        {"_id": auth["user"]["id"]},
        {"$set": {"attempts": 0, "expires_at": utcnow() - timedelta(seconds=1)}},
    )
    body = await client.post(VERIFY, {"c": code})
    assert "expired" in body["errors"][0]["message"]


async def test_roles_are_granted_and_revoked_by_admins_only(users: UsersServer) -> None:
    citizen, auth = await users.citizen()
    user_id = auth["user"]["id"]
    assert await citizen.error_code(GRANT, {"u": user_id, "r": "ADMIN"}) == "FORBIDDEN"
    admin = await users.admin()
    body = await admin.post(GRANT, {"u": user_id, "r": "OFFICIAL"})
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "departmentId"}
    assert (
        await admin.error_code(GRANT, {"u": user_id, "r": "OFFICIAL", "d": "nowhere"})
        == "BAD_USER_INPUT"
    )
    assert await admin.error_code(GRANT, {"u": "nobody", "r": "MODERATOR"}) == "NOT_FOUND"
    granted = (await admin.data(GRANT, {"u": user_id, "r": "OFFICIAL", "d": "roads"}))["grantRole"]
    assert granted["roles"] == ["CITIZEN", "OFFICIAL"]
    assert granted["department"]["id"] == "roads"
    revoked = (await admin.data(REVOKE, {"u": user_id, "r": "OFFICIAL"}))["revokeRole"]
    assert revoked == {"roles": ["CITIZEN"], "department": None}
    assert await admin.error_code(REVOKE, {"u": user_id, "r": "CITIZEN"}) == "BAD_USER_INPUT"


async def test_solvers_by_skill_and_district_with_paging(users: UsersServer) -> None:
    skill = f"skill-{utcnow().microsecond}"
    await users.tell_categories(skill)  # a category of its own keeps other tests' solvers out
    made = []
    for district in ("leninsky", "leninsky", "moskovsky"):
        client, auth = await users.citizen(districtId=district)
        became = (await client.data(BECOME_SOLVER, {"s": [skill, "waste"], "o": "ООО Ремонт"}))[
            "becomeSolver"
        ]
        assert became == {
            "roles": ["CITIZEN", "SOLVER"],
            "skills": [skill, "waste"],
            "organization": "ООО Ремонт",
        }
        made.append(auth["user"]["id"])
    page1 = (await users.client.data(SOLVERS, {"skill": skill, "first": 2}))["solvers"]
    assert page1["totalCount"] == 3
    assert [e["node"]["id"] for e in page1["edges"]] == made[:2]
    assert page1["pageInfo"]["hasNextPage"] is True
    page2 = (
        await users.client.data(
            SOLVERS, {"skill": skill, "first": 2, "after": page1["pageInfo"]["endCursor"]}
        )
    )["solvers"]
    assert [e["node"]["id"] for e in page2["edges"]] == made[2:]
    assert page2["pageInfo"]["hasNextPage"] is False
    local = (await users.client.data(SOLVERS, {"skill": skill, "d": "moskovsky"}))["solvers"]
    assert [e["node"]["id"] for e in local["edges"]] == made[2:]
    client, _ = await users.citizen()
    assert await client.error_code(BECOME_SOLVER, {"s": ["Not A Slug!"]}) == "BAD_USER_INPUT"
    assert await users.client.error_code(SOLVERS, {"first": 1000}) == "BAD_USER_INPUT"
    assert await users.client.error_code(SOLVERS, {"after": "garbage"}) == "BAD_USER_INPUT"


async def test_reference_data_is_seeded_and_admin_managed(users: UsersServer) -> None:
    data = await users.client.data(REFERENCE)
    assert {d["id"] for d in data["districts"]} >= {"leninsky", "moskovsky", "oktyabrsky"}
    assert "roads" in {d["id"] for d in data["departments"]}
    admin = await users.admin()
    new_id = f"d{utcnow().microsecond}"
    assert (await admin.data(CREATE_DISTRICT, {"id": new_id, "n": "Новый"}))["createDistrict"][
        "id"
    ] == new_id
    assert await admin.error_code(CREATE_DISTRICT, {"id": new_id, "n": "Новый"}) == "CONFLICT"
    citizen, _ = await users.citizen()
    assert await citizen.error_code(CREATE_DISTRICT, {"id": "x1", "n": "X"}) == "FORBIDDEN"
