"""The status workflow: the whole role matrix, deadlines, overdue, auto-close, comments, stats."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from veche_issues import domain
from veche_kit.clock import utcnow
from veche_stack.testing import bound_queue, eventually, take

from .conftest import CHANGE, ISSUE, IssuesServer, Person, parse_time

ALL = [
    "NEW",
    "ACCEPTED",
    "COLLECTING",
    "UNDER_REVIEW",
    "IN_PROGRESS",
    "RESOLVED",
    "CLOSED",
    "REJECTED",
]
ROLES = [
    "reporter",
    "stranger",
    "solver",
    "other_solver",
    "official",
    "other_official",
    "moderator",
    "admin",
]
CITY = {"official", "moderator", "admin"}
OFFICIALS = {"official", "admin"}

# Who may make each step of the workflow; everyone else is FORBIDDEN. Steps not
# listed are INVALID_TRANSITION for everyone, admins included.
MATRIX: dict[tuple[str, str, str], set[str]] = {
    ("PROBLEM", "NEW", "ACCEPTED"): CITY,
    ("PROBLEM", "NEW", "REJECTED"): CITY,
    ("PROBLEM", "ACCEPTED", "IN_PROGRESS"): OFFICIALS,
    ("PROBLEM", "IN_PROGRESS", "RESOLVED"): OFFICIALS | {"solver"},
    ("PROBLEM", "RESOLVED", "CLOSED"): {"reporter"},
    ("PROBLEM", "RESOLVED", "IN_PROGRESS"): {"reporter"},
    ("INITIATIVE", "COLLECTING", "UNDER_REVIEW"): set(),  # only Veche, at the threshold
    ("INITIATIVE", "COLLECTING", "REJECTED"): {"moderator", "admin"},
    ("INITIATIVE", "UNDER_REVIEW", "ACCEPTED"): OFFICIALS,
    ("INITIATIVE", "UNDER_REVIEW", "REJECTED"): OFFICIALS,
    ("INITIATIVE", "ACCEPTED", "IN_PROGRESS"): OFFICIALS,
    ("INITIATIVE", "IN_PROGRESS", "RESOLVED"): OFFICIALS | {"solver"},
    ("INITIATIVE", "RESOLVED", "CLOSED"): {"reporter"},
    ("INITIATIVE", "RESOLVED", "IN_PROGRESS"): {"reporter"},
}
STATES = {
    "PROBLEM": ["NEW", "ACCEPTED", "IN_PROGRESS", "RESOLVED", "CLOSED", "REJECTED"],
    "INITIATIVE": [
        "COLLECTING",
        "UNDER_REVIEW",
        "ACCEPTED",
        "IN_PROGRESS",
        "RESOLVED",
        "CLOSED",
        "REJECTED",
    ],
}

OFFER = """mutation($id: ID!, $m: String!) { offerToSolve(id: $id, message: $m) { id status solver { id } } }"""
ACCEPT_OFFER = """mutation($o: ID!) { acceptSolverOffer(offerId: $o) { id status solver { id } solverOffers { id status } } }"""
MARK_SOLVED = """mutation($id: ID!, $n: String) { markSolved(id: $id, note: $n) { id status } }"""
CONFIRM = """mutation($id: ID!) { confirmResolution(id: $id) { id status } }"""
REOPEN = """mutation($id: ID!, $r: String!) { reopenIssue(id: $id, reason: $r) { id status } }"""
COMMENT = """mutation($id: ID!, $t: String!) { commentOnIssue(id: $id, text: $t) { id text official author { id } } }"""
STATS = "{ departmentStats { department { id } open overdue resolved medianResponseHours } }"
ENTITIES = """
query($reps: [_Any!]!) {
  _entities(representations: $reps) {
    ... on User { id reportedIssues { totalCount edges { node { id } } } solvingIssues { totalCount edges { node { id status } } } }
  }
}"""


def _cast(issues: IssuesServer) -> dict[str, Person]:
    return {
        "reporter": issues.citizen(),
        "stranger": issues.citizen(),
        "solver": issues.solver(),
        "other_solver": issues.solver(),
        "official": issues.official("roads"),
        "other_official": issues.official("housing"),
        "moderator": issues.moderator(),
        "admin": issues.person("ADMIN"),
    }


async def _error(person: Person, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    body = await person.client.post(query, variables)
    assert body.get("errors"), body
    error: dict[str, Any] = body["errors"][0]
    return error


def _allowed_from(kind: str, current: str) -> list[str]:
    return [to for (k, frm, to) in MATRIX if k == kind and frm == current]


async def _refused_for_everyone(
    admin: Person, issue: str, kind: str, current: str, target: str
) -> None:
    """A step off the workflow: even an admin hears INVALID_TRANSITION and what is allowed."""
    error = await _error(admin, CHANGE, {"id": issue, "status": target, "note": "n"})
    assert error["extensions"]["code"] == "INVALID_TRANSITION", (kind, current, target)
    assert error["extensions"]["allowed"] == _allowed_from(kind, current)


async def _step_made(person: Person, role: str, issue: str, current: str, target: str) -> None:
    """An allowed role makes the step, and the history names them with their note."""
    variables = {"id": issue, "status": target, "note": f"{role} says so"}
    changed = (await person.client.data(CHANGE, variables))["changeIssueStatus"]
    assert changed["status"] == target, (current, target, role)
    assert changed["history"][-1] == {
        "from": current,
        "to": target,
        "by": {"id": person.id},
        "note": f"{role} says so",
        "at": changed["history"][-1]["at"],
    }


async def _step_forbidden(person: Person, role: str, issue: str, target: str) -> None:
    variables = {"id": issue, "status": target, "note": f"{role} says so"}
    error = await _error(person, CHANGE, variables)
    assert error["extensions"]["code"] == "FORBIDDEN", (target, role)


async def test_every_step_for_every_role(issues: IssuesServer) -> None:
    cast = _cast(issues)

    async def seed(kind: str, status: str) -> str:
        return await issues.seed_issue(
            status=status, kind=kind, reporter=cast["reporter"].id, solver=cast["solver"].id
        )

    checked = 0
    for kind, states in STATES.items():
        for current in states:
            shared = await seed(kind, current)  # refusals leave it as it is
            for target in ALL:
                allowed_roles = MATRIX.get((kind, current, target))
                if allowed_roles is None:
                    await _refused_for_everyone(cast["admin"], shared, kind, current, target)
                    checked += 1
                    continue
                for role in ROLES:
                    if role in allowed_roles:
                        fresh = await seed(kind, current)
                        await _step_made(cast[role], role, fresh, current, target)
                    else:
                        await _step_forbidden(cast[role], role, shared, target)
                    checked += 1
    assert checked == 14 * len(ROLES) + (6 * 8 - 6) + (7 * 8 - 8)
    # The refusals changed nothing.
    still = await issues.service.db["issues"].count_documents(
        {"reporter_id": cast["reporter"].id, "history.0": {"$exists": True}}
    )
    assert still == sum(len(roles) for roles in MATRIX.values())


async def test_rejecting_and_reopening_need_a_reason(issues: IssuesServer) -> None:
    reporter, moderator = issues.citizen(), issues.moderator()
    issue = await issues.report(reporter)
    error = await _error(moderator, CHANGE, {"id": issue["id"], "status": "REJECTED"})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "note"}
    resolved = await issues.seed_issue(status="RESOLVED", reporter=reporter.id)
    error = await _error(reporter, REOPEN, {"id": resolved, "r": "  "})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "reason"}
    error = await _error(reporter, CONFIRM, {"id": issue["id"]})
    assert error["extensions"]["code"] == "INVALID_TRANSITION"
    assert error["extensions"]["allowed"] == ["ACCEPTED", "REJECTED"]


# Every event of the solver loop, in the order the steps happen.
LOOP_EVENTS = [
    "issue.reported",
    "issue.status_changed",
    "issue.solver_offered",
    "issue.solver_offered",
    "issue.solver_assigned",
    "issue.status_changed",
    "issue.status_changed",
    "issue.resolved",
    "issue.status_changed",
    "issue.status_changed",
    "issue.resolved",
    "issue.status_changed",
    "issue.closed",
]


async def _code(person: Person, query: str, variables: dict[str, Any]) -> str:
    code: str = (await _error(person, query, variables))["extensions"]["code"]
    return code


async def _accept(moderator: Person, issue_id: str) -> None:
    """Accepting starts the deadline."""
    accepted = (await moderator.client.data(CHANGE, {"id": issue_id, "status": "ACCEPTED"}))[
        "changeIssueStatus"
    ]
    assert accepted["status"] == "ACCEPTED"
    assert accepted["dueAt"] is not None
    assert accepted["overdue"] is False


async def _offer(solver: Person, issue_id: str, message: str) -> dict[str, Any]:
    offer: dict[str, Any] = (await solver.client.data(OFFER, {"id": issue_id, "m": message}))[
        "offerToSolve"
    ]
    return offer


async def _take_offer(
    reporter: Person, solver: Person, offer: dict[str, Any], rival_offer: dict[str, Any]
) -> None:
    """The reporter accepts one offer: the issue is in progress, the rival's offer declined."""
    taken = (await reporter.client.data(ACCEPT_OFFER, {"o": offer["id"]}))["acceptSolverOffer"]
    assert taken["status"] == "IN_PROGRESS"
    assert taken["solver"] == {"id": solver.id}
    assert taken["solverOffers"] == [
        {"id": offer["id"], "status": "ACCEPTED"},
        {"id": rival_offer["id"], "status": "DECLINED"},
    ]
    assert await _code(reporter, ACCEPT_OFFER, {"o": rival_offer["id"]}) == "CONFLICT"


