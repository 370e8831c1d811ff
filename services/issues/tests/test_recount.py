"""Open deadlines follow the working-day calendar (`veche_issues.recount`): an admin's
calendar change counts again the `dueAt` of every ACCEPTED, unanswered issue whose
answer period runs over the day; the history shows it and `overdue` follows."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

from veche_issues.calendar import CalendarDayKind, WorkingCalendar
from veche_issues.recount import RECOUNTS
from veche_kit.clock import utcnow

from .conftest import IssuesServer, parse_time

CREATE_DAY = """mutation($date: Date!, $kind: CalendarDayKind!, $name: String!) {
  createCalendarDay(date: $date, kind: $kind, name: $name) { date } }"""
REMOVE_DAY = "mutation($date: Date!) { removeCalendarDay(date: $date) { date } }"
ISSUE = """query($id: ID!) {
  issue(id: $id) { dueAt overdue history { kind detail by { id } } } }"""
DAYS = 8


async def _accepted(issues: IssuesServer, since: datetime, **fields: Any) -> str:
    """An issue ACCEPTED at `since` with the usual 8 working days, as the store keeps it."""
    due = issues.service.calendar.add_working_days(since, DAYS)
    return await issues.seed_issue(
        status="ACCEPTED",
        reporter=f"u-{uuid.uuid4().hex[:8]}",
        **{"accepted_at": since, "due_at": due, "due_from": since, "due_days": DAYS, **fields},
    )


def _days_off_until_due_after(
    calendar: WorkingCalendar, since: datetime, now: datetime
) -> list[date]:
    """The first unmarked working days after `since` that, as holidays, move its deadline past `now`."""
    chosen: list[date] = []
    day = calendar.local_date(since)
    while calendar.add_working_days(since, DAYS) <= now:
        day += timedelta(days=1)
        if calendar.is_working(day) and day not in calendar.days:
            chosen.append(day)
            days = {**calendar.days, day: CalendarDayKind.HOLIDAY}
            calendar = replace(calendar, days=days)
    return chosen


async def test_holidays_move_open_deadlines_and_their_removal_moves_them_back(
    issues: IssuesServer,
) -> None:
    admin, now = issues.person("ADMIN"), utcnow()
    since = now - timedelta(days=30)
    open_id = await _accepted(issues, since)
    answered_id = await _accepted(issues, since, answered_at=since + timedelta(days=1))
    extended_id = await _accepted(issues, since, due_from=None)  # a date a person chose
    before = parse_time((await issues.client.data(ISSUE, {"id": open_id}))["issue"]["dueAt"])
    assert (await issues.client.data(ISSUE, {"id": open_id}))["issue"]["overdue"] is True
    days = _days_off_until_due_after(issues.service.calendar, since, now)
    assert days  # the premise: a month ago, the deadline has passed
    try:
        for day in days:
            await admin.client.data(CREATE_DAY, {"date": day.isoformat(), "kind": "HOLIDAY",
                                                 "name": "Тест"})  # fmt: skip
        issue = (await issues.client.data(ISSUE, {"id": open_id}))["issue"]
        assert parse_time(issue["dueAt"]) == issues.service.calendar.add_working_days(since, DAYS)
        assert parse_time(issue["dueAt"]) > now
        assert issue["overdue"] is False
        steps = [s for s in issue["history"] if s["kind"] == "DEADLINE_RECOUNTED"]
        assert len(steps) == len(days)  # one per change that moved it
        assert steps[0]["by"] is None
        assert "working-day calendar" in steps[0]["detail"]
        for untouched in (answered_id, extended_id):
            stored = await issues.service.db["issues"].find_one({"_id": untouched})
            assert stored is not None
            assert stored["due_at"] == before
    finally:
        for day in days:
            await admin.client.data(REMOVE_DAY, {"date": day.isoformat()})
    issue = (await issues.client.data(ISSUE, {"id": open_id}))["issue"]
    assert parse_time(issue["dueAt"]) == before
    assert issue["overdue"] is True
    # Each removal inside the (shrinking) answer period moved it back one working day.
    recounted = [s for s in issue["history"] if s["kind"] == "DEADLINE_RECOUNTED"]
    assert len(days) < len(recounted) <= 2 * len(days)
    assert await issues.service.db[RECOUNTS].count_documents({}) == 0


async def test_a_moved_working_saturday_brings_a_deadline_forward(issues: IssuesServer) -> None:
    admin, now = issues.person("ADMIN"), utcnow()
    calendar = issues.service.calendar
    issue_id = await _accepted(issues, now)
    due = (await issues.service.db["issues"].find_one({"_id": issue_id}) or {})["due_at"]
    saturday = calendar.local_date(now) + timedelta(days=1)
    while saturday.weekday() != 5 or saturday in calendar.days:
        saturday += timedelta(days=1)
    assert saturday < calendar.local_date(due)  # inside the answer period
    variables = {"date": saturday.isoformat(), "kind": "WORKING_WEEKEND", "name": "Перенос"}
    await admin.client.data(CREATE_DAY, variables)
    try:
        issue = (await issues.client.data(ISSUE, {"id": issue_id}))["issue"]
        assert parse_time(issue["dueAt"]) == issues.service.calendar.add_working_days(now, DAYS)
        assert parse_time(issue["dueAt"]) < due
    finally:
        await admin.client.data(REMOVE_DAY, {"date": saturday.isoformat()})
    stored = await issues.service.db["issues"].find_one({"_id": issue_id})
    assert stored is not None
    assert stored["due_at"] == due


async def test_the_sweep_finishes_a_recount_a_crash_cut_short(issues: IssuesServer) -> None:
    """The calendar change and its marker were committed, then the process died."""
    now = utcnow()
    issue_id = await _accepted(issues, now)
    calendar = issues.service.calendar
    day = calendar.local_date(now) + timedelta(days=1)
    while not calendar.is_working(day) or day in calendar.days:
        day += timedelta(days=1)
    db = issues.service.db
    await db["holidays"].insert_one({"_id": day.isoformat(), "kind": "HOLIDAY", "name": "Тест"})
    await db[RECOUNTS].insert_one({"_id": day.isoformat(), "marked_at": now})
    try:
        await issues.service.sweep()
        stored = await db["issues"].find_one({"_id": issue_id})
        assert stored is not None
        assert stored["due_at"] == issues.service.calendar.add_working_days(now, DAYS)
        assert stored["history"][-1]["kind"] == "DEADLINE_RECOUNTED"
        assert await db[RECOUNTS].count_documents({}) == 0
    finally:
        await db["holidays"].delete_one({"_id": day.isoformat()})
        await issues.service.load_holidays()
