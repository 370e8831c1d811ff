"""A poll's districts are checked against the users service's list, which polls keeps
from `reference.districts_published` events: unknown ids refused with the field and
where valid ones come from, the list replaced only by one told later, redelivery
harmless, and a service that has heard no list yet refusing with a retryable reason."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from veche_kit.events import DistrictsPublished, Envelope, ReferenceItem
from veche_kit.reference_lists import DISTRICT_LIST, PROJECTED
from veche_stack.testing import eventually, publish

from .conftest import CREATE, UPDATE, PollsServer, handled, poll_input


async def _refusal(polls: PollsServer, mutation: str, variables: dict[str, Any]) -> dict[str, Any]:
    body = await polls.official().post(mutation, variables)
    assert body.get("errors"), body
    error: dict[str, Any] = body["errors"][0]
    return error


def _audience(*districts: str) -> dict[str, Any]:
    return {"input": poll_input(audience={"districtIds": list(districts)})}


async def _told(polls: PollsServer, envelope: Envelope) -> None:
    await publish(polls.settings.amqp_url, polls.settings.namespace, envelope)
    await eventually(lambda: handled(polls, envelope), timeout=10, interval=0.02)


async def test_an_unknown_district_is_refused_and_a_known_one_accepted(
    polls: PollsServer,
) -> None:
    error = await _refusal(polls, CREATE, _audience("leninsky", "atlantis", "lemuria"))
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "audience.districtIds"}
    assert "'atlantis', 'lemuria'" in error["message"]
    assert "leninsky" not in error["message"]
    assert "`districts` query" in error["message"]
    official = polls.official()
    created = (await official.data(CREATE, _audience("leninsky", "moskovsky")))["createPoll"]
    assert created["audience"]["districtIds"] == ["leninsky", "moskovsky"]
    # A draft's new audience is held to the same list.
    body = await official.post(
        UPDATE, {"id": created["id"], "input": {"audience": {"districtIds": ["atlantis"]}}}
    )
    assert body["errors"][0]["extensions"]["field"] == "audience.districtIds"
    assert (await official.data(CREATE, _audience()))["createPoll"]["audience"]["districtIds"] == []


async def test_the_list_comes_from_events_and_a_redelivery_changes_nothing(
    polls: PollsServer,
) -> None:
    new = f"d-{uuid.uuid4().hex[:8]}"
    assert (await _refusal(polls, CREATE, _audience(new)))["extensions"]["code"] == "BAD_USER_INPUT"
    with_new = await polls.tell_districts(new)
    await polls.official().data(CREATE, _audience(new))
    without_new = await polls.tell_districts()
    assert new in (await _refusal(polls, CREATE, _audience(new)))["message"]
    kept = await polls.db[PROJECTED].find_one({"_id": DISTRICT_LIST.name})
    # Both lists delivered again (the same ids), then a late copy of the earlier one (a new
    # id, told before the list now kept): the queue is in order, so once the copy is
    # handled the redeliveries were too, and nothing brought the district back.
    await publish(polls.settings.amqp_url, polls.settings.namespace, with_new, without_new)
    await _told(polls, with_new.model_copy(update={"id": uuid.uuid4()}))
    assert await polls.db[PROJECTED].find_one({"_id": DISTRICT_LIST.name}) == kept
    processed = polls.db["processed_events"]
    assert await processed.count_documents({"_id": str(with_new.id)}) == 1
    assert new in (await _refusal(polls, CREATE, _audience(new)))["message"]


async def test_before_any_list_arrives_districts_wait_and_the_city_does_not(
    polls: PollsServer,
) -> None:
    await polls.db[PROJECTED].delete_one({"_id": DISTRICT_LIST.name})
    try:
        error = await _refusal(polls, CREATE, _audience("leninsky"))
        assert error["extensions"] == {
            "code": "BAD_USER_INPUT",
            "field": "audience.districtIds",
            "reason": "REFERENCE_DATA_PENDING",
            "retryAfterSeconds": 5,
        }
        assert "users service" in error["message"]
        assert (await polls.official().data(CREATE, _audience()))["createPoll"]["id"]
        # A list told before the projection was lost still counts once it arrives.
        older = DistrictsPublished(districts=[ReferenceItem(id="leninsky", name="Ленинский")])
        envelope = Envelope.wrap(older, "users")
        late = envelope.model_copy(update={"occurred_at": envelope.occurred_at - timedelta(days=1)})
        await _told(polls, late)
        await polls.official().data(CREATE, _audience("leninsky"))
    finally:
        await polls.tell_districts()