async def _status(person: Person, query: str, field: str, variables: dict[str, Any]) -> str:
    status: str = (await person.client.data(query, variables))[field]["status"]
    return status


async def _solve_reopen_solve_confirm(
    reporter: Person, solver: Person, rival: Person, stranger: Person, issue_id: str
) -> None:
    """Only the solver marks it solved, only the reporter reopens and confirms."""
    assert await _code(rival, MARK_SOLVED, {"id": issue_id}) == "FORBIDDEN"
    solved = {"id": issue_id, "n": "Заделано"}
    assert await _status(solver, MARK_SOLVED, "markSolved", solved) == "RESOLVED"
    assert await _code(stranger, REOPEN, {"id": issue_id, "r": "Нет"}) == "FORBIDDEN"
    reopen = {"id": issue_id, "r": "Яма снова открылась"}
    assert await _status(reporter, REOPEN, "reopenIssue", reopen) == "IN_PROGRESS"
    solved = {"id": issue_id, "n": "Переделано"}
    assert await _status(solver, MARK_SOLVED, "markSolved", solved) == "RESOLVED"
    assert await _code(solver, CONFIRM, {"id": issue_id}) == "FORBIDDEN"
    confirm = {"id": issue_id}
    assert await _status(reporter, CONFIRM, "confirmResolution", confirm) == "CLOSED"


