"""user.* events leave through the outbox, also across a broker outage."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aio_pika.abc import AbstractQueue

from veche_stack.testing import GraphQLClient, TcpProxy, bound_queue, eventually, serve, take
from veche_users.app import create_app
from veche_users.settings import DEFAULT_CONSENT_VERSION

from .conftest import PASSWORD, REGISTER, UsersServer, users_settings

GRANT = """mutation($u: ID!, $r: Role!, $d: ID) { grantRole(userId: $u, role: $r, departmentId: $d) { roles department { id } } }"""


@pytest.fixture
async def events_queue(users: UsersServer, amqp_url: str) -> AsyncIterator[AbstractQueue]:
    async with bound_queue(amqp_url, users.settings.namespace, "user.*") as queue:
        yield queue


async def _first_about(queue: AbstractQueue, event_type: str, user_id: str) -> dict[str, Any]:
    """Waits for an event of the type about the user; returns the first one."""

    async def arrived() -> list[dict[str, Any]]:
        return [
            e
            for e in await take(queue)
            if e["type"] == event_type and e["data"]["user_id"] == user_id
        ]

    found: list[dict[str, Any]] = await eventually(arrived)
    return found[0]


async def test_registration_publishes_user_registered(
    users: UsersServer, events_queue: AbstractQueue
) -> None:
    auth = await users.register()
    user_id = auth["user"]["id"]
    mine: list[dict[str, Any]] = []

    async def arrived() -> bool:
        mine.extend(e for e in await take(events_queue) if e["data"].get("user_id") == user_id)
        return bool(mine)

    await eventually(arrived)
    envelope = mine[0]
    assert envelope["type"] == "user.registered"
    assert envelope["version"] == 1
    assert envelope["producer"] == "users"
    assert envelope["data"] == {
        "user_id": user_id,
        "display_name": "Иван Петров",
        "district_id": "leninsky",
        "birth_year": 1990,
        "roles": ["CITIZEN"],
        "phone_verified": False,
    }


async def test_role_change_publishes_user_role_changed(
    users: UsersServer, events_queue: AbstractQueue
) -> None:
    _, auth = await users.citizen()
    admin = await users.admin()
    user_id = auth["user"]["id"]
    await admin.data(GRANT, {"u": user_id, "r": "OFFICIAL", "d": "roads"})

    event = await _first_about(events_queue, "user.role_changed", user_id)
    assert event["data"] == {
        "user_id": user_id,
        "role": "OFFICIAL",
        "granted": True,
        "roles": ["CITIZEN", "OFFICIAL"],
        "department_id": "roads",
    }


async def test_profile_changes_publish_user_profile_updated(
    users: UsersServer, events_queue: AbstractQueue
) -> None:
    client, auth = await users.citizen()
    user_id = auth["user"]["id"]
    update = "mutation($i: UpdateProfileInput!) { updateProfile(input: $i) { birthYear } }"
    await client.data(update, {"i": {"districtId": "oktyabrsky", "birthYear": 1970}})

    event = await _first_about(events_queue, "user.profile_updated", user_id)
    assert event["data"] == {
        "user_id": user_id,
        "display_name": "Иван Петров",
        "district_id": "oktyabrsky",
        "birth_year": 1970,
        "phone_verified": False,
        "skills": [],
        "organization": None,
    }


async def test_broker_outage_delays_but_never_drops(
    mongo_server_url: str, amqp_url: str, tmp_path: Path
) -> None:
    proxy = TcpProxy("127.0.0.1", 5672)
    await proxy.start()
    settings = users_settings(mongo_server_url, proxy.url, tmp_path)
    async with bound_queue(amqp_url, settings.namespace, "user.registered") as queue:
        app = create_app(settings)
        async with serve(app) as base:
            client = GraphQLClient(f"{base}/graphql")
            relay = app.state.runtime.relay
            await eventually(lambda: _async(app.state.runtime.bus.connected))
            await eventually(lambda: _pending_is(relay, 0))  # the demo admin's event is out
            await proxy.cut()
            await eventually(lambda: _async(not app.state.runtime.bus.connected))
            emails = [f"outage-{i}-{settings.namespace}@example.ru" for i in range(5)]
            for email in emails:
                payload = {"email": email, "password": PASSWORD, "displayName": "Ольга"}
                payload["consentVersion"] = DEFAULT_CONSENT_VERSION
                assert (await client.data(REGISTER, {"input": payload}))["register"]["user"]["id"]
            backlog = await app.state.runtime.relay.backlog()
            assert backlog.pending == 5
            ids = {
                d["_id"]
                async for d in app.state.service.db["users"].find({"email": {"$in": emails}})
            }
            await proxy.restore()
            seen: list[str] = []

            async def all_arrived() -> bool:
                seen.extend(e["data"]["user_id"] for e in await take(queue))
                return ids <= set(seen)

            await eventually(all_arrived, timeout=30)
            assert sorted(i for i in seen if i in ids) == sorted(ids)  # each once
            assert (await app.state.runtime.relay.backlog()).pending == 0
            await client.aclose()
    await proxy.cut()


async def _async(value: bool) -> bool:
    return value


async def _pending_is(relay: Any, count: int) -> bool:
    return bool((await relay.backlog()).pending == count)
