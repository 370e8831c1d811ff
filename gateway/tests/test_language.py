"""The gateway's own refusals in the language the request's Accept-Language prefers:
Russian when it asks for nothing of ours, English when it asks for English."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from veche_gateway.language import Language, language

DEEP = '{ user(id: "u1") { name } }'  # depth 2
RUSSIAN = "Операция слишком сложна: её глубина — 2, предел — 1"
ENGLISH = "The operation is too complex: its depth is 2, the limit is 1"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, Language.RU),
        ("", Language.RU),
        ("ru", Language.RU),
        ("ru-RU,ru;q=0.9,en;q=0.8", Language.RU),
        ("en", Language.EN),
        ("EN-us", Language.EN),
        ("en-GB,en;q=0.9", Language.EN),
        ("de", Language.RU),  # nothing of ours asked for: Russian
        ("fr-FR, fr;q=0.9, en;q=0.5", Language.EN),
        ("ru;q=0.3, en;q=0.7", Language.EN),  # q-values, not order
        ("en;q=0.5, ru;q=0.5", Language.EN),  # equals: the earlier
        ("en;q=0, *", Language.RU),
        ("de, en;q=bad", Language.RU),  # an unreadable q counts as refused
    ],
)
def test_the_gateway_reads_accept_language_as_the_subgraphs_do(
    header: str | None, expected: Language
) -> None:
    assert language(header) is expected


async def _refused(http: httpx.AsyncClient, accept_language: str | None) -> dict[str, Any]:
    headers = {"Accept-Language": accept_language} if accept_language else {}
    response = await http.post("/graphql", json={"query": DEEP}, headers=headers)
    assert response.status_code == 200
    (error,) = response.json()["errors"]
    return dict(error)


async def test_a_query_too_complex_is_refused_in_the_language_asked_for(
    subgraph_urls: dict[str, str], start_gateway: Callable[..., Awaitable[Any]]
) -> None:
    served = await start_gateway(subgraph_urls, max_depth=1)
    async with httpx.AsyncClient(base_url=served.url) as http:
        # The refusal is kept for the document after the first: each request still
        # reads it in its own language.
        answers = {
            asked: await _refused(http, asked)
            for asked in (None, "ru", "de", "en-GB,en;q=0.9", "ru-RU")
        }
    assert {asked: e["message"] for asked, e in answers.items()} == {
        None: RUSSIAN,
        "ru": RUSSIAN,
        "de": RUSSIAN,
        "en-GB,en;q=0.9": ENGLISH,
        "ru-RU": RUSSIAN,
    }
    assert {e["extensions"]["code"] for e in answers.values()} == {"QUERY_TOO_COMPLEX"}


async def test_a_body_that_is_not_json_is_refused_in_the_language_asked_for(
    gateway: Any,
) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        plain = await http.post(
            "/graphql", content=b"{", headers={"Content-Type": "application/json"}
        )
        english = await http.post(
            "/graphql",
            content=b"{",
            headers={"Content-Type": "application/json", "Accept-Language": "en"},
        )
    assert plain.status_code == english.status_code == 400
    (ru,), (en,) = plain.json()["errors"], english.json()["errors"]
    assert ru["message"].startswith("Тело запроса: некорректный JSON")
    assert en["message"].startswith("The request body is not valid JSON")
    assert ru["extensions"] == en["extensions"] == {"code": "BAD_USER_INPUT"}
