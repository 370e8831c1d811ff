"""Malformed requests get a 4xx with a code, never a 500; cross-site requests are refused."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

NORMAL = '{ user(id: "u1") { name } }'
NORMAL_ANSWER = {"data": {"user": {"name": "Anna"}}}
JSON = {"Content-Type": "application/json"}

CSRF = (
    "This request has been blocked as a potential cross-site request forgery: send"
    " Content-Type: application/json, or one of the headers apollo-require-preflight,"
    " x-apollo-operation-name, apollographql-client-name"
)


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _refusal(message: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": "BAD_USER_INPUT"}}]}


MALFORMED_BODIES = {
    "JSON nested 2,000 deep": (
        f'{{"query": "{{ __typename }}", "variables": {{"x": {_nested(2000)}}}}}'.encode(),
        "The request body is not valid JSON: depth limit exceeded",
    ),
    "variables nested 1,000 deep": (
        f'{{"query": "{{ __typename }}", "variables": {{"x": {_nested(1000)}}}}}'.encode(),
        "variables are nested more than 64 levels deep",
    ),
    "a lone surrogate in a variable": (
        b'{"query": "query Q($id: ID!) { user(id: $id) { name } }",'
        b' "variables": {"id": "\\ud800"}}',
        "The request body is not valid JSON: no low surrogate in string",
    ),
    "a lone surrogate in the query": (
        b'{"query": "{ user(id: \\"\\udc00\\") { name } }"}',
        "The request body is not valid JSON: invalid high surrogate in string",
    ),
    "bytes that are not UTF-8": (
        b'{"query": "{ user(id: \\"\xff\\") { name } }"}',
        "The request body is not valid JSON: str is not valid UTF-8",
    ),
    "null": (b"null", "The request body must be a JSON object"),
    "a number": (b"1", "The request body must be a JSON object"),
    "a string": (b'"x"', "The request body must be a JSON object"),
    "a list": (b"[]", "The request body must be a JSON object"),
    "an empty body": (b"", "The request body must be a JSON object"),
    "NaN": (b'{"query": NaN}', "The request body is not valid JSON: unexpected character"),
}


@pytest.mark.parametrize("name", list(MALFORMED_BODIES))
async def test_a_malformed_body_is_400_with_a_code(client: httpx.AsyncClient, name: str) -> None:
    body, message = MALFORMED_BODIES[name]
    response = await client.post("/graphql", content=body, headers=JSON)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors[0]["extensions"] == {"code": "BAD_USER_INPUT"}
    assert errors[0]["message"].startswith(message), errors


async def test_deep_variables_over_get_are_400(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/graphql", params={"query": "{ __typename }", "variables": '{"x": ' + _nested(100) + "}"}
    )
    assert response.status_code == 400
    assert response.json() == _refusal("variables are nested more than 64 levels deep")


async def test_a_request_id_that_is_not_ascii_is_replaced(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql", json={"query": NORMAL}, headers={b"X-Request-Id": b"\xffreq"}
    )
    assert response.status_code == 200
    assert response.json() == NORMAL_ANSWER
    assert len(response.headers["x-request-id"]) == 32  # a fresh one


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain;charset=utf-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        None,
    ],
)
async def test_a_post_a_browser_sends_unasked_is_refused(
    client: httpx.AsyncClient, content_type: str | None
) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    body = json.dumps({"query": NORMAL}).encode()
    response = await client.post("/graphql", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json() == _refusal(CSRF)
    preflighted = await client.post(
        "/graphql", content=body, headers={**headers, "Apollo-Require-Preflight": "true"}
    )
    assert preflighted.status_code == 200
    assert preflighted.json() == NORMAL_ANSWER


async def test_a_post_in_another_content_type_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql",
        content=json.dumps({"query": NORMAL}).encode(),
        headers={"Content-Type": "application/xml"},
    )
    assert response.status_code == 415
    assert response.json() == _refusal(
        "Unsupported Content-Type application/xml: send the request as application/json"
    )


async def test_a_get_with_a_simple_content_type_needs_the_preflight_header(
    client: httpx.AsyncClient,
) -> None:
    params = {"query": NORMAL}
    plain = await client.get("/graphql", params=params)
    assert plain.json() == NORMAL_ANSWER  # queries only: mutations are refused over GET
    refused = await client.get("/graphql", params=params, headers={"Content-Type": "text/plain"})
    assert refused.status_code == 400
    assert refused.json() == _refusal(CSRF)
    named = await client.get(
        "/graphql",
        params=params,
        headers={"Content-Type": "text/plain", "X-Apollo-Operation-Name": "Q"},
    )
    assert named.json() == NORMAL_ANSWER
