"""The staff workflow (issue #20): officials and moderators correct issues.

Recategorise (and so reroute), merge a duplicate into another issue, extend a deadline,
assign an issue to one official of its department. Each use case checks who the caller
is before anything else (FORBIDDEN), then the input, then writes the change with a
conditional update, its events and exactly one audit entry in one transaction: of two
racing officials one wins, the other gets CONFLICT, and no event exists of the loser.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pymongo.errors import BulkWriteError, DuplicateKeyError

from veche_issues import domain
from veche_issues.domain import StaffAction, Status
from veche_issues.service import IssuesService
from veche_kit import audit_log, mongo
from veche_kit.audit_log import AuditAction
from veche_kit.auth import Principal
from veche_kit.clock import utcnow
from veche_kit.errors import ConflictError
from veche_kit.events import AuditRecorded
from veche_kit.mongo import Document
from veche_kit.outbox import Transaction

# How often a merge is tried again when someone supports the target while it runs.
MERGE_TRIES = 3
# The fields an audit entry shows before and after, by their API names.
_AUDITED = {
    "category": "category",
    "department_id": "departmentId",
    "due_at": "dueAt",
    "assignee_id": "assigneeId",
    "status": "status",
    "duplicate_of": "duplicateOf",
}


def _shown(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _fields(issue: Document, names: Iterable[str]) -> dict[str, Any]:
    return {_AUDITED[n]: _shown(issue.get(n)) for n in names}


def _audit(
    caller: Principal,
    action: AuditAction,
    before: Document,
    after: Document,
    names: Iterable[str],
    reason: str | None,
    extra: dict[str, Any] | None = None,
) -> AuditRecorded:
    """The one audit entry of a staff action on an issue: `names` before and after."""
    names = list(names)
    return audit_log.entry(
        caller,
        action,
        "Issue",
        before["_id"],
        before=_fields(before, names),
        after={**_fields(after, names), **(extra or {})},
        reason=reason,
    )


def _reason(reason: str) -> str:
    return domain.required_text(reason, "reason", domain.MAX_NOTE)


class StaffDesk:
    """The staff actions on issues, over the issues service's store, outbox and rules."""

    def __init__(self, issues: IssuesService) -> None:
        self.issues = issues
        self.store = issues.store
        self.outbox = issues.outbox

    async def _issue_for(self, caller: Principal, issue_id: str, action: StaffAction) -> Document:
        """The issue, once the caller may take `action` on it (FORBIDDEN, NOT_FOUND)."""
        domain.check_staff_role(caller, action)
        issue = await self.issues.get_issue(issue_id)
        actors = self.issues.actors(caller, issue)
        domain.check_staff(action, actors, issue.get("department_id"))
        return issue

    async def _save(
        self, tx: Transaction, issue_id: str, expected: Document, change: domain.Change
    ) -> Document:
        saved = await self.store.apply_transition(issue_id, expected, change, tx.session)
        if saved is None:
            raise ConflictError(
                "The issue changed meanwhile; reload it and try again.",
                ru="Обращение тем временем изменилось; обновите его и попробуйте снова.",
            )
        return saved

    # ───────────────────────── recategorise ─────────────────────────

    async def recategorize(
        self, caller: Principal, issue_id: str, category_id: str, reason: str
    ) -> Document:
        """Moves the issue to another category and its department; both departments hear."""
        issue = await self._issue_for(caller, issue_id, StaffAction.RECATEGORIZE)
        clean = _reason(reason)
        category = await self.issues.category(category_id, field="categoryId")
        change = domain.recategorization(
            issue,
            category,
            clean,
            by=caller.user_id,
            now=utcnow(),
            deadline=self.issues.deadline_for(category),
        )
        expected = {
            "status": issue["status"],
            "category": issue["category"],
            "department_id": issue.get("department_id"),
        }
        audited = ("category", "department_id", "due_at", "assignee_id")

        async def work(tx: Transaction) -> Document:
            saved = await self._save(tx, issue_id, expected, change)
            tx.emit(
                domain.recategorized(issue, saved, by=caller.user_id, reason=clean),
                _audit(caller, AuditAction.ISSUE_RECATEGORIZED, issue, saved, audited, clean),
            )
            return saved

        return await self.outbox.transaction(work)

    # ───────────────────────── deadlines ─────────────────────────

    async def extend_deadline(
        self, caller: Principal, issue_id: str, due_at: datetime, reason: str
    ) -> Document:
        """A later deadline for an ACCEPTED issue's answer, with the reason in its history."""
        issue = await self._issue_for(caller, issue_id, StaffAction.EXTEND_DEADLINE)
        clean = _reason(reason)
        change = domain.deadline_extension(issue, due_at, clean, by=caller.user_id, now=utcnow())
        expected = {"status": Status.ACCEPTED.value, "due_at": issue["due_at"]}

        async def work(tx: Transaction) -> Document:
            saved = await self._save(tx, issue_id, expected, change)
            tx.emit(_audit(caller, AuditAction.DEADLINE_EXTENDED, issue, saved, ["due_at"], clean))
            return saved

        return await self.outbox.transaction(work)

    # ───────────────────────── assignment ─────────────────────────

    async def assign(self, caller: Principal, issue_id: str, official_id: str | None) -> Document:
        """Hands the issue to one official of its department (None: to nobody); the new
        assignee is told. Naming the current assignee again changes nothing."""
        issue = await self._issue_for(caller, issue_id, StaffAction.ASSIGN)
        official = await self.store.user(official_id) if official_id is not None else None
        change = domain.handover(issue, official, official_id, by=caller.user_id, now=utcnow())
        if change is None:
            return issue
        previous = issue.get("assignee_id")
        expected = {"assignee_id": previous, "department_id": issue.get("department_id")}
        action = AuditAction.ISSUE_ASSIGNED if official_id else AuditAction.ISSUE_UNASSIGNED

        async def work(tx: Transaction) -> Document:
            saved = await self._save(tx, issue_id, expected, change)
            tx.emit(
                domain.handed_over(saved, previous, by=caller.user_id),
                _audit(caller, action, issue, saved, ["assignee_id"], None),
            )
            return saved

        return await self.outbox.transaction(work)

    # ───────────────────────── merging duplicates ─────────────────────────

    async def merge(
        self, caller: Principal, duplicate_id: str, into_id: str, reason: str
    ) -> tuple[Document, Document]:
        """Closes the duplicate with a link to the target and carries its supporters over,
        each once; (the duplicate, the target) as saved. An initiative that reaches its
        threshold this way goes to review as with any support."""
        duplicate = await self._issue_for(caller, duplicate_id, StaffAction.MERGE)
        target = await self._issue_for(caller, into_id, StaffAction.MERGE)
        clean = _reason(reason)
        domain.check_merge(duplicate, target)
        for attempt in range(MERGE_TRIES):
            try:
                closed, saved = await self.outbox.transaction(
                    lambda tx: self._merge(tx, caller, duplicate, target, clean)
                )
                break
            except (BulkWriteError, DuplicateKeyError):
                if attempt == MERGE_TRIES - 1:
                    raise ConflictError(
                        "Supports of the target kept arriving during the merge; try again.",
                        ru="Во время объединения целевое обращение продолжало получать поддержку; попробуйте снова.",
                    ) from None
        self.outbox.written()  # the carried supports hold their own events
        crossed = await self.issues.check_threshold(saved)
        return closed, crossed or saved

    async def _merge(
        self, tx: Transaction, caller: Principal, duplicate: Document, target: Document, reason: str
    ) -> tuple[Document, Document]:
        now, by = utcnow(), caller.user_id
        closing = domain.merge_closing(duplicate, target, reason, by=by, now=now)
        expected = {"status": duplicate["status"], "duplicate_of": None, "solver_id": None}
        closed = await self.store.apply_transition(duplicate["_id"], expected, closing, tx.session)
        if closed is None:
            raise ConflictError(
                "The duplicate was merged or changed meanwhile; reload it.",
                ru="Дубликат тем временем объединили или изменили; обновите его.",
            )
        supporters = await self.store.supporter_ids(duplicate["_id"], tx.session)
        present = await self.store.supporter_ids(target["_id"], tx.session)
        people = domain.followers_to_carry(duplicate, supporters, target, present)
        entry = domain.merged_in_entry(target, duplicate, len(people), reason, by=by, now=now)
        saved = await self.store.absorb_duplicate(
            target["_id"], len(people), entry, now, tx.session
        )
        if saved is None:
            raise ConflictError(
                "The target was closed or merged meanwhile; reload it.",
                ru="Целевое обращение тем временем закрыли или объединили; обновите его.",
            )
        await self.store.add_carried_supports(
            [self._carried(saved, person, duplicate["_id"], now) for person in people], tx.session
        )
        assert closing.entry is not None
        told = {**closing.entry, "note": f"Merged into «{target['title']}»: {reason}"}
        carried = {"supportsCarried": len(people), "intoSupportersCount": saved["supporters_count"]}
        audited = ["status", "duplicate_of"]
        tx.emit(
            domain.status_changed(closed, told, supporters),
            _audit(caller, AuditAction.ISSUES_MERGED, duplicate, closed, audited, reason, carried),
        )
        return closed, saved

    def _carried(self, target: Document, user_id: str, from_id: str, now: datetime) -> Document:
        """A support carried over, counted already, holding its `issue.supported` event."""
        return {
            "_id": mongo.new_id(),
            "issue_id": target["_id"],
            "user_id": user_id,
            "at": now,
            "counted": True,
            "carried_from": from_id,
            **self.outbox.carry(domain.supported(target, user_id)),
        }
