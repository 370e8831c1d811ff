"""Pure rules: age groups, the audience as a check and as a query, tallies and results."""

from __future__ import annotations

import itertools
import uuid

import pytest

from veche_kit.mongo import in_transaction
from veche_kit.outbox import OUTBOX
from veche_polls import domain, store
from veche_polls.domain import QuestionDraft, QuestionKind, Voter
from veche_polls.errors import NotEligibleError
from veche_polls.seed import DEMO, load_demo_polls

from .conftest import PollsServer

YEAR = 2026


@pytest.mark.parametrize(
    ("age", "group"),
    [
        (13, None),
        (14, "14-17"),
        (17, "14-17"),
        (18, "18-24"),
        (24, "18-24"),
        (25, "25-34"),
        (44, "35-44"),
        (45, "45-54"),
        (64, "55-64"),
        (65, "65+"),
        (110, "65+"),
        (None, None),
    ],
)
def test_age_groups(age: int | None, group: str | None) -> None:
    assert domain.age_group(age) == group


AUDIENCES = [
    domain.clean_audience(districts, low, high, verified)
    for districts, low, high, verified in itertools.product(
        ([], ["leninsky"], ["leninsky", "moskovsky"]),
        (None, 18),
        (None, 30),
        (False, True),
    )
]
VOTERS = [
    Voter("v", district, None if age is None else YEAR - age, verified)
    for district, age, verified in itertools.product(
        (None, "leninsky", "oktyabrsky"), (None, 17, 18, 30, 31), (False, True)
    )
]


def _eligible(audience: domain.Document, voter: Voter) -> bool:
    try:
        domain.check_eligible(audience, voter, YEAR)
    except NotEligibleError:
        return False
    return True


async def test_the_audience_query_agrees_with_the_audience_check(polls: PollsServer) -> None:
    """pollsForMe (a query) and castVote (a check) must never disagree about who may vote."""
    scratch = polls.db[f"audiences_{uuid.uuid4().hex[:8]}"]
    await scratch.insert_many([{"_id": i, "audience": a} for i, a in enumerate(AUDIENCES)])
    for voter in VOTERS:
        query = store.eligibility_filter(voter, YEAR)
        matched = {d["_id"] async for d in scratch.find(query, {"_id": 1})}
        expected = {i for i, a in enumerate(AUDIENCES) if _eligible(a, voter)}
        assert matched == expected, voter
    await scratch.drop()


# (district, age group, options of q1, value of q2) of each ballot counted below.
COUNTED_BALLOTS: list[tuple[str | None, str | None, list[str], int]] = [
    ("leninsky", "18-24", ["q1-1", "q1-2"], -1),
    ("leninsky", "65+", ["q1-1"], 1),
    (None, None, ["q1-3"], 1),
    ("weird.district$", "18-24", ["q1-1"], 0),
]


def _tally_of(questions: list[domain.Document]) -> domain.Document:
    """The counters after folding COUNTED_BALLOTS in one batch of increments."""
    tally: domain.Document = {}
    increments: dict[str, int] = {}
    for district, group, options, value in COUNTED_BALLOTS:
        ballot = {
            "district_id": district,
            "age_group": group,
            "answers": domain.clean_answers(
                questions,
                [domain.AnswerDraft("q1", options), domain.AnswerDraft("q2", value=value)],
            ),
        }
        domain.merge_increments(increments, domain.ballot_increments(ballot))
    domain.apply_increments(tally, increments)
    return tally


def test_results_from_counters() -> None:
    questions = domain.build_questions(
        [
            QuestionDraft("Выбор?", QuestionKind.MULTIPLE_CHOICE, ("А", "Б", "В"), 2),
            QuestionDraft("Оценка?", QuestionKind.SCALE, (), None, -1, 1),
        ]
    )
    poll = {"questions": questions, "audience": domain.whole_city()}
    results = domain.results_of(poll, _tally_of(questions))
    assert results.total == 4
    choice, scale = results.questions
    assert [(o.option["id"], o.votes, o.share) for o in choice.options] == [
        ("q1-1", 3, 0.75),
        ("q1-2", 1, 0.25),
        ("q1-3", 1, 0.25),
    ]
    assert choice.average is None
    assert [(o.option["text"], o.votes) for o in scale.options] == [("-1", 1), ("0", 1), ("1", 2)]
    assert scale.average == pytest.approx(0.25)
    assert [(s.key, s.total) for s in results.by_district] == [
        ("leninsky", 2),
        ("weird.district$", 1),
    ]
    groups = {s.key: s.total for s in results.by_age_group}
    assert groups == {
        "14-17": 0,
        "18-24": 2,
        "25-34": 0,
        "35-44": 0,
        "45-54": 0,
        "55-64": 0,
        "65+": 1,
    }
    empty = domain.results_of(poll, {})
    assert empty.total == 0
    assert all(o.share == 0.0 for o in empty.questions[0].options)


async def test_demo_polls_are_loaded_once(polls: PollsServer) -> None:
    db = polls.service.client[f"demo_{uuid.uuid4().hex[:8]}"]
    for _ in range(2):
        await in_transaction(
            polls.service.client,
            lambda session: load_demo_polls(db, "a-demo", "polls", session),
        )
    loaded = [p async for p in db[store.POLLS].find()]
    assert len(loaded) == len(DEMO)
    assert {p["status"] for p in loaded} == {"ACTIVE"}
    assert {p["author_id"] for p in loaded} == {"a-demo"}
    assert await db[store.TALLIES].count_documents({}) == len(DEMO)
    assert await db[OUTBOX].count_documents({"type": "poll.published"}) == len(DEMO)
    await polls.service.client.drop_database(db.name)
