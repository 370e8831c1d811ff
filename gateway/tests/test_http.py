"""Serving: mutations, GET, header forwarding, APQ, limits, schema, health, CORS."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from graphql import get_introspection_query

from veche_gateway.errors import RequestError
from veche_gateway.gateway import Gateway, GraphQLRequest
from veche_gateway.settings import Settings

GQL = Callable[..., Awaitable[dict[str, Any]]]

# second's author is read before third renames him: each mutation's entity
# fetches finish before the next mutation starts
MUTATIONS = """
mutation InOrder {
  first: reportIssue(title: "Bench") { title }
  second: createPoll(title: "Fountain") { title author { name } }
  third: renameUser(id: "u2", name: "Borislav") { name }
  fourth: reportIssue(title: "Lamp") { title reporter { name } }
}
"""

RESTORE = 'mutation { renameUser(id: "u2", name: "Boris") { name } }'

ME = "{ me { name polls { title } } }"

USER_NAME = '{ user(id: "u1") { name } }'

DEEP = """
{ user(id: "u1") { polls { author { polls { author { polls { author {
  polls { author { name } } } } } } } } } }
"""

MANY_ALIASES = "{ " + " ".join(f'a{i}: user(id: "u1") {{ id }}' for i in range(11)) + " }"

MANY_FIELDS = """
{
  users { ...U }
  u: user(id: "u1") { ...U }
  polls { id title status author { ...U } creator { ...U } }
}
fragment U on User {
  id name birthYear role score ageLabel location { city street }
  polls { id title status } issues { id title note }
}
"""

COSTLY = "{ users(first: 100) { polls { issues { title } } } }"

INTROSPECTION = '{ __schema { queryType { name } } __type(name: "User") { fields { name } } }'


async def test_mutations_run_strictly_in_order(gql: GQL, mutation_log: list[str]) -> None:
    try:
        result = await gql(MUTATIONS)
    finally:
        await gql(RESTORE)
    assert result == {
        "data": {
            "first": {"title": "Bench"},
            "second": {"title": "Fountain", "author": {"name": "Boris"}},
            "third": {"name": "Borislav"},
            "fourth": {"title": "Lamp", "reporter": {"name": "Anna"}},
        }
    }
    assert mutation_log == [
        "issues:report:Bench",
        "polls:create:Fountain",
        "users:rename:Borislav",
        "issues:report:Lamp",
        "users:rename:Boris",
    ]


async def test_get_runs_queries_but_not_mutations(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/graphql",
        params={
            "query": "query Q($id: ID!) { user(id: $id) { name } }",
            "variables": '{"id": "u2"}',
        },
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"user": {"name": "Boris"}}}
    refused = await client.get("/graphql", params={"query": MUTATIONS})
    assert refused.status_code == 405
    assert refused.json() == {
        "errors": [
            {
                "message": "Mutations are only accepted over POST",
                "extensions": {"code": "BAD_USER_INPUT"},
            }
        ]
    }


async def test_headers_are_forwarded_to_every_fetch(
    client: httpx.AsyncClient, seen_headers: dict[str, list[dict[str, str]]]
) -> None:
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    response = await client.post(
        "/graphql",
        json={"query": ME},
        headers={
            "Authorization": "Bearer u1",
            "traceparent": traceparent,
            "Accept-Language": "en-GB,en;q=0.9",
        },
    )
    assert response.json() == {
        "data": {"me": {"name": "Anna", "polls": [{"title": "Park renovation"}]}}
    }
    request_id = response.headers["x-request-id"]
    assert len(request_id) == 32
    assert sorted(seen_headers) == ["polls", "users"]
    for name in ("users", "polls"):
        (headers,) = seen_headers[name]
        assert headers["authorization"] == "Bearer u1"
        assert headers["traceparent"] == traceparent
        assert headers["accept-language"] == "en-GB,en;q=0.9"  # the inbox's language
        assert headers["x-request-id"] == request_id

    seen_headers.clear()
    given = await client.post(
        "/graphql", json={"query": USER_NAME}, headers={"X-Request-Id": "req-7"}
    )
    assert given.headers["x-request-id"] == "req-7"
    assert seen_headers["users"][0]["x-request-id"] == "req-7"
    assert "authorization" not in seen_headers["users"][0]


async def test_automatic_persisted_queries(client: httpx.AsyncClient) -> None:
    query = '{ user(id: "u2") { name role } }'
    digest = hashlib.sha256(query.encode()).hexdigest()
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": digest}}

    unknown = await client.post("/graphql", json={"extensions": extensions})
    assert unknown.status_code == 200
    assert unknown.json() == {
        "errors": [
            {
                "message": "PersistedQueryNotFound",
                "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
            }
        ]
    }
    registered = await client.post("/graphql", json={"query": query, "extensions": extensions})
    expected = {"data": {"user": {"name": "Boris", "role": "OFFICIAL"}}}
    assert registered.json() == expected
    by_hash = await client.get("/graphql", params={"extensions": json.dumps(extensions)})
    assert by_hash.json() == expected

    wrong = {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}
    mismatch = await client.post("/graphql", json={"query": query, "extensions": wrong})
    assert mismatch.status_code == 400
    assert mismatch.json() == {
        "errors": [
            {
                "message": "provided sha does not match query",
                "extensions": {"code": "BAD_USER_INPUT"},
            }
        ]
    }


async def test_depth_limit(gql: GQL) -> None:
    assert await gql(DEEP) == _too_complex("its depth is 10, the limit is 8")


async def test_alias_limit(gql: GQL) -> None:
    assert await gql(MANY_ALIASES) == _too_complex("its number of aliases is 11, the limit is 10")


async def test_field_limit(gql: GQL) -> None:
    assert await gql(MANY_FIELDS) == _too_complex("its number of fields is 76, the limit is 60")


async def test_cost_limit_multiplies_lists(gql: GQL) -> None:
    # objects only: 100 users, their polls and those polls' issues (the title comes with them)
    assert await gql(COSTLY) == _too_complex("its estimated cost is 11100, the limit is 5000")


def _too_complex(detail: str) -> dict[str, Any]:
    return {
        "errors": [
            {
                "message": f"The operation is too complex: {detail}",
                "extensions": {"code": "QUERY_TOO_COMPLEX"},
            }
        ]
    }


async def test_introspection_is_answered_from_the_client_schema(gql: GQL) -> None:
    result = await gql(INTROSPECTION)
    names = [f["name"] for f in result["data"]["__type"]["fields"]]
    assert result["data"]["__schema"] == {"queryType": {"name": "Query"}}
    assert names == [
        "id",
        "name",
        "birthYear",
        "role",
        "score",
        "location",
        "handle",
        "ageLabel",
        "polls",
        "issues",
    ]


async def test_graphiql_introspection_query_fits_the_limits(gql: GQL) -> None:
    result = await gql(get_introspection_query(descriptions=True))
    assert "errors" not in result
    types = {t["name"]: t for t in result["data"]["__schema"]["types"]}
    assert types["User"]["description"] == "A resident or an official."
    assert "_Service" not in types


async def test_nested_introspection_is_refused(gql: GQL) -> None:
    query = "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }"
    assert await gql(query) == {
        "errors": [
            {
                "message": "Maximum introspection depth exceeded",
                "locations": [{"line": 1, "column": 3}],
                "extensions": {"code": "BAD_USER_INPUT"},
            }
        ]
    }


async def test_introspection_can_be_switched_off(subgraph_urls: dict[str, str]) -> None:
    gateway = Gateway(
        Settings(subgraphs=subgraph_urls, poll_interval_seconds=0, introspection=False)
    )
    await gateway.start()
    try:
        with pytest.raises(RequestError) as refused:
            await gateway.execute(GraphQLRequest(INTROSPECTION), {})
        assert refused.value.errors == [
            {
                "message": "GraphQL introspection is disabled on this gateway",
                "extensions": {"code": "FORBIDDEN"},
            }
        ]
        result = await gateway.execute(GraphQLRequest(USER_NAME), {})
        assert result == {"data": {"user": {"name": "Anna"}}}
    finally:
        await gateway.stop()


async def test_schema_sdl_is_the_client_supergraph(client: httpx.AsyncClient) -> None:
    response = await client.get("/schema.graphql")
    assert response.status_code == 200
    sdl = response.text
    assert '"""A resident or an official."""\ntype User {' in sdl
    assert '"""The name shown to others."""\n  name: String!' in sdl
    for hidden in ("_service", "_entities", "_Any", "_Entity", "secret", "@key", "@link", "link__"):
        assert hidden not in sdl


async def test_health_and_ready(client: httpx.AsyncClient) -> None:
    health = (await client.get("/health")).json()
    assert health["status"] == "ok"
    assert health["lastCompositionError"] is None
    assert len(health["supergraph"]["version"]) == 16
    assert {n: s["status"] for n, s in health["subgraphs"].items()} == {
        "users": "up",
        "polls": "up",
        "issues": "up",
    }
    assert {n: s["breaker"]["state"] for n, s in health["subgraphs"].items()} == {
        "users": "closed",
        "polls": "closed",
        "issues": "closed",
    }
    ready = await client.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "version": health["supergraph"]["version"]}


async def test_cors_preflight(client: httpx.AsyncClient) -> None:
    response = await client.options(
        "/graphql",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,authorization",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://app.example"
    other = await client.options(
        "/graphql",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in other.headers


async def test_body_size_limit(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql",
        content=b"{" + b" " * 1_000_001 + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json() == {
        "errors": [
            {
                "message": "The request body exceeds 1000000 bytes",
                "extensions": {"code": "BAD_USER_INPUT"},
            }
        ]
    }


async def test_admin_reload_needs_the_secret(client: httpx.AsyncClient) -> None:
    refused = await client.post("/admin/reload", headers={"X-Admin-Secret": "wrong"})
    assert refused.status_code == 403
    version = (await client.get("/ready")).json()["version"]
    accepted = await client.post("/admin/reload", headers={"X-Admin-Secret": "s3cret"})
    assert accepted.status_code == 200
    assert accepted.json() == {"changed": False, "version": version, "lastCompositionError": None}


async def test_the_admin_secret_gets_the_printed_plan(client: httpx.AsyncClient) -> None:
    query = {"query": '{ user(id: "u1") { name } }'}
    plain = (await client.post("/graphql", json=query)).json()
    assert "extensions" not in plain
    wrong = (await client.post("/graphql", json=query, headers={"X-Admin-Secret": "no"})).json()
    assert "extensions" not in wrong
    admin = (await client.post("/graphql", json=query, headers={"X-Admin-Secret": "s3cret"})).json()
    assert admin["data"] == plain["data"]
    assert admin["extensions"]["queryPlan"] == (
        "QueryPlan {\n"
        '  Fetch(service: "users") {\n'
        '    query anonymous__users{user(id:"u1"){_veche_t:__typename name}}\n'
        "  }\n"
        "}"
    )


async def test_the_root_sends_a_browser_to_graphiql(client: httpx.AsyncClient) -> None:
    response = await client.get("/", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == "/graphql"
