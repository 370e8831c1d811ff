"""Moderation: complaints about content, the queue of cases, hiding and restoring.

The issues service holds almost everything citizens write (problem reports,
initiatives, their photos, comments), so it keeps the one moderation queue; a
display name lives in the users service, which flags names by event
(`content.flagged`) and hides one when told (`content.hidden`). Hidden content
stays where it is, marked: its author and moderators still see it, nobody else.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

from veche_issues.moderation_store import ModerationStore
from veche_issues.store import IssueStore
from veche_kit import audit_log
from veche_kit.audit_log import AuditAction
from veche_kit.auth import Principal
from veche_kit.clock import utcnow
from veche_kit.errors import BadUserInputError, ConflictError, ForbiddenError, NotFoundError
from veche_kit.events import ContentHidden, ContentKind, ContentRestored
from veche_kit.mongo import Document
from veche_kit.outbox import Outbox, Transaction
from veche_kit.text import clean_text
from veche_kit.throttle import RateLimiter, Window
from veche_kit.wordfilter import WordFilter

MODERATORS = ("MODERATOR", "ADMIN")
MAX_REASON = 500
EXCERPT = 300
# Complaints one person may file per hour: enough for anyone reading the site, too few
# to bury the queue.
REPORTS_PER_HOUR = Window(
    30,
    3600,
    "You have sent many complaints this hour; try again later.",
    "За этот час вы отправили много жалоб; попробуйте позже.",
)


class CaseStatus(StrEnum):
    OPEN = "OPEN"
    HIDDEN = "HIDDEN"
    RESTORED = "RESTORED"


@dataclass(frozen=True)
class Target:
    """What a complaint or a decision is about; `photo_url` only for a PHOTO (of issue `id`)."""

    kind: ContentKind
    id: str
    photo_url: str | None = None

    @property
    def key(self) -> str:
        if self.photo_url is None:
            return f"{self.kind.value}:{self.id}"
        digest = hashlib.sha256(self.photo_url.encode()).hexdigest()[:16]
        return f"{self.kind.value}:{self.id}:{digest}"


def is_moderator(principal: Principal | None) -> bool:
    return principal is not None and any(principal.has_role(r) for r in MODERATORS)


def scope_of(principal: Principal | None) -> str | None:
    """What hidden content a viewer sees: "*" all (moderators), their own (a user id), none."""
    if is_moderator(principal):
        return "*"
    return principal.user_id if principal is not None else None


def may_see(principal: Principal | None, document: Document, author_field: str) -> bool:
    """Whether the viewer sees this issue or comment (hidden ones: its author and moderators)."""
    if document.get("hidden") is None or is_moderator(principal):
        return True
    return principal is not None and document.get(author_field) == principal.user_id


def _require_moderator(caller: Principal) -> None:
    if not is_moderator(caller):
        raise ForbiddenError(
            "Only moderators and admins may hide or restore content.",
            ru="Скрывать и восстанавливать материалы могут только модераторы и администраторы.",
        )


class Moderation:
    def __init__(self, issues: IssueStore, outbox: Outbox, words: WordFilter) -> None:
        self.issues = issues
        self.store = ModerationStore(issues.db)
        self.outbox = outbox
        self.words = words
        self.limits = RateLimiter(issues.db)

    async def _content(self, target: Target) -> Document:
        """The case fields of the target (its author and an excerpt); NOT_FOUND if there is none."""
        kind = target.kind
        if kind is ContentKind.DISPLAY_NAME:
            user = await self.issues.user(target.id)
            if user is None:
                raise NotFoundError(
                    "There is no user with this id.", ru="Пользователя с таким id нет."
                )
            return {"author_id": target.id, "excerpt": user.get("display_name")}
        if kind is ContentKind.COMMENT:
            comment = await self.store.comment(target.id)
            if comment is None:
                raise NotFoundError(
                    "There is no comment with this id.", ru="Комментария с таким id нет."
                )
            return {
                "author_id": comment["author_id"],
                "excerpt": comment["text"][:EXCERPT],
                "issue_id": comment["issue_id"],
            }
        issue = await self.issues.get(target.id)
        if issue is None:
            raise NotFoundError("There is no issue with this id.", ru="Обращения с таким id нет.")
        fields = {"author_id": issue["reporter_id"], "issue_id": target.id}
        if kind is ContentKind.PHOTO:
            if target.photo_url not in (issue.get("photos") or []):
                raise BadUserInputError(
                    "The issue has no photo at `photoUrl`.",
                    field="photoUrl",
                    ru="У обращения нет фото по адресу `photoUrl`.",
                )
            return {**fields, "excerpt": target.photo_url, "photo_url": target.photo_url}
        return {**fields, "excerpt": f"{issue['title']}\n{issue['description']}"[:EXCERPT]}

    async def _case(self, target: Target) -> Document:
        found = await self.store.case(target.key)
        if found is not None:
            return found
        fields = {"kind": target.kind.value, "content_id": target.id, **await self._content(target)}
        return await self.store.open_case(target.key, fields, utcnow())

    async def report(self, caller: Principal, target: Target, reason: str) -> Document:
        """A signed-in person's complaint; one per person per piece of content counts."""
        text = clean_text(reason, "reason", MAX_REASON)
        assert text is not None
        await self.limits.hit("content-reports", caller.user_id, REPORTS_PER_HOUR)
        case = await self._case(target)
        await self.store.add_report(case, caller.user_id, text, utcnow())
        return case

    async def flag(self, target: Target, fields: Document, *texts: str | None) -> str | None:
        """Opens a case when the word filter matches `texts` (content just written, whose
        case `fields` the caller knows); the matched word, or None."""
        word = self.words.flagged_word(*texts)
        if word is not None:
            await self.flag_word(target, fields, word)
        return word

    async def flag_word(self, target: Target, fields: Document, word: str) -> None:
        """The filter's mark on the target's case, opened if need be: it waits for a moderator."""
        known = {"kind": target.kind.value, "content_id": target.id, **fields}
        await self.store.flag(target.key, known, word, utcnow())

    async def hide(self, caller: Principal, target: Target, reason: str) -> Document:
        return await self._decide(caller, target, reason, hidden=True)

    async def restore(self, caller: Principal, target: Target, reason: str) -> Document:
        return await self._decide(caller, target, reason, hidden=False)

    async def _decide(
        self, caller: Principal, target: Target, reason: str, *, hidden: bool
    ) -> Document:
        _require_moderator(caller)
        text = clean_text(reason, "reason", MAX_REASON)
        assert text is not None
        await self._case(target)
        now = utcnow()
        decision = {"decided_at": now, "decided_by": caller.user_id, "decision_reason": text}

        async def work(tx: Transaction) -> Document:
            case = await self.store.decide(target.key, hidden, decision, tx.session)
            if case is None:
                state, ru = (
                    ("hidden already", "уже скрыт") if hidden else ("not hidden", "не скрыт")
                )
                raise ConflictError(f"This content is {state}.", ru=f"Этот материал {ru}.")
            mark = {"at": now, "by": caller.user_id, "reason": text} if hidden else None
            await self.store.mark(case, mark, tx.session)
            told = ContentHidden if hidden else ContentRestored
            tx.emit(
                told(
                    kind=target.kind,
                    content_id=target.id,
                    issue_id=case.get("issue_id"),
                    author_id=case["author_id"],
                    reason=text,
                ),
                audit_log.entry(
                    caller,
                    AuditAction.CONTENT_HIDDEN if hidden else AuditAction.CONTENT_RESTORED,
                    target.kind.value,
                    target.id,
                    after={"photoUrl": target.photo_url} if target.photo_url else None,
                    reason=text,
                ),
            )
            return case

        return await self.outbox.transaction(work)

    async def queue(
        self, caller: Principal, status: CaseStatus | None, *, first: int, after: str | None
    ) -> tuple[list[Document], bool, int]:
        if not is_moderator(caller):
            raise ForbiddenError(
                "Only moderators and admins may read the moderation queue.",
                ru="Очередь модерации доступна только модераторам и администраторам.",
            )
        return await self.store.page(status.value if status else None, first=first, after=after)
