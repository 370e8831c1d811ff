"""The word filter flags мат, its disguises and its prefixed forms, and leaves the
ordinary words that share letters with it alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from veche_kit.wordfilter import DEFAULT_PATTERNS, WordFilter, normalize

FLAGGED = [
    "Сука",
    "бля",
    "блядь",
    "пиздец",
    "спиздили",
    "хуйня",
    "нахуя",
    "охуели",
    "заебали",
    "наебка",
    "съебался",
    "подъебка",
    "ебаный",
    "ЁБАНЫЙ",
    "мудак",
    "пидорас",
    "залупа",
    "шлюха",
    "долбоеб",
    "xуйня",  # Latin x
    "3аебали",  # digit 3 for з
    "e6ать",  # Latin e, digit 6
    "бляяяяя",  # drawn out
]

CLEAN = [
    "себе",
    "себя",
    "небо",
    "хлеб",
    "обед",
    "учебник",
    "потребовать",
    "употреблять",
    "убедить",
    "выезд",
    "зебра",
    "вебинар",
    "рубля",
    "корабля",
    "обляпать",
    "сукно",
    "засуха",
    "похудеть",
    "художник",
    "страхуй",
    "схема",
    "Хуан",
    "оскорбление",
    "яма",
    "Ямы во дворе",
    "mud",
    "ebay",
]


@pytest.mark.parametrize("word", FLAGGED)
def test_flags_the_word_and_its_disguises(word: str) -> None:
    assert WordFilter(DEFAULT_PATTERNS).flagged_word(f"Ну и {word}, честно.") == word


@pytest.mark.parametrize("word", CLEAN)
def test_leaves_ordinary_words_alone(word: str) -> None:
    assert WordFilter(DEFAULT_PATTERNS).flagged_word(word) is None


def test_checks_every_text_and_answers_the_first_word() -> None:
    words = WordFilter(DEFAULT_PATTERNS)
    assert words.flagged_word(None, "Яма на Кирова", "какая-то хрень, бля, и пиздец") == "бля"
    assert words.flagged_word(None, "") is None


def test_normalize_folds_case_look_alikes_and_repeats() -> None:
    assert normalize("ЁЖИК") == "ежик"
    assert normalize("xyй") == "хуй"
    assert normalize("ссссука") == "сука"


def test_a_city_file_replaces_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "words.txt"
    path.write_text("# our own list\nкозел  # one root\n\n", encoding="utf-8")
    words = WordFilter.from_file(str(path))
    assert words.patterns == ("козел",)
    assert words.flagged_word("Сосед — козёл") == "козёл"
    assert words.flagged_word("пиздец") is None
    assert WordFilter.from_file(None).patterns == DEFAULT_PATTERNS