async def _history_tells_the_loop(
    reporter: Person, moderator: Person, solver: Person, issue_id: str
) -> None:
    final = (await reporter.client.data(ISSUE, {"id": issue_id}))["issue"]
    assert [(h["from"], h["to"], h["by"]["id"], h["note"]) for h in final["history"]] == [
        ("NEW", "ACCEPTED", moderator.id, None),
        ("ACCEPTED", "IN_PROGRESS", reporter.id, "Solver offer accepted."),
        ("IN_PROGRESS", "RESOLVED", solver.id, "Заделано"),
        ("RESOLVED", "IN_PROGRESS", reporter.id, "Яма снова открылась"),
        ("IN_PROGRESS", "RESOLVED", solver.id, "Переделано"),
        ("RESOLVED", "CLOSED", reporter.id, "Confirmed by the reporter."),
    ]
    assert final["solver"] == {"id": solver.id}


async def _users_list_the_issue(
    issues: IssuesServer, reporter: Person, solver: Person, issue_id: str
) -> None:
    """The User entities list it as reported by one and solved by the other."""
    reps = [{"__typename": "User", "id": reporter.id}, {"__typename": "User", "id": solver.id}]
    users = (await issues.client.data(ENTITIES, {"reps": reps}))["_entities"]
    assert users[0]["reportedIssues"]["edges"] == [{"node": {"id": issue_id}}]
    assert users[1]["solvingIssues"]["edges"] == [{"node": {"id": issue_id, "status": "CLOSED"}}]


async def _loop_events_arrive(queue: Any, reporter: Person, solver: Person, issue_id: str) -> None:
    mine: list[dict[str, Any]] = []

    async def all_arrived() -> bool:
        mine.extend(e for e in await take(queue) if e["data"]["issue_id"] == issue_id)
        return len(mine) >= len(LOOP_EVENTS)

    await eventually_events(all_arrived)
    assert sorted(e["type"] for e in mine) == sorted(LOOP_EVENTS)
    changes = [e["data"] for e in mine if e["type"] == "issue.status_changed"]
    assert [(c["from_status"], c["to_status"]) for c in changes] == [
        ("NEW", "ACCEPTED"),
        ("ACCEPTED", "IN_PROGRESS"),
        ("IN_PROGRESS", "RESOLVED"),
        ("RESOLVED", "IN_PROGRESS"),
        ("IN_PROGRESS", "RESOLVED"),
        ("RESOLVED", "CLOSED"),
    ]
    (closed_event,) = [e["data"] for e in mine if e["type"] == "issue.closed"]
    assert closed_event["confirmed_by"] == reporter.id
    assert closed_event["solver_id"] == solver.id


