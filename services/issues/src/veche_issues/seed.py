"""Reference data for an empty store: categories (routed to departments) and the
working-day calendar (public holidays, shortened days) deadlines count on. (Districts are the users service's: see
`veche_kit.reference_lists`.)

Nothing in the code is Kaluga- or Russia-specific: this is data, loaded only
when the store is empty and `ISSUES_DEMO_DATA` is on (as `make run` sets it).
"""

from __future__ import annotations

import logging
from datetime import date

from veche_issues import store
from veche_issues.calendar import CalendarDayKind
from veche_kit.mongo import Database
from veche_kit.reference import CATEGORIES

log = logging.getLogger(__name__)

# Russia's non-working days that fall on weekdays (Labour Code art. 112 and the
# government's transfer decrees). 2026: decree of 24.09.2025 (3 and 4 January moved
# to 9 January and 31 December). 2027: the statutory days with weekend holidays
# moved to the next Monday, and the draft transfers of 2 and 3 January to
# 5 November and 31 December; replace them when the final decree is published.
HOLIDAYS: tuple[tuple[date, str], ...] = (
    (date(2026, 1, 1), "Новогодние каникулы"),
    (date(2026, 1, 2), "Новогодние каникулы"),
    (date(2026, 1, 5), "Новогодние каникулы"),
    (date(2026, 1, 6), "Новогодние каникулы"),
    (date(2026, 1, 7), "Рождество Христово"),
    (date(2026, 1, 8), "Новогодние каникулы"),
    (date(2026, 1, 9), "Перенос с 3 января"),
    (date(2026, 2, 23), "День защитника Отечества"),
    (date(2026, 3, 9), "Перенос с 8 марта (воскресенье)"),
    (date(2026, 5, 1), "Праздник Весны и Труда"),
    (date(2026, 5, 11), "Перенос с 9 мая (суббота)"),
    (date(2026, 6, 12), "День России"),
    (date(2026, 11, 4), "День народного единства"),
    (date(2026, 12, 31), "Перенос с 4 января"),
    (date(2027, 1, 1), "Новогодние каникулы"),
    (date(2027, 1, 4), "Новогодние каникулы"),
    (date(2027, 1, 5), "Новогодние каникулы"),
    (date(2027, 1, 6), "Новогодние каникулы"),
    (date(2027, 1, 7), "Рождество Христово"),
    (date(2027, 1, 8), "Новогодние каникулы"),
    (date(2027, 2, 23), "День защитника Отечества"),
    (date(2027, 3, 8), "Международный женский день"),
    (date(2027, 5, 3), "Перенос с 1 мая (суббота)"),
    (date(2027, 5, 10), "Перенос с 9 мая (воскресенье)"),
    (date(2027, 6, 14), "Перенос с 12 июня (суббота)"),
    (date(2027, 11, 4), "День народного единства"),
    (date(2027, 11, 5), "Перенос с 2 января (проект)"),
    (date(2027, 12, 31), "Перенос с 3 января (проект)"),
)


# Russia's pre-holiday working days, an hour shorter (Labour Code art. 95), 2026
# (the production calendar of the decree above). 2027's follow its final decree.
SHORTENED: tuple[tuple[date, str], ...] = (
    (date(2026, 4, 30), "Предпраздничный день"),
    (date(2026, 5, 8), "Предпраздничный день"),
    (date(2026, 6, 11), "Предпраздничный день"),
    (date(2026, 11, 3), "Предпраздничный день"),
)


def calendar_days() -> list[dict[str, str]]:
    """The seeded calendar: the holidays and the shortened days (2026 moves no working
    Saturday; a year that does adds WORKING_WEEKEND days through `createCalendarDay`)."""
    holidays = [(d, CalendarDayKind.HOLIDAY, n) for d, n in HOLIDAYS]
    shortened = [(d, CalendarDayKind.SHORTENED, n) for d, n in SHORTENED]
    return [
        {"_id": day.isoformat(), "kind": kind.value, "name": name}
        for day, kind, name in sorted(holidays + shortened)
    ]


async def load_reference_data(db: Database) -> None:
    """Loads categories and holidays where their collections are empty."""
    if await db[store.CATEGORIES].count_documents({}) == 0:
        await db[store.CATEGORIES].insert_many(
            [{"_id": c.id, "name": c.name, "department_id": c.department_id} for c in CATEGORIES]
        )
        log.info("categories loaded", extra={"categories": len(CATEGORIES)})
    if await db[store.HOLIDAYS].count_documents({}) == 0:
        await db[store.HOLIDAYS].insert_many(calendar_days())
        log.info("working-day calendar loaded", extra={"holidays": len(HOLIDAYS)})
