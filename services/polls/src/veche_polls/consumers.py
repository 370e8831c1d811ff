"""Handlers of other services' events, each applied once per event id (see `veche_kit.consumer`).

- `user.registered`, `user.profile_updated`: the voter projection (district,
  birth year, phone verification), kept only when the event is newer than what
  is projected, so a late or replayed event never rolls a profile back.
- `initiative.threshold_reached`: a DRAFT poll linked to the initiative, once
  per initiative (also held by a unique index on `source_initiative_id`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from veche_kit import mongo
from veche_kit.consumer import Handlers
from veche_kit.events import (
    Envelope,
    InitiativeThresholdReached,
    UserProfileUpdated,
    UserRegistered,
)
from veche_kit.mongo import Database, Session
from veche_polls import domain, store
from veche_polls.seed import load_demo_polls
from veche_polls.settings import PollsSettings


async def project_voter(
    db: Database, event: UserRegistered | UserProfileUpdated, at: datetime, session: Session
) -> None:
    """Stores the voter's audience facts unless a newer event has already been projected."""
    user_id = event.user_id
    fields = {
        "district_id": event.district_id,
        "birth_year": event.birth_year,
        "phone_verified": event.phone_verified,
    }
    voters = db[store.VOTERS]
    current = await voters.find_one({"_id": user_id}, {"at": 1}, session=session)
    if current is None:
        await voters.insert_one({"_id": user_id, **fields, "at": at}, session=session)
    elif current["at"] < at:
        await voters.update_one(
            {"_id": user_id, "at": current["at"]}, {"$set": {**fields, "at": at}}, session=session
        )


@dataclass(frozen=True)
class Reactions:
    """What the polls service's handlers work on."""

    db: Database
    settings: PollsSettings


handlers: Handlers[Reactions] = Handlers()


@handlers.on(UserRegistered)
async def on_user_registered(
    reactions: Reactions, event: UserRegistered, envelope: Envelope, session: Session
) -> None:
    await project_voter(reactions.db, event, envelope.occurred_at, session)
    settings = reactions.settings
    if settings.demo_data and "ADMIN" in event.roles:
        await load_demo_polls(reactions.db, event.user_id, settings.service_name, session)


@handlers.on(UserProfileUpdated)
async def on_user_profile_updated(
    reactions: Reactions, event: UserProfileUpdated, envelope: Envelope, session: Session
) -> None:
    await project_voter(reactions.db, event, envelope.occurred_at, session)


@handlers.on(InitiativeThresholdReached)
async def on_initiative_threshold_reached(
    reactions: Reactions, event: InitiativeThresholdReached, envelope: Envelope, session: Session
) -> None:
    polls = reactions.db[store.POLLS]
    # A second event for the same initiative (a new id, not a redelivery) changes
    # nothing; two at once meet the unique index, and the loser's retry lands here.
    if await polls.find_one({"source_initiative_id": event.issue_id}, {"_id": 1}, session=session):
        return
    await polls.insert_one(
        domain.initiative_poll(
            poll_id=mongo.new_id(),
            issue_id=event.issue_id,
            title=event.title,
            description=event.description,
            author_id=event.author_id,
            department_id=event.department_id,
            district_id=event.district_id,
            now=envelope.occurred_at,
        ),
        session=session,
    )
