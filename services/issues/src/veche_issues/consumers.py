"""Handlers of other services' events, each idempotent through the kit's `Consumer`.

The issues service keeps a small projection of users (name, district, roles,
department, skills) for solver matching. (Which poll an initiative was put to
is the polls service's field, `Issue.poll`.)
"""

from __future__ import annotations

from veche_issues import store
from veche_kit.consumer import Handler
from veche_kit.events import (
    Envelope,
    UserProfileUpdated,
    UserRegistered,
    UserRoleChanged,
)
from veche_kit.mongo import Database, Session


def handlers(db_name: str) -> dict[str, Handler]:
    """Routing key -> handler, for `Runtime.create(handlers=...)`; each writes within the
    consumer's transaction to the database named `db_name`."""

    def database(session: Session) -> Database:
        return session.client[db_name]

    async def on_user_registered(envelope: Envelope, session: Session) -> None:
        event = envelope.event()
        assert isinstance(event, UserRegistered)
        # Only on insert: a profile or role event that overtook this one has newer facts.
        await database(session)[store.USERS].update_one(
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

    async def on_user_profile_updated(envelope: Envelope, session: Session) -> None:
        event = envelope.event()
        assert isinstance(event, UserProfileUpdated)
        await database(session)[store.USERS].update_one(
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

    async def on_user_role_changed(envelope: Envelope, session: Session) -> None:
        event = envelope.event()
        assert isinstance(event, UserRoleChanged)
        await database(session)[store.USERS].update_one(
            {"_id": event.user_id},
            {"$set": {"roles": event.roles, "department_id": event.department_id}},
            upsert=True,
            session=session,
        )

    return {
        UserRegistered.type: on_user_registered,
        UserProfileUpdated.type: on_user_profile_updated,
        UserRoleChanged.type: on_user_role_changed,
    }
