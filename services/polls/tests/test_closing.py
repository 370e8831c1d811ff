"""Closing: by hand, by the schedule, on read; `poll.closed` exactly once however it races."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from veche_kit.clock import utcnow
from veche_kit.outbox import OUTBOX
from veche_polls import store
from veche_stack.testing import GraphQLClient, eventually

from .conftest import ANSWERS, CLOSE, RESULTS, VOTE, Events, PollsServer, outbox_drained


async def _race_to_close(
    polls: PollsServer, official: GraphQLClient, poll_id: str, ends_at: datetime
) -> list[str]:
    """Eight callers read and close until the poll is closed; returns closePoll's outcomes."""
    outcomes: list[str] = []

    async def close_until_closed() -> None:
        # Reads (which close a poll past its end) run all along; from just before the end
        # time closePoll joins them, racing the scheduler and each other.
        while True:
            if utcnow() >= ends_at - timedelta(milliseconds=30):
                body = await official.post(CLOSE, {"id": poll_id})
                errors = body.get("errors")
                outcomes.append(errors[0]["extensions"]["code"] if errors else "OK")
            read = await polls.client.data(RESULTS, {"id": poll_id})
            if read["poll"]["status"] == "CLOSED":
                return

    async def closed_by_someone() -> None:
        await asyncio.gather(*(close_until_closed() for _ in range(8)))

    await asyncio.wait_for(closed_by_someone(), timeout=20)
    return outcomes


async def _no_more_votes(polls: PollsServer, voter: GraphQLClient, poll_id: str) -> None:
    assert await voter.error_code(VOTE, {"poll": poll_id, "answers": ANSWERS}) in (
        "POLL_NOT_ACTIVE",
        "ALREADY_VOTED",
    )
    assert await polls.citizen().error_code(VOTE, {"poll": poll_id, "answers": ANSWERS}) == (
        "POLL_NOT_ACTIVE"
    )


async def test_poll_closed_once_when_close_poll_and_the_end_time_race(
    polls: PollsServer, events: Events
) -> None:
    official = polls.official(user_id="o-closer")
    ends_at = utcnow() + timedelta(seconds=1)
    poll_id = await polls.active_poll(official, endsAt=ends_at.isoformat())
    voter = polls.citizen()
    await voter.data(VOTE, {"poll": poll_id, "answers": ANSWERS})
    outcomes = await _race_to_close(polls, official, poll_id, ends_at)
    assert set(outcomes) <= {"OK", "INVALID_TRANSITION"}
    assert outcomes.count("OK") <= 1
    await eventually(lambda: outbox_drained(polls), timeout=45)  # a loaded machine relays slowly
    closed = await events.about(poll_id, "poll.closed")
    written = await polls.db[OUTBOX].count_documents(
        {"type": "poll.closed", "envelope.data.poll_id": poll_id}
    )
    assert written == 1
    assert len(await events.about(poll_id, "poll.closed")) == 1
    assert closed[0]["data"]["votes_count"] == 1
    poll = await polls.db[store.POLLS].find_one({"_id": poll_id})
    assert poll is not None
    assert poll["closed_by"] == ("o-closer" if "OK" in outcomes else None)
    await _no_more_votes(polls, voter, poll_id)


async def test_a_poll_closes_by_itself_at_its_end_time(polls: PollsServer, events: Events) -> None:
    poll_id = await polls.active_poll(endsAt=(utcnow() + timedelta(seconds=1)).isoformat())

    async def closed() -> dict[str, Any]:
        return await polls.db[store.POLLS].find_one({"_id": poll_id, "status": "CLOSED"}) or {}

    poll = await eventually(closed, timeout=10)  # the scheduler, with nobody reading
    assert poll["closed_by"] is None
    event = (await events.about(poll_id, "poll.closed"))[0]
    assert event["data"] == {
        "poll_id": poll_id,
        "title": "Сквер на Кирова",
        "votes_count": 0,
        "closed_by": None,
    }
    public = (await polls.client.data(RESULTS, {"id": poll_id}))["poll"]
    assert public["results"]["totalVotes"] == 0
