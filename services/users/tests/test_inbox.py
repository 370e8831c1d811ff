"""The inbox as its readers meet it: told in their language, only about polls they may
vote in, once per event; real events through the real broker."""

from __future__ import annotations

import functools
import random
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest

from veche_kit.bus import EventBus
from veche_kit.clock import utcnow
from veche_kit.events import (
    Envelope,
    Event,
    InitiativeThresholdReached,
    IssueStatusChanged,
    PollPublished,
    PollPublishedV1,
)
from veche_stack.testing import GraphQLClient, eventually

from .conftest import UsersServer

INBOX = "{ me { notifications { totalCount edges { node { kind text link } } } } }"
REQUEST_CODE = "mutation($p: String!) { requestPhoneCode(phone: $p) }"
VERIFY = "mutation($c: String!) { verifyPhone(code: $c) { phoneVerified } }"
CREATE_DISTRICT = 'mutation($id: ID!) { createDistrict(id: $id, name: "Тест") { id } }'


@pytest.fixture(scope="module")
async def publisher(users: UsersServer) -> AsyncIterator[EventBus]:
    bus = EventBus(users.settings.amqp_url, "test-producer", namespace=users.settings.namespace)
    bus.start()
    await bus.wait_ready(10)
    await users.consumer.wait_subscribed(10)
    yield bus
    await bus.close()


async def _settled(users: UsersServer, envelope: Envelope) -> bool:
    processed = users.service.db["processed_events"]
    return await processed.count_documents({"_id": str(envelope.id)}) == 1


async def _delivered(
    users: UsersServer, bus: EventBus, *envelopes: Envelope, times: int = 2
) -> None:
    """Each envelope published `times` (a redelivery), in order; waits until all settled."""
    for envelope in envelopes:
        for _ in range(times):
            await bus.publish(envelope)
    for envelope in envelopes:
        await eventually(functools.partial(_settled, users, envelope))


def _wrapped(event: Event, producer: str = "issues") -> Envelope:
    return Envelope.wrap(event, producer)


async def _notices(client: GraphQLClient, language: str | None = None) -> list[dict[str, Any]]:
    reader = (
        client.with_headers(Accept_Language=language)
        if language
        else client.without_header("Accept-Language")
    )
    inbox = (await reader.data(INBOX))["me"]["notifications"]
    assert inbox["totalCount"] == len(inbox["edges"])
    return [edge["node"] for edge in inbox["edges"]]


async def _texts(client: GraphQLClient, language: str | None = None) -> list[str]:
    return [notice["text"] for notice in await _notices(client, language)]


async def _district(users: UsersServer) -> str:
    district = f"d{uuid.uuid4().hex[:6]}"
    await (await users.admin()).data(CREATE_DISTRICT, {"id": district})
    return district


def _poll(district: str, title: str, **audience: Any) -> PollPublished:
    fields: dict[str, Any] = {"min_age": None, "max_age": None, "verified_only": False}
    return PollPublished(
        poll_id=f"poll-{uuid.uuid4().hex[:8]}",
        title=title,
        author_id="official-1",
        department_id="landscaping",
        district_ids=[district],
        source_initiative_id=None,
        starts_at=None,
        ends_at=None,
        **{**fields, **audience},
    )


async def test_a_notice_reads_in_the_language_the_reader_prefers(
    users: UsersServer, publisher: EventBus
) -> None:
    district = await _district(users)
    client, _ = await users.citizen(districtId=district)
    await _delivered(users, publisher, _wrapped(_poll(district, "«Парк»"), "polls"))
    russian = "Новый опрос для вашего района: «Парк»."  # the drafted title's «» once
    english = "A new poll for your district: «Парк»."
    for language, text in [
        (None, russian),
        ("ru", russian),
        ("en", english),
        ("en-GB,en;q=0.9", english),
        ("ru;q=0.5, en;q=0.8", english),
        ("fr", russian),
    ]:
        notices = await _notices(client, language)
        assert [(n["kind"], n["text"]) for n in notices] == [("POLL_PUBLISHED", text)], language


def _year_born(age: int, at: datetime) -> int:
    return at.year - age


async def _verified(users: UsersServer, **fields: Any) -> GraphQLClient:
    client, _ = await users.citizen(**fields)
    phone = "+7910" + "".join(random.choices("0123456789", k=7))
    await client.data(REQUEST_CODE, {"p": phone})
    await client.data(VERIFY, {"c": users.sender.sent[phone]})
    return client


