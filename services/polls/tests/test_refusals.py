"""The polls subgraph called directly, as an attacker would: list maxima hold before
any cleaning, permission comes before input checks, malformed input gets a coded
4xx, and syntax errors carry a code."""

from __future__ import annotations

import pytest

from veche_kit.abuse import (
    DEEP_CURSOR,
    MALFORMED,
    Malformed,
    aliased,
    cpu_allowance,
    cpu_and_body,
    refusal,
    send,
)

from .conftest import CREATE, DECIDE, VOTE, PollsServer, poll_input

UPDATE = (
    "mutation($id: ID!, $input: UpdatePollInput!) { updatePoll(id: $id, input: $input) { id } }"
)
POLLS_AFTER = "query($after: String) { polls(first: 5, after: $after) { totalCount } }"


@pytest.mark.parametrize("case", MALFORMED, ids=lambda case: case.name)
async def test_malformed_requests_get_a_coded_4xx(polls: PollsServer, case: Malformed) -> None:
    response = await send(polls.client.http, f"{polls.url}/graphql", case)
    assert response.status_code == case.status
    assert refusal(response) == "BAD_USER_INPUT"


async def test_forty_thousand_districts_from_a_citizen_cost_nothing(polls: PollsServer) -> None:
    audience = {"districtIds": [f"district-{i}" for i in range(40_000)]}
    cpu, body = await cpu_and_body(
        polls.citizen(), CREATE, {"input": poll_input(audience=audience)}
    )
    error = body["errors"][0]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "audience.districtIds"}
    assert "at most 50 items" in error["message"]
    assert cpu < cpu_allowance(0.1), cpu  # cleaned before the role check, it blocked polls 12.5 s
    # As a literal in the document, the parser's token bound stops it first.
    literal = ", ".join(f'"d{i}"' for i in range(40_000))
    document = (
        'mutation { createPoll(input: {title: "T", questions: [], '
        f"audience: {{districtIds: [{literal}]}}}}) {{ id }} }}"
    )
    cpu, body = await cpu_and_body(polls.citizen(), document)
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert cpu < cpu_allowance(0.1), cpu


async def test_permission_comes_before_input_checks(polls: PollsServer) -> None:
    bad_audience = {"minAge": 5, "districtIds": ["Not a district!"]}
    citizen = polls.citizen()
    body = await citizen.post(CREATE, {"input": poll_input(audience=bad_audience, title=" ")})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    draft = (await polls.official().data(CREATE, {"input": poll_input()}))["createPoll"]["id"]
    other_department = polls.official(department="housing")
    body = await other_department.post(UPDATE, {"id": draft, "input": {"audience": bad_audience}})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    body = await citizen.post(DECIDE, {"poll": draft, "text": "", "status": "TAKEN"})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    body = await polls.client.post(VOTE, {"poll": draft, "answers": []})
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    # The poll's own official then meets the input checks.
    body = await polls.official().post(CREATE, {"input": poll_input(audience=bad_audience)})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_syntax_and_validation_errors_are_coded(polls: PollsServer) -> None:
    body = await polls.client.post("{ polls { ")
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    body = await polls.client.post("{ polls { nope } }")
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    # The same text again comes from the document cache with the same answer.
    body = await polls.client.post("{ polls { ")
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"


async def test_aliases_are_limited(polls: PollsServer) -> None:
    cpu, body = await cpu_and_body(
        polls.client, aliased("polls(first: 100) { totalCount }", polls.settings.max_aliases + 1)
    )
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert cpu < cpu_allowance(0.1), cpu


@pytest.mark.parametrize("cursor", ["W251bGxd", "WyJhIiwgImIiXQ==", DEEP_CURSOR, "***"])
async def test_cursors_this_api_did_not_issue_are_refused(polls: PollsServer, cursor: str) -> None:
    body = await polls.client.post(POLLS_AFTER, {"after": cursor})
    error = body["errors"][0]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}
    assert "not one this API issued" in error["message"]
