"""A store written with the old light stemmer: its first start on this release
re-stems every issue, so old reports are found by the new stems too."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from veche_issues import domain, store
from veche_kit.migrations import dry_run, migrate
from veche_kit.mongo import Database, connect


@pytest.fixture
async def db(mongo_server_url: str) -> AsyncIterator[Database]:
    client = connect(mongo_server_url)
    yield client[f"issues_{uuid.uuid4().hex[:8]}"]
    await client.close()


async def test_old_reports_are_found_by_the_new_stems(db: Database) -> None:
    await db[store.ISSUES].insert_many(
        [
            # as the light stemmer left them: "cities" -> "cit", short nouns unstemmed
            {
                "_id": "i1",
                "title": "Broken lights in two cities",
                "search_terms": ["broken", "cit", "in", "light", "two"],
            },
            {"_id": "i2", "title": "Ямы во дворе", "search_terms": ["во", "двор", "ямы"]},
            {"_id": "i3", "title": "Мост", "description": None, "search_terms": ["мост"]},
        ]
    )
    city = store.prefix_filter(domain.query_terms("city"))  # Snowball: "citi"
    assert await db[store.ISSUES].count_documents(city) == 0
    [planned] = await dry_run(db, store.MIGRATIONS)
    assert planned.documents == 2  # "мост" stems to itself: nothing to change
    [done] = await migrate(db, store.MIGRATIONS)
    assert done.documents == 2
    assert [d["_id"] for d in await db[store.ISSUES].find(city).to_list()] == ["i1"]
    stored = await db[store.ISSUES].find_one({"_id": "i2"})
    assert stored is not None
    assert stored["search_terms"] == domain.search_terms("Ямы во дворе")
    assert await migrate(db, store.MIGRATIONS) == []
