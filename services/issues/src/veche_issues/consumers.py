"""Handlers of other services' events, each idempotent through the kit's `Consumer`.

The issues service keeps a small projection of users (name, district, roles,
department, skills) for solver matching. (Which poll an initiative was put to
is the polls service's field, `Issue.poll`.)
"""

from __future__ import annotations

from veche_issues import store
from veche_kit.consumer import Handlers
from veche_kit.events import Envelope, UserProfileUpdated, UserRegistered, UserRoleChanged
from veche_kit.mongo import Database, Session

handlers: Handlers[Database] = Handlers()


@handlers.on(UserRegistered)
async def on_user_registered(
    db: Database, event: UserRegistered, envelope: Envelope, session: Session
) -> None:
    # Only on insert: a profile or role event that overtook this one has newer facts.
    await db[store.USERS].update_one(
        {"_id": event.user_id},
        {
            "$setOnInsert": {
                "display_name": event.display_name,
                "district_id": event.district_id,
                "roles": event.roles,
                "skills": [],
                "department_id": None,
            }
        },
        upsert=True,
        session=session,
    )


@handlers.on(UserProfileUpdated)
async def on_user_profile_updated(
    db: Database, event: UserProfileUpdated, envelope: Envelope, session: Session
) -> None:
    await db[store.USERS].update_one(
        {"_id": event.user_id},
        {
            "$set": {
                "display_name": event.display_name,
                "district_id": event.district_id,
                "skills": event.skills,
                "organization": event.organization,
            }
        },
        upsert=True,
        session=session,
    )


@handlers.on(UserRoleChanged)
async def on_user_role_changed(
    db: Database, event: UserRoleChanged, envelope: Envelope, session: Session
) -> None:
    await db[store.USERS].update_one(
        {"_id": event.user_id},
        {"$set": {"roles": event.roles, "department_id": event.department_id}},
        upsert=True,
        session=session,
    )
