"""Issue #15's configuration done-when, through the gateway of a whole stack with the
demo city loaded: an admin creates a district and a department (users), a category
routed to it and a holiday (issues); a report in the new district and category routes
to the new department, and its answer deadline skips the holiday. Non-admins are
refused. (tests/test_fresh_city.py does the same on empty stores, demo data off.)"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from veche_issues.calendar import CalendarDayKind, WorkingCalendar
from veche_kit.clock import utcnow
from veche_stack.runner import Runner
from veche_stack.testing import GraphQLClient, eventually

from .flows import POTHOLE, admin, citizen, runner_on, running

pytestmark = pytest.mark.stack

CREATE_DISTRICT = "mutation($id: ID!, $n: String!) { createDistrict(id: $id, name: $n) { id } }"
CREATE_DEPARTMENT = "mutation($id: ID!, $n: String!) { createDepartment(id: $id, name: $n) { id } }"
CREATE_CATEGORY = """mutation($input: CreateCategoryInput!) {
  createCategory(input: $input) { id department { id name } }
}"""
CREATE_HOLIDAY = """mutation($d: Date!, $n: String!) {
  createCalendarDay(date: $d, kind: HOLIDAY, name: $n) { date }
}"""
LEGACY_HOLIDAY = "mutation($d: Date!, $n: String!) { createHoliday(date: $d, name: $n) { date } }"
CALENDAR = "query($f: Date!, $t: Date!) { calendar(from: $f, to: $t) { date kind } }"
REPORT = """mutation($input: ReportIssueInput!) {
  reportIssue(input: $input) { id category district { id name } department { id name } }
}"""
ACCEPT = """mutation($id: ID!) {
  changeIssueStatus(id: $id, status: ACCEPTED) { dueAt history { to at } }
}"""
CITY_OFFSET_HOURS = 3  # Kaluga, the stack's default ISSUES_CITY_UTC_OFFSET_HOURS


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runner]:
    with running(runner_on(tmp_path_factory.mktemp("city-config"))) as runner:
        yield runner


@pytest.fixture
async def gateway(stack: Runner) -> AsyncIterator[GraphQLClient]:
    client = GraphQLClient(stack.url("gateway"))
    yield client
    await client.aclose()


async def _resident(gateway: GraphQLClient, district: str) -> GraphQLClient:
    return (await citizen(gateway, "Жительница", district))[0]


def _working_day_after(start: date, count: int, calendar: WorkingCalendar) -> date:
    """The `count`-th working day after `start` that the calendar does not mark."""
    day = start
    while count > 0:
        day += timedelta(days=1)
        if calendar.is_working(day) and day not in calendar.days:
            count -= 1
    return day


async def _calendar(gateway: GraphQLClient) -> WorkingCalendar:
    """The city's calendar for the coming year, as the API tells it."""
    today = utcnow().date()
    span = {"f": today.isoformat(), "t": (today + timedelta(days=365)).isoformat()}
    rows = (await gateway.data(CALENDAR, span))["calendar"]
    days = {date.fromisoformat(r["date"]): CalendarDayKind(r["kind"]) for r in rows}
    return WorkingCalendar(days, CITY_OFFSET_HOURS)


async def _configure(city: GraphQLClient, tag: str) -> tuple[str, str, str]:
    """A new district, department and category routed to it (40 working days to answer)."""
    district, department, category = f"d-{tag}", f"dept-{tag}", f"cat-{tag}"
    await city.data(CREATE_DISTRICT, {"id": district, "n": "Заречный округ"})
    await city.data(CREATE_DEPARTMENT, {"id": department, "n": "Управление мостов"})
    category_input = {"id": category, "name": "Мосты", "departmentId": department,
                      "responseWorkingDays": 40}  # fmt: skip

    async def created() -> dict[str, Any]:  # once issues has heard the new department
        body = await city.post(CREATE_CATEGORY, {"input": category_input})
        return {} if body.get("errors") else dict(body["data"]["createCategory"])

    made = await eventually(created, timeout=20)
    assert made["department"] == {"id": department, "name": "Управление мостов"}
    return district, department, category


async def test_a_configured_city_routes_a_report_and_skips_its_holiday(
    gateway: GraphQLClient,
) -> None:
    city = await admin(gateway)
    district, department, category = await _configure(city, uuid.uuid4().hex[:8])
    before = await _calendar(gateway)
    # 30 working days ahead: inside the category's 40, beyond every default deadline.
    holiday = _working_day_after(utcnow().date(), 30, before)
    await city.data(CREATE_HOLIDAY, {"d": holiday.isoformat(), "n": "День города"})
    resident = await _resident(gateway, district)
    report = {**POTHOLE, "category": category, "districtId": district}

    async def reported() -> dict[str, Any]:  # once issues has heard the new district
        body = await resident.post(REPORT, {"input": report})
        return {} if body.get("errors") else dict(body["data"]["reportIssue"])

    issue = await eventually(reported, timeout=20)
    assert issue["department"] == {"id": department, "name": "Управление мостов"}
    assert issue["district"] == {"id": district, "name": "Заречный округ"}
    accepted = (await city.data(ACCEPT, {"id": issue["id"]}))["changeIssueStatus"]
    at = datetime.fromisoformat(accepted["history"][-1]["at"])
    due = datetime.fromisoformat(accepted["dueAt"])
    after = await _calendar(gateway)
    assert after.days == {**before.days, holiday: CalendarDayKind.HOLIDAY}
    assert abs(due - after.add_working_days(at, 40)) < timedelta(seconds=1)
    assert due - before.add_working_days(at, 40) >= timedelta(days=1)


async def test_non_admins_are_refused(gateway: GraphQLClient) -> None:
    resident = await _resident(gateway, "leninsky")
    category = {"id": "bridges", "name": "Мосты", "departmentId": "roads"}
    calls: list[tuple[str, dict[str, Any]]] = [
        (CREATE_DISTRICT, {"id": "zarechny", "n": "Заречный"}),
        (CREATE_DEPARTMENT, {"id": "bridges", "n": "Мосты"}),
        (CREATE_CATEGORY, {"input": category}),
        (CREATE_HOLIDAY, {"d": "2030-01-15", "n": "День города"}),
        (LEGACY_HOLIDAY, {"d": "2030-01-15", "n": "День города"}),
    ]
    for query, variables in calls:
        assert await resident.error_code(query, variables) == "FORBIDDEN"
        assert await gateway.error_code(query, variables) == "UNAUTHENTICATED"
