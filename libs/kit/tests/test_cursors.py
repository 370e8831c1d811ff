"""`cursors`: what `encode_cursor` makes decodes back; anything else is BAD_USER_INPUT."""

from __future__ import annotations

import base64

import pytest

from veche_kit.cursors import (
    ID_SHAPE,
    MAX_CURSOR_CHARS,
    MAX_PART_CHARS,
    decode_cursor,
    encode_cursor,
    id_after,
    position_after,
)
from veche_kit.errors import BadUserInputError

DISTANCE_SHAPE = (float, str)


def raw(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def test_a_cursor_round_trips_through_its_shape() -> None:
    assert decode_cursor(encode_cursor(["abc"]), ID_SHAPE) == ["abc"]
    assert decode_cursor(encode_cursor([1.5, "x"]), DISTANCE_SHAPE) == [1.5, "x"]
    # An int is a fine distance; the second of two shapes is tried too.
    assert decode_cursor(encode_cursor([3, "x"]), ID_SHAPE, DISTANCE_SHAPE) == [3, "x"]


def test_no_cursor_is_the_first_page() -> None:
    assert decode_cursor(None, ID_SHAPE) is None
    assert id_after(None) is None
    assert position_after(None) is None


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 at all!",
        raw("not json"),
        raw("[null]"),
        raw("[true]"),
        raw('{"a": 1}'),
        raw('"abc"'),
        raw('["a", "b"]'),
        raw("[1]"),
        raw("[]"),
        raw("[" * 5000 + "]" * 5000)[:MAX_CURSOR_CHARS],
        raw("[" * 90 + "]" * 90),
        "ключ",
    ],
)
def test_a_cursor_not_of_the_shape_is_refused(cursor: str) -> None:
    with pytest.raises(BadUserInputError) as refused:
        decode_cursor(cursor, ID_SHAPE)
    assert refused.value.code == "BAD_USER_INPUT"
    assert refused.value.extensions == {"field": "after"}


def test_non_finite_distances_and_booleans_are_refused() -> None:
    for bad in ('[NaN, "x"]', '[Infinity, "x"]', '[true, "x"]'):
        with pytest.raises(BadUserInputError):
            decode_cursor(raw(bad), DISTANCE_SHAPE)


def test_a_part_is_bounded_at_its_limit() -> None:
    assert id_after(encode_cursor(["a" * MAX_PART_CHARS])) == "a" * MAX_PART_CHARS
    with pytest.raises(BadUserInputError):
        id_after(encode_cursor(["a" * (MAX_PART_CHARS + 1)]))


def test_a_cursor_is_bounded_at_its_length() -> None:
    at_limit = encode_cursor(["a" * 100, 1.0, "b" * 78])
    assert len(at_limit) <= MAX_CURSOR_CHARS
    with pytest.raises(BadUserInputError):
        decode_cursor(at_limit + "A" * (MAX_CURSOR_CHARS + 1 - len(at_limit)), ID_SHAPE)


def test_position_after_takes_only_small_non_negative_integers() -> None:
    assert position_after(encode_cursor(["0"])) == 0
    assert position_after(encode_cursor(["9" * 18])) == int("9" * 18)
    for bad in ("-1", "1.5", "9" * 19, "١٢", "abc", ""):
        with pytest.raises(BadUserInputError):
            position_after(encode_cursor([bad]))