async def test_only_the_polls_audience_hears_of_it(users: UsersServer, publisher: EventBus) -> None:
    """A 60+ poll reaches the 65-year-old, not the 33-year-old nor someone of unknown age;
    a verified-only poll reaches verified phones only; a version 1 event (without the
    audience's ages) is read as open to the whole district, as it used to be."""
    district, now = await _district(users), utcnow()
    young, _ = await users.citizen(districtId=district, birthYear=_year_born(33, now))
    old = await _verified(users, districtId=district, birthYear=_year_born(65, now))
    unknown, _ = await users.citizen(districtId=district, birthYear=None)
    elsewhere, _ = await users.citizen(districtId="moskovsky", birthYear=_year_born(65, now))
    seniors = _poll(district, "Скамейки у поликлиники", min_age=60)
    verified = _poll(district, "Бюджет двора", verified_only=True)
    older = PollPublishedV1(**_poll(district, "Сквер").model_dump(exclude=set(_AUDIENCE)))
    sent = [_wrapped(e, "polls") for e in (seniors, verified, older)]
    await _delivered(users, publisher, *sent)
    told = {"young": young, "old": old, "unknown": unknown, "elsewhere": elsewhere}
    heard = {name: sorted(await _texts(client, "en")) for name, client in told.items()}
    assert heard == {
        "young": ["A new poll for your district: «Сквер»."],
        "old": [
            "A new poll for your district: «Бюджет двора».",
            "A new poll for your district: «Скамейки у поликлиники».",
            "A new poll for your district: «Сквер».",
        ],
        "unknown": ["A new poll for your district: «Сквер»."],
        "elsewhere": [],
    }


_AUDIENCE = ("min_age", "max_age", "verified_only")


def _crossing(initiative: str, author: str, backer: str) -> list[Event]:
    """What the issues service tells in one transaction when an initiative reaches its
    threshold: the crossing, and the status change it makes (COLLECTING -> UNDER_REVIEW)."""
    return [
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
        IssueStatusChanged(
            issue_id=initiative,
            kind="INITIATIVE",
            title="Сквер",
            from_status="COLLECTING",
            to_status="UNDER_REVIEW",
            by_user_id=None,
            note="2 supports reached: handed to the department for review.",
            reporter_id=author,
            solver_id=None,
            department_id="landscaping",
            supporter_ids=[author, backer],
        ),
    ]


async def test_the_initiator_is_told_once_when_the_threshold_is_reached(
    users: UsersServer, publisher: EventBus
) -> None:
    (author_client, author_auth), (backer_client, backer_auth) = (
        await users.citizen(),
        await users.citizen(),
    )
    author, backer = author_auth["user"]["id"], backer_auth["user"]["id"]
    events = _crossing(uuid.uuid4().hex, author, backer)
    await _delivered(users, publisher, *[_wrapped(e) for e in events])
    assert [(n["kind"], n["text"]) for n in await _notices(author_client)] == [
        (
            "INITIATIVE_THRESHOLD_REACHED",
            "Ваша инициатива «Сквер» собрала нужное число сторонников (2) и передана городу "
            "на рассмотрение.",
        )
    ]
    assert [(n["kind"], n["text"]) for n in await _notices(backer_client)] == [
        (
            "ISSUE_STATUS_CHANGED",
            "Новый статус обращения «Сквер»: на рассмотрении.",  # Veche's own note left out
        )
    ]


async def test_a_notice_stored_before_kinds_still_reads(users: UsersServer) -> None:
    """Written by an older release: English text, the event type as kind, no params."""
    client, auth = await users.citizen()
    await users.service.db["notifications"].insert_one(
        {
            "_id": uuid.uuid4().hex,
            "user_id": auth["user"]["id"],
            "kind": "issue.status_changed",
            "text": "«Яма» is now accepted.",
            "link": "issue:i1",
            "read": False,
            "at": utcnow(),
            "source_event": uuid.uuid4().hex,
        }
    )
    for language in (None, "en"):
        assert await _notices(client, language) == [
            {"kind": "ISSUE_STATUS_CHANGED", "text": "«Яма» is now accepted.", "link": "issue:i1"}
        ]
