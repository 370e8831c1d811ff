"""Degraded mode: a subgraph that is down costs only its own fields.

Every field a failed fetch leaves null has a `SUBGRAPH_UNAVAILABLE` error at its
client path; the other subgraphs' fields and the objects holding them come
back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

Start = Callable[..., Awaitable[Any]]
GQL = Callable[..., Awaitable[dict[str, Any]]]

# users, issues and polls at the root; polls' fields on a user and under issues
POLLS_DOWN = """
{
  user(id: "u1") { name polls { title } }
  issues { title poll { status } }
  poll(id: "p1") { title }
}
"""

# creator's name comes from polls (@provides); ageLabel (polls) needs birthYear from
# users first: users down leaves it without a key to ask with
USERS_DOWN = """
{
  poll(id: "p1") { title author { name } creator { name } }
  age: poll(id: "p1") { author { ageLabel } }
  issues { title reporter { name } }
}
"""

SIBLINGS = "{ polls(first: 1) { title } pollsForMe { title } }"


def _unavailable(subgraph: str, reason: str, *path: str | int) -> dict[str, Any]:
    return {
        "message": f'Subgraph "{subgraph}" is unavailable: {reason}',
        "path": list(path),
        "extensions": {"code": "SUBGRAPH_UNAVAILABLE", "serviceName": subgraph},
    }


def _by_path(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(errors, key=lambda e: [str(p) for p in e.get("path", [])])


async def _query(http: httpx.AsyncClient, query: str) -> dict[str, Any]:
    response = await http.post("/graphql", json={"query": query})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_polls_down_costs_only_the_fields_polls_resolves(
    subgraph_urls: dict[str, str], start_subgraph: Start, start_gateway: Start
) -> None:
    polls = await start_subgraph("polls", "polls")
    gateway = await start_gateway({**subgraph_urls, "polls": f"{polls.url}/graphql"})
    await polls.stop()
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        result = await _query(http, POLLS_DOWN)
    assert result["data"] == {
        "user": {"name": "Anna", "polls": None},
        # Poll.status is non-null: the poll goes, the issue stays; i2 has no poll to ask for
        "issues": [{"title": "Pothole", "poll": None}, {"title": "Broken light", "poll": None}],
        "poll": None,
    }
    assert _by_path(result["errors"]) == [
        _unavailable("polls", "ConnectError", "issues", 0, "poll", "status"),
        _unavailable("polls", "ConnectError", "poll"),
        _unavailable("polls", "ConnectError", "user", "polls"),
    ]


async def test_users_down_keeps_the_objects_that_reference_users(
    subgraph_urls: dict[str, str], start_subgraph: Start, start_gateway: Start
) -> None:
    users = await start_subgraph("users", "users")
    gateway = await start_gateway({**subgraph_urls, "users": f"{users.url}/graphql"})
    await users.stop()
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        result = await _query(http, USERS_DOWN)
    assert result["data"] == {
        "poll": {"title": "Park renovation", "author": None, "creator": {"name": "Boris (polls)"}},
        "age": {"author": {"ageLabel": None}},
        "issues": [
            {"title": "Pothole", "reporter": None},
            {"title": "Broken light", "reporter": None},
        ],
    }
    assert _by_path(result["errors"]) == [
        # polls answers ageLabel, but only with the birthYear users did not send
        _unavailable("users", "ConnectError", "age", "author", "ageLabel"),
        _unavailable("users", "ConnectError", "issues", 0, "reporter", "name"),
        _unavailable("users", "ConnectError", "issues", 1, "reporter", "name"),
        _unavailable("users", "ConnectError", "poll", "author", "name"),
    ]


async def test_one_root_field_refused_keeps_its_siblings_from_the_same_fetch(gql: GQL) -> None:
    assert await gql(SIBLINGS) == {
        "errors": [
            {
                "message": "Sign in first",
                "path": ["pollsForMe"],
                "extensions": {"code": "UNAUTHENTICATED", "serviceName": "polls"},
            }
        ],
        "data": {"polls": [{"title": "Park renovation"}], "pollsForMe": None},
    }
