"""Points and notifications from other services' events, through the real broker:
credited once per source event, in any order, however often delivered."""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from veche_kit.bus import EventBus
from veche_kit.events import (
    Envelope,
    Event,
    InitiativeProposed,
    InitiativeThresholdReached,
    IssueAssigned,
    IssueClosed,
    IssueFixConfirmed,
    IssueRecategorized,
    IssueReported,
    IssueStatusChanged,
    IssueSupported,
    IssueSupportWithdrawn,
    PollClosed,
    PollPublished,
    PollVoteCast,
)
from veche_stack.testing import GraphQLClient, eventually

from .conftest import UsersServer

INBOX = """{ me { points pointsHistory { edges { node { amount reason sourceEvent } } }
  notifications { totalCount edges { node { kind text link read } } } } }"""
GRANT = (
    "mutation($u: ID!, $d: ID) { grantRole(userId: $u, role: OFFICIAL, departmentId: $d) { id } }"
)


@pytest.fixture(scope="module")
async def publisher(users: UsersServer) -> AsyncIterator[EventBus]:
    bus = EventBus(users.settings.amqp_url, "test-producer", namespace=users.settings.namespace)
    bus.start()
    await bus.wait_ready(10)
    # The users service must be consuming before anything is published.
    await users.consumer.wait_subscribed(10)
    yield bus
    await bus.close()


async def send(bus: EventBus, event: Event, producer: str = "issues", times: int = 1) -> Envelope:
    envelope = Envelope.wrap(event, producer)
    for _ in range(times):
        await bus.publish(envelope)
    return envelope


async def inbox(client: GraphQLClient, language: str | None = None) -> dict[str, Any]:
    """The person's points and notifications; these in Russian, or in `language`."""
    reader = (
        client.with_headers(Accept_Language=language)
        if language
        else client.without_header("Accept-Language")
    )
    me: dict[str, Any] = (await reader.data(INBOX))["me"]
    return me


async def settled(users: UsersServer, envelope: Envelope) -> bool:
    return (
        await users.service.db["processed_events"].count_documents({"_id": str(envelope.id)}) == 1
    )


async def test_vote_credit_once_however_often_delivered(
    users: UsersServer, publisher: EventBus
) -> None:
    client, auth = await users.citizen()
    voter = auth["user"]["id"]
    vote = PollVoteCast(
        poll_id="p1",
        ballot_id=uuid.uuid4().hex,
        voter_id=voter,
        points_reward=10,
        district_id="leninsky",
        age_group="35-44",
    )
    envelope = await send(publisher, vote, "polls", times=3)
    await eventually(lambda: settled(users, envelope))
    closing = await send(
        publisher, PollClosed(poll_id="p1", title="Парк", votes_count=1, closed_by=None), "polls"
    )
    await eventually(lambda: settled(users, closing))
    me = await inbox(client)
    assert me["points"] == 10
    assert me["pointsHistory"]["edges"] == [
        {"node": {"amount": 10, "reason": "Voted in a city poll", "sourceEvent": str(envelope.id)}}
    ]
    assert [e["node"]["link"] for e in me["notifications"]["edges"]] == ["poll:p1"]


def _ids(*auths: dict[str, Any]) -> list[str]:
    return [auth["user"]["id"] for auth in auths]


async def _delivered_twice(users: UsersServer, publisher: EventBus, *events: Event) -> None:
    """Each event sent twice, in this order; waits until every one is settled."""
    sent = [await send(publisher, event, times=2) for event in events]
    for envelope in sent:
        await eventually(functools.partial(settled, users, envelope))


def _accepted(
    issue: str, title: str, note: str | None, reporter: str | None, department: str, supporter: str
) -> IssueStatusChanged:
    """An official accepted the problem (NEW -> ACCEPTED); it has one supporter."""
    return IssueStatusChanged(
        issue_id=issue,
        kind="PROBLEM",
        title=title,
        from_status="NEW",
        to_status="ACCEPTED",
        by_user_id="official-1",
        note=note,
        reporter_id=reporter,
        solver_id=None,
        department_id=department,
        supporter_ids=[supporter],
    )


