"""The vote path's cache (PollsSettings.vote_cache_seconds): a change this instance
makes or applies counts for the very next vote; a change made elsewhere counts
once the cache's seconds are over, never later."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from veche_kit.clock import utcnow
from veche_polls import store
from veche_stack.testing import eventually

from .conftest import ANSWERS, CLOSE, VOTE, PollsServer, handled, polls_settings, running
from .test_audience import _profile, _publish

LONG = 60.0  # longer than any test here: only forgetting can make a change count


@pytest.fixture(scope="module")
async def cached(
    mongo_server_url: str, amqp_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[PollsServer]:
    data: Path = tmp_path_factory.mktemp("polls-cached")
    settings = polls_settings(mongo_server_url, amqp_url, data, vote_cache_seconds=LONG)
    async with running(settings) as server:
        yield server


async def test_a_poll_closed_here_refuses_the_next_vote_at_once(cached: PollsServer) -> None:
    official = cached.official()
    poll_id = await cached.active_poll(official)
    await cached.citizen().data(VOTE, {"poll": poll_id, "answers": ANSWERS})  # cached ACTIVE
    await official.data(CLOSE, {"id": poll_id})
    code = await cached.citizen().error_code(VOTE, {"poll": poll_id, "answers": ANSWERS})
    assert code == "POLL_NOT_ACTIVE"


async def test_a_profile_change_applied_here_counts_for_the_next_vote(
    cached: PollsServer,
) -> None:
    user_id = f"u-{uuid.uuid4().hex[:8]}"
    voter = cached.citizen("leninsky", 1985, user_id=user_id)  # the token says leninsky
    first = await cached.active_poll(audience={"districtIds": ["leninsky"]})
    await voter.data(VOTE, {"poll": first, "answers": ANSWERS})  # its projection cached
    moved_at = utcnow() + timedelta(seconds=1)  # newer than the token
    moved = await _publish(cached, _profile(user_id, "moskovsky"), moved_at)
    await eventually(lambda: handled(cached, moved))
    await asyncio.sleep(max(0.0, (moved_at - utcnow()).total_seconds()) + 0.05)
    later = await cached.active_poll(audience={"districtIds": ["leninsky"]})
    assert await voter.error_code(VOTE, {"poll": later, "answers": ANSWERS}) == "NOT_ELIGIBLE"


async def test_a_poll_closed_by_another_instance_counts_within_the_cache_seconds(
    polls: PollsServer,
) -> None:
    """The session's server caches for `vote_cache_seconds` (1 s by default)."""
    poll_id = await polls.active_poll()
    await polls.citizen().data(VOTE, {"poll": poll_id, "answers": ANSWERS})
    # Another instance's close: the change reaches this store, not this process.
    await polls.db[store.POLLS].update_one({"_id": poll_id}, {"$set": {"status": "CLOSED"}})
    await asyncio.sleep(polls.settings.vote_cache_seconds)
    code = await polls.citizen().error_code(VOTE, {"poll": poll_id, "answers": ANSWERS})
    assert code == "POLL_NOT_ACTIVE"
