"""The reader's language: which of ours an `Accept-Language` header prefers.

Veche speaks Russian (the default: Kaluga's citizens read it, and it is what a
request gets when it asks for nothing of ours) and English. The inbox renders
notifications in it (`veche_users.notices`); every error message a person reads
comes in it too. `RequestIdMiddleware` sets `language_var` from each request's
header, `said(en, ru)` picks the text for the request at hand, and
`DomainError.ru` is the Russian of a refusal (`veche_kit.graphql` picks).
"""

from __future__ import annotations

from contextvars import ContextVar
from enum import StrEnum


class Language(StrEnum):
    """The languages Veche speaks, the default first."""

    RU = "ru"
    EN = "en"


DEFAULT = Language.RU

# The language of the request at hand (outside a request: the default).
language_var: ContextVar[Language] = ContextVar("language", default=DEFAULT)


def language(accept_language: str | None) -> Language:
    """The language an `Accept-Language` header prefers among ours (RFC 9110 §12.5.4):
    the highest q wins, the earlier of equals; `en-GB` counts as `en`, `*` as the
    default; a range with q=0 is refused. Nothing of ours asked for: Russian."""
    best: tuple[float, int, Language] | None = None
    for position, item in enumerate((accept_language or "")[:1000].split(",")):
        tag, _, rest = item.strip().partition(";")
        primary = tag.strip().lower().split("-", 1)[0]
        chosen = DEFAULT if primary == "*" else _ours(primary)
        quality = _quality(rest)
        if chosen is None or quality <= 0:
            continue
        if best is None or (-quality, position) < (-best[0], best[1]):
            best = (quality, position, chosen)
    return best[2] if best else DEFAULT


def _ours(primary: str) -> Language | None:
    try:
        return Language(primary)
    except ValueError:
        return None


def _quality(parameters: str) -> float:
    for parameter in parameters.split(";"):
        name, _, value = parameter.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                return min(max(float(value), 0.0), 1.0)
            except ValueError:
                return 0.0
    return 1.0


def said(en: str, ru: str) -> str:
    """`en` or `ru`, whichever the request at hand reads."""
    return ru if language_var.get() is Language.RU else en
