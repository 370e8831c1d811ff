"""The city's working-day calendar and the deadline arithmetic on it (pure, no I/O).

A day is a working day when it is Monday to Friday, unless the calendar marks it a
HOLIDAY; a Saturday or Sunday the calendar marks WORKING_WEEKEND (a day moved by
decree) or SHORTENED is a working day too. A working day ends at the city's
`ends_at` (local time), an hour earlier on a SHORTENED day (Russia's pre-holiday
day, Labour Code art. 95).

A deadline is `days` working days after its start. Started within a working day it
keeps the start's local time of day (capped at the due day's end); started after a
working day ends or on a day off, counting starts from the next working day, which
then counts whole: the deadline is the end of the `days`-th working day.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from enum import StrEnum

DEFAULT_ENDS_AT = time(18, 0)
# What `calendar(from:, to:)` lists at most in one call.
MAX_RANGE_DAYS = 366


class CalendarDayKind(StrEnum):
    """What the calendar says of one date."""

    HOLIDAY = "HOLIDAY"  # a day off
    SHORTENED = "SHORTENED"  # a working day that ends an hour early
    WORKING_WEEKEND = "WORKING_WEEKEND"  # a Saturday or Sunday that is a working day


def day_kind(document: Mapping[str, object]) -> CalendarDayKind:
    """A stored day's kind; days stored before kinds existed are holidays."""
    return CalendarDayKind(str(document.get("kind") or CalendarDayKind.HOLIDAY.value))


@dataclass(frozen=True)
class WorkingCalendar:
    """The city's marked days, its working day's end and its offset from UTC."""

    days: Mapping[date, CalendarDayKind] = field(default_factory=dict)
    utc_offset_hours: int = 3
    ends_at: time = DEFAULT_ENDS_AT

    @classmethod
    def of_holidays(
        cls, holidays: Collection[date], utc_offset_hours: int, ends_at: time = DEFAULT_ENDS_AT
    ) -> WorkingCalendar:
        return cls(dict.fromkeys(holidays, CalendarDayKind.HOLIDAY), utc_offset_hours, ends_at)

    @property
    def zone(self) -> timezone:
        return timezone(timedelta(hours=self.utc_offset_hours))

    @property
    def holidays(self) -> frozenset[date]:
        return frozenset(d for d, k in self.days.items() if k is CalendarDayKind.HOLIDAY)

    def is_working(self, day: date) -> bool:
        kind = self.days.get(day)
        if kind is CalendarDayKind.HOLIDAY:
            return False
        return kind is not None or day.weekday() < 5

    def day_ends(self, day: date) -> time:
        """When the working day `day` ends, local time."""
        if self.days.get(day) is not CalendarDayKind.SHORTENED:
            return self.ends_at
        ends = datetime.combine(day, self.ends_at) - timedelta(hours=1)
        return ends.time()

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """`start` plus `days` working days (see the module's docstring), in UTC."""
        local = start.astimezone(self.zone)
        day, clock = local.date(), local.time().replace(tzinfo=None)
        keep: time | None = clock
        if not self.is_working(day) or clock >= self.day_ends(day):
            keep = None  # after hours or a day off: the next working day counts whole
        left = days
        while left > 0:
            day += timedelta(days=1)
            if self.is_working(day):
                left -= 1
        ends = self.day_ends(day)
        due = datetime.combine(day, ends if keep is None else min(keep, ends), self.zone)
        return due.astimezone(UTC)

    def counted_span(self, start: datetime, due: datetime) -> tuple[date, date]:
        """The local dates a deadline from `start` to `due` counts over (both ends in)."""
        return self.local_date(start), self.local_date(due)
