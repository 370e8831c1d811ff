"""`user.erased`: the voter projection becomes a tombstone that late events cannot
refill, and the person's ballots stay counted under pseudonyms."""

from __future__ import annotations

import uuid
from datetime import timedelta

from veche_kit.clock import utcnow
from veche_kit.events import Envelope, UserErased, UserProfileUpdated
from veche_polls import store
from veche_stack.testing import eventually, publish

from .conftest import ANSWERS, RESULTS, VOTE, PollsServer, handled


async def _told(polls: PollsServer, envelope: Envelope) -> None:
    await publish(polls.settings.amqp_url, polls.settings.namespace, envelope)
    await eventually(lambda: handled(polls, envelope))


def _profile(user_id: str) -> UserProfileUpdated:
    return UserProfileUpdated(
        user_id=user_id,
        display_name="Анна",
        district_id="leninsky",
        birth_year=1985,
        phone_verified=True,
        skills=[],
        organization=None,
    )


async def test_an_erased_voter_leaves_counted_ballots_and_no_profile(polls: PollsServer) -> None:
    user_id = f"u-{uuid.uuid4().hex[:8]}"
    poll_id = await polls.active_poll()
    voter = polls.citizen("leninsky", 1985, user_id=user_id)
    assert (await voter.data(VOTE, {"poll": poll_id, "answers": ANSWERS}))["castVote"]["id"]
    await _told(polls, Envelope.wrap(_profile(user_id), "users"))
    before = (await polls.client.data(RESULTS, {"id": poll_id}))["poll"]["votesCount"]

    await _told(polls, Envelope.wrap(UserErased(user_id=user_id), "users"))

    voters = polls.db[store.VOTERS]
    assert await voters.find_one({"_id": user_id}, {"_id": 0, "at": 0}) == {
        "erased_at": await _erased_at(polls, user_id)
    }
    assert await polls.db[store.BALLOTS].count_documents({"voter_id": user_id}) == 0
    assert await polls.db[store.BALLOTS].count_documents({"envelope.data.voter_id": user_id}) == 0
    kept = await polls.db[store.BALLOTS].count_documents({"poll_id": poll_id})
    assert kept == 1
    assert (await polls.client.data(RESULTS, {"id": poll_id}))["poll"]["votesCount"] == before

    # A replayed or late profile event projects nothing about the person again.
    late = Envelope.wrap(_profile(user_id), "users").model_copy(
        update={"occurred_at": utcnow() + timedelta(minutes=1)}
    )
    await _told(polls, late)
    projected = await voters.find_one({"_id": user_id})
    assert projected is not None
    assert "district_id" not in projected
    # Tokens issued before the erasure no longer work here.
    assert await voter.error_code(VOTE, {"poll": poll_id, "answers": ANSWERS}) in {
        "UNAUTHENTICATED",
        "TOKEN_STALE",
    }


async def _erased_at(polls: PollsServer, user_id: str) -> object:
    found = await polls.db[store.VOTERS].find_one({"_id": user_id})
    assert found is not None
    return found["erased_at"]


EXPORT = """query($reps: [_Any!]!) { _entities(representations: $reps) { ... on PersonalData { polls } } }"""


async def test_only_the_person_reads_their_polls_export(polls: PollsServer) -> None:
    user_id = f"u-{uuid.uuid4().hex[:8]}"
    poll_id = await polls.active_poll()
    voter = polls.citizen("leninsky", 1985, user_id=user_id)
    await voter.data(VOTE, {"poll": poll_id, "answers": ANSWERS})
    reps = {"reps": [{"__typename": "PersonalData", "userId": user_id}]}

    mine = (await voter.data(EXPORT, reps))["_entities"][0]["polls"]
    assert [b["poll_id"] for b in mine["ballots"]] == [poll_id]
    assert "envelope" not in mine["ballots"][0]
    assert await polls.citizen("leninsky").error_code(EXPORT, reps) == "FORBIDDEN"
