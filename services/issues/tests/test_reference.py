"""Reference lists: issues owns the categories and tells their whole list at start
(after its demo data), which users checks solvers' skills against; it checks reports'
districts against the users service's list, kept from `reference.districts_published`
(the list told last: an older one or a redelivery changes nothing)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from veche_kit.events import (
    CategoriesPublished,
    CategoryItem,
    DistrictsPublished,
    Envelope,
    ReferenceItem,
)
from veche_kit.outbox import OUTBOX
from veche_kit.reference import CATEGORIES, DISTRICTS
from veche_stack.testing import eventually, publish

from .conftest import REPORT, IssuesServer


async def test_the_categories_are_told_at_start(issues: IssuesServer) -> None:
    outbox = issues.service.db[OUTBOX]
    told = await outbox.find_one({"type": CategoriesPublished.type})
    assert told is not None
    event = Envelope.model_validate(told["envelope"]).event()
    assert isinstance(event, CategoriesPublished)
    assert told["envelope"]["producer"] == "issues"
    for c in CATEGORIES:
        assert CategoryItem(id=c.id, name=c.name, department_id=c.department_id) in event.categories

    async def sent() -> bool:  # the relay published it
        found = await outbox.find_one({"_id": told["_id"]})
        return found is not None and "sent_at" in found

    assert await eventually(sent, timeout=10)


async def _tell(issues: IssuesServer, *extra: str, minutes_ago: int = 0) -> Envelope:
    """The users service's districts (the demo city's and `extra`), told `minutes_ago`."""
    rows = [ReferenceItem(id=d.id, name=d.name) for d in DISTRICTS]
    rows += [ReferenceItem(id=d, name=d) for d in extra]
    envelope = Envelope.wrap(DistrictsPublished(districts=rows), "users")
    at = envelope.occurred_at - timedelta(minutes=minutes_ago)
    envelope = envelope.model_copy(update={"occurred_at": at})
    await publish(issues.settings.amqp_url, issues.settings.namespace, envelope)

    async def handled() -> bool:
        found = await issues.service.db["processed_events"].find_one({"_id": str(envelope.id)})
        return found is not None

    await eventually(handled, timeout=10, interval=0.02)
    return envelope


async def _refused(issues: IssuesServer, district: str) -> dict[str, Any]:
    payload = {
        "title": "Яма",
        "description": "Яма у дома.",
        "category": "potholes",
        "location": {"lat": 54.5, "lon": 36.2},
    }
    body = await issues.citizen().client.post(
        REPORT, {"input": {**payload, "districtId": district}}
    )
    assert body.get("errors"), body
    error: dict[str, Any] = body["errors"][0]
    return error


async def test_reports_name_districts_from_the_users_services_list(issues: IssuesServer) -> None:
    new = f"d-{uuid.uuid4().hex[:8]}"
    error = await _refused(issues, new)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "districtId"}
    assert f"'{new}'" in error["message"]
    assert "`districts` query" in error["message"]
    try:
        await _tell(issues, new)
        assert (await issues.report(issues.citizen(), districtId=new))["district"] == {"id": new}
        await _tell(issues, minutes_ago=10)  # an older list without it: no roll-back
        assert (await issues.report(issues.citizen(district=new)))["district"] == {"id": new}
    finally:
        await _tell(issues)  # the current list, without it
    assert f"'{new}'" in (await _refused(issues, new))["message"]
    assert (await issues.report(issues.citizen(district="oktyabrsky")))["district"]
