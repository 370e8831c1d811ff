"""Pure rules of the issues domain: the workflow, deadlines, search terms, valid input.

Nothing here touches the store or the network, so each rule is tested alone.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import snowballstemmer

from veche_issues.calendar import WorkingCalendar
from veche_kit.auth import Principal
from veche_kit.errors import (
    BadUserInputError,
    ConflictError,
    ForbiddenError,
    InvalidTransitionError,
)
from veche_kit.events import (
    Event,
    InitiativeProposed,
    InitiativeThresholdReached,
    IssueAssigned,
    IssueClosed,
    IssueCommented,
    IssueRecategorized,
    IssueReported,
    IssueResolved,
    IssueSolverAssigned,
    IssueSolverOffered,
    IssueStatusChanged,
    IssueSupported,
)
from veche_kit.text import clean_text as clean_text


class Kind(StrEnum):
    PROBLEM = "PROBLEM"
    INITIATIVE = "INITIATIVE"


class Status(StrEnum):
    NEW = "NEW"
    ACCEPTED = "ACCEPTED"
    COLLECTING = "COLLECTING"
    UNDER_REVIEW = "UNDER_REVIEW"
    IN_PROGRESS = "IN_PROGRESS"
    RESOLVED = "RESOLVED"
    CLOSED = "CLOSED"
    REJECTED = "REJECTED"


class OfferStatus(StrEnum):
    """Where a solver's offer stands."""

    PENDING = "PENDING"
    ACCEPTED = "ACCEPTED"
    DECLINED = "DECLINED"


# Statuses in which the city still owes an answer or a fix.
OPEN = frozenset({Status.NEW, Status.ACCEPTED, Status.UNDER_REVIEW, Status.IN_PROGRESS})
# Statuses in which no deadline runs any more.
SETTLED = frozenset({Status.RESOLVED, Status.CLOSED, Status.REJECTED})
# Statuses that take no more supports, comments' effects aside.
FINISHED = frozenset({Status.CLOSED, Status.REJECTED})
# Statuses in which a solver may offer help and be assigned.
SOLVABLE = frozenset({Status.ACCEPTED, Status.IN_PROGRESS})


class Actor(StrEnum):
    """In what capacity someone acts on one particular issue."""

    REPORTER = "REPORTER"  # the person who reported the problem or proposed the initiative
    OFFICIAL = "OFFICIAL"  # an official of the department the issue is routed to (or an admin)
    MODERATOR = "MODERATOR"  # a moderator (or an admin)
    SOLVER = "SOLVER"  # the solver assigned to the issue
    SYSTEM = "SYSTEM"  # Veche itself: thresholds and waiting periods


_ACTOR_WORDS = {
    Actor.REPORTER: "the reporter",
    Actor.OFFICIAL: "an official of the responsible department",
    Actor.MODERATOR: "a moderator",
    Actor.SOLVER: "the assigned solver",
    Actor.SYSTEM: "Veche automatically",
}
_ACTOR_WORDS_RU = {
    Actor.REPORTER: "автор обращения",
    Actor.OFFICIAL: "сотрудник ответственного ведомства",
    Actor.MODERATOR: "модератор",
    Actor.SOLVER: "назначенный исполнитель",
    Actor.SYSTEM: "Вече автоматически",
}
# A refusal's subject: "Проблему из статуса ... нельзя перевести".
_KIND_RU = {Kind.PROBLEM: "Проблему", Kind.INITIATIVE: "Инициативу"}


@dataclass(frozen=True)
class Rule:
    actors: frozenset[Actor]
    needs_note: bool = False


def _rule(*actors: Actor, needs_note: bool = False) -> Rule:
    return Rule(frozenset(actors), needs_note)


_AFTER_ACCEPTANCE: dict[tuple[Status, Status], Rule] = {
    (Status.ACCEPTED, Status.IN_PROGRESS): _rule(Actor.OFFICIAL),
    (Status.IN_PROGRESS, Status.RESOLVED): _rule(Actor.OFFICIAL, Actor.SOLVER),
    (Status.RESOLVED, Status.CLOSED): _rule(Actor.REPORTER, Actor.SYSTEM),
    (Status.RESOLVED, Status.IN_PROGRESS): _rule(Actor.REPORTER, needs_note=True),
}

WORKFLOW: dict[Kind, dict[tuple[Status, Status], Rule]] = {
    Kind.PROBLEM: {
        (Status.NEW, Status.ACCEPTED): _rule(Actor.MODERATOR, Actor.OFFICIAL),
        (Status.NEW, Status.REJECTED): _rule(Actor.MODERATOR, Actor.OFFICIAL, needs_note=True),
        **_AFTER_ACCEPTANCE,
    },
    Kind.INITIATIVE: {
        (Status.COLLECTING, Status.UNDER_REVIEW): _rule(Actor.SYSTEM),
        (Status.COLLECTING, Status.REJECTED): _rule(Actor.MODERATOR, needs_note=True),
        (Status.UNDER_REVIEW, Status.ACCEPTED): _rule(Actor.OFFICIAL),
        (Status.UNDER_REVIEW, Status.REJECTED): _rule(Actor.OFFICIAL, needs_note=True),
        **_AFTER_ACCEPTANCE,
    },
}


def initial_status(kind: Kind) -> Status:
    return Status.NEW if kind is Kind.PROBLEM else Status.COLLECTING


def next_statuses(kind: Kind, current: Status) -> list[Status]:
    """Where an issue of `kind` can go from `current`, by anyone."""
    return [to for (frm, to) in WORKFLOW[kind] if frm == current]


