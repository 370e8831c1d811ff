"""Live poll results: a poll's counters pushed as votes arrive (`Subscription.pollResults`).

Fed by the polls service's own events (`veche_kit.live`): each instance binds its
own queue to `poll.vote_cast` and `poll.closed` and wakes the subscribers of that
poll at most once per `POLLS_LIVE_INTERVAL_MS`. A wake reads the counters afresh.
A vote is folded into the counters shortly after its event (`tallies`): when a
poll had ballots pending as its counters were read, the poll is touched again,
so one more push follows and the last one counts every ballot. (Pending is read
before the counters: a fold in between is seen by the next read, never lost.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from veche_kit.auth import Principal
from veche_kit.errors import ForbiddenError, NotFoundError
from veche_kit.events import Event, PollClosed, PollVoteCast
from veche_kit.live import LiveHub, TopicsOf
from veche_kit.mongo import Document
from veche_polls import domain, store
from veche_polls.service import PollsService


def topic(poll_id: str) -> str:
    return f"poll:{poll_id}"


def _poll_of(event: Event) -> Iterable[str]:
    assert isinstance(event, PollVoteCast | PollClosed)
    return [topic(event.poll_id)]


ROUTES: dict[str, TopicsOf] = {PollVoteCast.type: _poll_of, PollClosed.type: _poll_of}


async def _watchable(service: PollsService, caller: Principal | None, poll_id: str) -> Document:
    """The poll, if the caller may see its results now (the rule of `Poll.results`)."""
    poll = (await service.polls_by_ids([poll_id]))[0]
    if poll is None or not service.visible(caller, poll):
        raise NotFoundError(f"No poll with id '{poll_id}'.", ru=f"Опроса с id «{poll_id}» нет.")
    ballot = (await service.ballots_by_polls(caller.user_id, [poll_id]))[0] if caller else None
    if not domain.results_visible(caller, poll, has_voted=ballot is not None):
        raise ForbiddenError(
            "This poll's results are not visible to you yet: they are shown to its voters"
            " once they voted, to everyone once it is CLOSED, and to its managers.",
            ru="Результаты этого опроса вам пока не видны: их видят проголосовавшие, все"
            " после закрытия опроса и те, кто им управляет.",
        )
    return poll


async def _pending(service: PollsService, poll_id: str) -> bool:
    """Ballots of the poll not yet folded into its counters."""
    found = await service.store.db[store.BALLOTS].find_one(
        {"tally_pending": True, "poll_id": poll_id}, {"_id": 1}
    )
    return found is not None


async def _state(
    service: PollsService, caller: Principal | None, poll_id: str
) -> tuple[Document, Document, bool]:
    """The poll, its counters as the caller sees them, and whether ballots were still
    pending before the counters were read (then a later read will count more)."""
    poll = await _watchable(service, caller, poll_id)
    pending = await _pending(service, poll_id)  # first: a fold after the read is seen next time
    viewer = caller.user_id if caller else None
    return poll, (await service.tallies_for([poll_id], viewer))[0], pending


async def watch_results(
    service: PollsService, hub: LiveHub[None], caller: Principal | None, poll_id: str
) -> AsyncIterator[tuple[Document, Document]]:
    """(poll, counters as the caller sees them): now, then after each wake. Refused
    (NOT_FOUND, FORBIDDEN) as `Poll.results` would be null, before and during."""
    with hub.subscribe(topic(poll_id)) as subscriber:  # before the first read: no vote missed
        poll, tally, pending = await _state(service, caller, poll_id)
        while True:
            if pending:
                hub.touch(topic(poll_id))  # one more push, once they are folded
            yield poll, tally
            if not await subscriber.wait():
                return  # the service is stopping
            poll, tally, pending = await _state(service, caller, poll_id)
