"""Handlers of other services' events, each idempotent through the kit's `Consumer`.

The issues service keeps a small projection of users (name, district, roles,
department, skills) for solver matching; `user.erased` leaves only a tombstone of it
(and of the person's complaints). It keeps the users service's list of districts,
which reports are checked against (`reference.districts_published`, the list told
last), and of departments, which new categories are checked against
(`reference.departments_published`). A display name the users service flags joins the moderation queue here. (Which poll an initiative was put to
is the polls service's field, `Issue.poll`.)
"""

from __future__ import annotations

from veche_issues.moderation import Target
from veche_issues.moderation_store import ModerationStore
from veche_issues.store import IssueStore
from veche_kit.auth import StaleTokens
from veche_kit.consumer import Handlers
from veche_kit.events import (
    ContentFlagged,
    DepartmentsPublished,
    DistrictsPublished,
    Envelope,
    UserErased,
    UserProfileUpdated,
    UserRegistered,
    UserRoleChanged,
    UserTokensRevoked,
)
from veche_kit.mongo import Session
from veche_kit.reference_lists import DEPARTMENT_LIST, DISTRICT_LIST, ProjectedLists

handlers: Handlers[IssueStore] = Handlers()


@handlers.on(UserRegistered)
async def on_user_registered(
    store: IssueStore, event: UserRegistered, envelope: Envelope, session: Session
) -> None:
    await store.project_registered(event, session)


@handlers.on(UserProfileUpdated)
async def on_user_profile_updated(
    store: IssueStore, event: UserProfileUpdated, envelope: Envelope, session: Session
) -> None:
    await store.project_profile(event, session)


@handlers.on(UserRoleChanged)
async def on_user_role_changed(
    store: IssueStore, event: UserRoleChanged, envelope: Envelope, session: Session
) -> None:
    await store.project_roles(event, session)
    await StaleTokens(store.db).after_role_change(event, envelope.occurred_at, session)


@handlers.on(UserTokensRevoked)
async def on_user_tokens_revoked(
    store: IssueStore, event: UserTokensRevoked, envelope: Envelope, session: Session
) -> None:
    await StaleTokens(store.db).mark(event.user_id, envelope.occurred_at, session)


@handlers.on(UserErased)
async def on_user_erased(
    store: IssueStore, event: UserErased, envelope: Envelope, session: Session
) -> None:
    await StaleTokens(store.db).mark(event.user_id, envelope.occurred_at, session)
    await store.erase_user(event.user_id, envelope.occurred_at, session)
    await ModerationStore(store.db).erase_user(event.user_id, session)


@handlers.on(ContentFlagged)
async def on_content_flagged(
    store: IssueStore, event: ContentFlagged, envelope: Envelope, session: Session
) -> None:
    """A display name the users service's word filter flagged joins the moderation queue."""
    target = Target(event.kind, event.content_id)
    fields = {
        "kind": event.kind.value,
        "content_id": event.content_id,
        "author_id": event.user_id,
        "excerpt": event.excerpt,
    }
    await ModerationStore(store.db).flag(
        target.key, fields, event.word, envelope.occurred_at, session
    )


@handlers.on(DepartmentsPublished)
async def on_departments_published(
    store: IssueStore, event: DepartmentsPublished, envelope: Envelope, session: Session
) -> None:
    items = [department.model_dump() for department in event.departments]
    await ProjectedLists(store.db).replace(DEPARTMENT_LIST, items, envelope.occurred_at, session)


@handlers.on(DistrictsPublished)
async def on_districts_published(
    store: IssueStore, event: DistrictsPublished, envelope: Envelope, session: Session
) -> None:
    items = [district.model_dump() for district in event.districts]
    await ProjectedLists(store.db).replace(DISTRICT_LIST, items, envelope.occurred_at, session)
