"""The reader's language for the gateway's own messages: Russian, or English when the
request's `Accept-Language` prefers it (RFC 9110 §12.5.4; nothing of ours asked: Russian).

A deliberate copy of `veche_kit.language`'s parser: the gateway runs alone in front of
anyone's subgraphs and imports nothing of Veche's services' library. Kept tiny; the
subgraphs read the same header (forwarded) and choose the same way.
"""

from __future__ import annotations

from contextvars import ContextVar
from enum import StrEnum


class Language(StrEnum):
    RU = "ru"
    EN = "en"


DEFAULT = Language.RU
_OURS = {member.value: member for member in Language}

# The language of the request at hand (`app.py` sets it per request).
language_var: ContextVar[Language] = ContextVar("gateway_language", default=DEFAULT)


def language(accept_language: str | None) -> Language:
    """The highest q of ours wins, the earlier of equals; `en-GB` is `en`, `*` the default,
    q=0 refuses; nothing of ours: Russian."""
    best: tuple[float, int, Language] | None = None
    for position, item in enumerate((accept_language or "")[:1000].split(",")):
        tag, _, rest = item.strip().partition(";")
        primary = tag.strip().lower().split("-", 1)[0]
        chosen = DEFAULT if primary == "*" else _OURS.get(primary)
        quality = _quality(rest)
        if chosen is not None and quality > 0 and (best is None or quality > best[0]):
            best = (quality, position, chosen)
    return best[2] if best else DEFAULT


def _quality(parameters: str) -> float:
    for parameter in parameters.split(";"):
        name, _, value = parameter.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                return min(max(float(value), 0.0), 1.0)
            except ValueError:
                return 0.0
    return 1.0


def said(en: str, ru: str | None) -> str:
    """`en` or `ru`, whichever the request at hand reads (`ru` None: English only)."""
    return ru if ru is not None and language_var.get() is Language.RU else en
