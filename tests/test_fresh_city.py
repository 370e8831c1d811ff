"""A fresh city (issue #15): the whole stack on empty stores with the demo data off
(`VECHE_DEMO_DATA=false`), so only the admin exists. The admin configures the city
through the gateway (a district, a department, a category with its answer period, a
calendar day, a reward); a resident registers in the new district and reports in the
new category; the report routes to the new department and its deadline skips the new
holiday. Every configuring mutation refuses a non-admin with FORBIDDEN."""

from __future__ import annotations

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

CITY = """query($from: Date!, $to: Date!) {
  districts { id } departments { id } issueCategories { id } rewards { id }
  calendar(from: $from, to: $to) { date kind }
}"""
CREATE_DISTRICT = "mutation($id: ID!, $n: String!) { createDistrict(id: $id, name: $n) { id } }"
CREATE_DEPARTMENT = "mutation($id: ID!, $n: String!) { createDepartment(id: $id, name: $n) { id } }"
CREATE_CATEGORY = """mutation($input: CreateCategoryInput!) {
  createCategory(input: $input) { id responseWorkingDays department { id name } }
}"""
CREATE_DAY = """mutation($d: Date!, $k: CalendarDayKind!, $n: String!) {
  createCalendarDay(date: $d, kind: $k, name: $n) { date kind name }
}"""
REMOVE_DAY = "mutation($d: Date!) { removeCalendarDay(date: $d) { date } }"
CREATE_REWARD = """mutation($input: RewardInput!) { createReward(input: $input) { id title } }"""
RENAME_REWARD = "mutation($id: ID!, $t: String!) { renameReward(id: $id, title: $t) { id } }"
RETIRE_REWARD = "mutation($id: ID!) { retireReward(id: $id) { id } }"
RENAME_CATEGORY = "mutation($id: ID!, $n: String!) { renameCategory(id: $id, name: $n) { id } }"
RETIRE_CATEGORY = "mutation($id: ID!) { retireCategory(id: $id) { id } }"
REPORT = """mutation($input: ReportIssueInput!) {
  reportIssue(input: $input) { id category district { id name } department { id name } }
}"""
ACCEPT = """mutation($id: ID!) {
  changeIssueStatus(id: $id, status: ACCEPTED) { dueAt overdue history { to at } }
}"""
DAYS = 5
YEAR = {"from": "2026-01-01", "to": "2026-12-31"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runner]:
    data_dir = tmp_path_factory.mktemp("fresh-city")
    with running(runner_on(data_dir, VECHE_DEMO_DATA="false")) as runner:
        yield runner


@pytest.fixture
async def gateway(stack: Runner) -> AsyncIterator[GraphQLClient]:
    client = GraphQLClient(stack.url("gateway"))
    yield client
    await client.aclose()


async def _resident(gateway: GraphQLClient, district: str) -> GraphQLClient:
    return (await citizen(gateway, "Первая жительница", district))[0]


def _next_working_days(start: date, count: int) -> list[date]:
    """The `count` weekdays after `start` (an empty calendar marks nothing)."""
    days: list[date] = []
    day = start
    while len(days) < count:
        day += timedelta(days=1)
        if day.weekday() < 5:
            days.append(day)
    return days


async def _configure(city: GraphQLClient) -> tuple[str, str, str]:
    """The city's first district, department and category (5 working days to answer)."""
    await city.data(CREATE_DISTRICT, {"id": "zarechny", "n": "Заречный округ"})
    await city.data(CREATE_DEPARTMENT, {"id": "bridges", "n": "Управление мостов"})
    category = {"id": "bridges", "name": "Мосты", "departmentId": "bridges",
                "responseWorkingDays": DAYS}  # fmt: skip

    async def created() -> dict[str, Any]:  # once issues has heard of the new department
        body = await city.post(CREATE_CATEGORY, {"input": category})
        return {} if body.get("errors") else dict(body["data"]["createCategory"])

    made = await eventually(created, timeout=30)
    assert made == {
        "id": "bridges", "responseWorkingDays": DAYS,
        "department": {"id": "bridges", "name": "Управление мостов"},
    }  # fmt: skip
    return "zarechny", "bridges", "bridges"


