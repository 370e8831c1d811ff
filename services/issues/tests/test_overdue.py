"""issue.overdue once per late issue; issue.support_withdrawn with the new count."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from veche_kit.clock import utcnow
from veche_stack.testing import bound_queue, eventually, take

from .conftest import IssuesServer

SUPPORT = "mutation($id: ID!) { supportIssue(id: $id) { supportersCount } }"
WITHDRAW = "mutation($id: ID!) { withdrawSupport(id: $id) { supportersCount } }"


async def test_overdue_is_published_once_however_often_sweeps_run(
    issues: IssuesServer, amqp_url: str
) -> None:
    reporter = issues.citizen()
    now = utcnow()
    late = await issues.seed_issue(
        status="ACCEPTED", reporter=reporter.id, due_at=now - timedelta(hours=1)
    )
    on_time = await issues.seed_issue(
        status="ACCEPTED", reporter=reporter.id, due_at=now + timedelta(days=3)
    )
    done = await issues.seed_issue(
        status="RESOLVED", reporter=reporter.id, due_at=now - timedelta(days=1)
    )
    async with bound_queue(amqp_url, issues.settings.namespace, "issue.overdue") as queue:
        # Overlapping sweeps (as several replicas would run) decide once.
        await asyncio.gather(*[issues.service.flag_overdue(utcnow()) for _ in range(5)])
        await issues.service.flag_overdue(utcnow())
        seen: list[dict[str, Any]] = []

        async def arrived() -> bool:
            seen.extend(
                e for e in await take(queue) if e["data"]["issue_id"] in {late, on_time, done}
            )
            return bool(seen)

        await eventually(arrived)
    assert [e["data"]["issue_id"] for e in seen] == [late]
    assert seen[0]["data"]["department_id"] == "roads"
    assert seen[0]["data"]["reporter_id"] == reporter.id
    # Exactly one event was ever written for it, whatever the timing of delivery.
    written = issues.service.db["outbox"].count_documents(
        {"type": "issue.overdue", "envelope.data.issue_id": {"$in": [late, on_time, done]}}
    )
    assert await written == 1


async def test_withdrawing_a_support_is_published(issues: IssuesServer, amqp_url: str) -> None:
    reporter, fan = issues.citizen(), issues.citizen()
    issue = await issues.report(reporter)
    async with bound_queue(amqp_url, issues.settings.namespace, "issue.support_withdrawn") as queue:
        await fan.client.data(SUPPORT, {"id": issue["id"]})
        assert (await fan.client.data(WITHDRAW, {"id": issue["id"]}))["withdrawSupport"][
            "supportersCount"
        ] == 0
        await fan.client.data(WITHDRAW, {"id": issue["id"]})  # nothing left to withdraw: no event

        async def arrived() -> list[dict[str, Any]]:
            return [e for e in await take(queue) if e["data"]["issue_id"] == issue["id"]]

        events = await eventually(arrived)
    assert [e["data"] for e in events] == [
        {"issue_id": issue["id"], "kind": "PROBLEM", "user_id": fan.id, "supporters_count": 0}
    ]


COMMENT = "mutation($id: ID!, $t: String!) { commentOnIssue(id: $id, text: $t) { official } }"
LIST = """
query($filter: IssueFilter, $first: Int) {
  issues(filter: $filter, first: $first) {
    totalCount pageInfo { hasNextPage } edges { node { id overdue } }
  }
}"""


async def _department_with_issues(issues: IssuesServer) -> tuple[str, dict[str, str]]:
    """A department of its own, with an issue in each situation the deadline knows."""
    department = f"dept-{uuid.uuid4().hex[:8]}"  # seeded issues only: no category routes here
    reporter, now = issues.citizen(), utcnow()
    past, soon = now - timedelta(hours=1), now + timedelta(days=2)

    async def seed(status: str, **fields: Any) -> str:
        return await issues.seed_issue(
            status=status, reporter=reporter.id, department=department, **fields
        )

    cases = {
        "late": await seed("ACCEPTED", due_at=past),
        "answered": await seed("ACCEPTED", due_at=past),
        "working": await seed("IN_PROGRESS", due_at=past),
        "on_time": await seed("ACCEPTED", due_at=soon),
        "new": await seed("NEW"),
    }
    # The department's official answers one of the late ones in a comment.
    said = await issues.official(department).client.data(
        COMMENT, {"id": cases["answered"], "t": "Выедем в четверг."}
    )
    assert said["commentOnIssue"]["official"] is True
    return department, cases


async def _listed(issues: IssuesServer, **filter: Any) -> set[str]:
    page = (await issues.client.data(LIST, {"filter": filter, "first": 50}))["issues"]
    assert page["totalCount"] == len(page["edges"])
    listed = {e["node"]["id"]: e["node"]["overdue"] for e in page["edges"]}
    if "overdue" in filter:
        assert set(listed.values()) <= {filter["overdue"]}, listed
    return set(listed)


async def test_overdue_is_for_the_answer_and_filters_a_departments_list(
    issues: IssuesServer,
) -> None:
    department, cases = await _department_with_issues(issues)
    # Another department's late issue stays off this department's dashboard.
    elsewhere = await issues.seed_issue(
        status="ACCEPTED", reporter=issues.citizen().id, due_at=utcnow() - timedelta(days=1)
    )
    late, others = {cases["late"]}, set(cases.values()) - {cases["late"]}
    assert await _listed(issues, departmentId=department, overdue=True) == late
    assert await _listed(issues, departmentId=department, overdue=False) == others
    assert await _listed(issues, departmentId=department) == set(cases.values())
    working = await _listed(issues, departmentId=department, overdue=True, status="IN_PROGRESS")
    assert working == set()
    waiting = await _listed(issues, departmentId=department, overdue=False, status="ACCEPTED")
    assert waiting == {cases["answered"], cases["on_time"]}
    assert elsewhere in await _listed(issues, overdue=True)
    # Filtered in the query itself: a page of one counts the whole match.
    one = {"filter": {"departmentId": department, "overdue": False}, "first": 1}
    page = (await issues.client.data(LIST, one))["issues"]
    assert (page["totalCount"], len(page["edges"]), page["pageInfo"]["hasNextPage"]) == (4, 1, True)
    # The stats and the sweep's issue.overdue agree with the field.
    stats = await issues.service.store.department_stats(department, utcnow())
    assert stats["overdue"] == 1
    await issues.service.flag_overdue(utcnow())
    flagged = issues.service.db["issues"].find(
        {"_id": {"$in": list(cases.values())}, "overdue_notified": True}, {"_id": 1}
    )
    assert [d["_id"] async for d in flagged] == [cases["late"]]
