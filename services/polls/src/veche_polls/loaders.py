"""The polls subgraph's batch loaders: one per relation, made fresh for each request.

They load through the service rather than the store, because reading a poll
past its end time closes it first (`PollsService.settle`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from strawberry.dataloader import DataLoader

from veche_kit.mongo import Document
from veche_polls.service import PollsService


class PollById(DataLoader[str, Document | None]):
    def __init__(self, service: PollsService) -> None:
        super().__init__(load_fn=service.polls_by_ids)


class PollByInitiative(DataLoader[str, Document | None]):
    """The poll an initiative (an issue id) was put to, if any."""

    def __init__(self, service: PollsService) -> None:
        super().__init__(load_fn=service.polls_for_initiatives)


class MyBallotByPoll(DataLoader[str, Document | None]):
    """One viewer's ballot in each poll."""

    def __init__(self, service: PollsService, viewer_id: str) -> None:
        async def load(poll_ids: list[str]) -> list[Document | None]:
            return await service.ballots_by_polls(viewer_id, poll_ids)

        super().__init__(load_fn=load)


class TallyByPoll(DataLoader[str, Document]):
    """Each poll's counters as one viewer (or a signed-out caller) should see them.

    Reads its own ballots after the tallies rather than sharing `MyBallotByPoll`'s:
    a ballot read before its tally could be counted twice.
    """

    def __init__(self, service: PollsService, viewer_id: str | None) -> None:
        async def load(poll_ids: list[str]) -> list[Document]:
            return await service.tallies_for(poll_ids, viewer_id)

        super().__init__(load_fn=load)


@dataclass
class PollLoaders:
    """The loaders of one request, each made on first use."""

    service: PollsService
    _ballots: dict[str, MyBallotByPoll] = field(init=False, default_factory=dict)
    _tallies: dict[str | None, TallyByPoll] = field(init=False, default_factory=dict)

    @cached_property
    def poll_by_id(self) -> PollById:
        return PollById(self.service)

    @cached_property
    def poll_by_initiative(self) -> PollByInitiative:
        return PollByInitiative(self.service)

    def my_ballot_by_poll(self, viewer_id: str) -> MyBallotByPoll:
        if viewer_id not in self._ballots:
            self._ballots[viewer_id] = MyBallotByPoll(self.service, viewer_id)
        return self._ballots[viewer_id]

    def tally_by_poll(self, viewer_id: str | None) -> TallyByPoll:
        if viewer_id not in self._tallies:
            self._tallies[viewer_id] = TallyByPoll(self.service, viewer_id)
        return self._tallies[viewer_id]
