"""What the inbox says, in the reader's language: every notification kind's templates.

A notification is stored as a `kind` and its `params` (a title, a status, a
reason: the facts, never a sentence) and rendered when it is read, in the
language the request's `Accept-Language` prefers: Russian first (and when
nothing else matches), English second. Adding a kind means one `NotificationKind`
member and one `Template` here; `test_notices.py` checks every kind has both.

Inserted values that are one of a fixed set (an issue status, a decision's
status, what a moderator hid) are words of the reader's language too (`WORDS`);
any other value is shown as it was told. A title is shown in «» exactly once,
however many of its own it brought (`bare_title`).

Notifications written before kinds and parameters (a pre-rendered English
`text`, `kind` the event's type) have no `params`: they are shown with their
stored text and their kind read from the event type (`LEGACY_KINDS`). Nothing
can recover the parameters from those sentences, so they are not migrated.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from veche_kit.language import Language


class NotificationKind(StrEnum):
    """What a notification is about (its template says how it reads)."""

    POLL_PUBLISHED = "POLL_PUBLISHED"
    INITIATIVE_PUT_TO_POLL = "INITIATIVE_PUT_TO_POLL"
    POLL_CLOSED = "POLL_CLOSED"
    POLL_DECISION_RECORDED = "POLL_DECISION_RECORDED"
    ISSUE_REPORTED = "ISSUE_REPORTED"
    ISSUE_STATUS_CHANGED = "ISSUE_STATUS_CHANGED"
    ISSUE_ANSWERED = "ISSUE_ANSWERED"
    SOLVER_OFFERED = "SOLVER_OFFERED"
    OFFER_ACCEPTED = "OFFER_ACCEPTED"
    ISSUE_RESOLVED = "ISSUE_RESOLVED"
    FIX_CONFIRMED_BY_REPORTER = "FIX_CONFIRMED_BY_REPORTER"
    FIX_CONFIRMED_BY_CITY = "FIX_CONFIRMED_BY_CITY"
    ISSUE_OVERDUE = "ISSUE_OVERDUE"
    ISSUE_MOVED_AWAY = "ISSUE_MOVED_AWAY"
    ISSUE_MOVED_IN = "ISSUE_MOVED_IN"
    ISSUE_RECATEGORIZED = "ISSUE_RECATEGORIZED"
    ISSUE_ASSIGNED = "ISSUE_ASSIGNED"
    INITIATIVE_THRESHOLD_REACHED = "INITIATIVE_THRESHOLD_REACHED"
    CONTENT_HIDDEN = "CONTENT_HIDDEN"
    CONTENT_RESTORED = "CONTENT_RESTORED"
    OTHER = "OTHER"


@dataclass(frozen=True)
class Template:
    """One kind's sentence in each language (`str.format` fields name its params), and
    what the kind means (the schema's description of the enum value)."""

    meaning: str
    ru: str
    en: str
    # An optional param and the clause it adds when given, in each language.
    extras: Mapping[str, Mapping[Language, str]] = field(default_factory=dict)

    def text(self, language: Language) -> str:
        return self.ru if language is Language.RU else self.en


K = NotificationKind
TEMPLATES: dict[NotificationKind, Template] = {
    K.POLL_PUBLISHED: Template(
        "A poll was published whose audience includes the reader.",
        ru="Новый опрос для {scope}: «{title}».",
        en="A new poll for {scope}: «{title}».",
    ),
    K.INITIATIVE_PUT_TO_POLL: Template(
        "An initiative the reader proposed or supported was put to a city poll.",
        ru="Инициативу, которую вы поддержали, вынесли на городской опрос: «{title}».",
        en="The initiative you backed is now put to a city poll: «{title}».",
    ),
    K.POLL_CLOSED: Template(
        "A poll the reader voted in has closed; its results can be seen.",
        ru="Опрос «{title}», в котором вы голосовали, завершён: посмотрите результаты.",
        en="The poll «{title}» you voted in has closed; see the results.",
    ),
    K.POLL_DECISION_RECORDED: Template(
        "The city recorded (or updated) its decision on a poll the reader voted in.",
        ru="Город записал решение по опросу «{title}» ({decision}): {text}",
        en="The city recorded a decision ({decision}) on the poll «{title}»: {text}",
    ),
    K.ISSUE_REPORTED: Template(
        "A new problem was routed to the reader's department (officials).",
        ru="В ваш отдел поступило новое обращение: «{title}».",
        en="A new problem was routed to your department: «{title}».",
    ),
    K.ISSUE_STATUS_CHANGED: Template(
        "An issue the reader reported or supports changed status.",
        ru="Новый статус обращения «{title}»: {status}.",
        en="«{title}» is now {status}.",
        extras={"note": {Language.RU: "Комментарий: {note}", Language.EN: "Note: {note}"}},
    ),
    K.ISSUE_ANSWERED: Template(
        "The city (an official) answered on an issue the reader reported or supports.",
        ru="Город ответил по обращению «{title}»: {excerpt}",
        en="The city answered on «{title}»: {excerpt}",
    ),
    K.SOLVER_OFFERED: Template(
        "Someone offered to fix a problem the reader reported.",
        ru="Кто-то предложил решить проблему «{title}».",
        en="Someone offered to fix «{title}».",
    ),
    K.OFFER_ACCEPTED: Template(
        "The reader's offer to fix a problem was accepted: they are its solver.",
        ru="Ваше предложение решить проблему «{title}» принято.",
        en="Your offer to fix «{title}» was accepted.",
    ),
    K.ISSUE_RESOLVED: Template(
        "A problem the reader reported is marked solved: they confirm it or reopen it.",
        ru="Проблема «{title}» отмечена решённой: подтвердите это или откройте её снова.",
        en="«{title}» is marked solved: confirm it, or reopen it if it is not.",
    ),
    K.FIX_CONFIRMED_BY_REPORTER: Template(
        "The reporter confirmed the fix of the reader, the problem's solver.",
        ru="Автор обращения подтвердил, что вы решили проблему «{title}».",
        en="The reporter confirmed your fix of «{title}».",
    ),
    K.FIX_CONFIRMED_BY_CITY: Template(
        "The city confirmed the fix of the reader, the problem's solver (points credited).",
        ru="Город подтвердил, что вы решили проблему «{title}».",
        en="The city confirmed your fix of «{title}».",
    ),
    K.ISSUE_OVERDUE: Template(
        "An issue of the reader's department is past its response deadline (officials).",
        ru="По обращению «{title}» истёк срок ответа.",
        en="«{title}» is past its response deadline.",
    ),
    K.ISSUE_MOVED_AWAY: Template(
        "An issue of the reader's department was passed to another one (officials).",
        ru="Обращение «{title}» передано в другой отдел ({department}): {reason}",
        en="«{title}» was passed to the department '{department}': {reason}",
    ),
    K.ISSUE_MOVED_IN: Template(
        "An issue was recategorized into the reader's department (officials).",
        ru="Обращение «{title}» теперь в категории «{category}», его ведёт ваш отдел: {reason}",
        en="«{title}» is now in the category '{category}', handled by your department: {reason}",
    ),
    K.ISSUE_RECATEGORIZED: Template(
        "A problem the reader reported went to another category and department.",
        ru="Обращение «{title}» передано отделу, который ведёт категорию «{category}».",
        en="«{title}» was passed to the department that handles '{category}'.",
    ),
    K.ISSUE_ASSIGNED: Template(
        "An issue was assigned to the reader (an official of its department).",
        ru="Вам назначено обращение «{title}».",
        en="«{title}» was assigned to you.",
    ),
    K.INITIATIVE_THRESHOLD_REACHED: Template(
        "The reader's initiative reached its support threshold and went to the city.",
        ru="Ваша инициатива «{title}» собрала нужное число сторонников ({supporters}) и "
        "передана городу на рассмотрение.",
        en="Your initiative «{title}» gathered {supporters} supporters and goes to the city "
        "for review.",
    ),
    K.CONTENT_HIDDEN: Template(
        "A moderator hid something the reader wrote (a report, comment, photo or name).",
        ru="Модератор скрыл {content}: {reason}",
        en="A moderator hid {content}: {reason}",
    ),
    K.CONTENT_RESTORED: Template(
        "A moderator showed again something of the reader's they had hidden.",
        ru="Модератор снова показал {content}: {reason}",
        en="A moderator showed {content} again: {reason}",
    ),
    K.OTHER: Template(
        "Any other notice (e.g. one kept from an older release): show its text.",
        ru="{text}",
        en="{text}",
    ),
}

# A param's fixed values, as the reader's language says them (others are shown as told).
WORDS: dict[str, dict[str, tuple[str, str]]] = {
    "scope": {"DISTRICT": ("вашего района", "your district"), "CITY": ("всего города", "the city")},
    "status": {
        "NEW": ("новое", "new"),
        "ACCEPTED": ("принято", "accepted"),
        "COLLECTING": ("сбор подписей", "collecting"),
        "UNDER_REVIEW": ("на рассмотрении", "under review"),
        "IN_PROGRESS": ("в работе", "in progress"),
        "RESOLVED": ("решено", "resolved"),
        "CLOSED": ("закрыто", "closed"),
        "REJECTED": ("отклонено", "rejected"),
    },
    "decision": {
        "TAKEN": ("решение принято", "taken"),
        "IN_PROGRESS": ("выполняется", "in progress"),
        "IMPLEMENTED": ("выполнено", "implemented"),
    },
    "content": {
        "ISSUE": ("ваше обращение", "your report"),
        "COMMENT": ("ваш комментарий", "your comment"),
        "PHOTO": ("ваше фото", "your photo"),
        "DISPLAY_NAME": ("ваше имя", "your display name"),
    },
}

# The kind of a notification stored before kinds: the type of the event that wrote it.
LEGACY_KINDS: dict[str, NotificationKind] = {
    "poll.published": K.POLL_PUBLISHED,
    "poll.closed": K.POLL_CLOSED,
    "poll.decision_recorded": K.POLL_DECISION_RECORDED,
    "issue.reported": K.ISSUE_REPORTED,
    "issue.status_changed": K.ISSUE_STATUS_CHANGED,
    "issue.commented": K.ISSUE_ANSWERED,
    "issue.solver_offered": K.SOLVER_OFFERED,
    "issue.solver_assigned": K.OFFER_ACCEPTED,
    "issue.resolved": K.ISSUE_RESOLVED,
    "issue.closed": K.FIX_CONFIRMED_BY_REPORTER,
    "issue.fix_confirmed": K.FIX_CONFIRMED_BY_CITY,
    "issue.overdue": K.ISSUE_OVERDUE,
    "issue.recategorized": K.ISSUE_RECATEGORIZED,
    "issue.assigned": K.ISSUE_ASSIGNED,
    "initiative.threshold_reached": K.INITIATIVE_THRESHOLD_REACHED,
    "content.hidden": K.CONTENT_HIDDEN,
    "content.restored": K.CONTENT_RESTORED,
}


# ───────────────────────── rendering ─────────────────────────


def bare_title(title: str) -> str:
    """The title without «» that wrap all of it (a drafted poll's «Парк» is Парк), so a
    template's own «» are its only ones; quotes inside it stay."""
    bare = " ".join(title.split())
    while bare.startswith("«") and bare.endswith("»") and _balanced(bare[1:-1]):
        bare = bare[1:-1].strip()
    return bare


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"«": 1, "»": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


class _Values(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""  # a param an older notification lacks reads as nothing, never a fault


def _word(name: str, value: Any, language: Language) -> str:
    said = WORDS.get(name, {}).get(str(value))
    if said is not None:
        return said[0] if language is Language.RU else said[1]
    if name in WORDS:  # a value added after this release: readable, if not translated
        return str(value).replace("_", " ").lower()
    return "" if value is None else str(value)


def render(kind: NotificationKind, params: Mapping[str, Any], language: Language) -> str:
    """The notification's sentence in `language`."""
    template = TEMPLATES[kind]
    values = _Values({name: _word(name, value, language) for name, value in params.items()})
    if "title" in values:
        values["title"] = bare_title(values["title"])
    formatter = string.Formatter()
    text = formatter.vformat(template.text(language), (), values)
    for name, clause in template.extras.items():
        if values.get(name):
            text = f"{text} {formatter.vformat(clause[language], (), values)}"
    return text


def kind_of(document: Mapping[str, Any]) -> NotificationKind:
    """A stored notification's kind: its own, the one its event type meant before kinds,
    or OTHER for anything else."""
    stored = str(document.get("kind", ""))
    if stored in NotificationKind.__members__:
        return NotificationKind(stored)
    return LEGACY_KINDS.get(stored, NotificationKind.OTHER)


def text_of(document: Mapping[str, Any], language: Language) -> str:
    """A stored notification's sentence: rendered from its params, or (written before
    params) the text it was stored with."""
    params = document.get("params")
    if params is None:
        return str(document.get("text", ""))
    return render(kind_of(document), params, language)
