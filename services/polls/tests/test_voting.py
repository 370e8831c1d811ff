"""castVote under concurrency and its validation; counters against a recount of the ballots."""

from __future__ import annotations

import asyncio
import random
from collections import Counter, defaultdict
from typing import Any

import pytest

from veche_kit.auth import Principal
from veche_kit.clock import utcnow
from veche_polls import store
from veche_polls.domain import AnswerDraft
from veche_stack.testing import eventually

from .conftest import ANSWERS, RESULTS, VOTE, PollsServer

MY_BALLOTS = """query($u: _Any!, $first: Int, $after: String) {
  _entities(representations: [$u]) {
    ... on User { ballots(first: $first, after: $after) {
      totalCount pageInfo { hasNextPage endCursor } edges { node { id poll { id } } } } }
  }
}"""


async def test_one_user_voting_100_times_at_once_gets_one_ballot(polls: PollsServer) -> None:
    poll_id = await polls.active_poll()
    voter = polls.citizen()
    responses = await asyncio.gather(
        *(voter.post(VOTE, {"poll": poll_id, "answers": ANSWERS}) for _ in range(100))
    )
    ok = [r for r in responses if not r.get("errors")]
    codes = Counter(r["errors"][0]["extensions"]["code"] for r in responses if r.get("errors"))
    assert len(ok) == 1
    assert codes == {"ALREADY_VOTED": 99}
    assert await polls.db[store.BALLOTS].count_documents({"poll_id": poll_id}) == 1
    assert await voter.error_code(VOTE, {"poll": poll_id, "answers": ANSWERS}) == "ALREADY_VOTED"


def _random_answers(rng: random.Random) -> list[dict[str, Any]]:
    return [
        {"questionId": "q1", "optionIds": [rng.choice(["q1-1", "q1-2", "q1-3"])]},
        {
            "questionId": "q2",
            "optionIds": rng.sample(["q2-1", "q2-2", "q2-3", "q2-4"], rng.randint(1, 2)),
        },
        {"questionId": "q3", "value": rng.randint(1, 5)},
    ]


def _recount(ballots: list[dict[str, Any]], year: int) -> dict[str, Any]:
    """Counts the ballots from scratch, independently of the service's tally code."""
    votes: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    totals: Counter[str] = Counter()
    sums: dict[tuple[str, str], list[int]] = defaultdict(list)
    for ballot in ballots:
        age = year - ballot["birth_year"] if ballot["birth_year"] is not None else None
        group = None
        if age is not None:
            bounds = [(14, 17), (18, 24), (25, 34), (35, 44), (45, 54), (55, 64), (65, 200)]
            label = next(
                f"{lo}-{hi}" if hi < 200 else "65+" for lo, hi in bounds if lo <= age <= hi
            )
            group = f"a:{label}"
        scopes = ["all"] + ([f"d:{ballot['district']}"] if ballot["district"] else [])
        scopes += [group] if group else []
        for scope in scopes:
            totals[scope] += 1
            for answer in ballot["answers"]:
                if "value" in answer:
                    votes[(scope, "q3")][f"q3-v{answer['value']}"] += 1
                    sums[(scope, "q3")].append(answer["value"])
                for option in answer.get("optionIds", []):
                    votes[(scope, answer["questionId"])][option] += 1
    return {"totals": totals, "votes": votes, "sums": sums}


def _shown(results: dict[str, Any]) -> dict[str, Any]:
    """The same shape from the API's results."""
    votes: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    totals: Counter[str] = Counter()
    averages: dict[tuple[str, str], float | None] = {}

    def add(scope: str, total: int, questions: list[dict[str, Any]]) -> None:
        if total:
            totals[scope] = total
        for q in questions:
            for o in q["options"]:
                if o["votes"]:
                    votes[(scope, q["question"]["id"])][o["option"]["id"]] = o["votes"]
            if q["average"] is not None:
                averages[(scope, q["question"]["id"])] = q["average"]

    add("all", results["totalVotes"], results["questions"])
    for d in results["byDistrict"]:
        add(f"d:{d['district']['id']}", d["totalVotes"], d["questions"])
    for a in results["byAgeGroup"]:
        add(f"a:{a['label']}", a["totalVotes"], a["questions"])
    return {"totals": totals, "votes": votes, "averages": averages}


