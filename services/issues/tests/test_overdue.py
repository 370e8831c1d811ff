"""issue.overdue once per late issue; issue.support_withdrawn with the new count."""

from __future__ import annotations

import asyncio
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