async def test_full_solver_loop(issues: IssuesServer, amqp_url: str) -> None:
    reporter, moderator, stranger = issues.citizen(), issues.moderator(), issues.citizen()
    solver = await issues.skilled(issues.solver())
    rival = await issues.skilled(issues.solver(district="oktyabrsky"))
    async with bound_queue(amqp_url, issues.settings.namespace, "issue.#") as queue:
        issue_id = (await issues.report(reporter))["id"]
        await _accept(moderator, issue_id)

        offer = await _offer(solver, issue_id, "Заделаю за два дня")
        assert offer["status"] == "PENDING"
        assert offer["solver"] == {"id": solver.id}
        rival_offer = await _offer(rival, issue_id, "Могу завтра")
        assert await _code(solver, OFFER, {"id": issue_id, "m": "Ещё раз"}) == "CONFLICT"
        assert await _code(stranger, OFFER, {"id": issue_id, "m": "Я"}) == "FORBIDDEN"
        assert await _code(stranger, ACCEPT_OFFER, {"o": offer["id"]}) == "FORBIDDEN"

        await _take_offer(reporter, solver, offer, rival_offer)
        await _solve_reopen_solve_confirm(reporter, solver, rival, stranger, issue_id)
        await _history_tells_the_loop(reporter, moderator, solver, issue_id)
        await _users_list_the_issue(issues, reporter, solver, issue_id)
        await _loop_events_arrive(queue, reporter, solver, issue_id)


async def eventually_events(check: Any) -> None:
    await eventually(check, timeout=20)


async def test_deadline_counts_working_days_and_overdue(issues: IssuesServer) -> None:
    reporter, official = issues.citizen(), issues.official("roads")
    issue = await issues.report(reporter)
    accepted = (await official.client.data(CHANGE, {"id": issue["id"], "status": "ACCEPTED"}))[
        "changeIssueStatus"
    ]
    accepted_at = parse_time(accepted["history"][-1]["at"])
    assert parse_time(accepted["dueAt"]) == domain.add_working_days(
        accepted_at, 8, issues.service.holidays, 3
    )
    assert len(issues.service.holidays) == 28
    past = utcnow() - timedelta(hours=1)
    late = await issues.seed_issue(status="ACCEPTED", reporter=reporter.id, due_at=past)
    done = await issues.seed_issue(status="RESOLVED", reporter=reporter.id, due_at=past)
    late_view = (await issues.client.data(ISSUE, {"id": late}))["issue"]
    done_view = (await issues.client.data(ISSUE, {"id": done}))["issue"]
    assert late_view["overdue"] is True
    assert done_view["overdue"] is False


async def test_sweep_closes_issues_left_resolved(issues: IssuesServer, amqp_url: str) -> None:
    reporter = issues.citizen()
    long_ago = utcnow() - timedelta(days=15)
    waiting = await issues.seed_issue(status="RESOLVED", reporter=reporter.id, resolved_at=long_ago)
    recent = await issues.seed_issue(status="RESOLVED", reporter=reporter.id)
    async with bound_queue(amqp_url, issues.settings.namespace, "issue.closed") as queue:
        report = await issues.service.sweep()
        assert report["closed"] >= 1
        view = (await issues.client.data(ISSUE, {"id": waiting}))["issue"]
        assert view["status"] == "CLOSED"
        assert view["history"][-1]["by"] is None
        assert (await issues.client.data(ISSUE, {"id": recent}))["issue"]["status"] == "RESOLVED"
        closed: list[dict[str, Any]] = []

        async def arrived() -> bool:
            closed.extend(e for e in await take(queue) if e["data"]["issue_id"] == waiting)
            return bool(closed)

        await eventually_events(arrived)
        assert closed[0]["data"]["confirmed_by"] is None
        assert len(closed) == 1


SUPPORT = "mutation($id: ID!) { supportIssue(id: $id) { id } }"


async def _comment(person: Person, issue_id: str, text: str) -> dict[str, Any]:
    comment: dict[str, Any] = (await person.client.data(COMMENT, {"id": issue_id, "t": text}))[
        "commentOnIssue"
    ]
    return comment


