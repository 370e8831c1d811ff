"""The staff workflow (issue #20): recategorise, merge duplicates, extend a deadline,
assign to an official. Who may (FORBIDDEN before the work), what each writes, one audit
entry per action, and a merge that holds under two officials at once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from veche_issues import domain
from veche_issues.staff import StaffDesk
from veche_kit.clock import utcnow
from veche_kit.errors import ConflictError
from veche_kit.events import Envelope, UserRegistered, UserRoleChanged
from veche_stack.testing import eventually
from veche_stack.testing import publish as publish_envelopes

from .conftest import IssuesServer, Person, parse_time

FIELDS = """id status category department { id } dueAt overdue supportersCount
  assignee { id } duplicateOf { id status }
  history { from to kind note detail by { id } }"""
RECATEGORIZE = f"""mutation($id: ID!, $c: String!, $r: String!) {{
  recategorizeIssue(id: $id, categoryId: $c, reason: $r) {{ {FIELDS} }} }}"""
MERGE = f"""mutation($d: ID!, $i: ID!, $r: String!) {{
  mergeIssues(duplicateId: $d, intoId: $i, reason: $r) {{
    duplicate {{ {FIELDS} }} into {{ {FIELDS} }} }} }}"""
EXTEND = f"""mutation($id: ID!, $at: DateTime!, $r: String!) {{
  extendDeadline(id: $id, dueAt: $at, reason: $r) {{ {FIELDS} }} }}"""
ASSIGN = (
    f"""mutation($id: ID!, $o: ID!) {{ assignIssue(id: $id, officialId: $o) {{ {FIELDS} }} }}"""
)
UNASSIGN = f"""mutation($id: ID!) {{ unassignIssue(id: $id) {{ {FIELDS} }} }}"""
SUPPORT = "mutation($id: ID!) { supportIssue(id: $id) { id supportersCount } }"
ISSUE = f"query($id: ID!) {{ issue(id: $id) {{ {FIELDS} }} }}"
WORKLIST = "query($o: ID!) { issues(filter: {assigneeId: $o}) { edges { node { id } } } }"
REASON = "Ошибка маршрутизации"


async def audited(issues: IssuesServer, issue_id: str) -> list[dict[str, Any]]:
    """The audit entries the service wrote about the issue (its outbox, as test_workflow reads)."""
    found = await (
        issues.service.db["outbox"]
        .find({"type": "audit.recorded", "envelope.data.target_id": issue_id})
        .to_list()
    )
    return [document["envelope"]["data"] for document in found]


async def told(issues: IssuesServer, event_type: str, issue_id: str) -> list[dict[str, Any]]:
    found = await (
        issues.service.db["outbox"]
        .find({"type": event_type, "envelope.data.issue_id": issue_id})
        .to_list()
    )
    return [document["envelope"]["data"] for document in found]


async def accepted(issues: IssuesServer, reporter: Person, **fields: Any) -> str:
    """A roads issue ACCEPTED two weeks ago, past its deadline and unanswered."""
    now = utcnow()
    return await issues.seed_issue(
        status="ACCEPTED",
        reporter=reporter.id,
        accepted_at=now - timedelta(days=14),
        due_at=now - timedelta(days=2),
        **fields,
    )


async def project_official(issues: IssuesServer, person: Person, department: str) -> None:
    """The users projection as user.role_changed leaves it for an official of `department`."""
    fields = {"roles": ["CITIZEN", "OFFICIAL"], "department_id": department}
    await issues.service.db["users"].update_one({"_id": person.id}, {"$set": fields}, upsert=True)


def calls(issue_id: str, other_id: str, someone: str) -> list[tuple[str, dict[str, Any]]]:
    """Every staff mutation on `issue_id`, with valid input."""
    later = (utcnow() + timedelta(days=10)).isoformat()
    return [
        (RECATEGORIZE, {"id": issue_id, "c": "yards", "r": REASON}),
        (MERGE, {"d": issue_id, "i": other_id, "r": REASON}),
        (MERGE, {"d": other_id, "i": issue_id, "r": REASON}),
        (EXTEND, {"id": issue_id, "at": later, "r": REASON}),
        (ASSIGN, {"id": issue_id, "o": someone}),
        (UNASSIGN, {"id": issue_id}),
    ]


# ─────────────────────────── permissions ───────────────────────────


async def test_citizens_solvers_and_other_departments_are_forbidden(issues: IssuesServer) -> None:
    reporter = issues.citizen()
    colleague = issues.official("roads")
    await project_official(issues, colleague, "roads")
    issue_id = await accepted(issues, reporter, assignee_id=colleague.id)
    other_id = await accepted(issues, reporter)
    outsiders = [reporter, issues.solver(), issues.official("housing")]
    for query, variables in calls(issue_id, other_id, colleague.id):
        for outsider in outsiders:
            assert await outsider.client.error_code(query, variables) == "FORBIDDEN", query
    # A moderator triages (recategorise, merge) but does not run a department's work.
    moderator = issues.moderator()
    for query, variables in calls(issue_id, other_id, colleague.id)[3:]:
        assert await moderator.client.error_code(query, variables) == "FORBIDDEN", query
    # Permission comes before input: a citizen's bad input is still FORBIDDEN.
    bad = {"id": issue_id, "c": "no-such", "r": ""}
    assert await reporter.client.error_code(RECATEGORIZE, bad) == "FORBIDDEN"
    assert await reporter.client.error_code(RECATEGORIZE, {**bad, "id": "nope"}) == "FORBIDDEN"
    assert await colleague.client.error_code(RECATEGORIZE, {**bad, "id": "nope"}) == "NOT_FOUND"
    assert await audited(issues, issue_id) == []
    after = (await reporter.client.data(ISSUE, {"id": issue_id}))["issue"]
    assert (after["category"], after["status"], after["history"]) == ("potholes", "ACCEPTED", [])


# ─────────────────────────── recategorise ───────────────────────────


async def recategorize(person: Person, issue_id: str, category: str) -> dict[str, Any]:
    variables = {"id": issue_id, "c": category, "r": REASON}
    moved: dict[str, Any] = (await person.client.data(RECATEGORIZE, variables))["recategorizeIssue"]
    return moved


async def test_a_recategorised_issue_moves_department_with_a_fresh_deadline(
    issues: IssuesServer,
) -> None:
    reporter, roads, colleague = issues.citizen(), issues.official("roads"), issues.official()
    issue_id = await accepted(issues, reporter, assignee_id=colleague.id, overdue_notified=True)
    before = utcnow()
    moved = await recategorize(roads, issue_id, "yards")
    deadline = issues.service.deadline
    assert (moved["department"], moved["category"]) == ({"id": "landscaping"}, "yards")
    assert deadline.due(before) <= parse_time(moved["dueAt"]) <= deadline.due(utcnow())
    assert (moved["overdue"], moved["assignee"], moved["status"]) == (False, None, "ACCEPTED")
    [step] = moved["history"]
    assert (step["kind"], step["note"], step["by"]) == ("RECATEGORIZED", REASON, {"id": roads.id})
    assert step["detail"] == "Category potholes → yards; department roads → landscaping."
    [event] = await told(issues, "issue.recategorized", issue_id)
    assert (event["from_department_id"], event["to_department_id"]) == ("roads", "landscaping")
    assert event["reason"] == REASON
    [entry] = await audited(issues, issue_id)
    assert entry["action"] == "ISSUE_RECATEGORIZED"
    assert (entry["before"]["departmentId"], entry["before"]["assigneeId"]) == (
        "roads",
        colleague.id,
    )
    assert entry["after"] == {
        "category": "yards",
        "departmentId": "landscaping",
        "dueAt": moved["dueAt"],
        "assigneeId": None,
    }
    # It is landscaping's now: roads may not move it again, landscaping and moderators may.
    again = {"id": issue_id, "c": "potholes", "r": "Назад"}
    assert await roads.client.error_code(RECATEGORIZE, again) == "FORBIDDEN"
    within = await recategorize(issues.official("landscaping"), issue_id, "trees")
    # Within one department the deadline stands.
    assert (within["category"], within["dueAt"]) == ("trees", moved["dueAt"])
    assert len(await audited(issues, issue_id)) == 2


async def test_recategorise_refuses_bad_input_and_settled_issues(issues: IssuesServer) -> None:
    reporter, moderator = issues.citizen(), issues.moderator()
    issue = await issues.report(reporter)
    for variables, field in (
        ({"c": "potholes", "r": REASON}, "categoryId"),  # the category it has
        ({"c": "no-such-category", "r": REASON}, "categoryId"),
        ({"c": "yards", "r": "   "}, "reason"),
    ):
        body = await moderator.client.post(RECATEGORIZE, {"id": issue["id"], **variables})
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert body["errors"][0]["extensions"]["field"] == field
    # A NEW report has no deadline yet: it moves without one, by a moderator.
    moved = await recategorize(moderator, issue["id"], "waste")
    assert (moved["department"], moved["dueAt"], moved["status"]) == (
        {"id": "ecology"},
        None,
        "NEW",
    )
    closed = await issues.seed_issue(status="CLOSED", reporter=reporter.id)
    variables = {"id": closed, "c": "yards", "r": REASON}
    assert await moderator.client.error_code(RECATEGORIZE, variables) == "CONFLICT"
    assert len(await audited(issues, issue["id"])) == 1


# ─────────────────────────── merging duplicates ───────────────────────────


async def supported_by(issue_id: str, *people: Person) -> None:
    for person in people:
        await person.client.data(SUPPORT, {"id": issue_id})


async def merge(official: Person, duplicate: str, target: str) -> dict[str, Any]:
    variables = {"d": duplicate, "i": target, "r": REASON}
    merged: dict[str, Any] = (await official.client.data(MERGE, variables))["mergeIssues"]
    return merged


def test_the_people_a_merge_carries_are_each_carried_once() -> None:
    problem = {"kind": "PROBLEM", "reporter_id": "dup-reporter"}
    target = {"reporter_id": "target-reporter"}
    supporters = ["a", "both", "a", "target-reporter", "dup-reporter"]
    carried = domain.followers_to_carry(problem, supporters, target, {"both", "c"})
    assert carried == ["a", "dup-reporter"]
    initiative = {**problem, "kind": "INITIATIVE"}  # its author passed no support check
    assert domain.followers_to_carry(initiative, ["a"], target, set()) == ["a"]
    anonymous = {**problem, "reporter_id": None}  # an Open311 report without consent
    assert domain.followers_to_carry(anonymous, [], target, set()) == []


async def test_a_merge_carries_every_supporter_over_once(issues: IssuesServer) -> None:
    first, second, roads = issues.citizen(), issues.citizen(), issues.official("roads")
    target = (await issues.report(first))["id"]
    duplicate = (await issues.report(second))["id"]
    both, only_dup, only_target = issues.citizen(), issues.citizen(), issues.citizen()
    await supported_by(duplicate, both, only_dup, first)  # the target's reporter too
    await supported_by(target, both, only_target)
    merged = await merge(roads, duplicate, target)
    closed, kept = merged["duplicate"], merged["into"]
    assert (closed["status"], closed["duplicateOf"]) == ("CLOSED", {"id": target, "status": "NEW"})
    last = closed["history"][-1]
    assert (last["kind"], last["from"], last["to"]) == ("MERGED_INTO", "NEW", "CLOSED")
    assert last["note"] == REASON
    # both, only_target, then only_dup and the duplicate's reporter: both counts once, and
    # the target's own reporter is not made a supporter of their own report.
    assert kept["supportersCount"] == 4
    supports = await issues.service.db["supports"].find({"issue_id": target}).to_list()
    assert sorted(s["user_id"] for s in supports) == sorted(
        [both.id, only_target.id, only_dup.id, second.id]
    )
    assert all(s["counted"] for s in supports)
    [step] = kept["history"]
    assert step["kind"] == "DUPLICATE_MERGED"
    assert step["detail"].endswith("merged in; 2 supports carried over.")
    left = await issues.service.db["issues"].find_one({"_id": duplicate})
    assert left is not None
    assert left["supporters_count"] == 3  # a closed duplicate keeps its own count
    [entry] = await audited(issues, duplicate)
    assert entry["action"] == "ISSUES_MERGED"
    assert entry["after"] == {
        "status": "CLOSED",
        "duplicateOf": target,
        "supportsCarried": 2,
        "intoSupportersCount": 4,
    }


async def test_a_merged_duplicate_tells_its_followers_and_merges_no_more(
    issues: IssuesServer,
) -> None:
    reporter, roads = issues.citizen(), issues.official("roads")
    target, duplicate = [(await issues.report(reporter))["id"] for _ in range(2)]
    await merge(roads, duplicate, target)
    [closing] = await told(issues, "issue.status_changed", duplicate)
    assert closing["to_status"] == "CLOSED"
    assert closing["note"].startswith("Merged into «")
    assert await told(issues, "issue.closed", duplicate) == []  # no "confirmed your fix"
    for d, i, code in (
        (duplicate, target, "CONFLICT"),
        (target, duplicate, "CONFLICT"),
        (target, target, "BAD_USER_INPUT"),
    ):
        assert await roads.client.error_code(MERGE, {"d": d, "i": i, "r": REASON}) == code
    assert len(await audited(issues, duplicate)) == 1
    assert await audited(issues, target) == []


async def test_two_officials_merging_at_once_merge_once(issues: IssuesServer) -> None:
    reporter, supporter = issues.citizen(), issues.citizen()
    officials = [issues.official("roads"), issues.official("roads")]
    target = (await issues.report(reporter))["id"]
    duplicate = (await issues.report(reporter))["id"]
    await supported_by(duplicate, supporter)
    bodies = await asyncio.gather(
        *(o.client.post(MERGE, {"d": duplicate, "i": target, "r": REASON}) for o in officials)
    )
    codes = sorted(
        b["errors"][0]["extensions"]["code"] if b.get("errors") else "OK" for b in bodies
    )
    assert codes == ["CONFLICT", "OK"]
    kept = (await reporter.client.data(ISSUE, {"id": target}))["issue"]
    assert kept["supportersCount"] == 1  # the supporter; the reporter reported both
    assert await issues.service.db["supports"].count_documents({"issue_id": target}) == 1
    assert len(await audited(issues, duplicate)) == 1
    # Crossed merges (A into B, B into A at once): one of them, never both.
    a, b = (await issues.report(reporter))["id"], (await issues.report(reporter))["id"]
    crossed = await asyncio.gather(
        officials[0].client.post(MERGE, {"d": a, "i": b, "r": REASON}),
        officials[1].client.post(MERGE, {"d": b, "i": a, "r": REASON}),
    )
    assert sorted("errors" in body for body in crossed) == [False, True]
    states = [(await reporter.client.data(ISSUE, {"id": i}))["issue"]["status"] for i in (a, b)]
    assert sorted(states) == ["CLOSED", "NEW"]


async def test_a_merge_run_again_on_what_it_read_before_changes_nothing(
    issues: IssuesServer,
) -> None:
    """The second run (a retried transaction, a request sent twice) read the issues before
    the first committed: the conditional update on the duplicate refuses it."""
    reporter, supporter = issues.citizen(), issues.citizen()
    target = (await issues.report(reporter))["id"]
    duplicate = (await issues.report(issues.citizen()))["id"]
    await supported_by(duplicate, supporter)
    db, desk = issues.service.db, StaffDesk(issues.service)
    stale = [await issues.service.get_issue(i) for i in (duplicate, target)]
    caller = issues.official("roads").principal

    async def merge() -> Any:
        return await issues.service.outbox.transaction(
            lambda tx: desk._merge(tx, caller, stale[0], stale[1], REASON)
        )

    await merge()
    with pytest.raises(ConflictError):
        await merge()
    assert await db["supports"].count_documents({"issue_id": target}) == 2
    kept = await db["issues"].find_one({"_id": target})
    assert kept is not None
    assert kept["supporters_count"] == 2
    assert len(await audited(issues, duplicate)) == 1


async def test_a_support_on_its_way_during_a_merge_reaches_the_issue_kept(
    issues: IssuesServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    reporter, roads, late = issues.citizen(), issues.official("roads"), issues.citizen()
    target, duplicate = [(await issues.report(reporter))["id"] for _ in range(2)]
    read_before = await issues.service.get_issue(duplicate)
    await merge(roads, duplicate, target)
    service, get_issue = issues.service, issues.service.get_issue

    async def as_read_before_the_merge(issue_id: str) -> dict[str, Any]:
        return read_before if issue_id == duplicate else await get_issue(issue_id)

    # The support passed its checks before the merge and is written after it.
    monkeypatch.setattr(service, "get_issue", as_read_before_the_merge)
    answer = await service.support(late.principal, duplicate)
    monkeypatch.undo()
    assert answer["duplicate_of"] == target
    kept = await service.get_issue(target)
    supports = await service.db["supports"].find({"issue_id": target}).to_list()
    assert [s["user_id"] for s in supports] == [late.id]
    assert kept["supporters_count"] == 1
    # Once merged, a support is refused with the issue to support instead.
    body = await issues.citizen().client.post(SUPPORT, {"id": duplicate})
    assert body["errors"][0]["extensions"] == {"code": "CONFLICT", "duplicateOf": target}


async def test_a_merge_across_departments_needs_both(issues: IssuesServer) -> None:
    reporter, roads = issues.citizen(), issues.official("roads")
    target = await issues.seed_issue(status="NEW", reporter=reporter.id)
    elsewhere = await issues.seed_issue(
        status="NEW", reporter=reporter.id, department="landscaping", category="yards"
    )
    variables = {"d": elsewhere, "i": target, "r": REASON}
    assert await roads.client.error_code(MERGE, variables) == "FORBIDDEN"
    initiative = await issues.seed_issue(
        status="COLLECTING", kind="INITIATIVE", reporter=reporter.id
    )
    body = await issues.moderator().client.post(MERGE, {**variables, "d": initiative})
    assert body["errors"][0]["extensions"]["field"] == "intoId"  # a problem and an initiative
    merged = await issues.moderator().client.data(MERGE, variables)
    assert merged["mergeIssues"]["duplicate"]["duplicateOf"]["id"] == target


async def test_supports_a_merge_brings_can_cross_an_initiatives_threshold(
    issues: IssuesServer,
) -> None:
    author, moderator = issues.citizen(), issues.moderator()
    target = (await issues.propose(author))["id"]
    duplicate = (await issues.propose(issues.citizen()))["id"]
    await supported_by(duplicate, issues.citizen(), issues.citizen())
    await supported_by(target, issues.citizen())
    kept = (await merge(moderator, duplicate, target))["into"]
    # The duplicate's author is not carried: they never passed the category's support check.
    assert (kept["supportersCount"], kept["status"]) == (3, "UNDER_REVIEW")
    assert [s["kind"] for s in kept["history"]] == ["DUPLICATE_MERGED", "STATUS_CHANGED"]
    assert len(await told(issues, "initiative.threshold_reached", target)) == 1


# ─────────────────────────── deadlines ───────────────────────────


async def test_extending_a_deadline(issues: IssuesServer) -> None:
    reporter, roads = issues.citizen(), issues.official("roads")
    issue_id = await accepted(issues, reporter, overdue_notified=True)
    current = (await reporter.client.data(ISSUE, {"id": issue_id}))["issue"]
    assert current["overdue"] is True
    earlier = (parse_time(current["dueAt"]) - timedelta(hours=1)).isoformat()
    past = (parse_time(current["dueAt"]) + timedelta(hours=1)).isoformat()  # later, yet past
    naive = (utcnow() + timedelta(days=3)).replace(tzinfo=None).isoformat()
    far = (utcnow() + timedelta(days=400)).isoformat()
    for at in (earlier, past, naive, far):
        body = await roads.client.post(EXTEND, {"id": issue_id, "at": at, "r": REASON})
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", at
        assert body["errors"][0]["extensions"]["field"] == "dueAt"
    later = (utcnow() + timedelta(days=5)).replace(microsecond=0)
    body = await roads.client.post(EXTEND, {"id": issue_id, "at": later.isoformat(), "r": " "})
    assert body["errors"][0]["extensions"]["field"] == "reason"
    extended = (
        await roads.client.data(EXTEND, {"id": issue_id, "at": later.isoformat(), "r": REASON})
    )["extendDeadline"]
    assert (parse_time(extended["dueAt"]), extended["overdue"]) == (later, False)
    [step] = extended["history"]
    assert (step["kind"], step["note"]) == ("DEADLINE_EXTENDED", REASON)
    assert step["detail"].endswith(f"→ {later.isoformat()}.")
    stored = await issues.service.db["issues"].find_one({"_id": issue_id})
    assert stored is not None
    assert stored["overdue_notified"] is False  # told again should the new deadline pass
    [entry] = await audited(issues, issue_id)
    assert entry["action"] == "DEADLINE_EXTENDED"
    assert entry["before"] == {"dueAt": current["dueAt"]}
    assert entry["after"] == {"dueAt": later.isoformat()}
    # Only while a deadline runs: a NEW or IN_PROGRESS issue has none to extend.
    for status in ("NEW", "IN_PROGRESS"):
        other = await issues.seed_issue(status=status, reporter=reporter.id)
        variables = {"id": other, "at": later.isoformat(), "r": REASON}
        assert await roads.client.error_code(EXTEND, variables) == "CONFLICT"


# ─────────────────────────── assignment ───────────────────────────


async def official_through_events(
    issues: IssuesServer, amqp_url: str, person: Person, department: str
) -> None:
    """The person becomes an official as the users service tells it: registered, then
    granted OFFICIAL of `department`; returns once the projection has it."""
    events = [
        UserRegistered(
            user_id=person.id,
            display_name="Инспектор",
            district_id=None,
            birth_year=None,
            roles=["CITIZEN"],
            phone_verified=False,
        ),
        UserRoleChanged(
            user_id=person.id,
            role="OFFICIAL",
            granted=True,
            roles=["CITIZEN", "OFFICIAL"],
            department_id=department,
        ),
    ]
    namespace = issues.settings.namespace
    await publish_envelopes(amqp_url, namespace, *(Envelope.wrap(e, "users") for e in events))

    async def projected() -> bool:
        user = await issues.service.db["users"].find_one({"_id": person.id})
        return user is not None and user.get("department_id") == department

    await eventually(projected)


async def test_an_issue_goes_to_an_official_of_its_department(
    issues: IssuesServer, amqp_url: str
) -> None:
    reporter, roads = issues.citizen(), issues.official("roads")
    colleague, stranger = issues.official("roads"), issues.official("housing")
    await project_official(issues, stranger, "housing")
    citizen_fields = {"roles": ["CITIZEN"], "department_id": None}
    await issues.service.db["users"].insert_one({"_id": reporter.id, **citizen_fields})
    await official_through_events(issues, amqp_url, colleague, "roads")
    issue_id = await accepted(issues, reporter)
    for someone in (reporter.id, stranger.id, "user-unknown"):
        body = await roads.client.post(ASSIGN, {"id": issue_id, "o": someone})
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", someone
        assert body["errors"][0]["extensions"]["field"] == "officialId"
    assigned = (await roads.client.data(ASSIGN, {"id": issue_id, "o": colleague.id}))["assignIssue"]
    assert assigned["assignee"] == {"id": colleague.id}
    assert assigned["history"][-1]["kind"] == "ASSIGNED"
    worklist = (await colleague.client.data(WORKLIST, {"o": colleague.id}))["issues"]
    assert [e["node"]["id"] for e in worklist["edges"]] == [issue_id]
    [event] = await told(issues, "issue.assigned", issue_id)
    assert (event["assignee_id"], event["by_user_id"]) == (colleague.id, roads.id)
    await roads.client.data(ASSIGN, {"id": issue_id, "o": colleague.id})  # the same: nothing
    unassigned = (await colleague.client.data(UNASSIGN, {"id": issue_id}))["unassignIssue"]
    assert unassigned["assignee"] is None
    entries = await audited(issues, issue_id)
    assert [e["action"] for e in entries] == ["ISSUE_ASSIGNED", "ISSUE_UNASSIGNED"]
    assert (entries[0]["before"], entries[0]["after"]) == (
        {"assigneeId": None},
        {"assigneeId": colleague.id},
    )
    closed = await issues.seed_issue(status="CLOSED", reporter=reporter.id)
    assert await roads.client.error_code(ASSIGN, {"id": closed, "o": colleague.id}) == "CONFLICT"
