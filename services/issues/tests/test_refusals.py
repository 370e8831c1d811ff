"""The issues subgraph called directly, as an attacker would: limits hold before the
work, malformed input gets a coded 4xx, permission comes before input checks,
and departmentStats is computed once per request however many aliases ask."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest

from veche_issues.service import IssuesService
from veche_kit.abuse import (
    DEEP_CURSOR,
    MALFORMED,
    Malformed,
    aliased,
    cpu_allowance,
    cpu_and_body,
    nested,
    refusal,
    send,
)

from .conftest import IssuesServer, issues_settings

ISSUES_AFTER = "query($after: String) { issues(first: 5, after: $after) { totalCount } }"
REOPEN = "mutation($id: ID!, $r: String!) { reopenIssue(id: $id, reason: $r) { id } }"
CHANGE = "mutation($id: ID!, $s: IssueStatus!, $n: String) { changeIssueStatus(id: $id, status: $s, note: $n) { id } }"
OFFER = "mutation($id: ID!, $m: String!) { offerToSolve(id: $id, message: $m) { id } }"
REPORT = "mutation($input: ReportIssueInput!) { reportIssue(input: $input) { id } }"
STATS_FIELDS = "departmentStats { open overdue resolved medianResponseHours }"
# Eight levels of fields, each alias a page of issues with their reporters' issues.
DEEP_PAGE = (
    "issues(first: 100) { edges { node { reporter { reportedIssues(first: 100) "
    "{ edges { node { id title } } } } } } }"
)


@pytest.mark.parametrize("case", MALFORMED, ids=lambda case: case.name)
async def test_malformed_requests_get_a_coded_4xx(issues: IssuesServer, case: Malformed) -> None:
    response = await send(issues.client.http, f"{issues.url}/graphql", case)
    assert response.status_code == case.status
    assert refusal(response) == "BAD_USER_INPUT"


async def test_a_body_past_the_limit_is_413(issues: IssuesServer) -> None:
    padding = "x" * issues.settings.max_body_bytes
    response = await issues.client.http.post(
        f"{issues.url}/graphql", json={"query": "{ __typename }", "variables": {"p": padding}}
    )
    assert response.status_code == 413
    assert refusal(response) == "BAD_USER_INPUT"


async def test_two_hundred_aliases_eight_deep_are_refused_before_the_work(
    issues: IssuesServer,
) -> None:
    cpu, body = await cpu_and_body(issues.client, aliased(DEEP_PAGE, 200))
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"  # by its tokens
    assert body.get("data") is None
    assert cpu < cpu_allowance(0.1), cpu  # unrefused it took 5.9 s of the service
    cpu, body = await cpu_and_body(
        issues.client, aliased(DEEP_PAGE, issues.settings.max_aliases + 1)
    )
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert "aliases" in body["errors"][0]["message"]
    assert cpu < cpu_allowance(0.1), cpu


async def test_depth_and_tokens_have_limits(issues: IssuesServer) -> None:
    cpu, body = await cpu_and_body(issues.client, nested(issues.settings.max_depth + 1))
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert "deeper" in body["errors"][0]["message"]
    assert cpu < cpu_allowance(0.1), cpu
    cpu, body = await cpu_and_body(issues.client, nested(5000))
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert cpu < cpu_allowance(0.1), cpu
    many = "{ " + " ".join("__typename" for _ in range(issues.settings.max_tokens)) + " }"
    cpu, body = await cpu_and_body(issues.client, many)
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert cpu < cpu_allowance(0.1), cpu


async def test_syntax_and_validation_errors_are_coded(issues: IssuesServer) -> None:
    assert await issues.client.error_code("{ issues { ") == "GRAPHQL_PARSE_FAILED"
    assert await issues.client.error_code("{ noSuchField }") == "GRAPHQL_VALIDATION_FAILED"


def _cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        _cursor([None]),
        _cursor([]),
        _cursor(["a", "b", "c"]),
        _cursor([True]),
        _cursor({"id": "x"}),
        _cursor([["nested"]]),
        DEEP_CURSOR,
        "not base64!",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
async def test_cursors_this_api_did_not_issue_are_refused(
    issues: IssuesServer, cursor: str
) -> None:
    body = await issues.client.post(ISSUES_AFTER, {"after": cursor})
    error = body["errors"][0]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}
    assert "not one this API issued" in error["message"]


async def test_a_cursor_past_its_maximum_is_refused_by_length(issues: IssuesServer) -> None:
    body = await issues.client.post(ISSUES_AFTER, {"after": _cursor([[[[0]]]] * 200)})
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}


async def test_its_own_cursors_still_work(issues: IssuesServer) -> None:
    reporter = issues.citizen()
    await issues.report(reporter)
    await issues.report(reporter)
    page = "query($after: String) { issues(first: 1, after: $after) { edges { node { id } } pageInfo { endCursor } } }"
    first = (await issues.client.data(page))["issues"]
    second = (await issues.client.data(page, {"after": first["pageInfo"]["endCursor"]}))["issues"]
    assert second["edges"][0]["node"]["id"] != first["edges"][0]["node"]["id"]
    near = {"near": {"lat": 54.5293, "lon": 36.2754, "radiusMeters": 5000}}
    nearest = "query($f: IssueFilter, $after: String) { issues(filter: $f, first: 1, after: $after) { pageInfo { endCursor } } }"
    cursor = (await issues.client.data(nearest, {"f": near}))["issues"]["pageInfo"]["endCursor"]
    await issues.client.data(nearest, {"f": near, "after": cursor})


async def test_texts_and_lists_past_their_stated_maximum_are_refused_first(
    issues: IssuesServer,
) -> None:
    citizen = issues.citizen()
    report = {
        "title": "Яма",
        "description": "Глубокая.",
        "category": "potholes",
        "location": {"lat": 54.5, "lon": 36.2},
        "photos": ["https://example.ru/p.jpg"] * 40_000,
    }
    cpu, body = await cpu_and_body(citizen.client, REPORT, {"input": report})
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "photos"}
    assert "at most 10 items" in body["errors"][0]["message"]
    assert cpu < cpu_allowance(0.1), cpu
    body = await citizen.client.post(
        REPORT, {"input": {**report, "photos": [], "description": "x" * 5001}}
    )
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "description"}


async def test_permission_comes_before_input_checks(issues: IssuesServer) -> None:
    reporter, stranger = issues.citizen(), issues.citizen()
    resolved = await issues.seed_issue(status="RESOLVED", reporter=reporter.id)
    fresh = await issues.seed_issue(status="NEW", reporter=reporter.id)
    # Empty reason, missing note, empty message: each wrong, but the caller may not act at all.
    assert await stranger.client.error_code(REOPEN, {"id": resolved, "r": ""}) == "FORBIDDEN"
    assert (
        await stranger.client.error_code(CHANGE, {"id": fresh, "s": "REJECTED", "n": None})
        == "FORBIDDEN"
    )
    assert await stranger.client.error_code(OFFER, {"id": fresh, "m": ""}) == "FORBIDDEN"
    bad_report = {
        "title": "",
        "description": "",
        "category": "?",
        "location": {"lat": 99, "lon": 0},
    }
    assert await issues.client.error_code(REPORT, {"input": bad_report}) == "UNAUTHENTICATED"
    # The reporter may reopen: then the reason is what is wrong.
    body = await reporter.client.post(REOPEN, {"id": resolved, "r": " "})
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "reason"}


async def test_department_stats_are_computed_once_per_request(issues: IssuesServer) -> None:
    store = issues.service.store
    departments = len(await store.department_ids())
    before = store.stats_computed
    started = time.process_time()
    body = await issues.client.data(aliased(STATS_FIELDS, 30))
    cpu = time.process_time() - started
    assert len(body) == 30
    assert store.stats_computed - before == departments  # not 30 times that
    assert cpu < cpu_allowance(1.0), cpu


async def test_department_stats_are_reused_for_a_few_seconds(
    issues: IssuesServer, mongo_server_url: str, amqp_url: str, tmp_path: Path
) -> None:
    # The fixture's service computes every time; this one over the same store keeps them.
    settings = issues_settings(mongo_server_url, amqp_url, tmp_path, stats_cache_seconds=30.0)
    service = IssuesService(issues.service.store, issues.service.outbox, settings)
    store = service.store
    before = store.stats_computed
    first = await service.department_stats()
    second = await service.department_stats()
    assert first == second
    assert store.stats_computed - before == len(first)
    await issues.service.department_stats()
    assert store.stats_computed - before == 2 * len(first)
