"""The city's own configuration in the issues service: categories (routed to a
department, with their answer period) and the working-day calendar deadlines count on.

Admins only, each change audited in its transaction. A category change tells the
whole category list (`reference.categories_published`) in the same transaction, so
users' check of solvers' skills follows. A holiday change reloads this instance's
calendar at once; other instances reload it at their next sweep.

A category's `departmentId` is checked against the users service's departments as
last told (`reference.departments_published`, `veche_kit.reference_lists`): a
department just created in users is known here within seconds.

A calendar day (HOLIDAY, SHORTENED, WORKING_WEEKEND) added or removed is recorded with
a recount marker in one transaction; then every ACCEPTED, unanswered issue whose
counted deadline runs over that date gets its `dueAt` counted again
(`veche_issues.recount`), and the sweep finishes any recount a crash cut short. Retiring a
department leaves the categories routed to it as they are (their issues still have
their officials); an admin moves them with new categories.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from pymongo.errors import DuplicateKeyError

from veche_issues import domain
from veche_issues.calendar import MAX_RANGE_DAYS, CalendarDayKind, day_kind
from veche_kit import audit_log
from veche_kit.audit_log import AuditAction
from veche_kit.auth import Principal
from veche_kit.clock import utcnow
from veche_kit.errors import BadUserInputError, ConflictError, ForbiddenError, NotFoundError
from veche_kit.mongo import Document
from veche_kit.outbox import Transaction
from veche_kit.reference_lists import DEPARTMENT_LIST, ProjectedLists
from veche_kit.text import is_slug

if TYPE_CHECKING:
    from veche_issues.service import IssuesService

MAX_NAME = 100
MAX_RESPONSE_WORKING_DAYS = 60
# The years a calendar day may be in: deadlines are counted in this century.
MIN_YEAR, MAX_YEAR = 2000, 2099


def _require_admin(caller: Principal, what: str, ru: str) -> None:
    if not caller.is_admin:
        raise ForbiddenError(f"Only an admin may {what}.", ru=f"Только администратор может {ru}.")


def _slug(value: str, field: str) -> str:
    ref = value.strip().lower()
    if not is_slug(ref):
        raise BadUserInputError(
            "Use a short id of lowercase letters, digits and dashes.",
            field=field,
            ru="Задайте короткий id из строчных латинских букв, цифр и дефисов.",
        )
    return ref


def _name(value: str) -> str:
    return domain.required_text(value, "name", MAX_NAME)


def _working_days(value: int | None) -> int | None:
    if value is not None and not 1 <= value <= MAX_RESPONSE_WORKING_DAYS:
        raise BadUserInputError(
            f"Give between 1 and {MAX_RESPONSE_WORKING_DAYS} working days.",
            field="responseWorkingDays",
            ru=f"Укажите от 1 до {MAX_RESPONSE_WORKING_DAYS} рабочих дней.",
        )
    return value


class Catalogue:
    """Admins' changes to categories and the working-day calendar."""

    def __init__(self, issues: IssuesService) -> None:
        self.issues = issues

    async def create_category(
        self,
        caller: Principal,
        ref_id: str,
        name: str,
        department_id: str,
        response_working_days: int | None,
    ) -> Document:
        _require_admin(caller, "add issue categories", "добавлять категории обращений")
        document: Document = {
            "_id": _slug(ref_id, "id"),
            "name": _name(name),
            "department_id": _slug(department_id, "departmentId"),
            "response_working_days": _working_days(response_working_days),
        }
        await ProjectedLists(self.issues.db).require_known(
            DEPARTMENT_LIST,
            [document["department_id"]],
            field="departmentId",
            seeded=self.issues.settings.demo_data,
        )
        after = {k: v for k, v in document.items() if k != "_id"}

        async def work(tx: Transaction) -> None:
            await self.issues.store.add_category(document, tx.session)
            await self._told(tx, caller, AuditAction.CATEGORY_CREATED, document["_id"], after)

        try:
            await self.issues.outbox.transaction(work)
        except DuplicateKeyError as error:
            raise ConflictError(
                f"'{document['_id']}' exists already.",
                field="id",
                ru=f"«{document['_id']}» уже существует.",
            ) from error
        return document

    async def rename_category(self, caller: Principal, ref_id: str, name: str) -> Document:
        _require_admin(caller, "rename issue categories", "переименовывать категории обращений")
        return await self._change(
            caller, ref_id, {"name": _name(name)}, AuditAction.CATEGORY_RENAMED
        )

    async def retire_category(self, caller: Principal, ref_id: str) -> Document:
        """No longer offered nor accepted for new reports; its issues stay as they are."""
        _require_admin(caller, "retire issue categories", "убирать категории обращений в архив")
        return await self._change(
            caller, ref_id, {"retired_at": utcnow()}, AuditAction.CATEGORY_RETIRED
        )

    async def _change(
        self, caller: Principal, ref_id: str, fields: Document, action: AuditAction
    ) -> Document:
        async def work(tx: Transaction) -> Document:
            before = await self.issues.store.update_category(ref_id, fields, tx.session)
            if before is None:
                raise await self._missing(ref_id)
            changed = {k: before.get(k) for k in fields}
            await self._told(tx, caller, action, ref_id, fields, before=changed)
            return {**before, **fields}

        saved: Document = await self.issues.outbox.transaction(work)
        return saved

    async def _missing(self, ref_id: str) -> Exception:
        if await self.issues.store.category(ref_id) is not None:
            return ConflictError(
                f"The category '{ref_id[:40]}' is retired already.",
                ru=f"Категория «{ref_id[:40]}» уже в архиве.",
            )
        return NotFoundError(
            f"No category with id '{ref_id[:40]}'.", ru=f"Категории с id «{ref_id[:40]}» нет."
        )

    async def _told(
        self,
        tx: Transaction,
        caller: Principal,
        action: AuditAction,
        ref_id: str,
        after: dict[str, Any],
        before: dict[str, Any] | None = None,
    ) -> None:
        """The audit entry and the whole category list, in the change's transaction."""
        tx.emit(audit_log.entry(caller, action, "Category", ref_id, before=before, after=after))
        tx.emit(await self.issues.categories_told(tx.session))

    # ───────────────────────── the working-day calendar ─────────────────────────

    async def create_calendar_day(
        self, caller: Principal, day: date, kind: CalendarDayKind, name: str
    ) -> Document:
        """Marks `day`; open deadlines counting over it are counted again."""
        _require_admin(
            caller, "change the working-day calendar", "менять производственный календарь"
        )
        _check_day(day, kind)
        document: Document = {"_id": day.isoformat(), "kind": kind.value, "name": _name(name)}

        async def work(tx: Transaction) -> None:
            await self.issues.store.add_calendar_day(document, tx.session)
            await self.issues.recount.mark(day, tx.session)
            tx.emit(_day_entry(caller, AuditAction.CALENDAR_DAY_CREATED, document, after=True))

        try:
            await self.issues.outbox.transaction(work)
        except DuplicateKeyError as error:
            raise ConflictError(
                f"{document['_id']} is in the calendar already; remove it first.",
                field="date",
                ru=f"{document['_id']} уже есть в календаре; сначала удалите его.",
            ) from error
        await self._followed(day)
        return document

    async def remove_calendar_day(
        self, caller: Principal, day: date, kind: CalendarDayKind | None = None
    ) -> Document:
        """Unmarks `day` (only a day of `kind`, when given); open deadlines follow."""
        _require_admin(
            caller, "change the working-day calendar", "менять производственный календарь"
        )

        async def work(tx: Transaction) -> Document:
            removed = await self.issues.store.remove_calendar_day(day, tx.session, kind)
            if removed is None:
                raise _not_marked(day, kind)
            await self.issues.recount.mark(day, tx.session)
            tx.emit(_day_entry(caller, AuditAction.CALENDAR_DAY_REMOVED, removed, after=False))
            return removed

        removed: Document = await self.issues.outbox.transaction(work)
        await self._followed(day)
        return removed

    async def _followed(self, day: date) -> None:
        """This instance's calendar at once, then the open deadlines over `day` (the
        sweep finishes a recount cut short)."""
        await self.issues.load_holidays()
        await self.issues.recount.run(day)

    async def calendar(self, first: date, last: date) -> list[Document]:
        if last < first or (last - first).days >= MAX_RANGE_DAYS:
            raise BadUserInputError(
                f"Give `to` on or after `from`, at most {MAX_RANGE_DAYS} days in all.",
                field="to",
                reason="RANGE_TOO_LONG" if last >= first else "RANGE_REVERSED",
                ru=f"Укажите `to` не раньше `from`, всего не больше {MAX_RANGE_DAYS} дней.",
            )
        return await self.issues.store.calendar_range(first, last)

    async def holidays(self) -> list[Document]:
        return await self.issues.store.holiday_list()


