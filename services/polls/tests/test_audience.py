"""Audience rules at vote time: each refused with NOT_ELIGIBLE and accepted at its boundary;
the voter projection from user events, preferred over the token when newer."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any

from veche_kit.clock import utcnow
from veche_kit.events import Envelope, Event, UserProfileUpdated, UserRegistered
from veche_polls import store
from veche_stack.testing import eventually, publish

from .conftest import ANSWERS, CREATE, PUBLISH, VOTE, PollsServer, handled, poll_input

FOR_ME = """query($first: Int) { pollsForMe(first: $first) { totalCount edges { node { id } } } }"""
LIST = """query($status: PollStatus, $district: ID, $first: Int) {
  polls(status: $status, districtId: $district, first: $first) { totalCount edges { node { id status } } }
}"""


async def _refusal(voter: Any, poll_id: str) -> tuple[str, str | None]:
    body = await voter.post(VOTE, {"poll": poll_id, "answers": ANSWERS})
    assert body.get("errors"), body
    extensions = body["errors"][0]["extensions"]
    return extensions["code"], extensions.get("reason")


async def _accepted(voter: Any, poll_id: str) -> bool:
    return bool((await voter.data(VOTE, {"poll": poll_id, "answers": ANSWERS}))["castVote"]["id"])


async def test_district_rule(polls: PollsServer) -> None:
    poll_id = await polls.active_poll(audience={"districtIds": ["leninsky", "moskovsky"]})
    assert await _refusal(polls.citizen("oktyabrsky"), poll_id) == ("NOT_ELIGIBLE", "DISTRICT")
    assert await _refusal(polls.citizen(None), poll_id) == ("NOT_ELIGIBLE", "DISTRICT")
    assert await _accepted(polls.citizen("moskovsky"), poll_id)


async def test_age_rules_at_their_boundaries(polls: PollsServer) -> None:
    year = utcnow().year
    poll_id = await polls.active_poll(audience={"minAge": 18, "maxAge": 30})
    assert await _refusal(polls.citizen(birth_year=year - 17), poll_id) == ("NOT_ELIGIBLE", "AGE")
    assert await _refusal(polls.citizen(birth_year=year - 31), poll_id) == ("NOT_ELIGIBLE", "AGE")
    assert await _refusal(polls.citizen(birth_year=None), poll_id) == ("NOT_ELIGIBLE", "AGE")
    assert await _accepted(polls.citizen(birth_year=year - 18), poll_id)
    assert await _accepted(polls.citizen(birth_year=year - 30), poll_id)


async def test_verified_only_rule(polls: PollsServer) -> None:
    poll_id = await polls.active_poll(audience={"verifiedOnly": True})
    assert await _refusal(polls.citizen(verified=False), poll_id) == (
        "NOT_ELIGIBLE",
        "VERIFICATION",
    )
    assert await _accepted(polls.citizen(verified=True), poll_id)


async def test_voting_outside_the_active_window_is_refused(polls: PollsServer) -> None:
    official = polls.official()
    draft = (await official.data(CREATE, {"input": poll_input()}))["createPoll"]["id"]
    assert await _refusal(polls.citizen(), draft) == ("POLL_NOT_ACTIVE", None)
    later = utcnow() + timedelta(hours=1)
    not_yet = await polls.active_poll(
        official, startsAt=later.isoformat(), endsAt=(later + timedelta(days=1)).isoformat()
    )
    assert await _refusal(polls.citizen(), not_yet) == ("POLL_NOT_ACTIVE", None)


async def test_polls_for_me_lists_open_polls_i_may_vote_in_and_have_not(
    polls: PollsServer,
) -> None:
    year = utcnow().year
    district = f"d-{uuid.uuid4().hex[:8]}"  # a district of its own keeps other tests' polls out
    await polls.tell_districts(district, "elsewhere")
    # This voter has not verified a phone: only polls open to such accounts are theirs.
    anyone = {"districtIds": [district], "verifiedOnly": False}
    mine = await polls.active_poll(audience={**anyone, "minAge": 18})
    voted = await polls.active_poll(audience=anyone)
    await polls.active_poll(audience={"districtIds": [district], "verifiedOnly": True})
    await polls.active_poll(audience={**anyone, "maxAge": 20})
    await polls.active_poll(audience={"districtIds": ["elsewhere"]})
    official = polls.official()
    await official.data(CREATE, {"input": poll_input(audience={"districtIds": [district]})})
    user_id = f"u-{uuid.uuid4().hex[:8]}"
    voter = polls.citizen(district, year - 40, user_id=user_id, verified=False)
    await voter.data(VOTE, {"poll": voted, "answers": ANSWERS})
    found = (await voter.data(FOR_ME, {"first": 100}))["pollsForMe"]
    ids = [e["node"]["id"] for e in found["edges"]]
    assert mine in ids
    assert voted not in ids
    scoped = [
        d["_id"]
        async for d in polls.db[store.POLLS].find(
            {"_id": {"$in": ids}, "audience.district_ids": district}
        )
    ]
    assert scoped == [mine]
    assert await polls.client.error_code(FOR_ME) == "UNAUTHENTICATED"

    listed = (await polls.client.data(LIST, {"district": district, "first": 100}))["polls"]
    listed_ids = {e["node"]["id"] for e in listed["edges"]}
    assert {mine, voted} <= listed_ids
    assert all(e["node"]["status"] != "DRAFT" for e in listed["edges"])
    drafts = (await official.data(LIST, {"status": "DRAFT", "first": 100}))["polls"]
    assert drafts["totalCount"] >= 1
    assert (await polls.client.data(LIST, {"status": "DRAFT"}))["polls"]["totalCount"] == 0


async def _publish(polls: PollsServer, event: Event, occurred_at: datetime) -> Envelope:
    envelope = Envelope.wrap(event, "users").model_copy(update={"occurred_at": occurred_at})
    await publish(polls.settings.amqp_url, polls.settings.namespace, envelope)
    return envelope


def _profile(user_id: str, district: str) -> UserProfileUpdated:
    return UserProfileUpdated(
        user_id=user_id,
        display_name="Анна",
        district_id=district,
        birth_year=1985,
        phone_verified=True,
        skills=[],
        organization=None,
    )


async def _registered_in_leninsky(polls: PollsServer, user_id: str) -> Envelope:
    """Anna, born 1985, signed up in Leninsky five minutes ago (before any token)."""
    registered = UserRegistered(
        user_id=user_id,
        display_name="Анна",
        district_id="leninsky",
        birth_year=1985,
        roles=["CITIZEN"],
        phone_verified=True,
    )
    return await _publish(polls, registered, occurred_at=utcnow() - timedelta(minutes=5))


async def test_a_profile_change_is_honoured_for_the_next_vote(polls: PollsServer) -> None:
    user_id = f"u-{uuid.uuid4().hex[:8]}"
    # The token says leninsky; then the user moves to moskovsky (the token lives on).
    voter = polls.citizen("leninsky", 1985, user_id=user_id)
    registered = await _registered_in_leninsky(polls, user_id)
    moved_at = utcnow() + timedelta(seconds=1)  # after the token: the projection is newer
    moved = await _publish(polls, _profile(user_id, "moskovsky"), moved_at)
    await eventually(lambda: handled(polls, registered))
    await eventually(lambda: handled(polls, moved))
    # The polls are published after the move (a move counts for polls published later).
    await asyncio.sleep(max(0.0, (moved_at - utcnow()).total_seconds()) + 0.05)
    leninsky = await polls.active_poll(audience={"districtIds": ["leninsky"]})
    moskovsky = await polls.active_poll(audience={"districtIds": ["moskovsky"]})
    assert await _refusal(voter, leninsky) == ("NOT_ELIGIBLE", "DISTRICT")
    assert await _accepted(voter, moskovsky)

    # An older event arriving late changes nothing.
    late = await _publish(polls, _profile(user_id, "oktyabrsky"), utcnow() - timedelta(hours=1))
    await eventually(lambda: handled(polls, late))
    projected = await polls.db[store.VOTERS].find_one({"_id": user_id})
    assert projected is not None
    assert projected["district_id"] == "moskovsky"


async def test_a_token_newer_than_the_projection_wins(polls: PollsServer) -> None:
    user_id = f"u-{uuid.uuid4().hex[:8]}"
    old = await _publish(polls, _profile(user_id, "oktyabrsky"), utcnow() - timedelta(minutes=3))
    await eventually(lambda: handled(polls, old))
    voter = polls.citizen("leninsky", 1985, user_id=user_id)  # issued now
    poll_id = await polls.active_poll(audience={"districtIds": ["leninsky"]})
    assert await _accepted(voter, poll_id)


async def test_a_move_into_the_audience_counts_only_for_polls_published_later(
    polls: PollsServer,
) -> None:
    """Issue #11: a profile edited to another district or age voted at once in a poll
    targeted elsewhere. The profile as of the poll's publication decides."""
    user_id = f"u-{uuid.uuid4().hex[:8]}"
    year = utcnow().year
    registered = await _registered_in_leninsky(polls, user_id)
    await eventually(lambda: handled(polls, registered))
    moskovsky = await polls.active_poll(audience={"districtIds": ["moskovsky"]})
    young = await polls.active_poll(audience={"maxAge": 25})
    city = await polls.active_poll()
    # The user moves and gets younger; the event arrives, then a fresh token says so too.
    changed = _profile(user_id, "moskovsky").model_copy(update={"birth_year": year - 20})
    moved = await _publish(polls, changed, utcnow())
    await eventually(lambda: handled(polls, moved))
    voter = polls.citizen("moskovsky", year - 20, user_id=user_id)
    assert await _refusal(voter, moskovsky) == ("NOT_ELIGIBLE", "PROFILE_CHANGED")
    assert await _refusal(voter, young) == ("NOT_ELIGIBLE", "PROFILE_CHANGED")
    assert await _accepted(voter, city)  # no audience the move could have bought
    later = await polls.active_poll(audience={"districtIds": ["moskovsky"], "maxAge": 25})
    assert await _accepted(voter, later)


async def test_a_move_not_projected_yet_counts_from_the_token(polls: PollsServer) -> None:
    user_id = f"u-{uuid.uuid4().hex[:8]}"
    old = await _publish(polls, _profile(user_id, "leninsky"), utcnow() - timedelta(minutes=3))
    await eventually(lambda: handled(polls, old))
    moskovsky = await polls.active_poll(audience={"districtIds": ["moskovsky"]})
    # A token issued after the poll, naming a district the events have not told yet.
    voter = polls.citizen("moskovsky", 1985, user_id=user_id)
    assert await _refusal(voter, moskovsky) == ("NOT_ELIGIBLE", "PROFILE_CHANGED")


async def test_publish_needs_an_end_in_the_future(polls: PollsServer) -> None:
    official = polls.official()
    past = utcnow() - timedelta(minutes=1)
    poll_id = (
        await official.data(
            CREATE,
            {
                "input": poll_input(
                    startsAt=(past - timedelta(hours=1)).isoformat(), endsAt=past.isoformat()
                )
            },
        )
    )["createPoll"]["id"]
    body = await official.post(PUBLISH, {"id": poll_id})
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "endsAt"}
