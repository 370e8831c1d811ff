"""The one cursor codec of every paginated list: a flat JSON list of a few
strings and numbers, base64url-encoded.

`decode_cursor` accepts only what `encode_cursor` makes for that list: a
cursor of bounded length whose parts match one of the list's shapes (e.g.
`(str,)` for an id, `(float, str)` for a distance and an id). Anything else
(junk, `[null]`, a deeply nested list) is refused with BAD_USER_INPUT before
it reaches a query.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Sequence

from veche_kit.errors import BadUserInputError

Part = str | int | float
Shape = tuple[type, ...]
MAX_CURSOR_CHARS = 256
MAX_PART_CHARS = 128
ID_SHAPE: Shape = (str,)
NOT_OURS = "`after`: the cursor is not one this API issued. Pass an `endCursor` of this list."
NOT_OURS_RU = "`after`: этот курсор выдан не этим API. Передайте `endCursor` этого списка."


def encode_cursor(key: Sequence[Part]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode()


def _fits(part: object, kind: type) -> bool:
    if isinstance(part, bool):  # JSON true/false are no part of any cursor
        return False
    if kind is float:
        return isinstance(part, int | float) and math.isfinite(part)
    if kind is str:
        return isinstance(part, str) and len(part) <= MAX_PART_CHARS
    return isinstance(part, kind)


def decode_cursor(cursor: str | None, *shapes: Shape) -> list[Part] | None:
    """The parts of a cursor of one of `shapes`; None for no cursor (the first page)."""
    if cursor is None:
        return None
    if len(cursor) > MAX_CURSOR_CHARS:
        raise BadUserInputError(NOT_OURS, field="after", ru=NOT_OURS_RU)
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error, RecursionError):
        raise BadUserInputError(NOT_OURS, field="after", ru=NOT_OURS_RU) from None
    if isinstance(value, list):
        for shape in shapes:
            if len(value) == len(shape) and all(map(_fits, value, shape)):
                return value
    raise BadUserInputError(NOT_OURS, field="after", ru=NOT_OURS_RU)


def id_after(cursor: str | None) -> str | None:
    """The id a cursor of an `_id`-ordered list holds (see `mongo.page`); None for the start."""
    key = decode_cursor(cursor, ID_SHAPE)
    return str(key[0]) if key else None


def position_after(cursor: str | None) -> int | None:
    """The position (0 or more) a cursor of a position-ordered list holds; None for the start."""
    key = id_after(cursor)
    if key is None:
        return None
    if not key.isascii() or not key.isdigit() or len(key) > 18:
        raise BadUserInputError(NOT_OURS, field="after", ru=NOT_OURS_RU)
    return int(key)
