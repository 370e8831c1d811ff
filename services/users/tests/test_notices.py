"""The inbox's templates and the reader's language alone: no store, no network."""

from __future__ import annotations

import string

import pytest

from veche_kit.language import Language
from veche_users import notices
from veche_users.notices import NotificationKind


def test_every_kind_has_a_russian_and_an_english_template() -> None:
    assert set(notices.TEMPLATES) == set(NotificationKind)
    for kind, template in notices.TEMPLATES.items():
        assert template.ru.strip(), kind
        assert template.en.strip(), kind
        assert template.meaning.strip(), kind
        # Both languages take the same params, so one stored notification reads in each.
        fields = {
            language: {f for _, f, _, _ in string.Formatter().parse(template.text(language)) if f}
            for language in Language
        }
        assert fields[Language.RU] == fields[Language.EN], kind
        for clause in template.extras.values():
            assert set(clause) == set(Language), kind


def test_every_fixed_word_is_said_in_both_languages() -> None:
    for name, values in notices.WORDS.items():
        for value, (ru, en) in values.items():
            assert ru.strip(), (name, value)
            assert en.strip(), (name, value)


@pytest.mark.parametrize(
    ("title", "bare"),
    [
        ("Парк", "Парк"),
        ("«Парк»", "Парк"),
        ("«««Парк»»»", "Парк"),
        ("  «Сквер  на Садовой» ", "Сквер на Садовой"),
        ("«Парк» у реки", "«Парк» у реки"),  # its own quotes, not a wrapping
        ("«Парк» и «Сквер»", "«Парк» и «Сквер»"),
    ],
)
def test_a_title_is_unwrapped_to_be_quoted_once(title: str, bare: str) -> None:
    assert notices.bare_title(title) == bare


def test_a_drafted_polls_title_is_wrapped_once() -> None:
    params = {"title": "«Парк»", "scope": "DISTRICT"}
    assert notices.render(NotificationKind.POLL_PUBLISHED, params, Language.RU) == (
        "Новый опрос для вашего района: «Парк»."
    )
    assert notices.render(NotificationKind.POLL_PUBLISHED, params, Language.EN) == (
        "A new poll for your district: «Парк»."
    )


def test_fixed_values_and_optional_clauses_in_the_readers_language() -> None:
    params = {"title": "Яма", "status": "UNDER_REVIEW", "note": "Срок 8 дней"}
    kind = NotificationKind.ISSUE_STATUS_CHANGED
    assert notices.render(kind, params, Language.RU) == (
        "Новый статус обращения «Яма»: на рассмотрении. Комментарий: Срок 8 дней"
    )
    assert (
        notices.render(kind, params, Language.EN) == "«Яма» is now under review. Note: Срок 8 дней"
    )
    assert (
        notices.render(kind, {**params, "note": None}, Language.EN) == "«Яма» is now under review."
    )
    # A status added after this release reads as words, untranslated, never a fault.
    assert notices.render(kind, {"title": "Яма", "status": "ON_HOLD"}, Language.RU) == (
        "Новый статус обращения «Яма»: on hold."
    )


def test_a_notification_from_before_kinds_reads_as_it_was_stored() -> None:
    old = {"kind": "issue.status_changed", "text": "«Яма» is now accepted."}
    assert notices.kind_of(old) is NotificationKind.ISSUE_STATUS_CHANGED
    assert notices.text_of(old, Language.RU) == "«Яма» is now accepted."
    assert notices.kind_of({"kind": "test", "text": "x"}) is NotificationKind.OTHER
    new = {"kind": "POLL_CLOSED", "params": {"title": "Парк"}}
    assert notices.kind_of(new) is NotificationKind.POLL_CLOSED
    assert (
        notices.text_of(new, Language.EN)
        == "The poll «Парк» you voted in has closed; see the results."
    )
