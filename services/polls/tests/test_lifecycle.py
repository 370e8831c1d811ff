"""A poll's whole life over HTTP: create, update, publish, vote, results per role, close, decide."""

from __future__ import annotations

from typing import Any

from veche_stack.testing import GraphQLClient

from .conftest import (
    ANSWERS,
    CLOSE,
    CREATE,
    DECIDE,
    POLL,
    PUBLISH,
    RESULTS,
    UPDATE,
    VOTE,
    Events,
    PollsServer,
    poll_input,
)

# One voter born in 1990 (36 in 2026) has voted: only their age group counts.
ONE_VOTE_BY_AGE = [
    ("14-17", 0),
    ("18-24", 0),
    ("25-34", 0),
    ("35-44", 1),
    ("45-54", 0),
    ("55-64", 0),
    ("65+", 0),
]


def _votes(result: dict[str, Any], question: str) -> dict[str, int]:
    for q in result["questions"]:
        if q["question"]["id"] == question:
            return {o["option"]["id"]: o["votes"] for o in q["options"]}
    raise AssertionError(f"no question {question}")


async def _create_draft(official: GraphQLClient) -> str:
    """The official creates a draft with the defaults; returns its id."""
    created = (await official.data(CREATE, {"input": poll_input(description="Опрос жителей")}))[
        "createPoll"
    ]
    assert created["status"] == "DRAFT"
    assert created["pointsReward"] == 10
    assert created["department"] == {"id": "roads"}
    assert created["audience"] == {
        "districtIds": [],
        "minAge": None,
        "maxAge": None,
        "verifiedOnly": True,  # by default: throwaway accounts cannot sway a poll
    }
    assert [q["id"] for q in created["questions"]] == ["q1", "q2", "q3"]
    assert created["questions"][1]["maxChoices"] == 2
    assert [o["id"] for o in created["questions"][2]["options"]] == [
        "q3-v1",
        "q3-v2",
        "q3-v3",
        "q3-v4",
        "q3-v5",
    ]
    poll_id: str = created["id"]
    return poll_id


async def _update_draft(
    official: GraphQLClient, other_official: GraphQLClient, poll_id: str
) -> None:
    updated = (
        await official.data(
            UPDATE,
            {
                "id": poll_id,
                "input": {"title": "Сквер на улице Кирова", "pointsReward": 25},
            },
        )
    )["updatePoll"]
    assert updated["title"] == "Сквер на улице Кирова"
    assert updated["pointsReward"] == 25
    assert updated["description"] == "Опрос жителей"  # left out: kept
    assert await other_official.error_code(PUBLISH, {"id": poll_id}) == "FORBIDDEN"


async def _publish(official: GraphQLClient, events: Events, poll_id: str) -> None:
    """Publishing announces the poll and freezes it."""
    assert (await official.data(PUBLISH, {"id": poll_id}))["publishPoll"]["status"] == "ACTIVE"
    published = (await events.about(poll_id, "poll.published"))[0]
    assert published["producer"] == "polls"
    assert published["data"]["department_id"] == "roads"
    assert published["data"]["title"] == "Сквер на улице Кирова"
    assert await official.error_code(UPDATE, {"id": poll_id, "input": {"title": "X y z"}}) == (
        "INVALID_TRANSITION"
    )
    assert await official.error_code(PUBLISH, {"id": poll_id}) == "INVALID_TRANSITION"


async def _vote(voter: GraphQLClient, poll_id: str) -> str:
    """The voter casts ANSWERS; returns the ballot's id."""
    ballot = (await voter.data(VOTE, {"poll": poll_id, "answers": ANSWERS}))["castVote"]
    assert ballot["poll"] == {"id": poll_id}
    assert ballot["answers"] == [
        {"questionId": "q1", "optionIds": ["q1-1"], "value": None},
        {"questionId": "q2", "optionIds": ["q2-1", "q2-3"], "value": None},
        {"questionId": "q3", "optionIds": [], "value": 4},
    ]
    ballot_id: str = ballot["id"]
    return ballot_id


async def _voter_sees_their_ballot_counted(
    voter: GraphQLClient, poll_id: str, ballot_id: str
) -> None:
    # Right away, whether folded yet or not.
    seen = (await voter.data(POLL, {"id": poll_id}))["poll"]
    assert seen["myBallot"]["id"] == ballot_id
    assert seen["votesCount"] == 1
    results = seen["results"]
    assert results["totalVotes"] == 1
    assert _votes(results, "q1") == {"q1-1": 1, "q1-2": 0, "q1-3": 0}
    assert _votes(results, "q2") == {"q2-1": 1, "q2-2": 0, "q2-3": 1, "q2-4": 0}
    assert results["questions"][2]["average"] == 4.0
    assert results["questions"][0]["options"][0]["share"] == 1.0
    assert [(d["district"]["id"], d["totalVotes"]) for d in results["byDistrict"]] == [
        ("leninsky", 1)
    ]
    assert [(a["label"], a["totalVotes"]) for a in results["byAgeGroup"]] == ONE_VOTE_BY_AGE


async def _vote_announced(events: Events, poll_id: str, ballot_id: str) -> None:
    cast = (await events.about(poll_id, "poll.vote_cast"))[0]
    assert cast["data"] == {
        "poll_id": poll_id,
        "ballot_id": ballot_id,
        "voter_id": cast["data"]["voter_id"],
        "points_reward": 25,
        "district_id": "leninsky",
        "age_group": "35-44",
    }


