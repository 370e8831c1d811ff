"""`abuse`: the attack builders make what they say, and `refusal` accepts only coded 4xx."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from graphql import parse

from veche_kit.abuse import (
    DEEP_CURSOR,
    MALFORMED,
    aliased,
    cpu_and_body,
    nested,
    refusal,
)
from veche_kit.graphql_http import refusal as refused_response


def test_aliased_makes_count_aliases_that_parse() -> None:
    document = parse(aliased("__typename", 3))
    (operation,) = document.definitions
    names = [s.alias.value for s in operation.selection_set.selections]  # type: ignore[attr-defined]
    assert names == ["a0", "a1", "a2"]


def test_nested_makes_depth_levels() -> None:
    assert nested(1) == "{ a }"
    assert nested(3, "me") == "{ me { me { me } } }"
    parse(nested(50))


def test_the_malformed_cases_are_distinct_and_mostly_400() -> None:
    names = [case.name for case in MALFORMED]
    assert len(names) == len(set(names))
    assert {case.status for case in MALFORMED} == {400, 405}
    assert [case.method for case in MALFORMED if case.status == 405] == ["GET"]


def test_the_deep_cursor_is_short_and_deeply_nested() -> None:
    assert len(DEEP_CURSOR) <= 256
    assert base64.urlsafe_b64decode(DEEP_CURSOR).startswith(b"[" * 90)


def response_of(status: int, body: Any) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode())


def test_refusal_gives_the_code_of_a_coded_4xx() -> None:
    coded = refused_response("Too big.", 413)
    assert refusal(httpx.Response(413, content=bytes(coded.body))) == "BAD_USER_INPUT"


@pytest.mark.parametrize(
    "response",
    [
        response_of(500, {"errors": [{"message": "x", "extensions": {"code": "INTERNAL"}}]}),
        response_of(200, {"data": {}}),
        response_of(400, {"errors": []}),
        response_of(400, {"errors": [{"message": "", "extensions": {"code": "X"}}]}),
    ],
)
def test_refusal_fails_for_anything_else(response: httpx.Response) -> None:
    with pytest.raises((AssertionError, ValueError)):  # ValueError: not exactly one error
        refusal(response)


class Client:
    def __init__(self) -> None:
        self.calls = 0

    async def post(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        self.calls += 1
        return {"data": {"n": self.calls}}


async def test_cpu_and_body_takes_the_cheapest_of_its_attempts() -> None:
    client = Client()
    seconds, body = await cpu_and_body(client, "{ n }", attempts=4)
    assert client.calls == 4
    assert body == {"data": {"n": 4}}
    assert 0 <= seconds < 1
