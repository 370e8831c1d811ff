"""Reference lists across services: a solver's skills are checked against the issues
service's categories, which users keeps from `reference.categories_published` (unknown
ids refused, the list replaced only by one told later, redelivery harmless); users tells
its own districts at start and with every new district."""

from __future__ import annotations

import uuid
from typing import Any

from veche_kit.events import DistrictsPublished, Envelope, ReferenceItem
from veche_kit.outbox import OUTBOX
from veche_kit.reference import DISTRICTS
from veche_kit.reference_lists import CATEGORY_LIST, PROJECTED
from veche_stack.testing import bound_queue, eventually, publish, take

from .conftest import UsersServer

BECOME_SOLVER = "mutation($s: [String!]!) { becomeSolver(skills: $s) { roles skills } }"
ME = "{ me { roles skills } }"
CREATE_DISTRICT = "mutation($id: ID!, $n: String!) { createDistrict(id: $id, name: $n) { id } }"


async def _refusal(client: Any, skills: list[str]) -> dict[str, Any]:
    body = await client.post(BECOME_SOLVER, {"s": skills})
    assert body.get("errors"), body
    error: dict[str, Any] = body["errors"][0]
    return error


async def test_an_unknown_skill_is_refused_and_a_known_one_accepted(users: UsersServer) -> None:
    client, _ = await users.citizen()
    error = await _refusal(client, ["potholes", "atlantis-repair"])
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "skills"}
    assert "'atlantis-repair'" in error["message"]
    assert "potholes" not in error["message"]
    assert "`issueCategories` query" in error["message"]
    assert (await client.data(ME))["me"] == {"roles": ["CITIZEN"], "skills": []}
    became = (await client.data(BECOME_SOLVER, {"s": ["potholes", "waste"]}))["becomeSolver"]
    assert became == {"roles": ["CITIZEN", "SOLVER"], "skills": ["potholes", "waste"]}


async def test_the_categories_come_from_events_and_a_redelivery_changes_nothing(
    users: UsersServer,
) -> None:
    client, _ = await users.citizen()
    new = f"c-{uuid.uuid4().hex[:8]}"
    assert new in (await _refusal(client, [new]))["message"]
    with_new = await users.tell_categories(new)
    assert (await client.data(BECOME_SOLVER, {"s": [new]}))["becomeSolver"]["skills"] == [new]
    without_new = await users.tell_categories()
    other, _ = await users.citizen()
    assert new in (await _refusal(other, [new]))["message"]
    kept = await users.service.db[PROJECTED].find_one({"_id": CATEGORY_LIST.name})
    # Both lists delivered again (the same ids), then a late copy of the earlier one (a new
    # id, told before the list now kept): the queue is in order, so once the copy is
    # handled the redeliveries were too, and nothing brought the category back.
    await publish(users.settings.amqp_url, users.settings.namespace, with_new, without_new)
    late = with_new.model_copy(update={"id": uuid.uuid4()})
    await publish(users.settings.amqp_url, users.settings.namespace, late)
    await eventually(lambda: users.handled(late), timeout=10, interval=0.02)
    assert await users.service.db[PROJECTED].find_one({"_id": CATEGORY_LIST.name}) == kept
    processed = users.service.db["processed_events"]
    assert await processed.count_documents({"_id": str(with_new.id)}) == 1
    assert new in (await _refusal(other, [new]))["message"]


async def test_districts_are_told_at_start_and_with_each_new_one(
    users: UsersServer, amqp_url: str
) -> None:
    at_start = await users.service.db[OUTBOX].find_one({"type": "reference.districts_published"})
    assert at_start is not None
    told = at_start["envelope"]["data"]["districts"]
    assert {d["id"] for d in told} >= {d.id for d in DISTRICTS}
    new = f"d{uuid.uuid4().hex[:8]}"
    async with bound_queue(amqp_url, users.settings.namespace, "reference.*") as queue:
        await (await users.admin()).data(CREATE_DISTRICT, {"id": new, "n": "Новый округ"})

        async def arrived() -> list[dict[str, Any]]:
            return [e for e in await take(queue) if new in str(e["data"])]

        (envelope,) = await eventually(arrived, timeout=10, interval=0.05)
    event = Envelope.model_validate(envelope).event()
    assert isinstance(event, DistrictsPublished)
    assert envelope["producer"] == "users"
    assert {new, *(d.id for d in DISTRICTS)} <= {d.id for d in event.districts}
    assert ReferenceItem(id=new, name="Новый округ") in event.districts