def actors_of(
    principal: Principal | None,
    *,
    reporter_id: str | None,
    department_id: str | None,
    solver_id: str | None,
) -> frozenset[Actor]:
    """Every capacity in which `principal` may act on an issue (None: the system)."""
    if principal is None:
        return frozenset({Actor.SYSTEM})
    actors: set[Actor] = set()
    if reporter_id is not None and principal.user_id == reporter_id:
        actors.add(Actor.REPORTER)
    if solver_id is not None and principal.user_id == solver_id:
        actors.add(Actor.SOLVER)
    if principal.is_admin or (
        principal.has_role("OFFICIAL")
        and department_id is not None
        and principal.department_id == department_id
    ):
        actors.add(Actor.OFFICIAL)
    if principal.is_admin or principal.has_role("MODERATOR"):
        actors.add(Actor.MODERATOR)
    return frozenset(actors)


def _words(statuses: Iterable[Status]) -> str:
    names = [s.value for s in statuses]
    if not names:
        return "nowhere: this is a final status"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _words_ru(statuses: Iterable[Status]) -> str:
    names = [s.value for s in statuses]
    if not names:
        return "никуда: это конечный статус"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " или " + names[-1]


def _who_ru(rule: Rule) -> str:
    return " или ".join(_ACTOR_WORDS_RU[a] for a in sorted(rule.actors))


def permitting_rule(
    kind: Kind, current: Status, target: Status, actors: Collection[Actor], note: str | None
) -> Rule:
    """The rule that allows `current -> target` for one of `actors`, or the refusal.

    INVALID_TRANSITION (naming the allowed next statuses) when the workflow has no
    such step; FORBIDDEN (naming who may) when it has, for someone else.
    """
    rule = WORKFLOW[kind].get((current, target))
    if rule is None:
        allowed = next_statuses(kind, current)
        raise InvalidTransitionError(
            f"A {kind.value.lower()} in {current.value} cannot move to {target.value}; "
            f"it can move to {_words(allowed)}.",
            allowed=[s.value for s in allowed],
            current=current.value,
            ru=(
                f"{_KIND_RU.get(kind, 'Обращение')} из статуса {current.value} нельзя перевести в "
                f"{target.value}; можно только в {_words_ru(allowed)}."
            ),
        )
    if not rule.actors.intersection(actors):
        who = " or ".join(_ACTOR_WORDS[a] for a in sorted(rule.actors))
        raise ForbiddenError(
            f"Only {who} can move this issue from {current.value} to {target.value}.",
            ru=f"Перевести это обращение из {current.value} в {target.value} может только {_who_ru(rule)}.",
        )
    if rule.needs_note and not (note and note.strip()):
        raise BadUserInputError(
            f"Say why: moving to {target.value} needs a note for the people following it.",
            field="note",
            ru=(
                f"Укажите причину: при переводе в {target.value} нужен комментарий для тех, кто "
                "следит за обращением."
            ),
        )
    return rule


# ─────────────────────────── deadlines ───────────────────────────


def add_working_days(
    start: datetime, days: int, holidays: Collection[date], utc_offset_hours: int
) -> datetime:
    """`start` plus `days` working days with only `holidays` marked (the rules are
    `veche_issues.calendar.WorkingCalendar`'s)."""
    return WorkingCalendar.of_holidays(holidays, utc_offset_hours).add_working_days(start, days)


# The one status in which the department owes its official answer: it took the issue on
# (`due_at` set) and has not moved it on yet. Any move out of ACCEPTED (work started, a
# solver assigned) is an answer; so is an official comment while ACCEPTED (`answered_at`).
AWAITING_ANSWER = Status.ACCEPTED


def is_overdue(
    status: Status, due_at: datetime | None, answered_at: datetime | None, now: datetime
) -> bool:
    """Past the deadline for the department's official answer, still unanswered.

    The deadline (`due_at`, set on ACCEPTED) is for the answer, not for the fix: an
    issue IN_PROGRESS, or ACCEPTED with an official comment, is not overdue.
    """
    return status is AWAITING_ANSWER and due_at is not None and answered_at is None and now > due_at


# ─────────────────────────── search terms ───────────────────────────

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# Snowball's Russian and English stemmers: "ямы", "яма", "ям" -> "ям"; "дорогами" -> "дорог".
_RUSSIAN = snowballstemmer.stemmer("russian")
_ENGLISH = snowballstemmer.stemmer("english")


def fold(text: str) -> str:
    """Case folded, with ё read as е: the form words are compared in."""
    return unicodedata.normalize("NFC", text).casefold().replace("ё", "е")


def stem(word: str) -> str:
    """A folded word's stem: Snowball's Russian algorithm for Cyrillic, English otherwise."""
    cyrillic = any("а" <= c <= "я" for c in word)
    stemmed: str = (_RUSSIAN if cyrillic else _ENGLISH).stemWord(word)
    return stemmed or word


def search_terms(*texts: str | None) -> list[str]:
    """The stems stored on a document (a multikey index makes them searchable)."""
    terms = {stem(w) for text in texts if text for w in _WORD.findall(fold(text)) if len(w) > 1}
    return sorted(terms)


def query_terms(text: str) -> list[str]:
    """The stems a search asks for; each must prefix a stored term."""
    terms = [stem(w) for w in _WORD.findall(fold(text))]
    return list(dict.fromkeys(t for t in terms if t))[:8]


# ─────────────────────────── valid input ───────────────────────────

