"""Errors: subgraph errors with client paths, unavailable subgraphs, validation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

GQL = Callable[..., Awaitable[dict[str, Any]]]

ROOT_ERROR = '{ failing user(id: "u1") { name } }'

NESTED_ERROR = "{ issues(first: 2) { id note } }"

ENTITY_ERROR = '{ user(id: "u2") { name issues { title note } } }'

NULL_PROPAGATION = '{ user(id: "u2") { name issues { checkedNote } } poll(id: "p1") { title } }'

TIMEOUT = '{ slow user(id: "u1") { name } }'

DOWN = '{ user(id: "u1") { name } poll(id: "p1") { title } }'

DOWN_IN_ENTITY_STEP = '{ issue(id: "i1") { title poll { status } } }'

ENGLISH = {"Accept-Language": "en"}  # the messages asserted are the English ones


async def test_root_error_keeps_its_extensions_and_path(gql: GQL) -> None:
    assert await gql(ROOT_ERROR) == {
        "errors": [
            {
                "message": "The issues store is on fire",
                "path": ["failing"],
                "extensions": {"code": "INTERNAL", "serviceName": "issues"},
            }
        ],
        "data": {"failing": None, "user": {"name": "Anna"}},
    }


async def test_nested_error_path(gql: GQL) -> None:
    assert await gql(NESTED_ERROR) == {
        "errors": [
            {
                "message": "Only officials read notes",
                "path": ["issues", 1, "note"],
                "extensions": {"code": "FORBIDDEN", "serviceName": "issues"},
            }
        ],
        "data": {"issues": [{"id": "i1", "note": "a note"}, {"id": "i2", "note": None}]},
    }


async def test_entity_error_path_is_rewritten_to_the_client_path(gql: GQL) -> None:
    assert await gql(ENTITY_ERROR) == {
        "errors": [
            {
                "message": "Only officials read notes",
                "path": ["user", "issues", 0, "note"],
                "extensions": {"code": "FORBIDDEN", "serviceName": "issues"},
            }
        ],
        "data": {"user": {"name": "Boris", "issues": [{"title": "Broken light", "note": None}]}},
    }


async def test_null_propagates_to_the_nearest_nullable_parent(gql: GQL) -> None:
    assert await gql(NULL_PROPAGATION) == {
        "errors": [
            {
                "message": "The checked note is missing",
                "path": ["user", "issues", 0, "checkedNote"],
                "extensions": {"code": "NOT_FOUND", "serviceName": "issues"},
            }
        ],
        # checkedNote is non-null, so is each issue: the list goes, the user stays
        "data": {"user": {"name": "Boris", "issues": None}, "poll": {"title": "Park renovation"}},
    }


async def test_a_subgraph_timing_out_yields_null_and_an_error(
    subgraph_urls: dict[str, str], start_gateway: Callable[..., Awaitable[Any]]
) -> None:
    # issues' `slow` takes 1 s; this gateway waits 0.3 s for any fetch
    gateway = await start_gateway(subgraph_urls, fetch_timeout_seconds=0.3)
    async with httpx.AsyncClient(base_url=gateway.url, headers=ENGLISH) as http:
        result = (await http.post("/graphql", json={"query": TIMEOUT})).json()
    assert result == {
        "errors": [
            {
                "message": 'Subgraph "issues" is unavailable: timed out',
                "path": ["slow"],
                "extensions": {"code": "SUBGRAPH_UNAVAILABLE", "serviceName": "issues"},
            }
        ],
        "data": {"slow": None, "user": {"name": "Anna"}},
    }
    assert list(result["data"]) == ["slow", "user"]


async def test_a_subgraph_down_yields_null_and_an_error(
    subgraph_urls: dict[str, str],
    start_subgraph: Callable[..., Awaitable[Any]],
    start_gateway: Callable[..., Awaitable[Any]],
) -> None:
    from_polls = await start_subgraph("polls-copy", "polls")
    urls = {**subgraph_urls, "polls": f"{from_polls.url}/graphql"}
    gateway = await start_gateway(urls)
    await from_polls.stop()
    async with httpx.AsyncClient(base_url=gateway.url, headers=ENGLISH) as http:
        root = (await http.post("/graphql", json={"query": DOWN})).json()
        nested = (await http.post("/graphql", json={"query": DOWN_IN_ENTITY_STEP})).json()

    def unavailable(*path: str) -> dict[str, Any]:
        return {
            "message": 'Subgraph "polls" is unavailable: ConnectError',
            "path": list(path),
            "extensions": {"code": "SUBGRAPH_UNAVAILABLE", "serviceName": "polls"},
        }

    assert root == {
        "errors": [unavailable("poll")],
        "data": {"user": {"name": "Anna"}, "poll": None},
    }
    # Poll.status is non-null, so the poll goes null; the issue itself survives
    assert nested == {
        "errors": [unavailable("issue", "poll", "status")],
        "data": {"issue": {"title": "Pothole", "poll": None}},
    }


async def test_validation_error_is_bad_user_input(client: httpx.AsyncClient) -> None:
    query = '{ user(id: "u1") { secret } }'
    response = await client.post("/graphql", json={"query": query})
    assert response.status_code == 200
    assert response.json() == {
        "errors": [
            {
                "message": "Cannot query field 'secret' on type 'User'. Did you mean 'score'?",
                "locations": [{"line": 1, "column": 20}],
                "extensions": {"code": "BAD_USER_INPUT"},
            }
        ]
    }
    strict = await client.post(
        "/graphql",
        json={"query": query},
        headers={"Accept": "application/graphql-response+json"},
    )
    assert strict.status_code == 400
    assert strict.headers["content-type"] == "application/graphql-response+json"
    assert strict.json() == response.json()


async def test_parse_error_is_bad_user_input(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json={"query": "{ user(id: "})
    assert response.status_code == 200
    assert response.json() == {
        "errors": [
            {
                "message": "Syntax Error: Unexpected <EOF>.",
                "locations": [{"line": 1, "column": 12}],
                "extensions": {"code": "BAD_USER_INPUT"},
            }
        ]
    }


async def test_missing_variable_is_bad_user_input(gql: GQL) -> None:
    assert await gql("query Q($id: ID!) { user(id: $id) { name } }") == {
        "errors": [
            {
                "message": (
                    "Variable '$id' has invalid value: "
                    "Expected a value of non-null type 'ID!' to be provided."
                ),
                "locations": [{"line": 1, "column": 9}],
                "extensions": {"code": "BAD_USER_INPUT"},
            }
        ]
    }


async def test_malformed_request_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql", content=b"not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json() == {
        "errors": [
            {
                "message": "The request body is not valid JSON: invalid literal, expected 'null'",
                "extensions": {"code": "BAD_USER_INPUT"},
            }
        ]
    }


async def test_a_subgraph_answering_500_is_unavailable(
    subgraph_urls: dict[str, str],
    start_subgraph: Callable[..., Awaitable[Any]],
    start_gateway: Callable[..., Awaitable[Any]],
) -> None:
    extras = await start_subgraph("extras", "v1")
    gateway = await start_gateway(
        {"users": subgraph_urls["users"], "extras": f"{extras.url}/graphql"}
    )
    extras.extra["use"]("http500")
    async with httpx.AsyncClient(base_url=gateway.url, headers=ENGLISH) as http:
        response = await http.post("/graphql", json={"query": '{ hello user(id: "u1") { name } }'})
    assert response.status_code == 200
    assert response.json() == {
        "errors": [
            {
                "message": 'Subgraph "extras" is unavailable: HTTP 500',
                "path": ["hello"],
                "extensions": {"code": "SUBGRAPH_UNAVAILABLE", "serviceName": "extras"},
            }
        ],
        "data": None,  # hello is non-null, so the whole data goes
    }


async def test_reserved_names_are_refused(gql: GQL) -> None:
    assert await gql('{ user(id: "u1") { _veche_t: name } }') == {
        "errors": [
            {
                "message": "Names starting with _veche_ are reserved by the gateway: _veche_t",
                "extensions": {"code": "BAD_USER_INPUT"},
            }
        ]
    }


async def test_a_subgraphs_propagated_null_needs_no_error_of_ours(gql: GQL) -> None:
    """One of two non-null mutation fields fails, so the subgraph answers `data: null`:
    the client gets its error, and no INTERNAL "Cannot return null" for the other."""
    body = await gql(
        'mutation { ok: renameUser(id: "u1", name: "Anna") { name } '
        'bad: renameUser(id: "nobody", name: "X") { name } }'
    )
    assert body["data"] is None
    assert [(e["path"], e["extensions"]["serviceName"]) for e in body["errors"]] == [
        (["bad"], "users")
    ]
