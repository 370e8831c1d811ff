"""`graphql_http`: only POSTed JSON objects with a query get through; every refusal is coded."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from veche_kit.graphql_http import Refused, parse_request, read_graphql_request, refusal

LIMIT = 1000
JSON = {"content-type": "application/json"}


async def endpoint(request: Request) -> Response:
    try:
        parsed = await read_graphql_request(request, LIMIT)
    except Refused as refused:
        return refused.response()
    return JSONResponse({"query": parsed.query, "variables": parsed.variables})


@pytest.fixture
async def http() -> Any:
    app = Starlette(routes=[Route("/graphql", endpoint, methods=["GET", "POST", "PUT"])])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://subgraph") as client:
        yield client


def coded(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    (error,) = response.json()["errors"]
    assert error["message"]
    return str(error["extensions"]["code"])


async def test_a_json_post_is_read(http: httpx.AsyncClient) -> None:
    body = {"query": "{ a }", "variables": {"x": 1}}
    response = await http.post(
        "/graphql", json=body, headers={"content-type": "application/json; charset=utf-8"}
    )
    assert response.json() == body


@pytest.mark.parametrize("method", ["GET", "PUT"])
async def test_other_methods_are_refused_with_405(http: httpx.AsyncClient, method: str) -> None:
    response = await http.request(method, "/graphql?query={a}")
    assert coded(response, 405) == "BAD_USER_INPUT"
    assert response.headers["allow"] == "POST"


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
async def test_non_json_content_types_are_refused(
    http: httpx.AsyncClient, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = await http.post("/graphql", content=b'{"query": "{ a }"}', headers=headers)
    assert coded(response, 400) == "BAD_USER_INPUT"
    assert "CSRF" in response.json()["errors"][0]["message"]


async def test_a_body_is_bounded_at_its_limit(http: httpx.AsyncClient) -> None:
    def sized(size: int) -> bytes:
        head = b'{"query": "{ a }", "pad": "'
        return head + b"x" * (size - len(head) - 2) + b'"}'

    assert (await http.post("/graphql", content=sized(LIMIT), headers=JSON)).status_code == 200
    response = await http.post("/graphql", content=sized(LIMIT + 1), headers=JSON)
    assert coded(response, 413) == "BAD_USER_INPUT"


async def test_a_streamed_body_past_the_limit_is_refused(http: httpx.AsyncClient) -> None:
    async def chunks() -> Any:
        for _ in range(20):
            yield b" " * 100  # no content-length: counted as it arrives

    response = await http.post("/graphql", content=chunks(), headers=JSON)
    assert coded(response, 413) == "BAD_USER_INPUT"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"null", "one JSON object"),
        (b"[]", "one JSON object"),
        (b"", "not valid JSON"),
        (b'{"query": "\xff"}', "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"query": "{ a } # \\ud800"}', "lone UTF-16 surrogate"),
        (json.dumps({"query": "  "}).encode(), "no `query`"),
        (json.dumps({"query": 1}).encode(), "no `query`"),
        (json.dumps({"query": "{ a }", "variables": []}).encode(), "`variables`"),
        (json.dumps({"query": "{ a }", "operationName": 1}).encode(), "`operationName`"),
        (json.dumps({"query": "{ a }", "extensions": "x"}).encode(), "`extensions`"),
    ],
)
def test_malformed_bodies_are_refused_saying_why(body: bytes, says: str) -> None:
    with pytest.raises(Refused) as refused:
        parse_request(body)
    assert says in refused.value.message
    assert (refused.value.status, refused.value.code) == (400, "BAD_USER_INPUT")


def test_a_paired_surrogate_is_fine() -> None:
    parsed = parse_request(b'{"query": "{ a } # \\ud83d\\ude00"}')
    assert str(parsed.query).endswith("\U0001f600")


def test_a_refusal_is_one_graphql_error_with_its_code() -> None:
    response = refusal("Slow down.", 429, "RATE_LIMITED")
    assert response.status_code == 429
    assert json.loads(bytes(response.body)) == {
        "errors": [{"message": "Slow down.", "extensions": {"code": "RATE_LIMITED"}}]
    }
