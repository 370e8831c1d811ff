"""The audit log (issue #20): each audited action once gives exactly one entry; only
admins and auditors read it; the CSV export is safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

from veche_stack.testing import GraphQLClient, eventually
from veche_users import store

from .conftest import UsersServer
from .test_suspension import GRANT, SUSPEND, UNSUSPEND, staff

LOG = """query($f: AuditFilter) {
  auditLog(filter: $f, first: 50) {
    totalCount
    edges { node { action service actorId actorRoles targetType targetId reason before after } }
  }
}"""
CSV = "query($f: AuditFilter, $n: Int!) { auditLogCsv(filter: $f, rows: $n) }"
REVOKE = "mutation($u: ID!, $r: Role!) { revokeRole(userId: $u, role: $r) { id } }"
REWARD = "mutation($input: RewardInput!) { createReward(input: $input) { id } }"
PUBLISH = """mutation($v: String!, $t: String!) {
  publishConsentVersion(version: $v, text: $t) { version } }"""
ERASE = "mutation($id: ID!, $r: String!) { eraseUser(userId: $id, reason: $r) }"
PRIVATE = "query($id: ID!) { user(id: $id) { email points again: email } }"


async def entries(reader: GraphQLClient, **wanted: Any) -> list[dict[str, Any]]:
    data = await reader.data(LOG, {"f": wanted})
    return [edge["node"] for edge in data["auditLog"]["edges"]]


async def exactly_one(reader: GraphQLClient, **wanted: Any) -> dict[str, Any]:
    """The one entry the filter picks, once the event has reached the log."""

    async def arrived() -> bool:
        return len(await entries(reader, **wanted)) >= 1

    await eventually(arrived, timeout=10)
    found = await entries(reader, **wanted)
    assert len(found) == 1, found
    return found[0]


async def _consent_version_published_once(
    users: UsersServer, admin: GraphQLClient, admin_id: str
) -> None:
    version = f"v-{uuid.uuid4().hex[:8]}"
    await admin.data(PUBLISH, {"v": version, "t": "Текст согласия"})
    # The other tests register with the default version: it becomes current again.
    await users.service.db[store.CONSENT_VERSIONS].delete_many({"version": version})

    async def published() -> list[dict[str, Any]]:
        found = await entries(admin, action="CONSENT_VERSION_PUBLISHED", actorId=admin_id)
        return [e for e in found if e["after"] == {"version": version}]

    await eventually(published, timeout=10)
    assert len(await published()) == 1


async def test_each_audited_action_gives_exactly_one_entry(users: UsersServer) -> None:
    admin = await users.admin()
    admin_id = (await admin.data("{ me { id } }"))["me"]["id"]
    moderator = await staff(users, "MODERATOR")
    _, auth = await users.citizen()
    user_id = auth["user"]["id"]

    await admin.data(GRANT, {"u": user_id, "r": "SOLVER"})
    granted = await exactly_one(admin, action="ROLE_GRANTED", targetId=user_id)
    assert granted["actorId"] == admin_id
    assert "ADMIN" in granted["actorRoles"]
    assert granted["before"]["roles"] == ["CITIZEN"]
    assert sorted(granted["after"]["roles"]) == ["CITIZEN", "SOLVER"]
    assert granted["service"] == "users"

    await admin.data(REVOKE, {"u": user_id, "r": "SOLVER"})
    await exactly_one(admin, action="ROLE_REVOKED", targetId=user_id)

    reward = {"title": f"Билет {uuid.uuid4().hex[:6]}", "cost": 10, "stock": 3}
    reward_id = (await admin.data(REWARD, {"input": reward}))["createReward"]["id"]
    created = await exactly_one(admin, action="REWARD_CREATED", targetId=reward_id)
    assert created["after"] == reward

    await _consent_version_published_once(users, admin, admin_id)

    await moderator.data(SUSPEND, {"u": user_id, "r": "Спам"})
    suspended = await exactly_one(admin, action="USER_SUSPENDED", targetId=user_id)
    assert suspended["reason"] == "Спам"
    assert "MODERATOR" in suspended["actorRoles"]
    await moderator.data(UNSUSPEND, {"u": user_id, "r": "Ошибка"})
    await exactly_one(admin, action="USER_UNSUSPENDED", targetId=user_id)

    await admin.data(PRIVATE, {"id": user_id})  # twice in one request: one entry
    await exactly_one(admin, action="PRIVATE_FIELDS_READ", targetId=user_id)
    await admin.data(ERASE, {"id": user_id, "r": "Письменное заявление"})
    erased = await exactly_one(admin, action="USER_ERASED", targetId=user_id)
    assert erased["reason"] == "Письменное заявление"
    # The person's own actions are not staff actions.
    mine = await entries(admin, actorId=user_id)
    assert mine == []


async def test_only_admins_and_auditors_read_the_log(users: UsersServer) -> None:
    citizen, _ = await users.citizen()
    moderator = await staff(users, "MODERATOR")
    auditor = await staff(users, "AUDITOR")
    for reader in (citizen, moderator):
        body = await reader.post(LOG, {"f": None})
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert body["data"]["auditLog"] is None
    assert (await auditor.data(LOG, {"f": None}))["auditLog"]["totalCount"] >= 1
    # An auditor changes nothing.
    assert await auditor.error_code(GRANT, {"u": "x", "r": "ADMIN"}) == "FORBIDDEN"


async def test_the_csv_export_is_spreadsheet_safe(users: UsersServer) -> None:
    admin = await users.admin()
    _, auth = await users.citizen()
    user_id = auth["user"]["id"]
    moderator = await staff(users, "MODERATOR")
    await moderator.data(SUSPEND, {"u": user_id, "r": '=HYPERLINK("http://evil")'})
    await exactly_one(admin, action="USER_SUSPENDED", targetId=user_id)
    text = (await admin.data(CSV, {"f": {"targetId": user_id}, "n": 10}))["auditLogCsv"]
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["action"] for r in rows] == ["USER_SUSPENDED"]
    assert rows[0]["reason"] == '\'=HYPERLINK("http://evil")'
    assert rows[0]["target_id"] == user_id
    assert "MODERATOR" in rows[0]["actor_roles"]
    body = await admin.post(CSV, {"f": None, "n": 100_000})
    assert body["errors"][0]["extensions"]["field"] == "rows"
