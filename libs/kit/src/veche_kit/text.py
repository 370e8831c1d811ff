"""Checks of free text and reference ids that every service applies to its input.

`clean_*` return the value as stored (trimmed, lower-cased ids) or refuse with
BAD_USER_INPUT naming the input field; `is_*` only answer.

Every service names its validators the same way: `clean_*` return the accepted
value or refuse with BAD_USER_INPUT; `check_*` return nothing and refuse
(BAD_USER_INPUT, CONFLICT, INVALID_TRANSITION...); `require_*` refuse with
FORBIDDEN or UNAUTHENTICATED; `is_*` only answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from veche_kit.errors import BadUserInputError

# Ids of reference data (districts, departments, categories) are short slugs.
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def is_slug(value: str) -> bool:
    return bool(_SLUG.match(value))


def clean_text(value: str | None, field: str, limit: int, *, required: bool = True) -> str | None:
    """Trimmed text within `limit` characters; None for an empty optional one."""
    text = (value or "").strip()
    if not text:
        if required:
            raise BadUserInputError(
                f"Fill in `{field}`; it cannot be empty.",
                field=field,
                ru=f"Заполните `{field}`: поле не может быть пустым.",
            )
        return None
    if len(text) > limit:
        raise BadUserInputError(
            f"Keep `{field}` within {limit} characters (it has {len(text)}).",
            field=field,
            ru=f"Сократите `{field}` до {limit} символов (сейчас {len(text)}).",
        )
    return text


def clean_slugs(values: Iterable[str], *, field: str, what: str, what_ru: str) -> list[str]:
    """Trimmed, lower-cased slugs without repeats, in the order given; `what` names
    one in the refusal ("a district id (see `districts`)"), `what_ru` in Russian
    ("id района (см. `districts`)")."""
    # A dict keeps the first of each in order; a list's `in` made repeats quadratic.
    cleaned: dict[str, None] = {}
    for raw in values:
        value = raw.strip().lower()
        if not is_slug(value):
            raise BadUserInputError(
                f"'{raw[:40]}' is not {what}.", field=field, ru=f"«{raw[:40]}» — не {what_ru}."
            )
        cleaned[value] = None
    return list(cleaned)
