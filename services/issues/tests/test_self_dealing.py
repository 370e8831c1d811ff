"""Self-dealing (issue #11): a reporter cannot become the solver of their own issue, and
a fix is paid (issue.fix_confirmed) only once an official of the responsible department
confirms it, never on the reporter's word (issue.closed)."""

from __future__ import annotations

from typing import Any

from veche_issues.store import OFFER_PENDING
from veche_kit.clock import utcnow
from veche_stack.testing import bound_queue, eventually, take

from .conftest import CHANGE, IssuesServer, Person

OFFER = "mutation($id: ID!, $m: String!) { offerToSolve(id: $id, message: $m) { id } }"
ACCEPT = "mutation($o: ID!) { acceptSolverOffer(offerId: $o) { id status solver { id } } }"
MARK_SOLVED = "mutation($id: ID!) { markSolved(id: $id, note: null) { status } }"
CONFIRM = "mutation($id: ID!) { confirmResolution(id: $id) { status } }"
CONFIRM_FIX = "mutation($id: ID!) { confirmFix(id: $id) { id status fixConfirmedAt } }"


async def refusal(person: Person, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    body = await person.client.post(query, variables)
    assert body.get("errors"), body
    error: dict[str, Any] = body["errors"][0]
    return error


async def test_the_reporter_cannot_solve_their_own_issue(issues: IssuesServer) -> None:
    """The attack as tried: report, a moderator accepts, the same citizen becomes a solver
    and offers to fix it, accepts their own offer, marks it solved, confirms it."""
    reporter = issues.citizen()
    issue = await issues.report(reporter)
    await issues.moderator().client.data(CHANGE, {"id": issue["id"], "status": "ACCEPTED"})
    # becomeSolver gives the same account the SOLVER role: a new token, the same user.
    as_solver = issues.person("SOLVER", user_id=reporter.id)
    error = await refusal(as_solver, OFFER, {"id": issue["id"], "m": "Сам и заделаю"})
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert "reporter" in error["message"]
    # An offer that exists anyway (made before this rule) cannot be accepted either.
    await issues.service.db["solver_offers"].insert_one(
        {
            "_id": f"old-{issue['id']}",
            "issue_id": issue["id"],
            "solver_id": reporter.id,
            "message": "Сам",
            "status": OFFER_PENDING,
            "at": utcnow(),
        }
    )
    error = await refusal(as_solver, ACCEPT, {"o": f"old-{issue['id']}"})
    assert error["extensions"]["code"] == "FORBIDDEN"
    official = issues.official("roads")
    error = await refusal(official, ACCEPT, {"o": f"old-{issue['id']}"})
    assert error["extensions"]["code"] == "FORBIDDEN"
    # Nothing moved: no solver, still ACCEPTED, so nothing to mark solved or confirm.
    error = await refusal(as_solver, MARK_SOLVED, {"id": issue["id"]})
    assert error["extensions"]["code"] == "INVALID_TRANSITION"
    error = await refusal(reporter, CONFIRM, {"id": issue["id"]})
    assert error["extensions"]["code"] == "INVALID_TRANSITION"


async def test_only_the_departments_official_confirms_a_fix_once(
    issues: IssuesServer, amqp_url: str
) -> None:
    reporter, official = issues.citizen(), issues.official("roads")
    solver = await issues.skilled(issues.solver())
    stranger_official = issues.official("parks")
    async with bound_queue(amqp_url, issues.settings.namespace, "issue.#") as queue:
        issue = await issues.report(reporter)
        issue_id = issue["id"]
        await official.client.data(CHANGE, {"id": issue_id, "status": "ACCEPTED"})
        offer = (await solver.client.data(OFFER, {"id": issue_id, "m": "Заделаю"}))["offerToSolve"]
        await reporter.client.data(ACCEPT, {"o": offer["id"]})
        error = await refusal(official, CONFIRM_FIX, {"id": issue_id})
        assert error["extensions"]["code"] == "INVALID_TRANSITION"  # not fixed yet
        await solver.client.data(MARK_SOLVED, {"id": issue_id})
        closed = await reporter.client.data(CONFIRM, {"id": issue_id})
        assert closed["confirmResolution"]["status"] == "CLOSED"
        for who in (reporter, solver, stranger_official, issues.moderator()):
            error = await refusal(who, CONFIRM_FIX, {"id": issue_id})
            assert error["extensions"]["code"] == "FORBIDDEN", who
        confirmed = (await official.client.data(CONFIRM_FIX, {"id": issue_id}))["confirmFix"]
        assert confirmed["status"] == "CLOSED"
        assert confirmed["fixConfirmedAt"] is not None
        error = await refusal(official, CONFIRM_FIX, {"id": issue_id})
        assert error["extensions"]["code"] == "CONFLICT"

        mine: list[dict[str, Any]] = []

        async def arrived() -> bool:
            mine.extend(e for e in await take(queue) if e["data"]["issue_id"] == issue_id)
            return any(e["type"] == "issue.fix_confirmed" for e in mine)

        await eventually(arrived, timeout=20)
        (fixed,) = [e["data"] for e in mine if e["type"] == "issue.fix_confirmed"]
        assert fixed["solver_id"] == solver.id
        assert fixed["confirmed_by"] == official.id
        assert fixed["department_id"] == "roads"


async def test_an_official_cannot_confirm_their_own_fix(issues: IssuesServer) -> None:
    official = issues.person("OFFICIAL", "SOLVER", department="roads")
    issue_id = await issues.seed_issue(
        status="RESOLVED", reporter=issues.citizen().id, solver=official.id
    )
    error = await refusal(official, CONFIRM_FIX, {"id": issue_id})
    assert error["extensions"]["code"] == "FORBIDDEN"
    colleague = issues.official("roads")
    assert (await colleague.client.data(CONFIRM_FIX, {"id": issue_id}))["confirmFix"][
        "fixConfirmedAt"
    ]


async def test_a_fix_without_a_solver_has_nothing_to_confirm(issues: IssuesServer) -> None:
    issue_id = await issues.seed_issue(status="RESOLVED", reporter=issues.citizen().id)
    error = await refusal(issues.official("roads"), CONFIRM_FIX, {"id": issue_id})
    assert error["extensions"]["code"] == "CONFLICT"
