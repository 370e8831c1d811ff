"""The polls service's MongoDB collections and their indexes.

- `polls`: one document per poll (questions, audience, schedule, status, decision).
- `ballots`: one document per (poll, voter), held unique by an index. A ballot is
  also its own outbox record (`poll.vote_cast` rides in it until the relay sends
  it) and carries `tally_pending` until the folder adds it to the counters.
- `tallies`: one counters document per poll (see `domain.ballot_increments`).
- `voters`: the projection of user events: each voter's district, birth year
  and phone verification, with the time of the event it came from.
"""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel

from veche_kit.migrations import Migration
from veche_kit.outbox import PENDING_INDEX

POLLS = "polls"
BALLOTS = "ballots"
TALLIES = "tallies"
VOTERS = "voters"

INDEXES: dict[str, list[IndexModel]] = {
    POLLS: [
        IndexModel([("status", ASCENDING), ("ends_at", ASCENDING)]),
        IndexModel([("department_id", ASCENDING), ("_id", DESCENDING)]),
        # One poll per initiative, however often `initiative.threshold_reached` arrives.
        IndexModel(
            [("source_initiative_id", ASCENDING)],
            unique=True,
            sparse=True,
            name="one_poll_per_initiative",
        ),
    ],
    BALLOTS: [
        # One ballot per user per poll: the database holds it, not a read before the write.
        IndexModel(
            [("poll_id", ASCENDING), ("voter_id", ASCENDING)], unique=True, name="one_ballot"
        ),
        IndexModel([("voter_id", ASCENDING), ("_id", DESCENDING)]),
        IndexModel([("tally_pending", ASCENDING), ("poll_id", ASCENDING)], sparse=True),
        PENDING_INDEX,  # the relay's index: ballots carry their own `poll.vote_cast`
    ],
}

# How stored documents change shape between releases, oldest first (veche_kit.migrations):
# each service start runs those the store has not had yet.
MIGRATIONS: list[Migration] = []