MAX_TITLE = 200
MAX_DESCRIPTION = 5000
MAX_ADDRESS = 300
MAX_COMMENT = 2000
MAX_NOTE = 1000
MAX_PARTNER_NAME = 100
MAX_OFFER = 1000
MAX_PHOTOS = 10
MAX_URL = 2000
MAX_RADIUS_METERS = 50_000
DEFAULT_RADIUS_METERS = 1000
MAX_SEARCH = 200
# Bounds of an issue's lists: `solverOffers(first:)` and `history(last:)`.
MAX_SIMILAR = 20  # similarIssues: the nearest ones a reporter can look through
DEFAULT_OFFERS = 20
MAX_OFFERS = 50
DEFAULT_HISTORY = 50
MAX_HISTORY = 100


def required_text(value: str | None, field: str, limit: int) -> str:
    text = clean_text(value, field, limit)
    assert text is not None
    return text


def list_size(value: int | None, field: str, default: int, maximum: int) -> int:
    """How many items a bounded list returns: `default` when not asked, refused above `maximum`."""
    if value is None:
        return default
    if not 1 <= value <= maximum:
        raise BadUserInputError(
            f"`{field}` must be between 1 and {maximum}.",
            field=field,
            ru=f"`{field}` должно быть от 1 до {maximum}.",
        )
    return value


def check_point(lat: float, lon: float, field: str = "location") -> None:
    if not -90.0 <= lat <= 90.0:
        raise BadUserInputError(
            f"Latitude must be between -90 and 90 (got {lat}).",
            field=f"{field}.lat",
            ru=f"Широта должна быть от -90 до 90 (получено {lat}).",
        )
    if not -180.0 <= lon <= 180.0:
        raise BadUserInputError(
            f"Longitude must be between -180 and 180 (got {lon}).",
            field=f"{field}.lon",
            ru=f"Долгота должна быть от -180 до 180 (получено {lon}).",
        )


def clean_radius(radius: int | None, field: str = "radiusMeters") -> int:
    if radius is None:
        return DEFAULT_RADIUS_METERS
    if not 1 <= radius <= MAX_RADIUS_METERS:
        raise BadUserInputError(
            f"`{field}` must be between 1 and {MAX_RADIUS_METERS} metres.",
            field=field,
            ru=f"`{field}` должно быть от 1 до {MAX_RADIUS_METERS} метров.",
        )
    return radius


def check_photo_count(count: int, field: str = "photos") -> None:
    """At most MAX_PHOTOS photos on an issue, linked and uploaded together."""
    if count > MAX_PHOTOS:
        raise BadUserInputError(
            f"Attach at most {MAX_PHOTOS} photos (got {count}).",
            field=field,
            ru=f"Прикрепите не больше {MAX_PHOTOS} фото (получено {count}).",
        )


def clean_photos(urls: list[str] | None) -> list[str]:
    """Up to MAX_PHOTOS absolute http(s) URLs."""
    photos = [u.strip() for u in urls or []]
    check_photo_count(len(photos))
    for index, url in enumerate(photos):
        parts = urlsplit(url)
        if len(url) > MAX_URL or parts.scheme not in ("http", "https") or not parts.netloc:
            raise BadUserInputError(
                f"Photo {index + 1} must be an http:// or https:// link.",
                field=f"photos.{index}",
                ru=f"Фото {index + 1} должно быть ссылкой http:// или https://.",
            )
    return photos


def geo_point(lat: float, lon: float) -> dict[str, object]:
    """GeoJSON: longitude first."""
    return {"type": "Point", "coordinates": [lon, lat]}


# ─────────────────────────── map grid ───────────────────────────
#
# Each located issue also carries the ids of the grid cells it lies in, at three
# sizes (0.01°, 0.1° and 1°: about 1 km, 10 km and 100 km north to south). A
# circle query looks up the few cells that cover it on an ordinary multikey
# index, then measures exact distances. This is fast on any MongoDB-wire store;
# the embedded one evaluates 2dsphere operators by scanning every document.

GRID_DEGREES = (0.01, 0.1, 1.0)
MAX_COVERING_CELLS = 100
EARTH_RADIUS_METERS = 6378100.0  # the radius MongoDB measures 2dsphere distances with


def _cell(level: int, row: int, col: int) -> str:
    return f"{level}:{row}:{col}"


def geo_cells(lat: float, lon: float) -> list[str]:
    """The cells, one per grid size, that a point lies in."""
    cells = []
    for level, size in enumerate(GRID_DEGREES):
        columns = round(360 / size)
        row = math.floor((lat + 90) / size)
        col = math.floor((lon + 180) / size) % columns
        cells.append(_cell(level, row, col))
    return cells


def covering_cells(lat: float, lon: float, radius_meters: float) -> list[str]:
    """Cells of the finest grid that covers the circle in at most MAX_COVERING_CELLS."""
    dlat = math.degrees(radius_meters / EARTH_RADIUS_METERS)
    north, south = min(lat + dlat, 90.0), max(lat - dlat, -90.0)
    widest = max(abs(north), abs(south))
    cos = math.cos(math.radians(widest))
    dlon = 180.0 if widest >= 89.9 or dlat / cos >= 180 else dlat / cos
    for level, size in enumerate(GRID_DEGREES):
        columns = round(360 / size)
        rows = range(math.floor((south + 90) / size), math.floor((north + 90) / size) + 1)
        first, last = math.floor((lon - dlon + 180) / size), math.floor((lon + dlon + 180) / size)
        cols = sorted({c % columns for c in range(first, min(last, first + columns - 1) + 1)})
        if len(rows) * len(cols) <= MAX_COVERING_CELLS or level == len(GRID_DEGREES) - 1:
            return [_cell(level, r, c) for r in rows for c in cols]
    raise AssertionError("unreachable")


