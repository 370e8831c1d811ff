"""`reference_lists`: a projected list is replaced only by one told later; ids are checked
against it, or, before any list, against the demo seed or refused as pending; the owner's
tellings serialise on one document."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from veche_kit.clock import utcnow
from veche_kit.errors import BadUserInputError
from veche_kit.mongo import Database, Session, connect, in_transaction
from veche_kit.reference_lists import DISTRICT_LIST, TOLD, ProjectedLists, tell


@pytest.fixture
async def db(mongo_server_url: str) -> AsyncIterator[Database]:
    client = connect(mongo_server_url)
    yield client[f"reference_{uuid.uuid4().hex[:8]}"]
    await client.close()


async def _replace(db: Database, ids: list[str], minutes_ago: int) -> bool:
    items = [{"id": i, "name": i.title()} for i in ids]
    at = utcnow() - timedelta(minutes=minutes_ago)

    async def work(session: Session) -> bool:
        return await ProjectedLists(db).replace(DISTRICT_LIST, items, at, session)

    return await in_transaction(db.client, work)


async def test_a_list_told_later_replaces_and_an_earlier_one_does_not(db: Database) -> None:
    lists = ProjectedLists(db)
    assert await lists.ids(DISTRICT_LIST) is None
    assert await _replace(db, ["north"], minutes_ago=5)
    assert await _replace(db, ["north", "south"], minutes_ago=1)
    assert not await _replace(db, ["west"], minutes_ago=3)
    assert await lists.ids(DISTRICT_LIST) == frozenset({"north", "south"})


async def test_ids_are_checked_against_the_list_the_seed_or_refused_as_pending(
    db: Database,
) -> None:
    lists = ProjectedLists(db)
    await lists.require_known(DISTRICT_LIST, [], field="districts", seeded=False)
    with pytest.raises(BadUserInputError) as pending:
        await lists.require_known(DISTRICT_LIST, ["leninsky"], field="districts", seeded=False)
    assert pending.value.extensions["reason"] == "REFERENCE_DATA_PENDING"
    assert pending.value.extensions["retryAfterSeconds"] > 0
    # Before any list, with demo data: the demo rows the owner seeds.
    await lists.require_known(DISTRICT_LIST, ["leninsky"], field="districts", seeded=True)
    with pytest.raises(BadUserInputError) as unknown:
        await lists.require_known(DISTRICT_LIST, ["north"], field="districts", seeded=True)
    assert "'north'" in unknown.value.message
    # Once a list arrived it alone counts, demo data or not.
    await _replace(db, ["north"], minutes_ago=0)
    await lists.require_known(DISTRICT_LIST, ["north"], field="districts", seeded=True)
    with pytest.raises(BadUserInputError) as seeded_id:
        await lists.require_known(DISTRICT_LIST, ["north", "leninsky"], field="x", seeded=True)
    assert seeded_id.value.extensions == {"field": "x"}
    assert "'leninsky'" in seeded_id.value.message
    assert "`districts` query" in seeded_id.value.message


async def test_each_telling_is_recorded(db: Database) -> None:
    for _ in range(2):
        await in_transaction(db.client, lambda session: tell(db, DISTRICT_LIST, session))
    told = await db[TOLD].find_one({"_id": DISTRICT_LIST.name})
    assert told is not None
    assert told["tellings"] == 2
