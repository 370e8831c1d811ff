"""The city's configuration in the issues subgraph: categories and the working-day
calendar, changed by admins through GraphQL (see `veche_issues.catalogue`)."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated

import strawberry

from veche_issues.calendar import MAX_RANGE_DAYS, CalendarDayKind, day_kind
from veche_issues.catalogue import MAX_NAME, MAX_RESPONSE_WORKING_DAYS, MAX_YEAR, MIN_YEAR
from veche_issues.context import IssuesInfo
from veche_kit.graphql import public_enum
from veche_kit.inputs import ID_CHARS, bounded
from veche_kit.mongo import Document

if TYPE_CHECKING:
    from veche_issues.schema import Department
    from veche_issues.settings import IssuesSettings

LazyDepartment = Annotated["Department", strawberry.lazy("veche_issues.schema")]
_CODES = "FORBIDDEN for non-admins (before any check of the input); BAD_USER_INPUT with `field`."

CategoryId = Annotated[
    strawberry.ID,
    strawberry.argument(
        description="The category's id, e.g. `potholes`.", metadata=bounded(chars=ID_CHARS)
    ),
]
Name = Annotated[
    str,
    strawberry.argument(
        description=f"Name to show, at most {MAX_NAME} characters.",
        metadata=bounded(chars=MAX_NAME),
    ),
]
HolidayDate = Annotated[
    date, strawberry.argument(description="The day, in the city's calendar, e.g. `2027-01-11`.")
]
_HOLIDAY_API = "Use `calendar(from:, to:)`, `createCalendarDay` and `removeCalendarDay`"

public_enum(
    CalendarDayKind,
    name="CalendarDayKind",
    description="What the working-day calendar says of one date. Clients must tolerate values "
    "added later.",
    values={
        "HOLIDAY": "A day off: answer deadlines skip it (besides every Saturday and Sunday).",
        "SHORTENED": "A working day that ends an hour early (Russia's pre-holiday day): a deadline "
        "due that day falls due by then; counted as a working day, on a weekend too.",
        "WORKING_WEEKEND": "A Saturday or Sunday that is a working day (a day moved by decree): "
        "deadlines count it.",
    },
)


@strawberry.type(description="A kind of problem, and the department that handles it.")
class Category:
    id: strawberry.ID = strawberry.field(
        description="Category id, e.g. `potholes`; pass as `category`."
    )
    name: str = strawberry.field(description="Name to show.")
    verified_supports_only: bool = strawberry.field(
        description="Whether supporting an initiative of this category needs a phone-verified "
        "account (`verifyPhone`); others get NOT_ELIGIBLE with `reason` VERIFICATION."
    )
    response_working_days: int | None = strawberry.field(
        description="Working days the department has to answer an ACCEPTED issue of this category; "
        "null: the city's default (`ISSUES_RESPONSE_WORKING_DAYS`)."
    )
    retired: bool = strawberry.field(
        description="Retired: no longer offered in `issueCategories` nor accepted for new reports; "
        "its issues keep it."
    )
    _department_id: strawberry.Private[str | None]

    @strawberry.field(description="The department issues of this category are routed to.")
    def department(self) -> LazyDepartment | None:
        from veche_issues.schema import Department

        return Department(id=strawberry.ID(self._department_id)) if self._department_id else None

    @classmethod
    def from_doc(cls, d: Document, settings: IssuesSettings) -> Category:
        return cls(
            id=strawberry.ID(d["_id"]),
            name=d["name"],
            verified_supports_only=settings.verified_supports_for(d["_id"]),
            response_working_days=d.get("response_working_days"),
            retired=d.get("retired_at") is not None,
            _department_id=d.get("department_id"),
        )


@strawberry.type(
    description="A non-working day (besides Saturdays and Sundays) answer deadlines skip."
)
class Holiday:
    date: date = strawberry.field(description="The day, in the city's calendar.")
    name: str = strawberry.field(description="What the day is, e.g. `День России`.")

    @classmethod
    def from_doc(cls, d: Document) -> Holiday:
        return cls(date=date.fromisoformat(d["_id"]), name=d["name"])


@strawberry.type(
    description="A day the working-day calendar marks; unmarked days are working days Monday to "
    "Friday and days off on weekends."
)
class CalendarDay:
    date: date = strawberry.field(description="The day, in the city's calendar.")
    kind: CalendarDayKind = strawberry.field(description="What the day is for deadlines.")
    name: str = strawberry.field(
        description="What the day is, e.g. `День России` or `Перенос с 3 января`."
    )

    @classmethod
    def from_doc(cls, d: Document) -> CalendarDay:
        return cls(date=date.fromisoformat(d["_id"]), kind=day_kind(d), name=d["name"])


@strawberry.input(description="A new category of problems and initiatives.")
class CreateCategoryInput:
    id: strawberry.ID = strawberry.field(
        description="Short id: lowercase letters, digits, dashes (at most 63 characters); CONFLICT "
        "when taken, by a retired category too.",
        metadata=bounded(chars=ID_CHARS),
    )
    name: str = strawberry.field(
        description=f"Name to show, at most {MAX_NAME} characters.",
        metadata=bounded(chars=MAX_NAME),
    )
    department_id: strawberry.ID = strawberry.field(
        description="The department (users' `departments`) its issues are routed to; "
        "BAD_USER_INPUT when that list (told by users within seconds of a change) lacks it.",
        metadata=bounded(chars=ID_CHARS),
    )
    response_working_days: int | None = strawberry.field(
        default=None,
        description=f"Working days to answer (1 to {MAX_RESPONSE_WORKING_DAYS}); null: the city's default.",
    )


@strawberry.type
class CatalogueQueries:
    @strawberry.field(
        description="The HOLIDAY days of the working-day calendar, by date. Public.",
        deprecation_reason=f"{_HOLIDAY_API}: the calendar also has SHORTENED and WORKING_WEEKEND "
        "days, and this list is unbounded.",
    )
    async def holidays(self, info: IssuesInfo) -> list[Holiday] | None:
        return [Holiday.from_doc(d) for d in await info.context.issues.catalogue.holidays()]

    @strawberry.field(
        description="The days the working-day calendar marks from `from` to `to` (both "
        f"included, at most {MAX_RANGE_DAYS} days), by date. Public. BAD_USER_INPUT (`field` to, "
        "`reason` RANGE_TOO_LONG or RANGE_REVERSED) for a longer or reversed range."
    )
    async def calendar(
        self,
        info: IssuesInfo,
        from_: Annotated[
            date,
            strawberry.argument(name="from", description="The first day, e.g. `2027-01-01`."),
        ],
        to: Annotated[date, strawberry.argument(description="The last day, e.g. `2027-12-31`.")],
    ) -> list[CalendarDay] | None:
        days = await info.context.issues.catalogue.calendar(from_, to)
        return [CalendarDay.from_doc(d) for d in days]


@strawberry.type
class CatalogueMutations:
    @strawberry.mutation(
        description="Adds a category (ADMIN only); users accepts it as a solver skill within "
        f"seconds. {_CODES} CONFLICT when the id is taken. Audited."
    )
    async def create_category(
        self,
        info: IssuesInfo,
        input: Annotated[
            CreateCategoryInput,
            strawberry.argument(description="The category: id, name, department, answer period."),
        ],
    ) -> Category:
        caller = await info.context.require_user()
        issues = info.context.issues
        document = await issues.catalogue.create_category(
            caller, str(input.id), input.name, str(input.department_id), input.response_working_days
        )
        return Category.from_doc(document, issues.settings)

    @strawberry.mutation(
        description=f"Renames a category (ADMIN only). {_CODES} NOT_FOUND for an unknown id, "
        "CONFLICT for a retired one. Audited."
    )
    async def rename_category(self, info: IssuesInfo, id: CategoryId, name: Name) -> Category:
        caller = await info.context.require_user()
        issues = info.context.issues
        document = await issues.catalogue.rename_category(caller, str(id), name)
        return Category.from_doc(document, issues.settings)

    @strawberry.mutation(
        description="Retires a category (ADMIN only): its issues keep it, it is no longer offered "
        "nor accepted by `reportIssue` (BAD_USER_INPUT naming it). FORBIDDEN for non-admins; "
        "NOT_FOUND for an unknown id; CONFLICT when retired already. Audited."
    )
    async def retire_category(self, info: IssuesInfo, id: CategoryId) -> Category:
        caller = await info.context.require_user()
        issues = info.context.issues
        document = await issues.catalogue.retire_category(caller, str(id))
        return Category.from_doc(document, issues.settings)

    @strawberry.mutation(
        description="Marks a day of the working-day calendar (ADMIN only): a HOLIDAY, a SHORTENED "
        "day or a WORKING_WEEKEND. Deadlines count on it from now on, and every ACCEPTED issue "
        "not yet answered whose answer period runs over that day gets its `dueAt` counted again "
        f"(a DEADLINE_RECOUNTED step in its history). {_CODES} BAD_USER_INPUT at `date` outside "
        f"{MIN_YEAR}-{MAX_YEAR}, at `kind` for a WORKING_WEEKEND on a weekday. CONFLICT when the day is marked already (remove it first). Audited."
    )
    async def create_calendar_day(
        self,
        info: IssuesInfo,
        date: HolidayDate,
        kind: Annotated[CalendarDayKind, strawberry.argument(description="What the day is.")],
        name: Name,
    ) -> CalendarDay:
        caller = await info.context.require_user()
        catalogue = info.context.issues.catalogue
        return CalendarDay.from_doc(await catalogue.create_calendar_day(caller, date, kind, name))

    @strawberry.mutation(
        description="Unmarks a day of the working-day calendar (ADMIN only): it is an ordinary "
        "weekday or weekend day again, and open answer deadlines over it are counted again as "
        "`createCalendarDay` says. FORBIDDEN for non-admins; NOT_FOUND when the day is not "
        "marked. Audited."
    )
    async def remove_calendar_day(self, info: IssuesInfo, date: HolidayDate) -> CalendarDay:
        caller = await info.context.require_user()
        catalogue = info.context.issues.catalogue
        return CalendarDay.from_doc(await catalogue.remove_calendar_day(caller, date))

    @strawberry.mutation(
        description="Adds a HOLIDAY (ADMIN only), as `createCalendarDay` does. "
        f"{_CODES} CONFLICT when the day is marked already. Audited.",
        deprecation_reason=f"{_HOLIDAY_API}(kind: HOLIDAY).",
    )
    async def create_holiday(self, info: IssuesInfo, date: HolidayDate, name: Name) -> Holiday:
        caller = await info.context.require_user()
        catalogue = info.context.issues.catalogue
        holiday = CalendarDayKind.HOLIDAY
        return Holiday.from_doc(await catalogue.create_calendar_day(caller, date, holiday, name))

    @strawberry.mutation(
        description="Unmarks a HOLIDAY (ADMIN only), as `removeCalendarDay` does. "
        "FORBIDDEN for non-admins; NOT_FOUND when the day is no holiday. Audited.",
        deprecation_reason=f"{_HOLIDAY_API}.",
    )
    async def remove_holiday(self, info: IssuesInfo, date: HolidayDate) -> Holiday:
        caller = await info.context.require_user()
        catalogue = info.context.issues.catalogue
        holiday = CalendarDayKind.HOLIDAY
        return Holiday.from_doc(await catalogue.remove_calendar_day(caller, date, holiday))
