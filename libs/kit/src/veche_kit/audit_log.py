"""The audit log (issue #20): what a service tells about each staff action.

A service emits `audit.recorded` in the transaction of the action itself
(`tx.emit(audit.entry(...))`), so the log has an entry exactly when the action
happened; the users service keeps every entry, append-only, for admins and auditors.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from veche_kit.auth import Principal
from veche_kit.events import AuditRecorded
from veche_kit.mongo import new_id


class AuditAction(StrEnum):
    """Every audited action, across the services."""

    ROLE_GRANTED = "ROLE_GRANTED"
    ROLE_REVOKED = "ROLE_REVOKED"
    REWARD_CREATED = "REWARD_CREATED"
    REWARD_RENAMED = "REWARD_RENAMED"
    REWARD_RETIRED = "REWARD_RETIRED"
    CONSENT_VERSION_PUBLISHED = "CONSENT_VERSION_PUBLISHED"
    USER_ERASED = "USER_ERASED"
    USER_SUSPENDED = "USER_SUSPENDED"
    USER_UNSUSPENDED = "USER_UNSUSPENDED"
    PRIVATE_FIELDS_READ = "PRIVATE_FIELDS_READ"
    POLL_PUBLISHED = "POLL_PUBLISHED"
    POLL_CLOSED = "POLL_CLOSED"
    POLL_DECISION_RECORDED = "POLL_DECISION_RECORDED"
    ISSUE_STATUS_CHANGED = "ISSUE_STATUS_CHANGED"
    CONTENT_HIDDEN = "CONTENT_HIDDEN"
    CONTENT_RESTORED = "CONTENT_RESTORED"
    ISSUE_RECATEGORIZED = "ISSUE_RECATEGORIZED"
    ISSUES_MERGED = "ISSUES_MERGED"
    DEADLINE_EXTENDED = "DEADLINE_EXTENDED"
    ISSUE_ASSIGNED = "ISSUE_ASSIGNED"
    ISSUE_UNASSIGNED = "ISSUE_UNASSIGNED"
    TOTP_RESET = "TOTP_RESET"
    CATEGORY_CREATED = "CATEGORY_CREATED"
    CATEGORY_RENAMED = "CATEGORY_RENAMED"
    CATEGORY_RETIRED = "CATEGORY_RETIRED"
    HOLIDAY_CREATED = "HOLIDAY_CREATED"
    HOLIDAY_REMOVED = "HOLIDAY_REMOVED"
    CALENDAR_DAY_CREATED = "CALENDAR_DAY_CREATED"
    CALENDAR_DAY_REMOVED = "CALENDAR_DAY_REMOVED"
    DISTRICT_CREATED = "DISTRICT_CREATED"
    DISTRICT_RENAMED = "DISTRICT_RENAMED"
    DISTRICT_RETIRED = "DISTRICT_RETIRED"
    DEPARTMENT_CREATED = "DEPARTMENT_CREATED"
    DEPARTMENT_RENAMED = "DEPARTMENT_RENAMED"
    DEPARTMENT_RETIRED = "DEPARTMENT_RETIRED"


def entry(
    actor: Principal | None,
    action: AuditAction,
    target_type: str,
    target_id: str,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
) -> AuditRecorded:
    """The event of one audited action by `actor` (None: the system)."""
    return AuditRecorded(
        entry_id=new_id(),
        actor_id=actor.user_id if actor is not None else None,
        actor_roles=sorted(actor.roles) if actor is not None else [],
        action=action.value,
        target_type=target_type,
        target_id=target_id,
        before=before,
        after=after,
        reason=reason,
    )
