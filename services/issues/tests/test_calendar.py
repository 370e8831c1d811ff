"""The working-day calendar's arithmetic, pure, on real Russian calendar cases."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest

from veche_issues.calendar import CalendarDayKind, WorkingCalendar
from veche_issues.seed import calendar_days
from veche_issues.settings import IssuesSettings

MSK = timezone(timedelta(hours=3))
H, S, W = CalendarDayKind.HOLIDAY, CalendarDayKind.SHORTENED, CalendarDayKind.WORKING_WEEKEND
# The seeded 2026/2027 calendar (holidays and 2026's shortened days).
RUSSIA = WorkingCalendar(
    {date.fromisoformat(d["_id"]): CalendarDayKind(d["kind"]) for d in calendar_days()}, 3
)
# 2025's decree moved Saturday 1 November's rest to Monday 3 November: a working Saturday,
# and shortened, before the 4 November holiday.
NOVEMBER_2025 = WorkingCalendar({date(2025, 11, 1): S, date(2025, 11, 3): H, date(2025, 11, 4): H})


def msk(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=MSK)


def test_kinds_decide_what_a_working_day_is() -> None:
    calendar = WorkingCalendar({date(2027, 1, 11): H, date(2026, 12, 12): W, date(2026, 11, 7): S})
    assert not calendar.is_working(date(2027, 1, 11))  # a Monday off
    assert calendar.is_working(date(2026, 12, 12))  # a Saturday worked
    assert calendar.is_working(date(2026, 11, 7))  # a shortened Saturday is worked too
    assert not calendar.is_working(date(2026, 12, 13))  # an ordinary Sunday
    assert calendar.day_ends(date(2026, 11, 7)) == time(17, 0)
    assert calendar.day_ends(date(2026, 12, 12)) == time(18, 0)


def test_new_year_31_december_and_the_january_holidays() -> None:
    # Wednesday 30 December 2026 at noon: 31 December (moved from 4 January), 1-8 January
    # and the weekends are off, so one working day is Monday 11 January at noon.
    assert RUSSIA.add_working_days(msk(2026, 12, 30, 12, 0), 1) == msk(2027, 1, 11, 12, 0)
    # Accepted that evening, after the working day: 11 January counts whole, due at its end.
    assert RUSSIA.add_working_days(msk(2026, 12, 30, 19, 0), 1) == msk(2027, 1, 11, 18, 0)
    # Accepted during the holidays: the same.
    assert RUSSIA.add_working_days(msk(2027, 1, 5, 10, 0), 1) == msk(2027, 1, 11, 18, 0)
    assert RUSSIA.add_working_days(msk(2027, 1, 5, 10, 0), 2) == msk(2027, 1, 12, 18, 0)


def test_the_answer_is_in_utc_and_the_day_is_the_citys() -> None:
    # 22:30 UTC on 30 December is 01:30 on 31 December in Kaluga, a day off.
    late = datetime(2026, 12, 30, 22, 30, tzinfo=UTC)
    assert RUSSIA.add_working_days(late, 1) == datetime(2027, 1, 11, 15, 0, tzinfo=UTC)


def test_a_shortened_day_ends_an_hour_early() -> None:
    # Tuesday 3 November 2026, before the 4 November holiday, ends at 17:00.
    assert RUSSIA.add_working_days(msk(2026, 11, 2, 17, 30), 1) == msk(2026, 11, 3, 17, 0)
    assert RUSSIA.add_working_days(msk(2026, 11, 2, 10, 0), 1) == msk(2026, 11, 3, 10, 0)
    # Accepted at 17:15 on the shortened day is after hours: Thursday 5 November counts whole.
    assert RUSSIA.add_working_days(msk(2026, 11, 3, 17, 15), 1) == msk(2026, 11, 5, 18, 0)
    # Friday 8 May 2026 (shortened) at 16:00: 9 and 10 May the weekend, 11 May moved from 9 May.
    assert RUSSIA.add_working_days(msk(2026, 5, 8, 16, 0), 1) == msk(2026, 5, 12, 16, 0)


def test_a_moved_working_saturday_counts() -> None:
    friday = msk(2025, 10, 31, 10, 0)
    assert NOVEMBER_2025.add_working_days(friday, 1) == msk(2025, 11, 1, 10, 0)
    # Saturday 1 November is worked but shortened; 3 and 4 November are off.
    assert NOVEMBER_2025.add_working_days(msk(2025, 10, 31, 17, 30), 1) == msk(2025, 11, 1, 17, 0)
    assert NOVEMBER_2025.add_working_days(friday, 2) == msk(2025, 11, 5, 10, 0)
    # Without the decree, the same Friday's two days end on Tuesday.
    plain = WorkingCalendar()
    assert plain.add_working_days(friday, 2) == msk(2025, 11, 4, 10, 0)
    # A WORKING_WEEKEND counts a full day: 28 December 2024 was one (moved to 30 December).
    december = WorkingCalendar({date(2024, 12, 28): W, date(2024, 12, 30): H})
    assert december.add_working_days(msk(2024, 12, 27, 20, 0), 1) == msk(2024, 12, 28, 18, 0)


def test_a_weekend_start_counts_from_monday_whole() -> None:
    saturday = msk(2026, 10, 3, 13, 0)
    assert WorkingCalendar().add_working_days(saturday, 1) == msk(2026, 10, 5, 18, 0)
    # Before the working day ends the time of day is kept, even before it begins.
    assert WorkingCalendar().add_working_days(msk(2026, 10, 5, 3, 0), 1) == msk(2026, 10, 6, 3, 0)


@pytest.mark.parametrize(("setting", "expected"), [("17:30", time(17, 30)), ("09:00", time(9))])
def test_the_working_day_end_is_a_setting(
    monkeypatch: pytest.MonkeyPatch, setting: str, expected: time
) -> None:
    monkeypatch.setenv("ISSUES_WORKING_DAY_ENDS_AT", setting)
    ends = IssuesSettings().working_day_ends_at
    assert ends == expected
    calendar = WorkingCalendar({date(2026, 11, 3): S}, 3, ends)
    evening = msk(2026, 11, 2, expected.hour, expected.minute)  # just as the day ends
    assert (
        calendar.add_working_days(evening, 1).astimezone(MSK).time()
        == (datetime.combine(date(2026, 11, 3), expected) - timedelta(hours=1)).time()
    )


def test_the_seeded_calendar_has_every_kind_it_needs() -> None:
    days = calendar_days()
    assert {d["kind"] for d in days} == {"HOLIDAY", "SHORTENED"}
    assert {"_id": "2026-12-31", "kind": "HOLIDAY", "name": "Перенос с 4 января"} in days
    assert [d["_id"] for d in days] == sorted(d["_id"] for d in days)
