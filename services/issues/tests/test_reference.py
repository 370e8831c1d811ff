"""Issues owns the categories and tells their whole list at start (after its demo
data): the users service checks solvers' skills against it."""

from __future__ import annotations

from veche_kit.events import CategoriesPublished, CategoryItem, Envelope
from veche_kit.outbox import OUTBOX
from veche_kit.reference import CATEGORIES
from veche_stack.testing import eventually

from .conftest import IssuesServer


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
