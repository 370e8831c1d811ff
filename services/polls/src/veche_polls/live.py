"""Live poll results: a poll's counters pushed as votes arrive (`Subscription.pollResults`).

Fed by the polls service's own events (`veche_kit.live`): each instance binds its
own queue to `poll.vote_cast` and `poll.closed` and wakes the subscribers of that
poll at most once per `POLLS_LIVE_INTERVAL_MS`. A wake reads the counters afresh.
A vote is folded into the counters shortly after its event (`tallies`): when a
poll had ballots pending as its counters were read, the poll is touched again,
so one more push follows and the last one counts every ballot. (Pending is read
before the counters: a fold in between is seen by the next read, never lost.)

One wake, one read for all (`PollWatch`): the subscribers of a poll in this process
share what a wake reads, the poll, whether ballots are pending, the counters and
the ballots of those viewers not yet known to be counted in them (one query for
all), at most four commands however many subscribe. Each subscriber's view is then
made in memory: the visibility rule of `Poll.results` from the poll and the
viewer's principal, and the viewer's own ballot added while it is not folded in.
A ballot is final, and once folded into counters of version V it is in every later
version too, so a viewer known to be counted is not asked about again.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from veche_kit.auth import Principal
from veche_kit.errors import ForbiddenError, NotFoundError
from veche_kit.events import Event, PollClosed, PollVoteCast
from veche_kit.live import LiveHub, TopicsOf
from veche_kit.mongo import Document
from veche_polls import domain, store
from veche_polls.service import PollsService, with_own
from veche_polls.tallies import counted_in

R = TypeVar("R")
# What a subscriber is sent, made from (poll, counters as they see them).
Build = Callable[[Document, Document], R]


def topic(poll_id: str) -> str:
    return f"poll:{poll_id}"


def _poll_of(event: Event) -> Iterable[str]:
    assert isinstance(event, PollVoteCast | PollClosed)
    return [topic(event.poll_id)]


ROUTES: dict[str, TopicsOf] = {PollVoteCast.type: _poll_of, PollClosed.type: _poll_of}


@dataclass(frozen=True)
class Reading:
    """What one wake read for every subscriber of the poll."""

    poll_id: str
    poll: Document | None
    tally: Document
    ballots: dict[str, Document]  # by voter: those not known counted before this read
    counted: frozenset[str]  # voters whose ballot is in `tally` (or in older counters)
    built: dict[Any, Any] = field(default_factory=dict, compare=False)  # by `Build`

    def results(self, service: PollsService, caller: Principal | None, build: Build[R]) -> R:
        """The caller's view as `build` makes it: made once per reading for all who see
        the shared counters, apart for a viewer whose own ballot is added."""
        poll, tally = self.view(service, caller)
        if tally is not self.tally:
            return build(poll, tally)
        if build not in self.built:
            self.built[build] = build(poll, tally)
        return cast(R, self.built[build])

    def view(self, service: PollsService, caller: Principal | None) -> tuple[Document, Document]:
        """(poll, counters as the caller sees them), or refused as `Poll.results` is."""
        poll = self.poll
        if poll is None or not service.visible(caller, poll):
            pid = self.poll_id
            raise NotFoundError(f"No poll with id '{pid}'.", ru=f"Опроса с id «{pid}» нет.")
        viewer = caller.user_id if caller else None
        ballot = self.ballots.get(viewer) if viewer else None
        voted = ballot is not None or viewer in self.counted
        if not domain.results_visible(caller, poll, has_voted=voted):
            raise ForbiddenError(
                "This poll's results are not visible to you yet: they are shown to its voters"
                " once they voted, to everyone once it is CLOSED, and to its managers.",
                ru="Результаты этого опроса вам пока не видны: их видят проголосовавшие, все"
                " после закрытия опроса и те, кто им управляет.",
            )
        return poll, with_own(self.tally, ballot)


class PollWatch:
    """The subscribers of one poll in this process and the reads they share: one per wake."""

    def __init__(self, service: PollsService, hub: LiveHub[None], poll_id: str) -> None:
        self.service = service
        self.hub = hub
        self.poll_id = poll_id
        self.viewers: Counter[str] = Counter()  # user ids of the signed-in subscribers
        self.counted: set[str] = set()  # of those, whose ballot is known to be in the counters
        self._last: tuple[int, asyncio.Future[Reading]] | None = None
        self.reads = 0  # how many times the shared state was read (for tests)

    def join(self, viewer: str | None) -> None:
        if viewer is not None:
            self.viewers[viewer] += 1

    def leave(self, viewer: str | None) -> None:
        if viewer is None:
            return
        self.viewers[viewer] -= 1
        if self.viewers[viewer] <= 0:
            del self.viewers[viewer]
            self.counted.discard(viewer)

    async def at(self, wake: int) -> Reading:
        """The reading of this wake: made by the first subscriber to ask, shared by the rest
        (a subscriber behind gets a newer one, never an older)."""
        if self._last is None or self._last[0] < wake:
            self._last = (wake, asyncio.ensure_future(self.read(list(self.viewers))))
        return await asyncio.shield(self._last[1])

    async def read(self, viewers: list[str]) -> Reading:
        """The poll, its counters and the ballots of `viewers` not known counted yet."""
        self.reads += 1
        service = self.service
        poll = (await service.polls_by_ids([self.poll_id]))[0]
        pending = await _pending(service, self.poll_id)  # first: a fold after is seen next time
        tally = (await service.store.tallies([self.poll_id]))[0]
        if pending:
            self.hub.touch(topic(self.poll_id))  # one more push, once they are folded
        asked = [v for v in viewers if v not in self.counted]
        ballots = await service.store.ballots_of_voters(self.poll_id, asked) if asked else {}
        fresh = {v for v, b in ballots.items() if counted_in(b, tally)}
        self.counted |= fresh & set(self.viewers)
        return Reading(
            poll_id=self.poll_id,
            poll=poll,
            tally=tally,
            ballots={v: b for v, b in ballots.items() if v not in fresh},
            counted=frozenset(self.counted | fresh),
        )


async def _pending(service: PollsService, poll_id: str) -> bool:
    """Ballots of the poll not yet folded into its counters."""
    found = await service.store.db[store.BALLOTS].find_one(
        {"tally_pending": True, "poll_id": poll_id}, {"_id": 1}
    )
    return found is not None


async def watch_results(
    service: PollsService,
    hub: LiveHub[None],
    caller: Principal | None,
    poll_id: str,
    build: Build[R],
) -> AsyncIterator[R]:
    """The results as the caller sees them, made by `build`: now, then after each wake.
    Refused (NOT_FOUND, FORBIDDEN) as `Poll.results` would be null, before and during."""
    viewer = caller.user_id if caller else None
    with hub.subscribe(topic(poll_id)) as subscriber:  # before the first read: no vote missed
        watch = hub.shared(topic(poll_id), lambda: PollWatch(service, hub, poll_id))
        watch.join(viewer)
        try:
            # The first read is this subscriber's own: a shared one may predate its subscribing.
            reading = await watch.read([viewer] if viewer else [])
            while True:
                yield reading.results(service, caller, build)
                if not await subscriber.wait():
                    return  # the service is stopping
                reading = await watch.at(subscriber.wake_number)
        finally:
            watch.leave(viewer)
