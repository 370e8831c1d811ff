"""Every service's indexes, set up twice on one real store: a restart on existing
data must find them in place (the embedded store once refused its own 2dsphere index)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import pytest
from pymongo import IndexModel

from veche_issues.store import INDEXES as ISSUES_INDEXES
from veche_kit.mongo import connect, ensure_indexes
from veche_polls.store import INDEXES as POLLS_INDEXES
from veche_users.store import INDEXES as USERS_INDEXES


@pytest.mark.parametrize(
    "indexes", [USERS_INDEXES, POLLS_INDEXES, ISSUES_INDEXES], ids=["users", "polls", "issues"]
)
async def test_every_service_starts_again_on_its_own_indexes(
    mongo_server_url: str, indexes: dict[str, Sequence[IndexModel]]
) -> None:
    db_name = f"restart_{uuid.uuid4().hex[:8]}"
    for _ in range(2):  # a fresh client each time, as a restarted service has
        client = connect(mongo_server_url)
        try:
            await ensure_indexes(client[db_name], indexes)
        finally:
            await client.close()