def _random_ballots(rng: random.Random, year: int, count: int) -> list[dict[str, Any]]:
    """Voters of every district (and none) and ages around each group's edges."""
    districts = ["leninsky", "moskovsky", "oktyabrsky", None]
    birth_years = [year - age for age in (14, 17, 18, 24, 25, 34, 40, 50, 60, 64, 65, 90)] + [None]
    return [
        {
            "district": rng.choice(districts),
            "birth_year": rng.choice(birth_years),
            "answers": _random_answers(rng),
        }
        for _ in range(count)
    ]


async def _cast_all_at_once(
    polls: PollsServer, poll_id: str, ballots: list[dict[str, Any]]
) -> None:
    """Each ballot by its own voter, 64 in flight; waits until every one is folded."""
    limit = asyncio.Semaphore(64)

    async def cast(ballot: dict[str, Any]) -> dict[str, Any]:
        async with limit:
            voter = polls.citizen(ballot["district"], ballot["birth_year"])
            return await voter.post(VOTE, {"poll": poll_id, "answers": ballot["answers"]})

    responses = await asyncio.gather(*(cast(b) for b in ballots))
    assert [r.get("errors") for r in responses if r.get("errors")] == []

    async def folded() -> bool:
        return (
            await polls.db[store.BALLOTS].count_documents(
                {"poll_id": poll_id, "tally_pending": True}
            )
            == 0
        )

    await eventually(folded, timeout=30)


async def test_1000_voters_at_once_counters_equal_a_recount(polls: PollsServer) -> None:
    official = polls.official()
    poll_id = await polls.active_poll(official)
    year = utcnow().year
    ballots = _random_ballots(random.Random(7), year, 1000)
    await _cast_all_at_once(polls, poll_id, ballots)
    expected = _recount(ballots, year)
    stored = [b async for b in polls.db[store.BALLOTS].find({"poll_id": poll_id})]
    assert len(stored) == 1000
    shown = _shown((await official.data(RESULTS, {"id": poll_id}))["poll"]["results"])
    assert shown["totals"] == expected["totals"]
    assert shown["votes"] == expected["votes"]
    assert shown["averages"] == {
        scope: pytest.approx(sum(values) / len(values))
        for scope, values in expected["sums"].items()
    }
    tally = await polls.db[store.TALLIES].find_one({"_id": poll_id})
    assert tally is not None
    assert tally["total"] == 1000
    assert {b["folded_in"] for b in stored} <= set(range(1, tally["version"] + 1))


async def test_answers_are_checked_against_each_question(polls: PollsServer) -> None:
    poll_id = await polls.active_poll()
    voter = polls.citizen()
    q1, q2, q3 = ANSWERS
    cases: list[tuple[list[dict[str, Any]], str]] = [
        ([q1, q2], "answers"),  # q3 unanswered
        ([q1, q2, q3, {"questionId": "q9", "optionIds": ["x"]}], "answers[3].questionId"),
        ([q1, q1, q2, q3], "answers[1].questionId"),
        ([{"questionId": "q1", "optionIds": ["q2-1"]}, q2, q3], "answers[0].optionIds"),
        ([{"questionId": "q1", "optionIds": ["q1-1", "q1-2"]}, q2, q3], "answers[0].optionIds"),
        ([{"questionId": "q1", "optionIds": []}, q2, q3], "answers[0].optionIds"),
        (
            [q1, {"questionId": "q2", "optionIds": ["q2-1", "q2-2", "q2-3"]}, q3],
            "answers[1].optionIds",
        ),
        ([q1, {"questionId": "q2", "optionIds": ["q2-1", "q2-1"]}, q3], "answers[1].optionIds"),
        ([q1, q2, {"questionId": "q3", "value": 6}], "answers[2].value"),
        ([q1, q2, {"questionId": "q3", "value": 0}], "answers[2].value"),
        ([q1, q2, {"questionId": "q3"}], "answers[2].value"),
        ([q1, q2, {"questionId": "q3", "optionIds": ["q3-v1"]}], "answers[2].optionIds"),
        ([{"questionId": "q1", "optionIds": ["q1-1"], "value": 2}, q2, q3], "answers[0].value"),
    ]
    for answers, field in cases:
        body = await voter.post(VOTE, {"poll": poll_id, "answers": answers})
        error = body["errors"][0]
        assert (error["extensions"]["code"], error["extensions"].get("field")) == (
            "BAD_USER_INPUT",
            field,
        ), (answers, error)
    # None of the refusals used up the vote.
    assert (await voter.data(VOTE, {"poll": poll_id, "answers": ANSWERS}))["castVote"]["id"]


