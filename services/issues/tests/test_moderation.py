"""Moderation (issue #20): complaints counted once per person, the moderators' queue,
hidden content gone from every public read but marked for its author and moderators,
the word filter's flags, and who may do what."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from veche_kit.events import ContentFlagged, ContentKind, Envelope
from veche_stack.testing import eventually, publish

from .conftest import IssuesServer, Person

REPORT_CONTENT = (
    """mutation($t: ContentInput!, $r: String!) { reportContent(target: $t, reason: $r) }"""
)
CASE = """id kind contentId photoUrl excerpt status reportsCount complaints { text }
  flaggedWord decisionReason decidedBy { id } author { id } issue { id }"""
HIDE = f"""mutation($t: ContentInput!, $r: String!) {{ hideContent(target: $t, reason: $r) {{ {CASE} }} }}"""
RESTORE = f"""mutation($t: ContentInput!, $r: String!) {{
  restoreContent(target: $t, reason: $r) {{ {CASE} }} }}"""
QUEUE = f"""query($s: ModerationStatus) {{
  moderationQueue(status: $s) {{ totalCount edges {{ node {{ {CASE} }} }} }} }}"""
COMMENT = "mutation($id: ID!, $t: String!) { commentOnIssue(id: $id, text: $t) { id } }"
READ = """query($id: ID!) { issue(id: $id) {
  id photos hiddenPhotos hidden { reason }
  comments { totalCount edges { node { id text hidden { reason at } } } } } }"""
LISTS = """query($u: ID!, $text: String!) {
  issues { edges { node { id } } }
  found: issues(filter: {text: $text}) { edges { node { id } } }
  similarIssues(category: "potholes", near: {lat: 54.5293, lon: 36.2754}) { id }
  _entities(representations: [{__typename: "User", id: $u}]) {
    ... on User { reportedIssues { edges { node { id hidden { reason } } } } } } }"""
REASON = "Оскорбление другого жителя"


def comment_target(comment_id: str) -> dict[str, Any]:
    return {"kind": "COMMENT", "id": comment_id}


async def audited(issues: IssuesServer, action: str, target_id: str) -> list[dict[str, Any]]:
    found = await (
        issues.service.db["outbox"]
        .find({"type": "audit.recorded", "envelope.data.target_id": target_id})
        .to_list()
    )
    return [d["envelope"]["data"] for d in found if d["envelope"]["data"]["action"] == action]


async def queue(moderator: Person, status: str | None = "OPEN") -> list[dict[str, Any]]:
    page = (await moderator.client.data(QUEUE, {"s": status}))["moderationQueue"]
    return [edge["node"] for edge in page["edges"]]


async def case_of(moderator: Person, content_id: str) -> dict[str, Any] | None:
    return next((c for c in await queue(moderator, None) if c["contentId"] == content_id), None)


async def comments_seen(who: Person, issue_id: str) -> tuple[int, list[dict[str, Any]]]:
    comments = (await who.client.data(READ, {"id": issue_id}))["issue"]["comments"]
    return comments["totalCount"], [edge["node"] for edge in comments["edges"]]


async def test_a_hidden_comment_is_gone_for_the_public_and_marked_for_author_and_moderators(
    issues: IssuesServer,
) -> None:
    reporter, author, neighbour, other = (issues.citizen() for _ in range(4))
    moderator = issues.moderator()
    issue = await issues.report(reporter)
    kept = await reporter.client.data(COMMENT, {"id": issue["id"], "t": "Спасибо!"})
    comment = await author.client.data(COMMENT, {"id": issue["id"], "t": "Вы все дураки"})
    comment_id = comment["commentOnIssue"]["id"]
    target = comment_target(comment_id)
    await _complaints_count_once(moderator, target, (neighbour, neighbour, other))
    case = await case_of(moderator, comment_id)
    assert case is not None
    assert case["author"] == {"id": author.id}
    assert case["issue"] == {"id": issue["id"]}

    hidden = (await moderator.client.data(HIDE, {"t": target, "r": "Оскорбления"}))["hideContent"]
    assert (hidden["status"], hidden["decisionReason"]) == ("HIDDEN", "Оскорбления")
    assert hidden["decidedBy"] == {"id": moderator.id}
    assert await queue(moderator) == []  # decided: out of the open queue
    public = [{"id": kept["commentOnIssue"]["id"], "text": "Спасибо!", "hidden": None}]
    await _seen_as_hidden(issues, issue["id"], public, comment_id, (author, moderator))
    await _author_told(issues, comment_id, author)

    restored = await moderator.client.data(RESTORE, {"t": target, "r": "Пересмотрено"})
    assert restored["restoreContent"]["status"] == "RESTORED"
    assert (await comments_seen(neighbour, issue["id"]))[0] == 2
    assert len(await audited(issues, "CONTENT_HIDDEN", comment_id)) == 1
    assert len(await audited(issues, "CONTENT_RESTORED", comment_id)) == 1


async def _complaints_count_once(
    moderator: Person, target: dict[str, Any], complainers: tuple[Person, ...]
) -> None:
    """One complaint per person counts, however often it is sent."""
    for who in complainers:
        assert (await who.client.data(REPORT_CONTENT, {"t": target, "r": REASON}))["reportContent"]
    case = await case_of(moderator, target["id"])
    assert case is not None
    assert (case["kind"], case["status"], case["reportsCount"]) == ("COMMENT", "OPEN", 2)
    assert case["excerpt"] == "Вы все дураки"
    assert [c["text"] for c in case["complaints"]] == [REASON, REASON]


async def _seen_as_hidden(
    issues: IssuesServer,
    issue_id: str,
    public: list[dict[str, Any]],
    comment_id: str,
    insiders: tuple[Person, ...],
) -> None:
    """Others see only `public`; the author and moderators also the hidden comment, marked."""
    for viewer in (issues.citizen(), issues.official("roads")):
        assert await comments_seen(viewer, issue_id) == (1, public)
    anonymous = (await issues.client.data(READ, {"id": issue_id}))["issue"]["comments"]
    assert anonymous["totalCount"] == 1
    for viewer in insiders:
        total, seen = await comments_seen(viewer, issue_id)
        assert total == 2
        assert seen[1]["id"] == comment_id
        assert seen[1]["hidden"]["reason"] == "Оскорбления"


async def _author_told(issues: IssuesServer, comment_id: str, author: Person) -> None:
    told = await issues.service.db["outbox"].find({"type": "content.hidden"}).to_list()
    mine = [
        t["envelope"]["data"] for t in told if t["envelope"]["data"]["content_id"] == comment_id
    ]
    assert [(t["kind"], t["author_id"]) for t in mine] == [("COMMENT", author.id)]


async def test_a_hidden_issue_leaves_every_public_list(issues: IssuesServer) -> None:
    reporter, neighbour = issues.citizen(), issues.citizen()
    moderator = issues.moderator()
    issue = await issues.report(reporter, title="Грубая жалоба на соседей")
    target = {"kind": "ISSUE", "id": issue["id"]}
    await moderator.client.data(HIDE, {"t": target, "r": "Личные нападки"})
    variables = {"u": reporter.id, "text": "грубая жалоба"}

    def ids(lists: dict[str, Any]) -> dict[str, bool]:
        return {
            "issues": any(e["node"]["id"] == issue["id"] for e in lists["issues"]["edges"]),
            "found": any(e["node"]["id"] == issue["id"] for e in lists["found"]["edges"]),
            "similar": any(i["id"] == issue["id"] for i in lists["similarIssues"]),
            "reported": any(
                e["node"]["id"] == issue["id"]
                for e in lists["_entities"][0]["reportedIssues"]["edges"]
            ),
        }

    for viewer in (issues.client, neighbour.client):
        assert (await viewer.data(READ, {"id": issue["id"]}))["issue"] is None
        assert set((ids(await viewer.data(LISTS, variables))).values()) == {False}
    # The reporter finds it among their own reports, marked; moderators everywhere they list.
    mine = ids(await reporter.client.data(LISTS, variables))
    assert mine == {"issues": False, "found": False, "similar": False, "reported": True}
    seen = (await reporter.client.data(READ, {"id": issue["id"]}))["issue"]
    assert seen["hidden"] == {"reason": "Личные нападки"}
    staff = ids(await moderator.client.data(LISTS, variables))
    assert staff == {"issues": True, "found": True, "similar": False, "reported": True}

    async with httpx.AsyncClient(base_url=issues.url) as http:
        listed = (await http.get("/open311/v2/requests.json")).json()
        assert issue["id"] not in [r["service_request_id"] for r in listed]


async def test_a_hidden_photo_is_left_out_of_the_issue(issues: IssuesServer) -> None:
    reporter, neighbour = issues.citizen(), issues.citizen()
    moderator = issues.moderator()
    photos = ["https://img.example/1.jpg", "https://img.example/2.jpg"]
    issue = await issues.report(reporter, photos=photos)
    target = {"kind": "PHOTO", "id": issue["id"], "photoUrl": photos[1]}
    await neighbour.client.data(REPORT_CONTENT, {"t": target, "r": "На фото лицо ребёнка"})
    await moderator.client.data(HIDE, {"t": target, "r": "Лицо ребёнка"})
    public = (await neighbour.client.data(READ, {"id": issue["id"]}))["issue"]
    assert (public["photos"], public["hiddenPhotos"]) == (photos[:1], [])
    own = (await reporter.client.data(READ, {"id": issue["id"]}))["issue"]
    assert (own["photos"], own["hiddenPhotos"]) == (photos, photos[1:])
    case = await case_of(moderator, issue["id"])
    assert case is not None
    assert case["photoUrl"] == photos[1]


async def test_who_may_report_hide_and_read_the_queue(issues: IssuesServer) -> None:
    reporter = issues.citizen()
    issue = await issues.report(reporter)
    comment = await reporter.client.data(COMMENT, {"id": issue["id"], "t": "Текст"})
    target = comment_target(comment["commentOnIssue"]["id"])
    variables = {"t": target, "r": REASON}
    assert await issues.client.error_code(REPORT_CONTENT, variables) == "UNAUTHENTICATED"
    for outsider in (reporter, issues.official("roads"), issues.solver()):
        assert await outsider.client.error_code(HIDE, variables) == "FORBIDDEN"
        assert await outsider.client.error_code(RESTORE, variables) == "FORBIDDEN"
        assert await outsider.client.error_code(QUEUE, {"s": None}) == "FORBIDDEN"
    unknown = {"t": comment_target("no-such-comment"), "r": REASON}
    assert await reporter.client.error_code(REPORT_CONTENT, unknown) == "NOT_FOUND"
    photo = {"t": {"kind": "PHOTO", "id": issue["id"]}, "r": REASON}
    assert await reporter.client.error_code(REPORT_CONTENT, photo) == "BAD_USER_INPUT"
    blank = {"t": target, "r": "  "}
    assert await reporter.client.error_code(REPORT_CONTENT, blank) == "BAD_USER_INPUT"

    # Two moderators at once: one hides, the other is told it is hidden already; one entry.
    moderators = [issues.moderator(), issues.person("ADMIN")]
    answers = await asyncio.gather(*(m.client.post(HIDE, variables) for m in moderators))
    codes = sorted(
        a["errors"][0]["extensions"]["code"] if a.get("errors") else "OK" for a in answers
    )
    assert codes == ["CONFLICT", "OK"]
    restored = await moderators[0].client.data(RESTORE, {**variables, "r": "Пересмотрено"})
    assert restored["restoreContent"]["status"] == "RESTORED"
    assert await moderators[1].client.error_code(RESTORE, variables) == "CONFLICT"
    assert len(await audited(issues, "CONTENT_HIDDEN", target["id"])) == 1


async def test_complaints_are_rate_limited(issues: IssuesServer) -> None:
    reporter, busy = issues.citizen(), issues.citizen()
    issue = await issues.report(reporter)
    variables = {"t": {"kind": "ISSUE", "id": issue["id"]}, "r": REASON}
    for _ in range(30):
        await busy.client.data(REPORT_CONTENT, variables)
    assert await busy.client.error_code(REPORT_CONTENT, variables) == "RATE_LIMITED"


async def test_the_word_filter_flags_for_review_and_rejects_nothing(issues: IssuesServer) -> None:
    reporter = issues.citizen()
    moderator = issues.moderator()
    rude = await issues.report(reporter, title="Яма", description="Это пиздец, а не дорога")
    clean = await issues.report(reporter, title="Яма", description="Глубокая яма")
    comment = await reporter.client.data(COMMENT, {"id": clean["id"], "t": "Да бля, сколько можно"})
    comment_id = comment["commentOnIssue"]["id"]

    flagged = await case_of(moderator, rude["id"])
    assert flagged is not None
    assert (flagged["kind"], flagged["flaggedWord"], flagged["reportsCount"]) == (
        "ISSUE",
        "пиздец",
        0,
    )
    by_comment = await case_of(moderator, comment_id)
    assert by_comment is not None
    assert by_comment["flaggedWord"] == "бля"
    assert await case_of(moderator, clean["id"]) is None
    # Flagged is not hidden: a person decides.
    assert (await issues.client.data(READ, {"id": rude["id"]}))["issue"]["id"] == rude["id"]


async def test_a_display_name_flagged_by_the_users_service_joins_the_queue(
    issues: IssuesServer, amqp_url: str
) -> None:
    moderator = issues.moderator()
    flagged = ContentFlagged(
        kind=ContentKind.DISPLAY_NAME,
        content_id="user-flagged-name",
        user_id="user-flagged-name",
        excerpt="Хуесос Петров",
        word="Хуесос",
    )
    await publish(amqp_url, issues.settings.namespace, Envelope.wrap(flagged, "users"))
    twice = Envelope.wrap(flagged, "users")
    await publish(amqp_url, issues.settings.namespace, twice, twice)

    async def arrived() -> dict[str, Any] | None:
        return await case_of(moderator, "user-flagged-name")

    case = await eventually(arrived)
    assert case is not None
    assert (case["kind"], case["excerpt"], case["flaggedWord"]) == (
        "DISPLAY_NAME",
        "Хуесос Петров",
        "Хуесос",
    )
    assert (
        await issues.service.db["moderation_cases"].count_documents(
            {"content_id": "user-flagged-name"}
        )
        == 1
    )
