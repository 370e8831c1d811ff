"""A refusal answers in the language the request's Accept-Language prefers: Russian when it
asks for nothing of ours, English when it asks for English; the code is the same."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from veche_stack.testing import GraphQLClient

from .conftest import ANSWERS, VOTE, PollsServer

FOR_ME = """query($first: Int) { pollsForMe(first: $first) { totalCount } }"""
RUSSIAN: list[str | None] = [None, "ru", "ru-RU,ru;q=0.9", "de", "de-DE, fr;q=0.5"]
ENGLISH: list[str | None] = ["en-GB,en;q=0.9", "en", "de, en;q=0.5"]


def _asking(client: GraphQLClient, accept_language: str | None) -> GraphQLClient:
    if accept_language is None:
        return client.without_header("Accept-Language")
    return client.with_headers(Accept_Language=accept_language)


async def _error(client: GraphQLClient, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    body = await client.post(query, variables)
    (error,) = body["errors"]
    return dict(error)


@pytest.mark.parametrize("accept_language", RUSSIAN + ENGLISH)
async def test_an_unknown_poll_is_refused_in_the_language_asked_for(
    polls: PollsServer, accept_language: str | None
) -> None:
    poll_id = f"nope-{uuid.uuid4().hex[:6]}"
    voter = _asking(polls.citizen(), accept_language)
    error = await _error(voter, VOTE, {"poll": poll_id, "answers": ANSWERS})
    assert error["extensions"]["code"] == "NOT_FOUND"
    if accept_language in ENGLISH:
        assert error["message"] == f"No poll with id '{poll_id}'."
    else:
        assert error["message"] == f"Опроса с id «{poll_id}» нет."


@pytest.mark.parametrize("accept_language", [None, "de", "en-GB,en;q=0.9"])
async def test_bad_input_keeps_its_code_and_field_in_either_language(
    polls: PollsServer, accept_language: str | None
) -> None:
    error = await _error(_asking(polls.citizen(), accept_language), FOR_ME, {"first": 0})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "first"}
    english = accept_language is not None and accept_language.startswith("en")
    expected = "must be between 1 and 100" if english else "должно быть от 1 до 100"
    assert expected in error["message"]


@pytest.mark.parametrize(
    ("accept_language", "expected"),
    [
        (None, "Тело запроса не является корректным JSON (UTF-8)."),
        ("en-GB,en;q=0.9", "The request body is not valid JSON (UTF-8)."),
    ],
)
async def test_a_body_refused_over_http_is_worded_in_the_language_asked_for(
    polls: PollsServer, accept_language: str | None, expected: str
) -> None:
    headers = {"Content-Type": "application/json"}
    if accept_language:
        headers["Accept-Language"] = accept_language
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{polls.url}/graphql", content=b"{not json", headers=headers)
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"message": expected, "extensions": {"code": "BAD_USER_INPUT"}}
    ]