async def test_voting_needs_a_token_and_a_known_active_poll(polls: PollsServer) -> None:
    poll_id = await polls.active_poll()
    assert await polls.client.error_code(VOTE, {"poll": poll_id, "answers": ANSWERS}) == (
        "UNAUTHENTICATED"
    )
    assert await polls.citizen().error_code(VOTE, {"poll": "nope", "answers": ANSWERS}) == (
        "NOT_FOUND"
    )


async def test_own_ballots_are_listed_for_the_user_only(polls: PollsServer) -> None:
    user_id = "u-ballots-" + str(random.Random().randint(0, 10**9))
    voter = polls.citizen(user_id=user_id)
    polls_voted = [await polls.active_poll() for _ in range(3)]
    for poll_id in polls_voted:
        await voter.data(VOTE, {"poll": poll_id, "answers": ANSWERS})
    me = {"__typename": "User", "id": user_id}
    first = (await voter.data(MY_BALLOTS, {"u": me, "first": 2}))["_entities"][0]["ballots"]
    assert first["totalCount"] == 3
    assert first["pageInfo"]["hasNextPage"] is True
    rest = (
        await voter.data(MY_BALLOTS, {"u": me, "first": 2, "after": first["pageInfo"]["endCursor"]})
    )["_entities"][0]["ballots"]
    assert rest["pageInfo"]["hasNextPage"] is False
    listed = [e["node"]["poll"]["id"] for e in first["edges"] + rest["edges"]]
    assert listed == list(reversed(polls_voted))  # newest first
    assert await polls.citizen().error_code(MY_BALLOTS, {"u": me}) == "FORBIDDEN"
    assert await polls.client.error_code(MY_BALLOTS, {"u": me}) == "UNAUTHENTICATED"


async def test_my_ballot_is_counted_exactly_once_while_it_is_folded(polls: PollsServer) -> None:
    poll_id = await polls.active_poll()
    caller = Principal(
        "u-folding",
        frozenset({"CITIZEN"}),
        district_id="leninsky",
        birth_year=1990,
        phone_verified=True,
    )
    drafts = [
        AnswerDraft("q1", ["q1-2"]),
        AnswerDraft("q2", ["q2-4"]),
        AnswerDraft("q3", value=2),
    ]
    await polls.service.cast_vote(caller, poll_id, drafts)
    # Reads race the folder: before, during and after the fold the ballot counts once.
    views = await asyncio.gather(
        *(polls.service.tally_for(poll_id, caller.user_id) for _ in range(10)),
        polls.service.folder.fold_poll(poll_id),
        *(polls.service.tally_for(poll_id, caller.user_id) for _ in range(10)),
    )
    tallies = [v for v in views if isinstance(v, dict)]
    assert [t["total"] for t in tallies] == [1] * 20
    assert {t["q"]["q1"]["o"]["q1-2"] for t in tallies} == {1}
    assert {t["d"]["leninsky"]["total"] for t in tallies} == {1}
    after = await polls.service.tally_for(poll_id, caller.user_id)
    assert after["total"] == 1
    assert (await polls.service.tally_for(poll_id, None))["total"] == 1