async def _report(resident: GraphQLClient, report: dict[str, Any]) -> dict[str, Any]:
    async def reported() -> dict[str, Any]:  # once issues has heard of the new district
        body = await resident.post(REPORT, {"input": report})
        return {} if body.get("errors") else dict(body["data"]["reportIssue"])

    return await eventually(reported, timeout=30)


async def test_a_fresh_city_is_configured_by_its_admin_alone(gateway: GraphQLClient) -> None:
    empty = await gateway.data(CITY, YEAR)
    assert empty == {"districts": [], "departments": [], "issueCategories": [], "rewards": [],
                     "calendar": []}  # fmt: skip
    city = await admin(gateway)
    district, department, category = await _configure(city)
    holiday = _next_working_days(utcnow().date() + timedelta(days=1), 2)[-1]
    day = {"d": holiday.isoformat(), "k": "HOLIDAY", "n": "День города"}
    made = (await city.data(CREATE_DAY, day))["createCalendarDay"]
    assert made == {"date": holiday.isoformat(), "kind": "HOLIDAY", "name": "День города"}
    reward = {"title": "Билет в планетарий", "cost": 100, "stock": 10}
    await city.data(CREATE_REWARD, {"input": reward})
    resident = await _resident(gateway, district)
    issue = await _report(resident, {**POTHOLE, "category": category, "districtId": district})
    assert issue["department"] == {"id": department, "name": "Управление мостов"}
    assert issue["district"] == {"id": district, "name": "Заречный округ"}
    accepted = (await city.data(ACCEPT, {"id": issue["id"]}))["changeIssueStatus"]
    at = datetime.fromisoformat(accepted["history"][-1]["at"])
    due = datetime.fromisoformat(accepted["dueAt"])
    calendar = WorkingCalendar({holiday: CalendarDayKind.HOLIDAY})  # Kaluga: UTC+3, 18:00
    assert abs(due - calendar.add_working_days(at, DAYS)) < timedelta(milliseconds=1)
    assert due > WorkingCalendar().add_working_days(at, DAYS)  # the holiday skipped
    assert accepted["overdue"] is False
    configured = await gateway.data(CITY, {"from": holiday.isoformat(), "to": holiday.isoformat()})
    assert configured["districts"] == [{"id": district}]
    assert configured["issueCategories"] == [{"id": category}]
    assert len(configured["rewards"]) == 1
    assert configured["calendar"] == [{"date": holiday.isoformat(), "kind": "HOLIDAY"}]


async def test_non_admins_are_refused_every_configuring_mutation(gateway: GraphQLClient) -> None:
    city = await admin(gateway)
    await city.data(CREATE_DISTRICT, {"id": "okski", "n": "Окский округ"})
    resident = await _resident(gateway, "okski")
    category = {"id": "roads", "name": "Дороги", "departmentId": "roads"}
    calls: list[tuple[str, dict[str, Any]]] = [
        (CREATE_DISTRICT, {"id": "other", "n": "Другой"}),
        (CREATE_DEPARTMENT, {"id": "roads", "n": "Дороги"}),
        (CREATE_CATEGORY, {"input": category}),
        (RENAME_CATEGORY, {"id": "bridges", "n": "Мосты и тоннели"}),
        (RETIRE_CATEGORY, {"id": "bridges"}),
        (CREATE_DAY, {"d": "2030-01-15", "k": "WORKING_WEEKEND", "n": "Перенос"}),
        (REMOVE_DAY, {"d": "2030-01-15"}),
        (CREATE_REWARD, {"input": {"title": "Билет", "cost": 1, "stock": 1}}),
        (RENAME_REWARD, {"id": "any", "t": "Билет"}),
        (RETIRE_REWARD, {"id": "any"}),
    ]
    for query, variables in calls:
        assert await resident.error_code(query, variables) == "FORBIDDEN", query
        assert await gateway.error_code(query, variables) == "UNAUTHENTICATED", query
    assert {"id": "other"} not in (await gateway.data(CITY, YEAR))["districts"]
