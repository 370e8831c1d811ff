"""`language`: which of ours an `Accept-Language` header prefers, and `said`."""

from __future__ import annotations

import contextvars

import pytest

from veche_kit.language import Language, language, language_var, said


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
        ("fr", Language.RU),  # nothing of ours asked for: Russian
        ("fr-FR, fr;q=0.9, en;q=0.5", Language.EN),  # English is acceptable, ours
        ("ru;q=0.3, en;q=0.7", Language.EN),  # q-values, not order
        ("en;q=0.5, ru;q=0.5", Language.EN),  # equals: the earlier
        ("en;q=0, *", Language.RU),  # English refused; anything else: the default
        ("*", Language.RU),
        ("de, en;q=bad", Language.RU),  # an unreadable q counts as refused
    ],
)
def test_the_readers_language_from_accept_language(header: str | None, expected: str) -> None:
    assert language(header) is expected


def test_said_picks_the_text_of_the_request_at_hand() -> None:
    for spoken, expected in ((Language.RU, "Опроса нет."), (Language.EN, "No poll.")):
        token = language_var.set(spoken)
        try:
            assert said("No poll.", "Опроса нет.") == expected
        finally:
            language_var.reset(token)


def test_outside_a_request_the_language_is_russian() -> None:
    assert language_var.get() is Language.EN  # the kit tests' own `english` fixture
    assert contextvars.Context().run(language_var.get) is Language.RU
