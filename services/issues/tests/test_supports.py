"""Supports: one per person, idempotent, exact under concurrency; the threshold crossed once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from aio_pika.abc import AbstractQueue

from veche_kit.clock import utcnow
from veche_stack.testing import bound_queue, eventually, take

from .conftest import (
    BIG_CATEGORY,
    BIG_THRESHOLD,
    ISSUE,
    OPEN_CATEGORY,
    SMALL_THRESHOLD,
    IssuesServer,
)

SUPPORT = "mutation($id: ID!) { supportIssue(id: $id) { id status supportersCount supportedByMe } }"
WITHDRAW = (
    "mutation($id: ID!) { withdrawSupport(id: $id) { id status supportersCount supportedByMe } }"
)


async def test_support_is_once_per_person_and_withdrawable(issues: IssuesServer) -> None:
    reporter, fan = issues.citizen(), issues.citizen()
    issue = await issues.report(reporter)
    first = (await fan.client.data(SUPPORT, {"id": issue["id"]}))["supportIssue"]
    again = (await fan.client.data(SUPPORT, {"id": issue["id"]}))["supportIssue"]
    assert (first["supportersCount"], first["supportedByMe"]) == (1, True)
    assert (again["supportersCount"], again["supportedByMe"]) == (1, True)
    view = (await reporter.client.data(ISSUE, {"id": issue["id"]}))["issue"]
    assert (view["supportersCount"], view["supportedByMe"]) == (1, False)
    gone = (await fan.client.data(WITHDRAW, {"id": issue["id"]}))["withdrawSupport"]
    assert (gone["supportersCount"], gone["supportedByMe"]) == (0, False)
    gone = (await fan.client.data(WITHDRAW, {"id": issue["id"]}))["withdrawSupport"]
    assert gone["supportersCount"] == 0
    closed = await issues.seed_issue(status="CLOSED", reporter=reporter.id)
    body = await fan.client.post(SUPPORT, {"id": closed})
    assert body["errors"][0]["extensions"]["code"] == "CONFLICT"


async def test_initiative_goes_to_review_at_its_threshold(
    issues: IssuesServer, amqp_url: str
) -> None:
    author = issues.citizen(district="moskovsky")
    async with bound_queue(amqp_url, issues.settings.namespace, "initiative.proposed") as queue:
        initiative = await issues.propose(author, location={"lat": 54.51, "lon": 36.26})

        async def arrived() -> list[dict[str, Any]]:
            return [e for e in await take(queue) if e["data"]["issue_id"] == initiative["id"]]

        (proposed,) = await eventually(arrived)
    assert proposed["data"] == {
        "issue_id": initiative["id"],
        "title": "Сквер на месте пустыря",
        "category": "yards",
        "author_id": author.id,
        "district_id": "moskovsky",
        "support_threshold": SMALL_THRESHOLD,
    }
    assert initiative["kind"] == "INITIATIVE"
    assert initiative["status"] == "COLLECTING"
    assert initiative["supportThreshold"] == SMALL_THRESHOLD
    for n in range(1, SMALL_THRESHOLD + 1):
        supported = (await issues.citizen().client.data(SUPPORT, {"id": initiative["id"]}))[
            "supportIssue"
        ]
        assert supported["supportersCount"] == n
        assert supported["status"] == ("UNDER_REVIEW" if n == SMALL_THRESHOLD else "COLLECTING")
    view = (await issues.client.data(ISSUE, {"id": initiative["id"]}))["issue"]
    assert view["history"] == [
        {
            "from": "COLLECTING",
            "to": "UNDER_REVIEW",
            "by": None,
            "note": f"{SMALL_THRESHOLD} supports reached: handed to the department for review.",
        }
    ]


FANS = 200


def _assert_answers_show_the_threshold(results: list[dict[str, Any]]) -> None:
    """Each answer shows the status its support left (or found): collecting below 150."""
    assert [r.get("errors") for r in results] == [None] * FANS
    statuses = sorted(
        (r["data"]["supportIssue"]["supportersCount"], r["data"]["supportIssue"]["status"])
        for r in results
    )
    assert [s for _, s in statuses[: BIG_THRESHOLD - 1]] == ["COLLECTING"] * (BIG_THRESHOLD - 1)
    assert [s for _, s in statuses[BIG_THRESHOLD - 1 :]] == ["UNDER_REVIEW"] * (
        FANS - BIG_THRESHOLD + 1
    )


async def _all_support_events(
    issues: IssuesServer, queue: AbstractQueue, issue_id: str
) -> list[dict[str, Any]]:
    """Every event about the initiative, once the outbox is empty (a duplicate would be here)."""
    mine: list[dict[str, Any]] = []

    async def all_arrived() -> bool:
        mine.extend(e for e in await take(queue) if e["data"]["issue_id"] == issue_id)
        types = [e["type"] for e in mine]
        return types.count("issue.supported") >= FANS and len(types) >= FANS + 2

    async def relay_idle() -> bool:
        return (await issues.service.relay.backlog()).pending == 0  # type: ignore[union-attr]

    await eventually(all_arrived, timeout=30)
    # Everything written is published (and confirmed routed).
    await eventually(relay_idle)
    mine.extend(e for e in await take(queue) if e["data"]["issue_id"] == issue_id)
    return mine


def _assert_threshold_crossed_once(mine: list[dict[str, Any]], author_id: str) -> None:
    reached = [e for e in mine if e["type"] == "initiative.threshold_reached"]
    assert len(reached) == 1
    assert reached[0]["data"]["support_threshold"] == BIG_THRESHOLD
    assert reached[0]["data"]["supporters_count"] >= BIG_THRESHOLD
    assert reached[0]["data"]["author_id"] == author_id
    changed = [e for e in mine if e["type"] == "issue.status_changed"]
    assert [(c["data"]["from_status"], c["data"]["to_status"]) for c in changed] == [
        ("COLLECTING", "UNDER_REVIEW")
    ]
    counts = sorted(e["data"]["supporters_count"] for e in mine if e["type"] == "issue.supported")
    assert counts == list(range(1, FANS + 1))


async def test_concurrent_supports_are_exact_and_cross_the_threshold_once(
    issues: IssuesServer, amqp_url: str
) -> None:
    author = issues.citizen()
    initiative = await issues.propose(author, category=BIG_CATEGORY, title="Новый парк")
    assert initiative["supportThreshold"] == BIG_THRESHOLD
    issue_id = initiative["id"]
    fans = [issues.citizen() for _ in range(FANS)]
    keys = ("initiative.threshold_reached", "issue.supported", "issue.status_changed")
    async with bound_queue(amqp_url, issues.settings.namespace, *keys) as queue:
        results = await asyncio.gather(
            *(fan.client.post(SUPPORT, {"id": issue_id}) for fan in fans)
        )
        _assert_answers_show_the_threshold(list(results))
        view = (await issues.client.data(ISSUE, {"id": issue_id}))["issue"]
        assert view["supportersCount"] == FANS
        assert view["status"] == "UNDER_REVIEW"
        assert await issues.service.db["supports"].count_documents({"issue_id": issue_id}) == FANS
        mine = await _all_support_events(issues, queue, issue_id)
        _assert_threshold_crossed_once(mine, author.id)


async def test_sweep_repairs_a_support_a_crash_left_uncounted(issues: IssuesServer) -> None:
    reporter = issues.citizen()
    issue_id = await issues.seed_issue(status="NEW", reporter=reporter.id, supporters_count=1)
    db = issues.service.db
    old = utcnow() - timedelta(minutes=5)
    await db["supports"].insert_many(
        [
            {
                "_id": f"{issue_id}-a",
                "issue_id": issue_id,
                "user_id": "a",
                "at": old,
                "counted": True,
            },
            # Inserted, then the process died before counting it.
            {
                "_id": f"{issue_id}-b",
                "issue_id": issue_id,
                "user_id": "b",
                "at": old,
                "counted": False,
            },
        ]
    )
    report = await issues.service.sweep()
    assert report["repaired"] >= 1
    issue = await db["issues"].find_one({"_id": issue_id})
    assert issue is not None
    assert issue["supporters_count"] == 2
    repaired = await db["supports"].find_one({"_id": f"{issue_id}-b"})
    assert repaired is not None
    assert repaired["counted"] is True
    assert repaired["envelope"]["type"] == "issue.supported"


async def test_initiative_supports_need_a_verified_phone_by_default(issues: IssuesServer) -> None:
    """Issue #11: throwaway accounts must not push an initiative to review."""
    author = issues.citizen()
    initiative = await issues.propose(author)
    throwaway = issues.person(verified=False)
    body = await throwaway.client.post(SUPPORT, {"id": initiative["id"]})
    assert body["errors"][0]["extensions"] == {"code": "NOT_ELIGIBLE", "reason": "VERIFICATION"}
    view = (await author.client.data(ISSUE, {"id": initiative["id"]}))["issue"]
    assert view["supportersCount"] == 0
    # A verification the token does not show yet, but the projection has heard of, counts.
    await issues.service.db["users"].update_one(
        {"_id": throwaway.id}, {"$set": {"phone_verified": True}}, upsert=True
    )
    supported = (await throwaway.client.data(SUPPORT, {"id": initiative["id"]}))["supportIssue"]
    assert supported["supportersCount"] == 1
    # Problems take anyone's support; so do initiatives of a category configured so.
    problem = await issues.report(author)
    anyone = issues.person(verified=False)
    assert (await anyone.client.data(SUPPORT, {"id": problem["id"]}))["supportIssue"][
        "supportedByMe"
    ]
    open_one = await issues.propose(author, category=OPEN_CATEGORY)
    assert (await anyone.client.data(SUPPORT, {"id": open_one["id"]}))["supportIssue"][
        "supportedByMe"
    ]
    categories = (await anyone.client.data("{ issueCategories { id verifiedSupportsOnly } }"))[
        "issueCategories"
    ]
    flags = {c["id"]: c["verifiedSupportsOnly"] for c in categories}
    assert flags[OPEN_CATEGORY] is False
    assert flags["yards"] is True