async def _answer_announced(
    issues: IssuesServer, amqp_url: str, official: Person, issue_id: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The official answers; returns the comment and its issue.commented event."""
    async with bound_queue(amqp_url, issues.settings.namespace, "issue.commented") as queue:
        answer = await _comment(official, issue_id, "На этой неделе.")

        async def arrived() -> list[dict[str, Any]]:
            return [e for e in await take(queue) if e["data"]["comment_id"] == answer["id"]]

        (event,) = await eventually(arrived)
    return answer, event


async def _bad_comments_refused(issues: IssuesServer, reporter: Person, issue_id: str) -> None:
    body = await issues.client.post(COMMENT, {"id": issue_id, "t": "аноним"})
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    error = await _error(reporter, COMMENT, {"id": issue_id, "t": "x" * 2001})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "text"}


async def test_comments_mark_the_departments_answers(issues: IssuesServer, amqp_url: str) -> None:
    reporter, official, other = (
        issues.citizen(),
        issues.official("roads"),
        issues.official("housing"),
    )
    issue_id = (await issues.report(reporter))["id"]
    fan = issues.citizen()
    await fan.client.data(SUPPORT, {"id": issue_id})
    mine = await _comment(reporter, issue_id, "Когда починят?")
    answer, event = await _answer_announced(issues, amqp_url, official, issue_id)
    assert event["data"] == {
        "issue_id": issue_id,
        "title": "Яма на дороге",
        "comment_id": answer["id"],
        "author_id": official.id,
        "official": True,
        "excerpt": "На этой неделе.",
        "reporter_id": reporter.id,
        "supporter_ids": [fan.id],
    }
    aside = await _comment(other, issue_id, "Передали коллегам.")
    assert (mine["official"], answer["official"], aside["official"]) == (False, True, False)
    assert answer["author"] == {"id": official.id}
    await _bad_comments_refused(issues, reporter, issue_id)
    view = (await issues.client.data(ISSUE, {"id": issue_id}))["issue"]
    assert view["comments"]["totalCount"] == 3
    assert [e["node"]["id"] for e in view["comments"]["edges"]] == [
        mine["id"],
        answer["id"],
        aside["id"],
    ]


async def test_department_stats(issues: IssuesServer) -> None:
    tag = uuid.uuid4().hex[:8]
    department = f"dept-{tag}"
    await issues.service.db["categories"].insert_one(
        {"_id": f"cat-{tag}", "name": f"Test {tag}", "department_id": department}
    )
    reporter, official = issues.citizen(), issues.official(department)
    now = utcnow()

    async def seed(status: str, **fields: Any) -> str:
        return await issues.seed_issue(
            status=status,
            reporter=reporter.id,
            department=department,
            category=f"cat-{tag}",
            **fields,
        )

    await seed("NEW")
    await seed("ACCEPTED", due_at=now - timedelta(days=1))
    await seed("IN_PROGRESS", due_at=now + timedelta(days=1))
    await seed("RESOLVED", due_at=now - timedelta(days=1))
    await seed("CLOSED")
    await seed("REJECTED")
    # Responses after 2 and 6 hours (seeded), and one through the API now.
    await seed("CLOSED", response_hours=2.0)
    await seed("REJECTED", response_hours=6.0)
    fresh = await seed("NEW", created_at=now - timedelta(hours=10))
    await official.client.data(COMMENT, {"id": fresh, "t": "Принято в работу."})

    stats = (await issues.client.data(STATS))["departmentStats"]
    (mine,) = [s for s in stats if s["department"]["id"] == department]
    assert mine["open"] == 4  # NEW, ACCEPTED, IN_PROGRESS, the fresh NEW
    assert mine["overdue"] == 1
    assert mine["resolved"] == 3
    assert 5.9 <= mine["medianResponseHours"] <= 6.1  # median of 2, 6 and ~10
    assert {s["department"]["id"] for s in stats} >= {"roads", "housing", "landscaping"}


async def test_staff_moves_are_audited_and_a_reporters_are_not(issues: IssuesServer) -> None:
    reporter, moderator = issues.citizen(), issues.moderator()
    issue = await issues.report(reporter)
    note = "Передано в дорожную службу"
    await moderator.client.data(CHANGE, {"id": issue["id"], "status": "ACCEPTED", "note": note})
    resolved = await issues.seed_issue(status="RESOLVED", reporter=reporter.id)
    await reporter.client.data(CONFIRM, {"id": resolved})
    outbox = issues.service.db["outbox"]
    audited = await outbox.find({"type": "audit.recorded"}).to_list()
    mine = [a["envelope"]["data"] for a in audited]
    about_issue = [a for a in mine if a["target_id"] == issue["id"]]
    assert len(about_issue) == 1
    [entry] = about_issue
    assert entry["action"] == "ISSUE_STATUS_CHANGED"
    assert entry["actor_id"] == moderator.id
    assert (entry["before"], entry["after"]) == ({"status": "NEW"}, {"status": "ACCEPTED"})
    assert entry["reason"] == note
    assert [a for a in mine if a["target_id"] == resolved] == []  # the reporter's own step