async def test_reordered_issue_events_end_with_the_right_points(
    users: UsersServer, publisher: EventBus
) -> None:
    reporter_client, reporter_auth = await users.citizen()
    solver_client, solver_auth = await users.citizen()
    supporter_client, supporter_auth = await users.citizen()
    reporter, solver, supporter = _ids(reporter_auth, solver_auth, supporter_auth)
    issue = uuid.uuid4().hex
    closed = IssueClosed(
        issue_id=issue, title="Яма", reporter_id=reporter, solver_id=solver, confirmed_by=reporter
    )
    accepted = _accepted(issue, "Яма", "Срок 8 дней", reporter, "roads", supporter)
    await _delivered_twice(users, publisher, closed, accepted)  # CLOSED before ACCEPTED
    assert (await inbox(reporter_client))["points"] == 20
    # The reporter's confirmation alone pays the solver nothing (self-dealing, issue #11)...
    assert (await inbox(solver_client))["points"] == 0
    confirmed = IssueFixConfirmed(
        issue_id=issue,
        title="Яма",
        solver_id=solver,
        reporter_id=reporter,
        department_id="roads",
        confirmed_by="official-1",
    )
    # ...an official's confirmation does, once however often it is delivered.
    await _delivered_twice(users, publisher, confirmed)
    assert (await inbox(solver_client))["points"] == 100
    supporter_inbox = await inbox(supporter_client, "en")
    assert supporter_inbox["points"] == 0
    assert [e["node"]["text"] for e in supporter_inbox["notifications"]["edges"]] == [
        "«Яма» is now accepted. Note: Срок 8 дней"
    ]
    assert [
        e["node"]["text"] for e in (await inbox(supporter_client))["notifications"]["edges"]
    ] == ["Новый статус обращения «Яма»: принято. Комментарий: Срок 8 дней"]
    reporter_inbox = (await inbox(reporter_client))["notifications"]["edges"]
    # The reporter confirmed the close: nothing to tell them of it.
    assert {e["node"]["kind"] for e in reporter_inbox} == {"ISSUE_STATUS_CHANGED"}


def _support(initiative: str, user: str, count: int, *, withdrawn: bool = False) -> Event:
    """A support of the initiative (or its withdrawal) leaving `count` supporters."""
    kind = IssueSupportWithdrawn if withdrawn else IssueSupported
    return kind(issue_id=initiative, kind="INITIATIVE", user_id=user, supporters_count=count)


def _backed_initiative(initiative: str, author: str, backer: str, quitter: str) -> list[Event]:
    """Proposed, backed by two, one of whom withdraws, and handed to landscaping at 2."""
    return [
        InitiativeProposed(
            issue_id=initiative,
            title="Сквер",
            category="yards",
            author_id=author,
            district_id=None,
            support_threshold=2,
        ),
        _support(initiative, backer, 1),
        _support(initiative, quitter, 2),
        _support(initiative, quitter, 1, withdrawn=True),
        InitiativeThresholdReached(
            issue_id=initiative,
            title="Сквер",
            description="",
            category="yards",
            author_id=author,
            department_id="landscaping",
            district_id=None,
            supporters_count=2,
            support_threshold=2,
        ),
    ]


def _district_poll(district: str, initiative: str) -> PollPublished:
    return PollPublished(
        poll_id="poll-sq",
        title="Сквер на Садовой",
        author_id="official-1",
        department_id="landscaping",
        district_ids=[district],
        min_age=None,
        max_age=None,
        verified_only=False,
        source_initiative_id=initiative,
        starts_at=None,
        ends_at=None,
    )


async def _new_district(users: UsersServer) -> str:
    district = f"d{uuid.uuid4().hex[:6]}"
    admin = await users.admin()
    await admin.data(
        'mutation($id: ID!) { createDistrict(id: $id, name: "Тест") { id } }', {"id": district}
    )
    return district


async def test_district_poll_reaches_its_citizens_and_the_initiative_backers(
    users: UsersServer, publisher: EventBus
) -> None:
    district = await _new_district(users)
    residents = [await users.citizen(districtId=district) for _ in range(3)]
    # The author lives there too: told once, of their initiative (the specific notice).
    outsider, _ = await users.citizen(districtId="moskovsky")
    author_client, author_auth = await users.citizen(districtId=district)
    backer_client, backer_auth = await users.citizen(districtId="moskovsky")
    quitter_client, quitter_auth = await users.citizen(districtId="moskovsky")
    initiative = uuid.uuid4().hex
    author, backer, quitter = _ids(author_auth, backer_auth, quitter_auth)
    sent = [
        await send(publisher, e) for e in _backed_initiative(initiative, author, backer, quitter)
    ]
    await eventually(lambda: settled(users, sent[-1]))
    published = await send(publisher, _district_poll(district, initiative), "polls")
    await eventually(lambda: settled(users, published))
    for client, _ in residents:
        texts = [e["node"]["text"] for e in (await inbox(client))["notifications"]["edges"]]
        assert texts == ["Новый опрос для вашего района: «Сквер на Садовой»."]
    assert (await inbox(outsider))["notifications"]["totalCount"] == 0
    author_inbox = await inbox(author_client, "en")
    assert author_inbox["points"] == 50
    assert [
        (e["node"]["kind"], e["node"]["text"]) for e in author_inbox["notifications"]["edges"]
    ] == [
        (
            "INITIATIVE_PUT_TO_POLL",
            "The initiative you backed is now put to a city poll: «Сквер на Садовой».",
        ),
        (
            "INITIATIVE_THRESHOLD_REACHED",
            "Your initiative «Сквер» gathered 2 supporters and goes to the city for review.",
        ),
    ]
    assert (await inbox(backer_client))["notifications"]["totalCount"] == 1
    assert (await inbox(quitter_client))["notifications"]["totalCount"] == 0