async def _close(
    polls: PollsServer,
    events: Events,
    poll_id: str,
    official: GraphQLClient,
    refused: list[GraphQLClient],
) -> None:
    """Only the department's official closes the poll, once; no decision before, no votes after."""
    for caller in refused:
        assert await caller.error_code(CLOSE, {"id": poll_id}) == "FORBIDDEN"
    assert await official.error_code(
        DECIDE, {"poll": poll_id, "text": "Строим", "status": "TAKEN"}
    ) == ("INVALID_TRANSITION")
    assert (await official.data(CLOSE, {"id": poll_id}))["closePoll"]["status"] == "CLOSED"
    closed = (await events.about(poll_id, "poll.closed"))[0]
    assert closed["data"]["votes_count"] == 1
    assert closed["data"]["closed_by"] is not None
    assert await official.error_code(CLOSE, {"id": poll_id}) == "INVALID_TRANSITION"
    assert await polls.citizen().error_code(VOTE, {"poll": poll_id, "answers": ANSWERS}) == (
        "POLL_NOT_ACTIVE"
    )


async def _decide(
    admin: GraphQLClient,
    official: GraphQLClient,
    anonymous: GraphQLClient,
    events: Events,
    poll_id: str,
) -> None:
    """Admin and official record decisions in turn; the latest is public."""
    decided = (
        await admin.data(
            DECIDE, {"poll": poll_id, "text": "Сквер благоустроят в 2027 году", "status": "TAKEN"}
        )
    )["recordDecision"]
    assert decided["decision"]["text"] == "Сквер благоустроят в 2027 году"
    assert decided["decision"]["status"] == "TAKEN"
    await official.data(DECIDE, {"poll": poll_id, "text": "Работы идут", "status": "IN_PROGRESS"})
    recorded = await events.about(poll_id, "poll.decision_recorded", count=2)
    assert [e["data"]["status"] for e in recorded] == ["TAKEN", "IN_PROGRESS"]
    final = (await anonymous.data(POLL, {"id": poll_id}))["poll"]
    assert final["decision"]["status"] == "IN_PROGRESS"
    assert final["myBallot"] is None


async def _sees_results(viewer: GraphQLClient, poll_id: str) -> bool:
    return (await viewer.data(RESULTS, {"id": poll_id}))["poll"]["results"] is not None


async def test_poll_lifecycle_end_to_end(polls: PollsServer, events: Events) -> None:
    official = polls.official("roads")
    other_official = polls.official("housing")
    admin = polls.admin()
    anonymous = polls.client

    poll_id = await _create_draft(official)
    # A draft is seen only by those who manage it.
    assert (await anonymous.data(POLL, {"id": poll_id}))["poll"] is None
    assert (await other_official.data(POLL, {"id": poll_id}))["poll"] is None
    assert (await admin.data(POLL, {"id": poll_id}))["poll"]["id"] == poll_id
    await _update_draft(official, other_official, poll_id)
    await _publish(official, events, poll_id)

    # Results before anyone voted: officials of the department and admins only.
    voter = polls.citizen("leninsky", 1990)
    for viewer, visible in ((official, True), (admin, True), (other_official, False)):
        assert await _sees_results(viewer, poll_id) is visible
    assert not await _sees_results(voter, poll_id)
    assert not await _sees_results(anonymous, poll_id)

    ballot_id = await _vote(voter, poll_id)
    await _voter_sees_their_ballot_counted(voter, poll_id, ballot_id)
    await _vote_announced(events, poll_id, ballot_id)
    # Someone who has not voted still sees no results while the poll is ACTIVE.
    assert not await _sees_results(polls.citizen(), poll_id)

    await _close(polls, events, poll_id, official, refused=[voter, other_official])
    # Once CLOSED, everyone sees the results.
    public = (await anonymous.data(RESULTS, {"id": poll_id}))["poll"]
    assert public["status"] == "CLOSED"
    assert public["results"]["totalVotes"] == 1
    assert public["votesCount"] == 1

    await _decide(admin, official, anonymous, events, poll_id)


async def test_admin_creates_city_wide_polls_and_officials_only_their_own(
    polls: PollsServer,
) -> None:
    admin = polls.admin()
    created = (await admin.data(CREATE, {"input": poll_input()}))["createPoll"]
    assert created["department"] is None
    assigned = (await admin.data(CREATE, {"input": poll_input(departmentId="housing")}))[
        "createPoll"
    ]
    assert assigned["department"] == {"id": "housing"}
    # Housing's official manages it; roads' does not.
    assert (await polls.official("housing").data(PUBLISH, {"id": assigned["id"]}))["publishPoll"][
        "status"
    ] == "ACTIVE"
    assert await polls.official("roads").error_code(CLOSE, {"id": assigned["id"]}) == "FORBIDDEN"
    assert (
        await polls.official("roads").error_code(
            CREATE, {"input": poll_input(departmentId="housing")}
        )
        == "FORBIDDEN"
    )
    assert await polls.citizen().error_code(CREATE, {"input": poll_input()}) == "FORBIDDEN"
    assert await polls.client.error_code(CREATE, {"input": poll_input()}) == "UNAUTHENTICATED"
