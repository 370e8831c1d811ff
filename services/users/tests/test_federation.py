"""The users subgraph speaks Federation v2: its SDL and entity resolution."""

from __future__ import annotations

import httpx

from .conftest import UsersServer

SERVICE = "{ _service { sdl } }"
ENTITIES = """query($r: [_Any!]!) {
  _entities(representations: $r) {
    __typename
    ... on User { id displayName }
    ... on Department { id name }
    ... on District { id name }
  }
}"""


async def test_sdl_declares_entities_with_keys(users: UsersServer) -> None:
    sdl = (await users.client.data(SERVICE))["_service"]["sdl"]
    assert 'schema @link(url: "https://specs.apollo.dev/federation/v2' in sdl
    for entity in ("User", "Department", "District"):
        assert f'type {entity} @key(fields: "id")' in sdl
    assert '"""Name shown to others.' in sdl  # descriptions travel to the supergraph


async def test_entities_resolve_in_order_with_nulls_for_unknown(users: UsersServer) -> None:
    _, auth = await users.citizen()
    user_id = auth["user"]["id"]
    representations = [
        {"__typename": "Department", "id": "roads"},
        {"__typename": "User", "id": user_id},
        {"__typename": "User", "id": "no-such-user"},
        {"__typename": "District", "id": "moskovsky"},
    ]
    entities = (await users.client.data(ENTITIES, {"r": representations}))["_entities"]
    assert entities == [
        {"__typename": "Department", "id": "roads", "name": "Управление дорожного хозяйства"},
        {"__typename": "User", "id": user_id, "displayName": "Иван Петров"},
        None,
        {"__typename": "District", "id": "moskovsky", "name": "Московский округ"},
    ]


async def test_request_id_is_echoed_and_health_reports_the_outbox(users: UsersServer) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{users.url}/graphql",
            json={"query": "{ me { id } }"},
            headers={"X-Request-Id": "req-42"},
        )
        assert response.headers["x-request-id"] == "req-42"
        generated = await http.get(f"{users.url}/ready")
        assert len(generated.headers["x-request-id"]) == 32
        health = (await http.get(f"{users.url}/health")).json()
    assert health["mongo"] == "ok"
    assert health["broker"] == "connected"
    assert set(health["outbox"]) == {"pending", "oldestAgeSeconds"}
