"""Handlers of other services' events, each applied once per event id (see `veche_kit.consumer`).

- `user.registered`, `user.profile_updated`: the voter projection (district,
  birth year, phone verification), kept only when the event is newer than what
  is projected, so a late or replayed event never rolls a profile back.
- `user.role_changed`, `user.tokens_revoked`: tokens issued before a revoked role
  or a sign-out are stale here (veche_kit.auth.StaleTokens).
- `user.erased`: the voter projection becomes a tombstone and the person's ballots
  stay counted under fresh pseudonyms (`PollStore.erase_voter`).
- `initiative.threshold_reached`: a DRAFT poll linked to the initiative, once
  per initiative (also held by a unique index on `source_initiative_id`).
- `reference.districts_published`: the users service's whole list of districts, which
  a poll's audience is checked against; a list told earlier never replaces a later one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from veche_kit import mongo
from veche_kit.auth import StaleTokens
from veche_kit.consumer import Handlers
from veche_kit.events import (
    DistrictsPublished,
    Envelope,
    InitiativeThresholdReached,
    UserErased,
    UserProfileUpdated,
    UserRegistered,
    UserRoleChanged,
    UserTokensRevoked,
)
from veche_kit.mongo import Session
from veche_kit.reference_lists import DISTRICT_LIST, ProjectedLists
from veche_polls import domain
from veche_polls.seed import load_demo_polls
from veche_polls.settings import PollsSettings
from veche_polls.store import PollStore


async def project_voter(
    store: PollStore, event: UserRegistered | UserProfileUpdated, at: datetime, session: Session
) -> None:
    """The voter's audience facts, unless a newer event has already been projected."""
    fields = {
        "district_id": event.district_id,
        "birth_year": event.birth_year,
        "phone_verified": event.phone_verified,
    }
    await store.project_voter(event.user_id, fields, at, session)


@dataclass(frozen=True)
class Reactions:
    """What the polls service's handlers work on."""

    store: PollStore
    settings: PollsSettings


handlers: Handlers[Reactions] = Handlers()


@handlers.on(UserRegistered)
async def on_user_registered(
    reactions: Reactions, event: UserRegistered, envelope: Envelope, session: Session
) -> None:
    await project_voter(reactions.store, event, envelope.occurred_at, session)
    settings = reactions.settings
    if settings.demo_data and "ADMIN" in event.roles:
        await load_demo_polls(reactions.store.db, event.user_id, settings.service_name, session)


@handlers.on(UserProfileUpdated)
async def on_user_profile_updated(
    reactions: Reactions, event: UserProfileUpdated, envelope: Envelope, session: Session
) -> None:
    await project_voter(reactions.store, event, envelope.occurred_at, session)


@handlers.on(UserRoleChanged)
async def on_user_role_changed(
    reactions: Reactions, event: UserRoleChanged, envelope: Envelope, session: Session
) -> None:
    await StaleTokens(reactions.store.db).after_role_change(event, envelope.occurred_at, session)


@handlers.on(UserTokensRevoked)
async def on_user_tokens_revoked(
    reactions: Reactions, event: UserTokensRevoked, envelope: Envelope, session: Session
) -> None:
    await StaleTokens(reactions.store.db).mark(event.user_id, envelope.occurred_at, session)


@handlers.on(UserErased)
async def on_user_erased(
    reactions: Reactions, event: UserErased, envelope: Envelope, session: Session
) -> None:
    await StaleTokens(reactions.store.db).mark(event.user_id, envelope.occurred_at, session)
    await reactions.store.erase_voter(event.user_id, envelope.occurred_at, session)


@handlers.on(InitiativeThresholdReached)
async def on_initiative_threshold_reached(
    reactions: Reactions, event: InitiativeThresholdReached, envelope: Envelope, session: Session
) -> None:
    # A second event for the same initiative (a new id, not a redelivery) changes
    # nothing; two at once meet the unique index, and the loser's retry lands here.
    if await reactions.store.initiative_has_poll(event.issue_id, session):
        return
    await reactions.store.add(
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


@handlers.on(DistrictsPublished)
async def on_districts_published(
    reactions: Reactions, event: DistrictsPublished, envelope: Envelope, session: Session
) -> None:
    items = [district.model_dump() for district in event.districts]
    await ProjectedLists(reactions.store.db).replace(
        DISTRICT_LIST, items, envelope.occurred_at, session
    )