def distance_meters(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance on MongoDB's sphere."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_METERS * math.asin(min(1.0, math.sqrt(a)))


# ─────────────────────────── what a decision writes ───────────────────────────

CITY = frozenset({Actor.OFFICIAL, Actor.MODERATOR})


@dataclass(frozen=True)
class Deadline:
    """How long the department has to answer, in the city's working days."""

    working_days: int
    calendar: WorkingCalendar

    def due(self, accepted_at: datetime) -> datetime:
        return self.calendar.add_working_days(accepted_at, self.working_days)

    def counting(self, since: datetime) -> dict[str, Any]:
        """The deadline from `since` and what it was counted from, as the issue keeps them
        (so a calendar change can count it again: `veche_issues.recount`)."""
        return {"due_at": self.due(since), "due_from": since, "due_days": self.working_days}


@dataclass(frozen=True)
class Change:
    """What one decision writes to an issue: field values, the history entry (None
    when the status stays) and the city's first answer (kept only if the earliest)."""

    fields: dict[str, Any]
    entry: dict[str, Any] | None = None
    first_response: dict[str, Any] | None = None
    by_city: bool = False  # an official or moderator decided it: a staff action, audited


def first_response(created_at: datetime, now: datetime) -> dict[str, Any]:
    hours = (now - created_at).total_seconds() / 3600
    return {"first_response_at": now, "response_hours": round(hours, 4)}


def history_entry(
    current: Status, target: Status, by: str | None, note: str | None, now: datetime
) -> dict[str, Any]:
    return {"from": current.value, "to": target.value, "by": by, "note": note, "at": now}


def check_expected(kind: Kind, current: Status, expect: Status | None) -> None:
    """A specialised action (confirmResolution needs RESOLVED) refuses in the workflow's words."""
    if expect is None or current is expect:
        return
    allowed = next_statuses(kind, current)
    raise InvalidTransitionError(
        f"This needs the issue in {expect.value}; it is {current.value}. "
        f"From {current.value} it can move to "
        f"{', '.join(s.value for s in allowed) or 'nowhere'}.",
        allowed=[s.value for s in allowed],
        current=current.value,
        ru=(
            f"Для этого обращение должно быть в статусе {expect.value}, а оно в статусе {current.value}. "
            f"Из {current.value} его можно перевести в: {', '.join(s.value for s in allowed) or 'никуда'}."
        ),
    )


def transition(
    kind: Kind,
    current: Status,
    target: Status,
    actors: frozenset[Actor],
    note: str | None,
    *,
    by: str | None,
    created_at: datetime,
    now: datetime,
    deadline: Deadline,
) -> Change:
    """`current -> target` by one of `actors` (see `permitting_rule`), as a `Change`."""
    rule = permitting_rule(kind, current, target, actors, note)
    clean_note = clean_text(note, "note", MAX_NOTE, required=False)
    fields: dict[str, Any] = {"status": target.value, "updated_at": now}
    if target is Status.ACCEPTED:
        fields["accepted_at"] = now
        fields.update(deadline.counting(now))
    if target is Status.RESOLVED:
        fields["resolved_at"] = now
    if current is Status.RESOLVED and target is Status.IN_PROGRESS:
        fields["resolved_at"] = None  # reopened: the auto-close clock starts again later
    by_city = bool(rule.actors & actors & CITY)
    answer = first_response(created_at, now) if by_city else None
    entry = history_entry(current, target, by, clean_note, now)
    return Change(fields, entry, answer, by_city=by_city)


def _check_offer(offer_status: str, assigned_solver: str | None, current: Status) -> None:
    """An offer is taken while pending, for an issue without a solver that one can work on."""
    if offer_status != OfferStatus.PENDING:
        raise ConflictError(
            f"This offer is {offer_status} already.",
            ru=f"Это предложение уже в статусе {offer_status}.",
        )
    if assigned_solver:
        raise ConflictError(
            "This issue already has a solver.", ru="У этого обращения уже есть исполнитель."
        )
    if current not in SOLVABLE:
        raise InvalidTransitionError(
            f"A solver can be assigned to an ACCEPTED or IN_PROGRESS issue; this one is {current.value}.",
            current=current.value,
            ru=f"Исполнителя можно назначить обращению в статусе ACCEPTED или IN_PROGRESS; это обращение в статусе {current.value}.",
        )


def assignment(
    current: Status,
    actors: frozenset[Actor],
    *,
    offer_status: str,
    solver_id: str,
    reporter_id: str,
    assigned_solver: str | None,
    by: str,
    created_at: datetime,
    now: datetime,
) -> Change:
    """The reporter or an official picks a solver; an ACCEPTED issue moves to IN_PROGRESS."""
    if not actors & {Actor.REPORTER, Actor.OFFICIAL}:
        raise ForbiddenError(
            "Only the reporter or an official of the responsible department can accept an offer.",
            ru="Принять предложение может только автор обращения или сотрудник ответственного ведомства.",
        )
    check_not_reporter(solver_id, reporter_id)
    _check_offer(offer_status, assigned_solver, current)
    fields: dict[str, Any] = {"solver_id": solver_id, "updated_at": now}
    entry = None
    if current is Status.ACCEPTED:
        fields["status"] = Status.IN_PROGRESS.value
        entry = history_entry(current, Status.IN_PROGRESS, by, "Solver offer accepted.", now)
    answer = first_response(created_at, now) if actors & CITY else None
    return Change(fields, entry, answer)


def check_not_reporter(solver_id: str, reporter_id: str) -> None:
    """Nobody solves their own report: fixing it is paid in points."""
    if solver_id == reporter_id:
        raise ForbiddenError(
            "The reporter of an issue cannot be its solver: someone else has to fix it.",
            ru="Автор обращения не может быть его исполнителем: исправить проблему должен кто-то другой.",
        )


def check_skill(category: str, skills: Collection[str]) -> None:
    """A solver offers help only in the categories they named as skills (`becomeSolver`).

    `skills` is what the users service last told this service (the users projection);
    empty when it has not told it yet, since a solver always names at least one skill.
    """
    if not skills:
        raise ForbiddenError(
            "Your solver skills have not reached the issues service yet; try again in a "
            "few seconds (or name your skills with `becomeSolver`).",
            skill=category,
            ru=(
                "Ваши навыки исполнителя ещё не дошли до сервиса обращений; попробуйте через несколько "
                "секунд (или укажите навыки через `becomeSolver`)."
            ),
        )
    if category not in skills:
        raise ForbiddenError(
            f"This issue's category is '{category}', which is not among your solver skills; "
            "add it with `becomeSolver` to offer help here.",
            skill=category,
            ru=(
                f"Категория этого обращения — «{category}», её нет среди ваших навыков исполнителя; "
                "добавьте её через `becomeSolver`, чтобы предложить помощь."
            ),
        )


def fix_confirmation(
    status: Status,
    actors: frozenset[Actor],
    *,
    caller_id: str,
    solver_id: str | None,
    reporter_id: str,
    confirmed_by: str | None,
    now: datetime,
) -> Change:
    """An official of the responsible department confirms a solver's fix (RESOLVED or
    CLOSED), once; neither the solver nor the reporter can confirm it."""
    if Actor.OFFICIAL not in actors:
        raise ForbiddenError(
            "Only an official of the responsible department can confirm a solver's fix.",
            ru="Подтвердить исправление исполнителя может только сотрудник ответственного ведомства.",
        )
    if caller_id in (solver_id, reporter_id):
        raise ForbiddenError(
            "You solved or reported this issue: another official has to confirm the fix.",
            ru="Вы решили это обращение или подали его: исправление должен подтвердить другой сотрудник.",
        )
    if solver_id is None:
        raise ConflictError(
            "This issue has no solver: there is no fix to confirm.",
            ru="У этого обращения нет исполнителя: подтверждать нечего.",
        )
    if status not in (Status.RESOLVED, Status.CLOSED):
        raise InvalidTransitionError(
            f"A fix can be confirmed once the issue is RESOLVED or CLOSED; it is {status.value}.",
            current=status.value,
            ru=f"Исправление можно подтвердить, когда обращение в статусе RESOLVED или CLOSED; сейчас оно в статусе {status.value}.",
        )
    if confirmed_by is not None:
        raise ConflictError(
            "The fix has been confirmed already.", ru="Исправление уже подтверждено."
        )
    return Change({"fix_confirmed_by": caller_id, "fix_confirmed_at": now, "updated_at": now})


def review(threshold: int, now: datetime) -> Change:
    """COLLECTING -> UNDER_REVIEW once an initiative has `threshold` supports."""
    note = f"{threshold} supports reached: handed to the department for review."
    return Change(
        {"status": Status.UNDER_REVIEW.value, "updated_at": now},
        history_entry(Status.COLLECTING, Status.UNDER_REVIEW, None, note, now),
    )


def due_for_review(issue: Mapping[str, Any]) -> bool:
    threshold = issue.get("support_threshold")
    return (
        issue["kind"] == Kind.INITIATIVE.value
        and issue["status"] == Status.COLLECTING.value
        and threshold is not None
        and issue["supporters_count"] >= threshold
    )


# ─────────────────────────── the events a change tells ───────────────────────────


def arrival(issue: Mapping[str, Any]) -> Event:
    author_id = issue["reporter_id"]
    if issue["kind"] == Kind.PROBLEM.value:
        return IssueReported(
            issue_id=issue["_id"],
            title=issue["title"],
            category=issue["category"],
            department_id=issue["department_id"],
            district_id=issue["district_id"],
            reporter_id=author_id,
        )
    return InitiativeProposed(
        issue_id=issue["_id"],
        title=issue["title"],
        category=issue["category"],
        author_id=author_id,
        district_id=issue["district_id"],
        support_threshold=issue["support_threshold"],
    )


def supported(issue: Mapping[str, Any], user_id: str) -> IssueSupported:
    return IssueSupported(
        issue_id=issue["_id"],
        kind=issue["kind"],
        user_id=user_id,
        supporters_count=issue["supporters_count"],
    )


def commented(
    issue: Mapping[str, Any], comment: Mapping[str, Any], supporters: list[str]
) -> IssueCommented:
    return IssueCommented(
        issue_id=issue["_id"],
        title=issue["title"],
        comment_id=comment["_id"],
        author_id=comment["author_id"],
        official=comment["official"],
        excerpt=comment["text"][:200],
        reporter_id=issue["reporter_id"],
        supporter_ids=supporters,
    )


def offered(issue: Mapping[str, Any], offer: Mapping[str, Any]) -> IssueSolverOffered:
    return IssueSolverOffered(
        issue_id=issue["_id"],
        title=issue["title"],
        offer_id=offer["_id"],
        solver_id=offer["solver_id"],
        reporter_id=issue["reporter_id"],
        message=offer["message"],
    )


def assigned(issue: Mapping[str, Any], offer: Mapping[str, Any]) -> IssueSolverAssigned:
    return IssueSolverAssigned(
        issue_id=issue["_id"],
        title=issue["title"],
        offer_id=offer["_id"],
        solver_id=offer["solver_id"],
        reporter_id=issue["reporter_id"],
    )


def status_changed(
    issue: Mapping[str, Any], entry: Mapping[str, Any], supporters: list[str]
) -> IssueStatusChanged:
    return IssueStatusChanged(
        issue_id=issue["_id"],
        kind=issue["kind"],
        title=issue["title"],
        from_status=entry["from"],
        to_status=entry["to"],
        by_user_id=entry["by"],
        note=entry["note"],
        reporter_id=issue["reporter_id"],
        solver_id=issue.get("solver_id"),
        department_id=issue.get("department_id"),
        supporter_ids=supporters,
    )


def transition_events(
    issue: Mapping[str, Any], entry: Mapping[str, Any], supporters: list[str]
) -> list[Event]:
    """`issue.status_changed`, plus `issue.resolved` or `issue.closed` where it ends so."""
    events: list[Event] = [status_changed(issue, entry, supporters)]
    common = {
        "issue_id": issue["_id"],
        "title": issue["title"],
        "reporter_id": issue["reporter_id"],
        "solver_id": issue.get("solver_id"),
    }
    if entry["to"] == Status.RESOLVED.value:
        events.append(IssueResolved(**common, resolved_by=entry["by"] or "system"))
    if entry["to"] == Status.CLOSED.value:
        events.append(IssueClosed(**common, confirmed_by=entry["by"]))
    return events


def threshold_reached(issue: Mapping[str, Any], threshold: int) -> InitiativeThresholdReached:
    return InitiativeThresholdReached(
        issue_id=issue["_id"],
        title=issue["title"],
        description=issue["description"],
        category=issue["category"],
        author_id=issue["reporter_id"],
        department_id=issue.get("department_id"),
        district_id=issue.get("district_id"),
        supporters_count=issue["supporters_count"],
        support_threshold=threshold,
    )


# ─────────────────────────── staff actions ───────────────────────────


class StepKind(StrEnum):
    """What one step of an issue's history records (entries before staff actions are
    status changes)."""

    STATUS_CHANGED = "STATUS_CHANGED"
    RECATEGORIZED = "RECATEGORIZED"
    MERGED_INTO = "MERGED_INTO"  # closed as a duplicate of another issue
    DUPLICATE_MERGED = "DUPLICATE_MERGED"  # a duplicate's supports were carried into this one
    DEADLINE_EXTENDED = "DEADLINE_EXTENDED"
    DEADLINE_RECOUNTED = "DEADLINE_RECOUNTED"  # the working-day calendar changed under it
    ASSIGNED = "ASSIGNED"
    UNASSIGNED = "UNASSIGNED"


class StaffAction(StrEnum):
    """A staff action on an issue, named as a refusal says it."""

    RECATEGORIZE = "recategorise an issue"
    MERGE = "merge duplicate issues"
    EXTEND_DEADLINE = "extend an issue's deadline"
    ASSIGN = "assign an issue to an official"


# Who may take each action: the department's officials (admins count as officials of
# every department), and for the city-wide triage of new reports also moderators.
_STAFF_RULES: dict[StaffAction, frozenset[Actor]] = {
    StaffAction.RECATEGORIZE: CITY,
    StaffAction.MERGE: CITY,
    StaffAction.EXTEND_DEADLINE: frozenset({Actor.OFFICIAL}),
    StaffAction.ASSIGN: frozenset({Actor.OFFICIAL}),
}
_STAFF_WORDS = {
    Actor.OFFICIAL: "an official of the issue's department",
    Actor.MODERATOR: "a moderator",
}
_STAFF_WORDS_RU = {
    Actor.OFFICIAL: "сотрудник ведомства, отвечающего за обращение",
    Actor.MODERATOR: "модератор",
}
_STAFF_ACTIONS_RU = {
    StaffAction.RECATEGORIZE: "Менять категорию обращения",
    StaffAction.MERGE: "Объединять обращения-дубликаты",
    StaffAction.EXTEND_DEADLINE: "Продлевать срок ответа по обращению",
    StaffAction.ASSIGN: "Назначать обращение сотруднику",
}
# Furthest a deadline can be moved: a year ahead.
MAX_EXTENSION = timedelta(days=365)


def _who_may(action: StaffAction) -> str:
    """Who may, in words: "an official of the issue's department, a moderator or an admin"."""
    who = [words for actor, words in _STAFF_WORDS.items() if actor in _STAFF_RULES[action]]
    return ", ".join(who) + " or an admin"


def _who_may_ru(action: StaffAction) -> str:
    who = [words for actor, words in _STAFF_WORDS_RU.items() if actor in _STAFF_RULES[action]]
    return ", ".join(who) + " или администратор"


def check_staff_role(principal: Principal, action: StaffAction) -> None:
    """FORBIDDEN at once for a caller no issue would allow (citizens, solvers)."""
    roles = {"ADMIN", "OFFICIAL"} | (
        {"MODERATOR"} if Actor.MODERATOR in _STAFF_RULES[action] else set()
    )
    if not principal.roles & roles:
        raise ForbiddenError(
            f"Only {_who_may(action)} can {action.value}.",
            ru=f"{_STAFF_ACTIONS_RU[action]} может только {_who_may_ru(action)}.",
        )


def check_staff(action: StaffAction, actors: frozenset[Actor], department_id: str | None) -> None:
    """FORBIDDEN unless one of `actors` (on this issue) may take `action`."""
    if not _STAFF_RULES[action] & actors:
        raise ForbiddenError(
            f"This issue is handled by the department '{department_id}': only "
            f"{_who_may(action)} can {action.value} here.",
            ru=(
                f"Это обращение ведёт ведомство «{department_id}»: "
                f"{_STAFF_ACTIONS_RU[action].lower()} здесь может только {_who_may_ru(action)}."
            ),
        )


def staff_entry(
    kind: StepKind,
    status: Status,
    by: str | None,
    reason: str | None,
    now: datetime,
    detail: str | None = None,
    *,
    to: Status | None = None,
) -> dict[str, Any]:
    """A history step that is not a status move (`to` set: one that is, like a merge)."""
    entry = history_entry(status, to or status, by, reason, now)
    entry.update({"kind": kind.value, "detail": detail})
    return entry


def _still_open(issue: Mapping[str, Any], what: str, ru: str) -> Status:
    status = Status(issue["status"])
    if status in SETTLED:
        raise ConflictError(
            f"This issue is {status.value}: only an unsettled issue can {what}.",
            ru=f"Это обращение в статусе {status.value}: {ru} может только нерешённое обращение.",
        )
    return status


def recategorization(
    issue: Mapping[str, Any],
    category: Mapping[str, Any],
    reason: str,
    *,
    by: str,
    now: datetime,
    deadline: Deadline,
) -> Change:
    """Moves the issue to `category` and its department. A new department starts with no
    assignee and, for an ACCEPTED issue, a full answer period from `now`."""
    status = _still_open(issue, "change its category", "сменить категорию")
    if category["_id"] == issue["category"]:
        raise BadUserInputError(
            f"The issue is in the category '{category['_id']}' already; pick another one.",
            field="categoryId",
            ru=f"Обращение уже в категории «{category['_id']}»; выберите другую.",
        )
    before, after = issue.get("department_id"), category.get("department_id")
    fields: dict[str, Any] = {
        "category": category["_id"],
        "department_id": after,
        "updated_at": now,
    }
    if after != before:
        fields["assignee_id"] = None
        if status is AWAITING_ANSWER and issue.get("due_at") is not None:
            fields.update(deadline.counting(now), answered_at=None, overdue_notified=False)
    detail = f"Category {issue['category']} → {category['_id']}; department {before} → {after}."
    entry = staff_entry(StepKind.RECATEGORIZED, status, by, reason, now, detail)
    return Change(fields, entry)


def deadline_extension(
    issue: Mapping[str, Any], due_at: datetime, reason: str, *, by: str, now: datetime
) -> Change:
    """A later deadline for an ACCEPTED issue's answer; the sweep tells the department
    again if the new one passes too."""
    current = issue.get("due_at")
    if issue["status"] != AWAITING_ANSWER.value or current is None:
        raise ConflictError(
            f"This issue is {issue['status']}: only an ACCEPTED issue has a deadline running.",
            ru=(
                f"Это обращение в статусе {issue['status']}: срок идёт только у обращения в статусе "
                "ACCEPTED."
            ),
        )
    if due_at.tzinfo is None:
        raise BadUserInputError(
            "Give `dueAt` with its time zone (e.g. `Z`).",
            field="dueAt",
            ru="Укажите `dueAt` с часовым поясом (например, `Z`).",
        )
    if due_at <= current or due_at <= now:
        raise BadUserInputError(
            f"The new deadline must be later than the current one ({current.isoformat()}) "
            "and than now.",
            field="dueAt",
            ru=f"Новый срок должен быть позже текущего ({current.isoformat()}) и позже настоящего момента.",
        )
    if due_at > now + MAX_EXTENSION:
        raise BadUserInputError(
            "A deadline can be set at most a year ahead.",
            field="dueAt",
            ru="Срок можно перенести не больше чем на год вперёд.",
        )
    new = due_at.astimezone(UTC)
    detail = f"Deadline {current.isoformat()} → {new.isoformat()}."
    entry = staff_entry(StepKind.DEADLINE_EXTENDED, AWAITING_ANSWER, by, reason, now, detail)
    # A date a person chose (`due_from` None), not a count: calendar changes leave it be.
    fields = {"due_at": new, "due_from": None, "overdue_notified": False, "updated_at": now}
    return Change(fields, entry)


def handover(
    issue: Mapping[str, Any],
    official: Mapping[str, Any] | None,
    official_id: str | None,
    *,
    by: str,
    now: datetime,
) -> Change | None:
    """Assigns the issue to `official_id` (None: unassigns it), who must be an OFFICIAL of
    the issue's department as the users projection knows them; None when nothing changes."""
    status = _still_open(issue, "be assigned", "получить ответственного")
    if official_id == issue.get("assignee_id"):
        return None
    if official_id is not None:
        _check_assignee(official, official_id, issue.get("department_id"))
    kind = StepKind.ASSIGNED if official_id is not None else StepKind.UNASSIGNED
    entry = staff_entry(kind, status, by, None, now)
    return Change({"assignee_id": official_id, "updated_at": now}, entry)


def _check_assignee(
    official: Mapping[str, Any] | None, official_id: str, department_id: str | None
) -> None:
    if official is None or "OFFICIAL" not in (official.get("roles") or []):
        raise BadUserInputError(
            f"User '{official_id[:40]}' is not an official. (A role granted a moment ago "
            "reaches the issues service within seconds; try again then.)",
            field="officialId",
            ru=(
                f"Пользователь «{official_id[:40]}» — не сотрудник ведомства. (Только что выданная роль "
                "доходит до сервиса обращений за несколько секунд; тогда попробуйте снова.)"
            ),
        )
    if official.get("department_id") != department_id:
        raise BadUserInputError(
            f"User '{official_id[:40]}' is an official of the department "
            f"'{official.get('department_id')}', not of '{department_id}', which handles this issue.",
            field="officialId",
            ru=(
                f"Пользователь «{official_id[:40]}» — сотрудник ведомства "
                f"«{official.get('department_id')}», а не «{department_id}», которое ведёт это обращение."
            ),
        )


# The two issues of a merge, as a refusal names them.
_ROLE_RU = {"duplicate": "Обращение-дубликат", "target": "Целевое обращение"}


def check_merge(duplicate: Mapping[str, Any], target: Mapping[str, Any]) -> None:
    """Refuses a merge that cannot be: into itself, of or into a closed or merged issue,
    across kinds, of initiatives of different categories, of an issue with a solver."""
    if duplicate["_id"] == target["_id"]:
        raise BadUserInputError(
            "An issue cannot be merged into itself.",
            field="intoId",
            ru="Обращение нельзя объединить с самим собой.",
        )
    for issue, role in ((duplicate, "duplicate"), (target, "target")):
        if issue.get("duplicate_of"):
            raise ConflictError(
                f"The {role} was merged into issue '{issue['duplicate_of']}' already"
                + (": merge into that one instead." if role == "target" else "."),
                ru=f"{_ROLE_RU[role]} уже объединено с обращением «{issue['duplicate_of']}»{': объединяйте с ним.' if role == 'target' else '.'}",
            )
        if Status(issue["status"]) in FINISHED:
            raise ConflictError(
                f"The {role} is {issue['status']}: only open issues merge.",
                ru=f"{_ROLE_RU[role]} в статусе {issue['status']}: объединять можно только открытые обращения.",
            )
    if duplicate["kind"] != target["kind"]:
        raise BadUserInputError(
            "A problem merges into a problem and an initiative into an initiative.",
            field="intoId",
            ru="Проблема объединяется только с проблемой, инициатива — с инициативой.",
        )
    if duplicate["kind"] == Kind.INITIATIVE.value and duplicate["category"] != target["category"]:
        raise BadUserInputError(
            "Initiatives merge within one category (thresholds and who may support are "
            "set per category); recategorise one of them first.",
            field="intoId",
            ru="Инициативы объединяются только в одной категории (пороги и круг поддерживающих задаёт категория); сначала смените категорию одной из них.",
        )
    if duplicate.get("solver_id"):
        raise ConflictError(
            "The duplicate has an assigned solver: merge the other issue into it instead.",
            ru="У дубликата есть назначенный исполнитель: объедините с ним другое обращение.",
        )


def merge_closing(
    duplicate: Mapping[str, Any], target: Mapping[str, Any], reason: str, *, by: str, now: datetime
) -> Change:
    """What closing the duplicate writes: CLOSED, with the link to the target."""
    detail = f"Duplicate of «{target['title']}» ({target['_id']})."
    entry = staff_entry(
        StepKind.MERGED_INTO,
        Status(duplicate["status"]),
        by,
        reason,
        now,
        detail,
        to=Status.CLOSED,
    )
    fields = {"status": Status.CLOSED.value, "duplicate_of": target["_id"], "updated_at": now}
    return Change(fields, entry)


def followers_to_carry(
    duplicate: Mapping[str, Any],
    duplicate_supporters: Iterable[str],
    target: Mapping[str, Any],
    target_supporters: Collection[str],
) -> list[str]:
    """Who gets a support on the target: the duplicate's supporters, and for a problem its
    reporter too ("me too"), each once, minus those already supporting or reporting the
    target. (An initiative's author never passed its category's support check.)"""
    people = list(duplicate_supporters)
    if duplicate["kind"] == Kind.PROBLEM.value and duplicate.get("reporter_id"):
        people.append(duplicate["reporter_id"])
    kept = set(target_supporters) | {target.get("reporter_id")}
    return [p for p in dict.fromkeys(people) if p not in kept]


def merged_in_entry(
    target: Mapping[str, Any],
    duplicate: Mapping[str, Any],
    carried: int,
    reason: str,
    *,
    by: str,
    now: datetime,
) -> dict[str, Any]:
    detail = (
        f"«{duplicate['title']}» ({duplicate['_id']}) merged in; {carried} supports carried over."
    )
    return staff_entry(StepKind.DUPLICATE_MERGED, Status(target["status"]), by, reason, now, detail)


def recategorized(
    before: Mapping[str, Any], saved: Mapping[str, Any], *, by: str, reason: str
) -> IssueRecategorized:
    return IssueRecategorized(
        issue_id=saved["_id"],
        title=saved["title"],
        from_category=before["category"],
        to_category=saved["category"],
        from_department_id=before.get("department_id"),
        to_department_id=saved.get("department_id"),
        due_at=saved.get("due_at") if saved["status"] == AWAITING_ANSWER.value else None,
        by_user_id=by,
        reason=reason,
        reporter_id=saved["reporter_id"],
    )


def handed_over(saved: Mapping[str, Any], previous: str | None, *, by: str) -> IssueAssigned:
    return IssueAssigned(
        issue_id=saved["_id"],
        title=saved["title"],
        department_id=saved.get("department_id"),
        assignee_id=saved.get("assignee_id"),
        previous_assignee_id=previous,
        by_user_id=by,
    )


@dataclass(frozen=True)
class RequestFilter:
    """`GET requests` as the spec defines its parameters (FixMyStreet's
    lat/long/radius included)."""

    ids: list[str] | None
    service_codes: list[str] | None
    start: datetime
    end: datetime
    closed: bool | None
    near: tuple[float, float, float] | None
