"""The city's districts and departments, changed by admins through GraphQL: renamed and
retired (no longer offered nor accepted for new data, what names them keeps them), each
change audited and, for districts, the whole list told in its transaction."""

from __future__ import annotations

import uuid
from typing import Any

from veche_kit.events import AuditRecorded, DepartmentsPublished, DistrictsPublished, Envelope
from veche_kit.outbox import OUTBOX
from veche_users.settings import DEFAULT_CONSENT_VERSION

from .conftest import PASSWORD, REGISTER, UsersServer

CREATE_DISTRICT = """
mutation($id: ID!, $n: String!) { createDistrict(id: $id, name: $n) { id name retired } }"""
RENAME_DISTRICT = """
mutation($id: ID!, $n: String!) { renameDistrict(id: $id, name: $n) { id name retired } }"""
RETIRE_DISTRICT = "mutation($id: ID!) { retireDistrict(id: $id) { id name retired } }"
CREATE_DEPARTMENT = """
mutation($id: ID!, $n: String!) { createDepartment(id: $id, name: $n) { id name retired } }"""
RENAME_DEPARTMENT = """
mutation($id: ID!, $n: String!) { renameDepartment(id: $id, name: $n) { id name retired } }"""
RETIRE_DEPARTMENT = "mutation($id: ID!) { retireDepartment(id: $id) { id name retired } }"
LISTS = "{ districts { id name } departments { id name } }"
GRANT = (
    "mutation($u: ID!, $d: ID) { grantRole(userId: $u, role: OFFICIAL, departmentId: $d) { id } }"
)
NEWCOMER = {
    "email": f"newcomer-{uuid.uuid4().hex[:8]}@example.ru",
    "password": PASSWORD,
    "displayName": "Пётр",
    "birthYear": 1990,
    "consentVersion": DEFAULT_CONSENT_VERSION,
}


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _last(users: UsersServer, kind: type[Any]) -> Any:
    found = await users.service.db[OUTBOX].find_one({"type": kind.type}, sort=[("created_at", -1)])
    assert found is not None
    return Envelope.model_validate(found["envelope"]).event()


async def test_a_district_is_renamed_and_retired_told_and_audited(users: UsersServer) -> None:
    admin, new = await users.admin(), _new_id("d")
    await admin.data(CREATE_DISTRICT, {"id": new, "n": "Новый округ"})
    assert (await _last(users, AuditRecorded)).action == "DISTRICT_CREATED"
    _, resident = await users.citizen(districtId=new)
    renamed = (await admin.data(RENAME_DISTRICT, {"id": new, "n": "Заречный"}))["renameDistrict"]
    assert renamed == {"id": new, "name": "Заречный", "retired": False}
    assert {"id": new, "name": "Заречный"} in (await users.client.data(LISTS))["districts"]
    audit = await _last(users, AuditRecorded)
    assert (audit.action, audit.before, audit.after) == (
        "DISTRICT_RENAMED",
        {"name": "Новый округ"},
        {"name": "Заречный"},
    )
    retired = (await admin.data(RETIRE_DISTRICT, {"id": new}))["retireDistrict"]
    assert retired == {"id": new, "name": "Заречный", "retired": True}
    assert new not in {d["id"] for d in (await users.client.data(LISTS))["districts"]}
    told = await _last(users, DistrictsPublished)
    assert new not in {d.id for d in told.districts}
    assert (await _last(users, AuditRecorded)).action == "DISTRICT_RETIRED"
    kept = await users.service.db["users"].find_one({"_id": resident["user"]["id"]})
    assert kept is not None
    assert kept["district_id"] == new  # existing data keeps it
    body = await users.client.post(REGISTER, {"input": {**NEWCOMER, "districtId": new}})
    assert body["errors"][0]["extensions"]["field"] == "districtId"
    assert await admin.error_code(RETIRE_DISTRICT, {"id": new}) == "CONFLICT"
    assert await admin.error_code(RENAME_DISTRICT, {"id": new, "n": "Ещё"}) == "CONFLICT"
    assert await admin.error_code(RETIRE_DISTRICT, {"id": _new_id("none")}) == "NOT_FOUND"


async def test_a_department_is_created_renamed_and_retired(users: UsersServer) -> None:
    admin, new = await users.admin(), _new_id("dept")
    created = (await admin.data(CREATE_DEPARTMENT, {"id": new, "n": "Парки"}))["createDepartment"]
    assert created == {"id": new, "name": "Парки", "retired": False}
    assert (await _last(users, AuditRecorded)).action == "DEPARTMENT_CREATED"
    told = await _last(users, DepartmentsPublished)
    assert (new, "Парки") in {(d.id, d.name) for d in told.departments}
    renamed = await admin.data(RENAME_DEPARTMENT, {"id": new, "n": "Парки и скверы"})
    assert renamed["renameDepartment"]["name"] == "Парки и скверы"
    assert (await _last(users, AuditRecorded)).action == "DEPARTMENT_RENAMED"
    retired = (await admin.data(RETIRE_DEPARTMENT, {"id": new}))["retireDepartment"]
    assert retired["retired"] is True
    assert (await _last(users, AuditRecorded)).action == "DEPARTMENT_RETIRED"
    assert new not in {d["id"] for d in (await users.client.data(LISTS))["departments"]}
    assert new not in {d.id for d in (await _last(users, DepartmentsPublished)).departments}
    _, someone = await users.citizen()
    body = await admin.post(GRANT, {"u": someone["user"]["id"], "d": new})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_names_and_ids_are_checked(users: UsersServer) -> None:
    admin, new = await users.admin(), _new_id("d")
    await admin.data(CREATE_DEPARTMENT, {"id": new, "n": "Отдел"})
    for query in (RENAME_DEPARTMENT, RENAME_DISTRICT):
        body = await admin.post(query, {"id": new, "n": "   "})
        assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "name"}
    body = await admin.post(CREATE_DEPARTMENT, {"id": new, "n": "Отдел"})
    assert body["errors"][0]["extensions"] == {"code": "CONFLICT", "field": "id"}
    assert await admin.error_code(RENAME_DEPARTMENT, {"id": "nowhere", "n": "X"}) == "NOT_FOUND"


async def test_non_admins_are_refused_before_the_input(users: UsersServer) -> None:
    citizen, _ = await users.citizen()
    official = (await users.staff("OFFICIAL", department="roads")).client
    calls: list[tuple[str, dict[str, Any]]] = [
        (RENAME_DISTRICT, {"id": "leninsky", "n": " "}),
        (RETIRE_DISTRICT, {"id": "leninsky"}),
        (CREATE_DEPARTMENT, {"id": "Bad!", "n": " "}),
        (RENAME_DEPARTMENT, {"id": "roads", "n": " "}),
        (RETIRE_DEPARTMENT, {"id": "roads"}),
    ]
    for client in (citizen, official):
        for query, variables in calls:
            assert await client.error_code(query, variables) == "FORBIDDEN"
    names = {d["id"] for d in (await users.client.data(LISTS))["districts"]}
    assert "leninsky" in names
