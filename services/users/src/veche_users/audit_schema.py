"""The audit log in the users subgraph: every service's staff actions, for admins and
auditors (read as pages, or as CSV for a spreadsheet)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from veche_kit.audit_log import AuditAction
from veche_kit.graphql import (
    Connection,
    PageAfter,
    PageFirst,
    id_after,
    id_connection,
    page_size,
    public_enum,
)
from veche_kit.inputs import ID_CHARS, bounded
from veche_kit.mongo import Document
from veche_users import domain
from veche_users.context import UsersInfo

public_enum(
    AuditAction,
    name="AuditAction",
    description="What an audited staff action did. New actions are added over time: a client must show an unknown value as it is rather than fail.",
    values={
        "ROLE_GRANTED": "An admin granted a role (`before`/`after`: roles and department).",
        "ROLE_REVOKED": "An admin revoked a role (`before`/`after`: roles and department).",
        "REWARD_CREATED": "An admin added a reward (`after`: title, cost, stock).",
        "REWARD_RENAMED": "An admin renamed a reward (`before` and `after`: title).",
        "REWARD_RETIRED": "An admin took a reward out of the catalogue (`before`: title).",
        "CONSENT_VERSION_PUBLISHED": "An admin published a new consent text (`after`: its version).",
        "USER_ERASED": "An admin erased someone's account (`reason`: why).",
        "USER_SUSPENDED": "A moderator or admin suspended an account (`reason`; `after`: until when).",
        "USER_UNSUSPENDED": "A moderator or admin ended a suspension (`reason`).",
        "PRIVATE_FIELDS_READ": "An admin read another person's private fields (e-mail, birth year, points...).",
        "POLL_PUBLISHED": "An official or admin published a poll.",
        "POLL_CLOSED": "An official or admin closed a poll before its end (`after`: votes counted).",
        "POLL_DECISION_RECORDED": "An official recorded the city's decision on a poll (`after`: its status).",
        "ISSUE_STATUS_CHANGED": "An official or moderator moved an issue (`before`/`after`: its status; `reason`: the note).",
        "CONTENT_HIDDEN": "A moderator hid reported content (`targetType`: its ContentKind; `reason`: why).",
        "CONTENT_RESTORED": "A moderator showed hidden content again (`reason`: why).",
        "ISSUE_RECATEGORIZED": "An official or moderator moved an issue to another category and department (`before`/`after`: category, departmentId, dueAt, assigneeId; `reason`: why).",
        "ISSUES_MERGED": "An official or moderator closed an issue as a duplicate of another (`targetId`: the duplicate; `after`: status, duplicateOf, supportsCarried, intoSupportersCount; `reason`: why).",
        "DEADLINE_EXTENDED": "An official moved an issue's answer deadline later (`before`/`after`: dueAt; `reason`: why).",
        "ISSUE_ASSIGNED": "An official handed an issue to an official of its department (`before`/`after`: assigneeId).",
        "ISSUE_UNASSIGNED": "An official took an issue back from its assignee (`before`/`after`: assigneeId).",
        "TOTP_RESET": "An admin turned off someone's two-factor sign-in, e.g. for a lost phone (`reason`: why); their sessions ended and their next sign-in enrols again.",
        "CATEGORY_CREATED": "An admin added an issue category (`after`: name, department_id, response_working_days).",
        "CATEGORY_RENAMED": "An admin renamed an issue category (`before`/`after`: name).",
        "CATEGORY_RETIRED": "An admin retired an issue category: no longer offered, its issues kept (`after`: retired_at).",
        "HOLIDAY_CREATED": "An admin added a non-working day that answer deadlines skip (`after`: date, name).",
        "HOLIDAY_REMOVED": "An admin removed a non-working day (`before`: date, name).",
        "CALENDAR_DAY_CREATED": "An admin marked a day of the working-day calendar (`after`: "
        "date, kind, name); open answer deadlines over it were counted again.",
        "CALENDAR_DAY_REMOVED": "An admin unmarked a day of the working-day calendar (`before`: "
        "date, kind, name); open answer deadlines over it were counted again.",
        "DISTRICT_CREATED": "An admin added a district (`after`: name).",
        "DISTRICT_RENAMED": "An admin renamed a district (`before`/`after`: name).",
        "DISTRICT_RETIRED": "An admin retired a district: no longer offered for new polls and registrations, existing data kept (`after`: retired_at).",
        "DEPARTMENT_CREATED": "An admin added a department (`after`: name).",
        "DEPARTMENT_RENAMED": "An admin renamed a department (`before`/`after`: name).",
        "DEPARTMENT_RETIRED": "An admin retired a department: no longer offered, existing data kept (`after`: retired_at).",
    },
)


@strawberry.type(description="One audited action: who did what to what, when, and what changed.")
class AuditEntry:
    id: strawberry.ID = strawberry.field(description="Entry id (entries are ordered by it).")
    at: datetime = strawberry.field(description="When the action happened (UTC).")
    service: str = strawberry.field(description="The service that did it: users, polls or issues.")
    action: AuditAction = strawberry.field(description="What was done.")
    actor_id: strawberry.ID | None = strawberry.field(
        description="Who did it (a user id; look it up with `user(id:)`); null for the system itself (a schedule)."
    )
    actor_roles: list[str] = strawberry.field(description="The actor's roles when they acted.")
    target_type: str = strawberry.field(
        description="The kind of thing acted on: User, Poll, Issue, Reward, ConsentVersion..."
    )
    target_id: strawberry.ID = strawberry.field(description="The id of the thing acted on.")
    reason: str | None = strawberry.field(description="The reason the actor gave, if any.")
    before: JSON | None = strawberry.field(description="The changed fields before, if any.")
    after: JSON | None = strawberry.field(description="The changed fields after, if any.")

    @classmethod
    def from_doc(cls, d: Document) -> AuditEntry:
        return cls(
            id=strawberry.ID(d["_id"]),
            at=d["at"],
            service=d["service"],
            action=AuditAction(d["action"]),
            actor_id=strawberry.ID(d["actor_id"]) if d.get("actor_id") else None,
            actor_roles=d.get("actor_roles") or [],
            target_type=d["target_type"],
            target_id=strawberry.ID(d["target_id"]),
            reason=d.get("reason"),
            before=d.get("before"),
            after=d.get("after"),
        )


@strawberry.input(description="Which audit entries to read; every condition given must hold.")
class AuditFilter:
    action: AuditAction | None = strawberry.field(default=None, description="Only this action.")
    actor_id: strawberry.ID | None = strawberry.field(
        default=None, description="Only what this user did.", metadata=bounded(chars=ID_CHARS)
    )
    target_type: str | None = strawberry.field(
        default=None,
        description="Only actions on this kind of thing, e.g. `User` or `Poll`.",
        metadata=bounded(chars=40),
    )
    target_id: strawberry.ID | None = strawberry.field(
        default=None, description="Only actions on this thing.", metadata=bounded(chars=ID_CHARS)
    )
    since: datetime | None = strawberry.field(
        default=None, description="Only entries at or after this time."
    )
    until: datetime | None = strawberry.field(
        default=None, description="Only entries before this time."
    )

    def wanted(self) -> domain.AuditFilter:
        return domain.AuditFilter(
            action=self.action.value if self.action else None,
            actor_id=str(self.actor_id) if self.actor_id else None,
            target_type=self.target_type,
            target_id=str(self.target_id) if self.target_id else None,
            since=self.since,
            until=self.until,
        )


def _wanted(filter: AuditFilter | None) -> domain.AuditFilter:
    return filter.wanted() if filter is not None else domain.AuditFilter()


@strawberry.type
class AuditQueries:
    @strawberry.field(
        description="The audit log, newest first: every staff action of every service (role and reward changes, suspensions, erasures, poll publishing, closing and decisions, admins' reads of private fields). ADMIN or AUDITOR only (FORBIDDEN otherwise). Entries are kept for `USERS_AUDIT_DAYS` (five years by default) and cannot be changed."
    )
    async def audit_log(
        self,
        info: UsersInfo,
        filter: Annotated[
            AuditFilter | None, strawberry.argument(description="Which entries; all if omitted.")
        ] = None,
        first: PageFirst = None,
        after: PageAfter = None,
    ) -> Connection[AuditEntry] | None:
        caller = await info.context.require_user()
        documents, has_next, total = await info.context.users.audit_log(
            caller, _wanted(filter), first=page_size(first), after=id_after(after)
        )
        nodes = [AuditEntry.from_doc(d) for d in documents]
        return id_connection(nodes, documents, has_next=has_next, total=total)

    @strawberry.field(
        description=f"The newest audit entries the filter picks as CSV text (a header row, then one row per entry: at, service, action, actor_id, actor_roles, target_type, target_id, reason, before, after), for a spreadsheet. ADMIN or AUDITOR only. At most {domain.MAX_AUDIT_CSV_ROWS} rows a call: page back in time with `filter.until`."
    )
    async def audit_log_csv(
        self,
        info: UsersInfo,
        filter: Annotated[
            AuditFilter | None, strawberry.argument(description="Which entries; all if omitted.")
        ] = None,
        rows: Annotated[
            int,
            strawberry.argument(
                description=f"How many of the newest entries (1–{domain.MAX_AUDIT_CSV_ROWS})."
            ),
        ] = 1000,
    ) -> str | None:
        caller = await info.context.require_user()
        return await info.context.users.audit_csv(caller, _wanted(filter), rows)
