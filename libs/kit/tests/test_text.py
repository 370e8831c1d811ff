"""The text checks every service shares."""

from __future__ import annotations

import pytest

from veche_kit.errors import BadUserInputError
from veche_kit.text import clean_slugs, clean_text, is_slug


def test_text_is_trimmed_and_bounded() -> None:
    assert clean_text("  Яма у дома  ", "title", 20) == "Яма у дома"
    assert clean_text("   ", "note", 20, required=False) is None
    assert clean_text(None, "note", 20, required=False) is None
    with pytest.raises(BadUserInputError, match="cannot be empty") as empty:
        clean_text(" ", "title", 20)
    assert empty.value.extensions["field"] == "title"
    with pytest.raises(BadUserInputError, match="within 3 characters") as long:
        clean_text("abcd", "title", 3)
    assert long.value.extensions["field"] == "title"


def test_slugs_are_lower_case_ids_without_repeats() -> None:
    assert [is_slug(v) for v in ("leninsky", "roads-2", "-roads", "Roads", "a" * 64)] == [
        True,
        True,
        False,
        False,
        False,
    ]
    assert clean_slugs(
        [" Leninsky", "leninsky", "moskovsky"], field="f", what="x", what_ru="y"
    ) == [
        "leninsky",
        "moskovsky",
    ]
    with pytest.raises(BadUserInputError, match="'no way' is not a district id") as error:
        clean_slugs(
            ["no way"], field="audience.districtIds", what="a district id", what_ru="id района"
        )
    assert error.value.extensions["field"] == "audience.districtIds"
