"""Display names under moderation: the word filter's flag and a moderator's hide.

The issues service keeps the one moderation queue. A name the filter matches is
told to it (`content.flagged`) in the transaction that saves the name; a moderator's
decision comes back as `content.hidden`/`content.restored`, and a hidden name shows
as `HIDDEN_NAME` to everyone but its owner and moderators. A new name replaces a
hidden one (and is filtered again).
"""

from __future__ import annotations

from veche_kit.auth import Principal
from veche_kit.events import ContentFlagged, ContentKind
from veche_kit.mongo import Document
from veche_kit.wordfilter import WordFilter

HIDDEN_NAME = "Имя скрыто модератором"
SEES_HIDDEN = ("MODERATOR", "ADMIN")


def name_flags(words: WordFilter, user: Document) -> tuple[ContentFlagged, ...]:
    """The event that puts the user's display name in the moderation queue, if it needs one."""
    word = words.flagged_word(user["display_name"])
    if word is None:
        return ()
    return (
        ContentFlagged(
            kind=ContentKind.DISPLAY_NAME,
            content_id=user["_id"],
            user_id=user["_id"],
            excerpt=user["display_name"],
            word=word,
        ),
    )


def shown_name(user: Document, viewer: Principal | None) -> str:
    """The display name as this viewer sees it."""
    if user.get("display_name_hidden") and not _sees_hidden(user, viewer):
        return HIDDEN_NAME
    return str(user["display_name"])


def _sees_hidden(user: Document, viewer: Principal | None) -> bool:
    if viewer is None:
        return False
    return viewer.user_id == user["_id"] or any(viewer.has_role(r) for r in SEES_HIDDEN)
