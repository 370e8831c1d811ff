"""The city's own configuration: admins add, rename and retire categories and add and
remove holidays through GraphQL; each change is audited and a category change tells
the whole category list in its transaction. Non-admins are refused before any check."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from veche_kit.clock import utcnow
from veche_kit.events import (
    AuditRecorded,
    CategoriesPublished,
    DepartmentsPublished,
    Envelope,
    ReferenceItem,
)
from veche_kit.outbox import OUTBOX
from veche_kit.reference import DEPARTMENTS
from veche_stack.testing import eventually, publish

from .conftest import CHANGE, REPORT, IssuesServer, parse_time

CREATE_CATEGORY = """
mutation($input: CreateCategoryInput!) {
  createCategory(input: $input) { id name responseWorkingDays retired department { id } }
}"""
RENAME_CATEGORY = """
mutation($id: ID!, $name: String!) { renameCategory(id: $id, name: $name) { id name retired } }"""
RETIRE_CATEGORY = """
mutation($id: ID!) { retireCategory(id: $id) { id name retired } }"""
CATEGORIES = "{ issueCategories { id name responseWorkingDays department { id } } }"
CREATE_HOLIDAY = """
mutation($date: Date!, $name: String!) { createHoliday(date: $date, name: $name) { date name } }"""
REMOVE_HOLIDAY = """
mutation($date: Date!) { removeHoliday(date: $date) { date name } }"""
HOLIDAYS = "{ holidays { date name } }"
CREATE_DAY = """mutation($date: Date!, $kind: CalendarDayKind!, $name: String!) {
  createCalendarDay(date: $date, kind: $kind, name: $name) { date kind name } }"""
REMOVE_DAY = "mutation($date: Date!) { removeCalendarDay(date: $date) { date kind name } }"
CALENDAR = "query($from: Date!, $to: Date!) { calendar(from: $from, to: $to) { date kind name } }"
PAYLOAD = {"title": "Яма", "description": "Яма у дома.", "location": {"lat": 54.5, "lon": 36.2}}


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _create(issues: IssuesServer, **fields: Any) -> dict[str, Any]:
    admin = issues.person("ADMIN")
    payload = {"id": _new_id("cat"), "name": "Новая категория", "departmentId": "roads", **fields}
    created: dict[str, Any] = (await admin.client.data(CREATE_CATEGORY, {"input": payload}))[
        "createCategory"
    ]
    return created


async def _tell_departments(issues: IssuesServer, *extra: str) -> None:
    """The users service's departments (the demo city's and `extra`), as it tells them."""
    rows = [ReferenceItem(id=d.id, name=d.name) for d in DEPARTMENTS]
    rows += [ReferenceItem(id=d, name=d) for d in extra]
    envelope = Envelope.wrap(DepartmentsPublished(departments=rows), "users")
    await publish(issues.settings.amqp_url, issues.settings.namespace, envelope)

    async def handled() -> bool:
        found = await issues.service.db["processed_events"].find_one({"_id": str(envelope.id)})
        return found is not None

    await eventually(handled, timeout=10, interval=0.02)


async def _last_event(issues: IssuesServer, kind: type[Any]) -> Any:
    found = await issues.service.db[OUTBOX].find_one({"type": kind.type}, sort=[("created_at", -1)])
    assert found is not None
    return Envelope.model_validate(found["envelope"]).event()


async def test_an_admin_adds_a_category_told_and_audited(issues: IssuesServer) -> None:
    created = await _create(issues, responseWorkingDays=12)
    assert created["responseWorkingDays"] == 12
    assert created["department"] == {"id": "roads"}
    assert created["retired"] is False
    listed = (await issues.citizen().client.data(CATEGORIES))["issueCategories"]
    shown = {"id": created["id"], "name": "Новая категория", "responseWorkingDays": 12}
    assert {**shown, "department": {"id": "roads"}} in listed
    told = await _last_event(issues, CategoriesPublished)
    assert created["id"] in {c.id for c in told.categories}
    audit = await _last_event(issues, AuditRecorded)
    assert (audit.action, audit.target_type, audit.target_id) == (
        "CATEGORY_CREATED",
        "Category",
        created["id"],
    )


async def test_renaming_and_retiring_keep_the_issues(issues: IssuesServer) -> None:
    created = await _create(issues)
    admin = issues.person("ADMIN")
    issue = await issues.report(issues.citizen(), category=created["id"])
    renamed = await admin.client.data(RENAME_CATEGORY, {"id": created["id"], "name": "Другое"})
    assert renamed["renameCategory"] == {"id": created["id"], "name": "Другое", "retired": False}
    retired = await admin.client.data(RETIRE_CATEGORY, {"id": created["id"]})
    assert retired["retireCategory"]["retired"] is True
    listed = (await issues.citizen().client.data(CATEGORIES))["issueCategories"]
    assert created["id"] not in {c["id"] for c in listed}
    told = await _last_event(issues, CategoriesPublished)
    assert created["id"] not in {c.id for c in told.categories}
    assert (await _last_event(issues, AuditRecorded)).action == "CATEGORY_RETIRED"
    stored = await issues.service.db["issues"].find_one({"_id": issue["id"]})
    assert stored is not None
    assert stored["category"] == created["id"]
    body = await issues.citizen().client.post(
        REPORT,
        {"input": {**PAYLOAD, "category": created["id"]}},
    )
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "category"}, body
    assert f"Retired category '{created['id']}'" in body["errors"][0]["message"]
    assert await admin.client.error_code(RETIRE_CATEGORY, {"id": created["id"]}) == "CONFLICT"
    assert await admin.client.error_code(RETIRE_CATEGORY, {"id": _new_id("x")}) == "NOT_FOUND"


async def test_category_input_is_checked(issues: IssuesServer) -> None:
    admin = issues.person("ADMIN")
    taken = await _create(issues)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"id": "Not A Slug!"}, "id"),
        ({"departmentId": "??"}, "departmentId"),
        ({"departmentId": "nowhere"}, "departmentId"),  # not in users' list
        ({"name": "   "}, "name"),
        ({"responseWorkingDays": 0}, "responseWorkingDays"),
        ({"responseWorkingDays": 61}, "responseWorkingDays"),
    ]
    for fields, field in cases:
        payload = {"id": _new_id("cat"), "name": "Имя", "departmentId": "roads", **fields}
        body = await admin.client.post(CREATE_CATEGORY, {"input": payload})
        assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": field}
    again = {"id": taken["id"], "name": "Имя", "departmentId": "roads"}
    body = await admin.client.post(CREATE_CATEGORY, {"input": again})
    assert body["errors"][0]["extensions"] == {"code": "CONFLICT", "field": "id"}


async def test_non_admins_are_refused_before_the_input(issues: IssuesServer) -> None:
    day = {"date": "2030-01-15", "name": ""}
    calls: list[tuple[str, dict[str, Any]]] = [
        (CREATE_CATEGORY, {"input": {"id": "Bad!", "name": "", "departmentId": "??"}}),
        (RENAME_CATEGORY, {"id": "potholes", "name": ""}),
        (RETIRE_CATEGORY, {"id": "potholes"}),
        (CREATE_HOLIDAY, day),
        (REMOVE_HOLIDAY, {"date": "2026-06-12"}),
        (CREATE_DAY, {**day, "kind": "WORKING_WEEKEND"}),
        (REMOVE_DAY, {"date": "2026-06-12"}),
    ]
    for person in (issues.citizen(), issues.official(), issues.moderator()):
        for query, variables in calls:
            assert await person.client.error_code(query, variables) == "FORBIDDEN"
    assert await issues.client.error_code(RETIRE_CATEGORY, {"id": "potholes"}) == "UNAUTHENTICATED"


async def test_holidays_are_added_and_removed(issues: IssuesServer) -> None:
    admin = issues.person("ADMIN")
    day = {"date": "2031-03-03", "name": "День города"}
    assert (await admin.client.data(CREATE_HOLIDAY, day))["createHoliday"] == day
    try:
        assert date(2031, 3, 3) in issues.service.holidays  # this instance: at once
        assert day in (await issues.client.data(HOLIDAYS))["holidays"]
        assert (await _last_event(issues, AuditRecorded)).action == "CALENDAR_DAY_CREATED"
        body = await admin.client.post(CREATE_HOLIDAY, day)
        assert body["errors"][0]["extensions"] == {"code": "CONFLICT", "field": "date"}
        body = await admin.client.post(CREATE_HOLIDAY, {**day, "date": "2031-03-04", "name": ""})
        assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "name"}
    finally:
        removed = await admin.client.data(REMOVE_HOLIDAY, {"date": day["date"]})
    assert removed["removeHoliday"] == day
    assert date(2031, 3, 3) not in issues.service.holidays
    assert (await _last_event(issues, AuditRecorded)).action == "CALENDAR_DAY_REMOVED"
    assert await admin.client.error_code(REMOVE_HOLIDAY, {"date": day["date"]}) == "NOT_FOUND"


async def test_calendar_days_of_each_kind(issues: IssuesServer) -> None:
    admin = issues.person("ADMIN")
    days = [
        {"date": "2033-01-10", "kind": "HOLIDAY", "name": "День города"},
        {"date": "2033-01-14", "kind": "SHORTENED", "name": "Предпраздничный день"},
        {"date": "2033-01-15", "kind": "WORKING_WEEKEND", "name": "Перенос с 10 января"},
    ]
    for day in days:
        assert (await admin.client.data(CREATE_DAY, day))["createCalendarDay"] == day
    try:
        span = {"from": "2033-01-01", "to": "2033-01-31"}
        assert (await issues.client.data(CALENDAR, span))["calendar"] == days
        calendar = issues.service.calendar  # this instance: at once
        assert not calendar.is_working(date(2033, 1, 10))
        assert calendar.is_working(date(2033, 1, 15))  # a Saturday
        assert (await _last_event(issues, AuditRecorded)).after == {
            "date": "2033-01-15", "kind": "WORKING_WEEKEND", "name": "Перенос с 10 января"
        }  # fmt: skip
        listed = (await issues.client.data(HOLIDAYS))["holidays"]
        assert {"date": "2033-01-10", "name": "День города"} in listed
        assert all(h["date"] not in ("2033-01-14", "2033-01-15") for h in listed)
        # The holiday API touches holidays only.
        body = await admin.client.post(REMOVE_HOLIDAY, {"date": "2033-01-14"})
        assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        body = await admin.client.post(CREATE_DAY, {**days[1], "kind": "HOLIDAY"})
        assert body["errors"][0]["extensions"] == {"code": "CONFLICT", "field": "date"}
        monday = {**days[2], "date": "2033-01-17"}  # a weekday is worked anyway
        body = await admin.client.post(CREATE_DAY, monday)
        assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "kind"}
        body = await admin.client.post(CREATE_DAY, {**days[0], "date": "9999-12-31"})
        assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "date"}
    finally:
        for day in days:
            await admin.client.data(REMOVE_DAY, {"date": day["date"]})
    assert (await issues.client.data(CALENDAR, span))["calendar"] == []
    assert await admin.client.error_code(REMOVE_DAY, {"date": "2033-01-10"}) == "NOT_FOUND"


async def test_the_calendar_is_read_a_year_at_most(issues: IssuesServer) -> None:
    year = await issues.client.data(CALENDAR, {"from": "2026-01-01", "to": "2026-12-31"})
    assert {"date": "2026-11-03", "kind": "SHORTENED", "name": "Предпраздничный день"} in year[
        "calendar"
    ]
    leap = {"from": "2028-01-01", "to": "2028-12-31"}  # 366 days
    assert (await issues.client.data(CALENDAR, leap))["calendar"] is not None
    for span, reason in (
        ({"from": "2026-01-01", "to": "2027-01-02"}, "RANGE_TOO_LONG"),
        ({"from": "2026-02-01", "to": "2026-01-31"}, "RANGE_REVERSED"),
    ):
        body = await issues.client.post(CALENDAR, span)
        assert body["data"] == {"calendar": None}
        assert body["errors"][0]["extensions"] == {
            "code": "BAD_USER_INPUT", "field": "to", "reason": reason
        }  # fmt: skip


def _working_day_after(start: date, count: int, holidays: frozenset[date]) -> date:
    day = start
    while count > 0:
        day += timedelta(days=1)
        if day.weekday() < 5 and day not in holidays:
            count -= 1
    return day


async def test_a_new_category_routes_to_its_department_and_skips_a_new_holiday(
    issues: IssuesServer,
) -> None:
    """The configuration done-when, in this service: a category (with 40 working days to
    answer) and a holiday 30 working days ahead, beyond every default deadline."""
    admin, department = issues.person("ADMIN"), _new_id("dept")
    await _tell_departments(issues, department)  # users created it
    created = await _create(issues, departmentId=department, responseWorkingDays=40)
    before = issues.service.calendar
    holiday = _working_day_after(utcnow().date(), 30, before.holidays)
    await admin.client.data(CREATE_HOLIDAY, {"date": holiday.isoformat(), "name": "День города"})
    try:
        issue = await issues.report(issues.citizen(), category=created["id"])
        assert issue["department"] == {"id": department}
        official = issues.official(department=department)
        accepted = (await official.client.data(CHANGE, {"id": issue["id"], "status": "ACCEPTED"}))[
            "changeIssueStatus"
        ]
        stored = await issues.service.db["issues"].find_one({"_id": issue["id"]})
        assert stored is not None
        at = stored["accepted_at"]
        due = parse_time(accepted["dueAt"])
        assert due == issues.service.calendar.add_working_days(at, 40)
        assert due > before.add_working_days(at, 40)  # one working day later
    finally:
        await admin.client.data(REMOVE_HOLIDAY, {"date": holiday.isoformat()})


async def test_another_instances_holiday_counts_after_the_sweep(issues: IssuesServer) -> None:
    """A holiday another instance added (written to the shared store) counts here from
    this instance's next sweep (every ISSUES_SWEEP_SECONDS)."""
    day, holidays = date(2032, 3, 3), issues.service.db["holidays"]
    await holidays.insert_one({"_id": day.isoformat(), "name": "День города"})
    try:
        assert day not in issues.service.holidays
        await issues.service.sweep()
        assert day in issues.service.holidays
    finally:
        await holidays.delete_one({"_id": day.isoformat()})
    await issues.service.sweep()
    assert day not in issues.service.holidays
