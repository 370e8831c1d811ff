"""A service starting on an existing store: its indexes set up twice must find them
in place (the embedded store once refused its own 2dsphere index), and a store
newer than the code is refused."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from asyncio.subprocess import PIPE, STDOUT
from collections.abc import Sequence
from pathlib import Path

import pytest
from pymongo import IndexModel

from veche_issues.store import INDEXES as ISSUES_INDEXES
from veche_kit.migrations import VERSIONS
from veche_kit.mongo import connect, ensure_indexes
from veche_polls.store import INDEXES as POLLS_INDEXES
from veche_stack.processes import free_port
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


async def test_a_service_refuses_a_store_newer_than_its_code(
    mongo_server_url: str, amqp_url: str, tmp_path: Path
) -> None:
    db_name = f"newer_{uuid.uuid4().hex[:8]}"
    client = connect(mongo_server_url)
    try:
        await client[db_name][VERSIONS].insert_one({"_id": "users", "version": 7})
    finally:
        await client.close()
    env = {
        **os.environ,
        "USERS_MONGO_URL": mongo_server_url,
        "USERS_MONGO_DB": db_name,
        "USERS_PORT": str(free_port()),
        "USERS_DEMO_DATA": "false",
        "AMQP_URL": amqp_url,
        "VECHE_DATA_DIR": str(tmp_path),
        "VECHE_NAMESPACE": f"test-{uuid.uuid4().hex[:8]}.",
    }
    service = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "veche_users", env=env, stdout=PIPE, stderr=STDOUT
    )
    output, _ = await asyncio.wait_for(service.communicate(), 60)
    assert service.returncode != 0
    assert (
        f"the store {db_name} holds users at schema version 7, but this release knows "
        "versions up to 0"
    ) in output.decode()