async def test_department_officials_hear_of_new_problems(
    users: UsersServer, publisher: EventBus
) -> None:
    official_client, official_auth = await users.citizen()
    admin = await users.admin()
    await admin.data(GRANT, {"u": official_auth["user"]["id"], "d": "ecology"})
    citizen_client, citizen_auth = await users.citizen()
    reported = await send(
        publisher,
        IssueReported(
            issue_id="i-eco",
            title="Свалка у реки",
            category="waste",
            department_id="ecology",
            district_id=None,
            reporter_id=citizen_auth["user"]["id"],
        ),
    )
    await eventually(lambda: settled(users, reported))
    texts = [
        e["node"]["text"] for e in (await inbox(official_client, "en"))["notifications"]["edges"]
    ]
    assert "A new problem was routed to your department: «Свалка у реки»." in texts
    assert (await inbox(citizen_client))["notifications"]["totalCount"] == 0


TITLE = "Разбитый газон"


def _rerouted(issue: str, reporter: str) -> IssueRecategorized:
    """Staff moved the issue from roads (potholes) to landscaping (yards)."""
    return IssueRecategorized(
        issue_id=issue,
        title=TITLE,
        from_category="potholes",
        to_category="yards",
        from_department_id="roads",
        to_department_id="landscaping",
        due_at=None,
        by_user_id="official-1",
        reason="Это не дорога",
        reporter_id=reporter,
    )


def _handed(issue: str, assignee: str) -> IssueAssigned:
    return IssueAssigned(
        issue_id=issue,
        title=TITLE,
        department_id="landscaping",
        assignee_id=assignee,
        previous_assignee_id=None,
        by_user_id="official-2",
    )


async def _texts(client: GraphQLClient, language: str = "en") -> list[str]:
    notices = (await inbox(client, language))["notifications"]["edges"]
    return sorted(e["node"]["text"] for e in notices)


async def test_both_departments_hear_of_a_rerouted_issue_and_an_assignee_of_theirs(
    users: UsersServer, publisher: EventBus
) -> None:
    admin = await users.admin()
    (old_client, old_auth), (new_client, new_auth) = await users.citizen(), await users.citizen()
    await admin.data(GRANT, {"u": old_auth["user"]["id"], "d": "roads"})
    await admin.data(GRANT, {"u": new_auth["user"]["id"], "d": "landscaping"})
    reporter_client, reporter_auth = await users.citizen()
    issue = f"i-{uuid.uuid4().hex[:8]}"
    await _delivered_twice(
        users,
        publisher,
        _rerouted(issue, reporter_auth["user"]["id"]),
        _handed(issue, new_auth["user"]["id"]),
    )
    assert await _texts(old_client) == [
        f"«{TITLE}» was passed to the department 'Управление благоустройства': Это не дорога"
    ]
    assert await _texts(new_client) == [
        f"«{TITLE}» is now in the category 'Благоустройство дворов', handled by your department:"
        " Это не дорога",
        f"«{TITLE}» was assigned to you.",
    ]
    assert await _texts(reporter_client) == [
        f"«{TITLE}» was passed to the department that handles 'Благоустройство дворов'."
    ]
    assert await _texts(old_client, "ru") == [
        f"Обращение «{TITLE}» передано в другой отдел (Управление благоустройства): Это не дорога"
    ]


async def test_an_anonymous_reports_events_notify_its_followers_and_credit_no_one(
    users: UsersServer, publisher: EventBus
) -> None:
    """An Open311 report without consent has no reporter (`reporter_id` None): its
    events still reach the supporters, and no points go anywhere."""
    supporter_client, supporter_auth = await users.citizen()
    issue = f"anon-{uuid.uuid4().hex[:8]}"
    accepted = _accepted(issue, "Фонарь", None, None, "housing", supporter_auth["user"]["id"])
    envelope = await send(publisher, accepted)
    await eventually(functools.partial(settled, users, envelope))
    supporter = await inbox(supporter_client)
    assert supporter["points"] == 0
    assert [e["node"]["text"] for e in supporter["notifications"]["edges"]] == [
        "Новый статус обращения «Фонарь»: принято."
    ]
    credited = await users.service.db["points_ledger"].count_documents(
        {"source_event": str(envelope.id)}
    )
    assert credited == 0