def _check_day(day: date, kind: CalendarDayKind) -> None:
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise BadUserInputError(
            f"Give a day from {MIN_YEAR} to {MAX_YEAR}.",
            field="date",
            ru=f"Укажите день с {MIN_YEAR} по {MAX_YEAR} год.",
        )
    if kind is CalendarDayKind.WORKING_WEEKEND and day.weekday() < 5:
        raise BadUserInputError(
            "A WORKING_WEEKEND is a Saturday or a Sunday; weekdays are worked anyway.",
            field="kind",
            ru="WORKING_WEEKEND — это суббота или воскресенье; будни и так рабочие.",
        )


def _not_marked(day: date, kind: CalendarDayKind | None) -> NotFoundError:
    if kind is CalendarDayKind.HOLIDAY:
        return NotFoundError(
            f"{day.isoformat()} is not a holiday.",
            ru=f"{day.isoformat()} не отмечен как праздничный день.",
        )
    return NotFoundError(
        f"{day.isoformat()} is not in the calendar.", ru=f"{day.isoformat()} нет в календаре."
    )


def _day_entry(caller: Principal, action: AuditAction, document: Document, *, after: bool) -> Any:
    shown = {"date": document["_id"], "kind": day_kind(document).value, "name": document["name"]}
    return audit_log.entry(
        caller,
        action,
        "CalendarDay",
        document["_id"],
        before=None if after else shown,
        after=shown if after else None,
    )
