"""Pure rules of the polls domain: poll shape, schedule, audience, answers, tallies.

Nothing here touches the store or the network. Polls, questions and ballots are
plain documents (dicts) in the shape the store keeps them, so the rules and the
store speak the same language without a mapping layer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from veche_kit.auth import Principal
from veche_kit.errors import (
    BadUserInputError,
    ForbiddenError,
)
from veche_kit.text import clean_slugs, is_slug
from veche_kit.text import clean_text as clean_text
from veche_polls.errors import NotEligibleError, PollNotActiveError

Document = dict[str, Any]


class PollStatus(StrEnum):
    DRAFT = "DRAFT"
    ACTIVE = "ACTIVE"
    CLOSED = "CLOSED"


class QuestionKind(StrEnum):
    SINGLE_CHOICE = "SINGLE_CHOICE"
    MULTIPLE_CHOICE = "MULTIPLE_CHOICE"
    SCALE = "SCALE"


class DecisionStatus(StrEnum):
    TAKEN = "TAKEN"
    IN_PROGRESS = "IN_PROGRESS"
    IMPLEMENTED = "IMPLEMENTED"


MAX_TITLE = 200
MAX_DESCRIPTION = 5000
MAX_QUESTION = 500
MAX_OPTION = 200
MAX_DECISION = 5000
MIN_QUESTIONS, MAX_QUESTIONS = 1, 20
MIN_OPTIONS, MAX_OPTIONS = 2, 20
MAX_SCALE_POINTS = 21  # e.g. 0..20; a scale is shown as one choice per point
# The most choices a question shows: its options, or a scale's points.
MAX_CHOICES = max(MAX_OPTIONS, MAX_SCALE_POINTS)
# How many districts results are assumed to list, for the gateway's cost limit: a city's
# districts (Kaluga has three okrugs; a large city a dozen or two).
ASSUMED_DISTRICTS = 20
SCALE_LIMIT = 1000  # scale ends lie within -1000..1000
MIN_AGE, MAX_AGE = 14, 120
MAX_DISTRICTS = 50
MAX_POINTS_REWARD = 1000
DEFAULT_POINTS_REWARD = 10

# Age groups of the results breakdown: (label, youngest, oldest or None).
AGE_GROUPS: tuple[tuple[str, int, int | None], ...] = (
    ("14-17", 14, 17),
    ("18-24", 18, 24),
    ("25-34", 25, 34),
    ("35-44", 35, 44),
    ("45-54", 45, 54),
    ("55-64", 55, 64),
    ("65+", 65, None),
)

_SAFE_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


# ─────────────────────────── who may do what ───────────────────────────


def can_manage(caller: Principal | None, poll: Mapping[str, Any]) -> bool:
    """Admins manage every poll; officials the polls of their own department."""
    if caller is None:
        return False
    if caller.is_admin:
        return True
    department = poll.get("department_id")
    return (
        caller.has_role("OFFICIAL")
        and department is not None
        and caller.department_id == department
    )


def require_manager(caller: Principal, poll: Mapping[str, Any]) -> None:
    if not can_manage(caller, poll):
        raise ForbiddenError(
            "Only officials of the poll's department and admins can manage this poll.",
            ru="Управлять этим опросом могут только сотрудники ведомства опроса и администраторы.",
        )


def require_author_role(caller: Principal) -> None:
    caller.require_role("OFFICIAL", "ADMIN")
    if not caller.is_admin and not caller.department_id:
        raise ForbiddenError(
            "Your OFFICIAL role has no department; ask an admin to set one.",
            ru="У вашей роли OFFICIAL не указано ведомство; попросите администратора его задать.",
        )


def results_visible(caller: Principal | None, poll: Mapping[str, Any], *, has_voted: bool) -> bool:
    """Never for a DRAFT; managers always; a voter once they voted; everyone once CLOSED."""
    if poll["status"] == PollStatus.DRAFT:
        return False
    return poll["status"] == PollStatus.CLOSED or has_voted or can_manage(caller, poll)


def takes_ballots(poll: Mapping[str, Any]) -> bool:
    """A DRAFT has no ballots to count yet."""
    return bool(poll["status"] != PollStatus.DRAFT)


def can_see(caller: Principal | None, poll: Mapping[str, Any]) -> bool:
    """Drafts are seen by those who manage them; published polls by everyone."""
    return takes_ballots(poll) or can_manage(caller, poll)


@dataclass(frozen=True)
class Drafts:
    """Which drafts a caller may list: one department's, or every one (None)."""

    department_id: str | None


def drafts_listed_for(caller: Principal | None) -> Drafts | None:
    """Admins list every draft, officials their department's, others none (None)."""
    if caller is None:
        return None
    if caller.is_admin:
        return Drafts(None)
    if caller.has_role("OFFICIAL") and caller.department_id:
        return Drafts(caller.department_id)
    return None


def require_own(caller: Principal, user_id: str, what: str, ru: str) -> None:
    if caller.user_id != user_id:
        raise ForbiddenError(
            f"Only the user themself can see their {what}.",
            ru=f"Свои {ru} видит только сам пользователь.",
        )


def poll_department(caller: Principal, department_id: str | None) -> str | None:
    """Admins create polls for any department (or none); officials for their own."""
    if not caller.is_admin:
        if department_id is not None and department_id != caller.department_id:
            raise ForbiddenError(
                "Officials create polls for their own department only.",
                ru="Сотрудники создают опросы только для своего ведомства.",
            )
        return caller.department_id
    department = department_id.strip().lower() if department_id else None
    if department is not None and not is_slug(department):
        raise BadUserInputError(
            f"'{department[:40]}' is not a department id (see `departments`).",
            field="departmentId",
            ru=f"«{department[:40]}» — не id ведомства (см. `departments`).",
        )
    return department


# ─────────────────────────── poll shape ───────────────────────────


def clean_title(title: str) -> str:
    cleaned = clean_text(" ".join(title.split()), "title", MAX_TITLE, required=True)
    assert cleaned is not None
    return cleaned


@dataclass(frozen=True)
class QuestionDraft:
    """A question as the author sends it."""

    text: str
    kind: QuestionKind
    options: Sequence[str] = ()
    max_choices: int | None = None
    scale_min: int | None = None
    scale_max: int | None = None


def scale_option_id(question_id: str, value: int) -> str:
    return f"{question_id}-v{value}"


def build_questions(drafts: Sequence[QuestionDraft]) -> list[Document]:
    """Checks the questions and gives them and their options ids (`q1`, `q1-2`, ...)."""
    if not MIN_QUESTIONS <= len(drafts) <= MAX_QUESTIONS:
        raise BadUserInputError(
            f"A poll has {MIN_QUESTIONS} to {MAX_QUESTIONS} questions; you sent {len(drafts)}.",
            field="questions",
            ru=f"В опросе от {MIN_QUESTIONS} до {MAX_QUESTIONS} вопросов; вы прислали {len(drafts)}.",
        )
    return [_build_question(i, draft) for i, draft in enumerate(drafts)]


def _build_question(index: int, draft: QuestionDraft) -> Document:
    where = f"questions[{index}]"
    question: Document = {
        "id": f"q{index + 1}",
        "text": clean_text(draft.text, f"{where}.text", MAX_QUESTION, required=True),
        "kind": draft.kind.value,
        "max_choices": None,
        "scale_min": None,
        "scale_max": None,
    }
    if draft.kind is QuestionKind.SCALE:
        return _scale_question(question, index, draft)
    return _choice_question(question, index, draft)


def _scale_question(question: Document, index: int, draft: QuestionDraft) -> Document:
    where = f"questions[{index}]"
    if draft.options:
        raise BadUserInputError(
            f"Question {index + 1} is a SCALE: leave `options` out, set scaleMin and scaleMax.",
            field=f"{where}.options",
            ru=f"Вопрос {index + 1} — шкала (SCALE): не указывайте `options`, задайте scaleMin и scaleMax.",
        )
    if draft.max_choices is not None:
        raise BadUserInputError(
            f"Question {index + 1} is a SCALE: `maxChoices` applies to MULTIPLE_CHOICE only.",
            field=f"{where}.maxChoices",
            ru=f"Вопрос {index + 1} — шкала (SCALE): `maxChoices` относится только к MULTIPLE_CHOICE.",
        )
    low, high = draft.scale_min, draft.scale_max
    if low is None or high is None:
        missing = "scaleMin" if low is None else "scaleMax"
        raise BadUserInputError(
            f"Question {index + 1} is a SCALE: set both scaleMin and scaleMax.",
            field=f"{where}.{missing}",
            ru=f"Вопрос {index + 1} — шкала (SCALE): задайте и scaleMin, и scaleMax.",
        )
    if not -SCALE_LIMIT <= low <= SCALE_LIMIT:
        raise BadUserInputError(
            f"Question {index + 1}: scaleMin must lie within ±{SCALE_LIMIT}.",
            field=f"{where}.scaleMin",
            ru=f"Вопрос {index + 1}: scaleMin должен быть в пределах ±{SCALE_LIMIT}.",
        )
    if not low < high <= low + MAX_SCALE_POINTS - 1:
        raise BadUserInputError(
            f"Question {index + 1}: scaleMax must be above scaleMin by 1 to {MAX_SCALE_POINTS - 1} (a scale has at most {MAX_SCALE_POINTS} points).",
            field=f"{where}.scaleMax",
            ru=f"Вопрос {index + 1}: scaleMax должен быть больше scaleMin на 1–{MAX_SCALE_POINTS - 1} (в шкале не больше {MAX_SCALE_POINTS} делений).",
        )
    question["scale_min"], question["scale_max"] = low, high
    question["options"] = [
        {"id": scale_option_id(question["id"], value), "text": str(value)}
        for value in range(low, high + 1)
    ]
    return question


def _choice_question(question: Document, index: int, draft: QuestionDraft) -> Document:
    where = f"questions[{index}]"
    if draft.scale_min is not None or draft.scale_max is not None:
        raise BadUserInputError(
            f"Question {index + 1} is a choice question: scaleMin and scaleMax apply to SCALE only.",
            field=f"{where}.scaleMin" if draft.scale_min is not None else f"{where}.scaleMax",
            ru=f"Вопрос {index + 1} — вопрос с вариантами: scaleMin и scaleMax относятся только к SCALE.",
        )
    options = _options(question["id"], index, draft.options)
    question["options"] = options
    if draft.kind is QuestionKind.SINGLE_CHOICE:
        if draft.max_choices not in (None, 1):
            raise BadUserInputError(
                f"Question {index + 1} is SINGLE_CHOICE: leave `maxChoices` out (it is 1).",
                field=f"{where}.maxChoices",
                ru=f"Вопрос {index + 1} — SINGLE_CHOICE: не указывайте `maxChoices` (он равен 1).",
            )
        question["max_choices"] = 1
        return question
    limit = len(options) if draft.max_choices is None else draft.max_choices
    if not 1 <= limit <= len(options):
        raise BadUserInputError(
            f"Question {index + 1}: maxChoices must be between 1 and its {len(options)} options.",
            field=f"{where}.maxChoices",
            ru=f"Вопрос {index + 1}: maxChoices должно быть от 1 до числа его вариантов ({len(options)}).",
        )
    question["max_choices"] = limit
    return question


def _options(qid: str, index: int, raw_options: Sequence[str]) -> list[Document]:
    """A choice question's options, each with an id (`q1-2`), none twice."""
    where = f"questions[{index}]"
    if not MIN_OPTIONS <= len(raw_options) <= MAX_OPTIONS:
        raise BadUserInputError(
            f"Question {index + 1} needs {MIN_OPTIONS} to {MAX_OPTIONS} options; it has "
            f"{len(raw_options)}.",
            field=f"{where}.options",
            ru=(
                f"В вопросе {index + 1} должно быть от {MIN_OPTIONS} до {MAX_OPTIONS} вариантов; сейчас "
                f"{len(raw_options)}."
            ),
        )
    options: list[Document] = []
    seen: set[str] = set()
    for number, raw in enumerate(raw_options, start=1):
        text = clean_text(raw, f"{where}.options[{number - 1}]", MAX_OPTION, required=True)
        assert text is not None
        if text.casefold() in seen:
            raise BadUserInputError(
                f"Question {index + 1} lists the option '{text[:40]}' twice.",
                field=f"{where}.options[{number - 1}]",
                ru=f"В вопросе {index + 1} вариант «{text[:40]}» указан дважды.",
            )
        seen.add(text.casefold())
        options.append({"id": f"{qid}-{number}", "text": text})
    return options


def clean_audience(
    district_ids: Sequence[str], min_age: int | None, max_age: int | None, verified_only: bool
) -> Document:
    if len(district_ids) > MAX_DISTRICTS:  # before cleaning: the count bounds the work
        raise BadUserInputError(
            f"Name at most {MAX_DISTRICTS} districts, or none for the whole city.",
            field="audience.districtIds",
            ru=f"Укажите не больше {MAX_DISTRICTS} районов или ни одного — для всего города.",
        )
    districts = clean_slugs(
        district_ids,
        field="audience.districtIds",
        what="a district id (see `districts`)",
        what_ru="id района (см. `districts`)",
    )
    for name, age in (("minAge", min_age), ("maxAge", max_age)):
        if age is not None and not MIN_AGE <= age <= MAX_AGE:
            raise BadUserInputError(
                f"`{name}` must be between {MIN_AGE} and {MAX_AGE}.",
                field=f"audience.{name}",
                ru=f"`{name}` должно быть от {MIN_AGE} до {MAX_AGE}.",
            )
    if min_age is not None and max_age is not None and min_age > max_age:
        raise BadUserInputError(
            "`minAge` cannot be above `maxAge`.",
            field="audience.maxAge",
            ru="`minAge` не может быть больше `maxAge`.",
        )
    return {
        "district_ids": districts,
        "min_age": min_age,
        "max_age": max_age,
        "verified_only": verified_only,
    }


def whole_city() -> Document:
    return clean_audience((), None, None, True)


def check_schedule(starts_at: datetime | None, ends_at: datetime | None) -> None:
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise BadUserInputError(
            "`endsAt` must come after `startsAt`.",
            field="endsAt",
            ru="`endsAt` должно быть позже `startsAt`.",
        )


def check_publishable(poll: Mapping[str, Any], now: datetime) -> None:
    """A poll whose end time has passed cannot open."""
    ends_at = poll.get("ends_at")
    if ends_at is not None and ends_at <= now:
        raise BadUserInputError(
            "The poll's end time has passed; move `endsAt` into the future first.",
            field="endsAt",
            ru="Время окончания опроса прошло; сначала перенесите `endsAt` в будущее.",
        )


def clean_points_reward(points: int | None) -> int:
    if points is None:
        return DEFAULT_POINTS_REWARD
    if not 0 <= points <= MAX_POINTS_REWARD:
        raise BadUserInputError(
            f"`pointsReward` must be between 0 and {MAX_POINTS_REWARD}.",
            field="pointsReward",
            ru=f"`pointsReward` должно быть от 0 до {MAX_POINTS_REWARD}.",
        )
    return points


def new_poll(
    *,
    poll_id: str,
    title: str,
    description: str | None,
    questions: list[Document],
    audience: Document,
    starts_at: datetime | None,
    ends_at: datetime | None,
    points_reward: int,
    author_id: str,
    department_id: str | None,
    now: datetime,
    source_initiative_id: str | None = None,
    audit: bool = True,
    receipts: bool = True,
) -> Document:
    """A DRAFT poll document from checked parts."""
    poll: Document = {
        "audit": audit,
        "receipts": receipts and audit,
        "_id": poll_id,
        "title": title,
        "description": description,
        "status": PollStatus.DRAFT.value,
        "questions": questions,
        "audience": audience,
        "starts_at": starts_at,
        "ends_at": ends_at,
        "points_reward": points_reward,
        "author_id": author_id,
        "department_id": department_id,
        "created_at": now,
        "updated_at": now,
    }
    if source_initiative_id is not None:  # absent otherwise: the unique index is sparse
        poll["source_initiative_id"] = source_initiative_id
    return poll


INITIATIVE_OPTIONS = ("Поддерживаю", "Не поддерживаю", "Затрудняюсь ответить")


def initiative_poll(
    *,
    poll_id: str,
    issue_id: str,
    title: str,
    description: str,
    author_id: str,
    department_id: str | None,
    district_id: str | None,
    now: datetime,
) -> Document:
    """The DRAFT poll an initiative is put to once it has enough support.

    Officials edit it before publishing; it starts as one question to the
    initiative's district (or the whole city), authored by the initiator.
    """
    short = " ".join(title.split())[: MAX_TITLE - 2] or "Инициатива"
    question = QuestionDraft(
        text=f"Поддерживаете ли вы инициативу «{short}»?"[:MAX_QUESTION],
        kind=QuestionKind.SINGLE_CHOICE,
        options=INITIATIVE_OPTIONS,
    )
    district = district_id if district_id and is_slug(district_id) else None
    return new_poll(
        poll_id=poll_id,
        title=f"«{short}»",
        description=description.strip()[:MAX_DESCRIPTION] or None,
        questions=build_questions([question]),
        audience=clean_audience([district] if district else [], None, None, False),
        starts_at=None,
        ends_at=None,
        points_reward=DEFAULT_POINTS_REWARD,
        author_id=author_id,
        department_id=department_id,
        now=now,
        source_initiative_id=issue_id,
    )


def check_voting_open(poll: Mapping[str, Any], now: datetime) -> None:
    """POLL_NOT_ACTIVE unless the poll is published and within its schedule."""
    status = poll["status"]
    if status == PollStatus.DRAFT:
        raise PollNotActiveError(
            "This poll has not been published yet.", ru="Этот опрос ещё не опубликован."
        )
    if status == PollStatus.CLOSED:
        raise PollNotActiveError(
            "This poll is closed; voting has ended.", ru="Этот опрос закрыт; голосование окончено."
        )
    starts_at, ends_at = poll.get("starts_at"), poll.get("ends_at")
    if starts_at is not None and now < starts_at:
        raise PollNotActiveError(
            f"Voting opens at {starts_at.isoformat()}.",
            opensAt=starts_at.isoformat(),
            ru=f"Голосование откроется {starts_at.isoformat()}.",
        )
    if ends_at is not None and now >= ends_at:
        raise PollNotActiveError(
            "This poll has ended; voting is closed.", ru="Этот опрос завершён; голосование закрыто."
        )


def is_due_to_close(poll: Mapping[str, Any], now: datetime) -> bool:
    ends_at = poll.get("ends_at")
    return poll["status"] == PollStatus.ACTIVE and ends_at is not None and ends_at <= now


# ─────────────────────────── the voter and the audience ───────────────────────────


@dataclass(frozen=True)
class Voter:
    """What the audience rules need to know about a person at vote time."""

    user_id: str
    district_id: str | None
    birth_year: int | None
    phone_verified: bool

    def age_in(self, year: int) -> int | None:
        """Age reached during `year` (only birth years are known)."""
        return None if self.birth_year is None else year - self.birth_year


def age_group(age: int | None) -> str | None:
    if age is None:
        return None
    for label, youngest, oldest in AGE_GROUPS:
        if age >= youngest and (oldest is None or age <= oldest):
            return label
    return None


def check_eligible(audience: Mapping[str, Any], voter: Voter, year: int) -> None:
    """NOT_ELIGIBLE, with `reason` DISTRICT, AGE or VERIFICATION, when outside the audience."""
    districts: list[str] = audience.get("district_ids") or []
    if districts and voter.district_id not in districts:
        where = ", ".join(districts)
        if voter.district_id is None:
            message = f"This poll is for residents of {where}; set your district in your profile."
            ru = f"Этот опрос — для жителей: {where}; укажите свой район в профиле."
        else:
            message = (
                f"This poll is for residents of {where}; your district is {voter.district_id}."
            )
            ru = f"Этот опрос — для жителей: {where}; ваш район — {voter.district_id}."
        raise NotEligibleError(message, reason="DISTRICT", ru=ru)
    min_age, max_age = audience.get("min_age"), audience.get("max_age")
    if min_age is not None or max_age is not None:
        age = voter.age_in(year)
        span = _age_span(min_age, max_age)
        if age is None:
            raise NotEligibleError(
                f"This poll is for people aged {span}; add your birth year to your profile.",
                reason="AGE",
                ru=f"Этот опрос — для людей {_age_span_ru(min_age, max_age)}; укажите год рождения в профиле.",
            )
        if (min_age is not None and age < min_age) or (max_age is not None and age > max_age):
            raise NotEligibleError(
                f"This poll is for people aged {span}; you are {age} this year.",
                reason="AGE",
                ru=f"Этот опрос — для людей {_age_span_ru(min_age, max_age)}; вам в этом году исполняется {age}.",
            )
    if audience.get("verified_only") and not voter.phone_verified:
        raise NotEligibleError(
            "This poll is for people with a verified phone; verify yours first.",
            reason="VERIFICATION",
            ru="Этот опрос — для людей с подтверждённым телефоном; сначала подтвердите свой.",
        )


def profile_as_of(
    profiles: Sequence[Mapping[str, Any]], at: datetime | None, current: Voter
) -> Voter | None:
    """The voter's district and birth year as of `at` (a poll's publication): the last
    profile begun by then, or the earliest kept when all began later (an account made
    since); None when nothing is projected yet."""
    if not profiles or at is None:
        return None
    begun = [p for p in profiles if p["from"] <= at]
    chosen = begun[-1] if begun else profiles[0]
    return replace(current, district_id=chosen["district_id"], birth_year=chosen["birth_year"])


def check_eligible_when_published(
    audience: Mapping[str, Any], current: Voter, as_of: Voter | None, year: int
) -> None:
    """A profile change that moved someone into a poll's audience counts only for polls
    published after it: NOT_ELIGIBLE with `reason` PROFILE_CHANGED."""
    if as_of is None or (as_of.district_id, as_of.birth_year) == (
        current.district_id,
        current.birth_year,
    ):
        return
    try:
        check_eligible(audience, as_of, year)
    except NotEligibleError as error:
        raise NotEligibleError(
            "Your district or birth year changed after this poll was published; such a change "
            "counts for polls published after it.",
            reason="PROFILE_CHANGED",
            ru=(
                "Ваш район или год рождения изменились после публикации этого опроса; такое изменение "
                "учитывается для опросов, опубликованных после него."
            ),
        ) from error


def _age_span_ru(min_age: int | None, max_age: int | None) -> str:
    if min_age is not None and max_age is not None:
        return f"от {min_age} до {max_age} лет"
    if min_age is not None:
        return f"от {min_age} лет"
    return f"до {max_age} лет"


def _ru_label(question: Mapping[str, Any]) -> str:
    return f"Вопрос «{question['text'][:60]}» ({question['id']})"


def _age_span(min_age: int | None, max_age: int | None) -> str:
    if min_age is not None and max_age is not None:
        return f"{min_age} to {max_age}"
    if min_age is not None:
        return f"{min_age} and over"
    return f"up to {max_age}"


# ─────────────────────────── answers ───────────────────────────


@dataclass(frozen=True)
class AnswerDraft:
    """An answer as the voter sends it."""

    question_id: str
    option_ids: Sequence[str] = ()
    value: int | None = None


def clean_answers(
    questions: Sequence[Mapping[str, Any]], answers: Sequence[AnswerDraft]
) -> list[Document]:
    """Every question answered once, within its rules; returned in question order."""
    by_question = {q["id"]: q for q in questions}
    given: dict[str, tuple[int, AnswerDraft]] = {}
    for index, answer in enumerate(answers):
        where = f"answers[{index}]"
        if answer.question_id not in by_question:
            raise BadUserInputError(
                f"This poll has no question '{answer.question_id[:40]}'.",
                field=f"{where}.questionId",
                questionId=answer.question_id[:40],
                ru=f"В этом опросе нет вопроса «{answer.question_id[:40]}».",
            )
        if answer.question_id in given:
            raise BadUserInputError(
                f"Question '{answer.question_id}' is answered twice; answer each question once.",
                field=f"{where}.questionId",
                questionId=answer.question_id,
                ru=f"На вопрос «{answer.question_id}» дан ответ дважды; ответьте на каждый вопрос один раз.",
            )
        given[answer.question_id] = (index, answer)
    cleaned: list[Document] = []
    for question in questions:
        qid = question["id"]
        if qid not in given:
            raise BadUserInputError(
                f"Answer every question: '{question['text'][:60]}' ({qid}) has no answer.",
                field="answers",
                questionId=qid,
                ru=f"Ответьте на все вопросы: на «{question['text'][:60]}» ({qid}) ответа нет.",
            )
        index, answer = given[qid]
        cleaned.append(_clean_answer(question, answer, f"answers[{index}]"))
    return cleaned


def _scale_answer(
    question: Mapping[str, Any], answer: AnswerDraft, where: str, label: str
) -> Document:
    qid = question["id"]
    if answer.option_ids:
        raise BadUserInputError(
            f"{label} is a scale: send `value`, not optionIds.",
            field=f"{where}.optionIds",
            questionId=qid,
            ru=f"{_ru_label(question)} — шкала: пришлите `value`, а не optionIds.",
        )
    low, high = question["scale_min"], question["scale_max"]
    if answer.value is None or not low <= answer.value <= high:
        raise BadUserInputError(
            f"{label} takes a `value` from {low} to {high}.",
            field=f"{where}.value",
            questionId=qid,
            ru=f"{_ru_label(question)} принимает `value` от {low} до {high}.",
        )
    return {"question_id": qid, "option_ids": [], "value": answer.value}


def _clean_answer(question: Mapping[str, Any], answer: AnswerDraft, where: str) -> Document:
    qid = question["id"]
    label = f"Question '{question['text'][:60]}' ({qid})"
    if question["kind"] == QuestionKind.SCALE:
        return _scale_answer(question, answer, where, label)
    if answer.value is not None:
        raise BadUserInputError(
            f"{label} is a choice question: send optionIds, not `value`.",
            field=f"{where}.value",
            questionId=qid,
            ru=f"{_ru_label(question)} — вопрос с вариантами: пришлите optionIds, а не `value`.",
        )
    chosen = _chosen_options(question, answer, where, label)
    limit = question["max_choices"] or 1
    if not chosen:
        raise BadUserInputError(
            f"{label}: choose an option.",
            field=f"{where}.optionIds",
            questionId=qid,
            ru=f"{_ru_label(question)}: выберите вариант.",
        )
    if len(chosen) > limit:
        raise BadUserInputError(
            f"{label}: choose at most {limit} option(s); you chose {len(chosen)}.",
            field=f"{where}.optionIds",
            questionId=qid,
            ru=f"{_ru_label(question)}: выберите не больше {limit}; вы выбрали {len(chosen)}.",
        )
    return {"question_id": qid, "option_ids": chosen, "value": None}


def _chosen_options(
    question: Mapping[str, Any], answer: AnswerDraft, where: str, label: str
) -> list[str]:
    """The options an answer chose, each one of the question's and chosen once."""
    qid = question["id"]
    known = {o["id"] for o in question["options"]}
    chosen: list[str] = []
    for option_id in answer.option_ids:
        if option_id not in known:
            raise BadUserInputError(
                f"{label} has no option '{option_id[:40]}'.",
                field=f"{where}.optionIds",
                questionId=qid,
                ru=f"{_ru_label(question)}: нет варианта «{option_id[:40]}».",
            )
        if option_id in chosen:
            raise BadUserInputError(
                f"{label}: option '{option_id}' is chosen twice.",
                field=f"{where}.optionIds",
                questionId=qid,
                ru=f"{_ru_label(question)}: вариант «{option_id}» выбран дважды.",
            )
        chosen.append(option_id)
    return chosen


# ─────────────────────────── tallies ───────────────────────────
#
# A tally is one document per poll of nested counters:
#   {total, q: {<qid>: {o: {<option id>: n}, sum, n}},
#    d: {<district>: {total, q: {...}}}, a: {<age group>: {total, q: {...}}}}
# A ballot contributes a flat map of dotted paths to increments, so a batch of
# ballots folds in with one `$inc`.


def field_key(value: str) -> str:
    """A value safe as a MongoDB field name (district ids are slugs; anything else is hex)."""
    return value if _SAFE_KEY.match(value) else "~" + value.encode().hex()


def from_field_key(key: str) -> str:
    return bytes.fromhex(key[1:]).decode() if key.startswith("~") else key


def ballot_increments(ballot: Mapping[str, Any]) -> dict[str, int]:
    """The counters one ballot adds: overall, for its district and for its age group."""
    scopes = [""]
    if ballot.get("district_id"):
        scopes.append(f"d.{field_key(ballot['district_id'])}.")
    if ballot.get("age_group"):
        scopes.append(f"a.{ballot['age_group']}.")
    increments: dict[str, int] = {}
    for scope in scopes:
        increments[f"{scope}total"] = 1
        for answer in ballot["answers"]:
            base = f"{scope}q.{answer['question_id']}."
            value = answer.get("value")
            if value is not None:
                increments[f"{base}o.{scale_option_id(answer['question_id'], value)}"] = 1
                increments[f"{base}sum"] = value
                increments[f"{base}n"] = 1
            for option_id in answer["option_ids"]:
                increments[f"{base}o.{option_id}"] = 1
    return increments


def merge_increments(into: dict[str, int], more: Mapping[str, int]) -> dict[str, int]:
    for path, amount in more.items():
        into[path] = into.get(path, 0) + amount
    return into


def apply_increments(tally: Document, increments: Mapping[str, int]) -> Document:
    """Adds increments to a nested tally in memory, as `$inc` would in the store."""
    for path, amount in increments.items():
        *parents, leaf = path.split(".")
        node = tally
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = node.get(leaf, 0) + amount
    return tally


@dataclass(frozen=True)
class OptionCount:
    option: Document
    votes: int
    share: float


@dataclass(frozen=True)
class QuestionCount:
    question: Document
    options: list[OptionCount]
    average: float | None


@dataclass(frozen=True)
class ScopeCount:
    key: str
    total: int
    questions: list[QuestionCount] = field(default_factory=list)


@dataclass(frozen=True)
class Results:
    total: int
    questions: list[QuestionCount]
    by_district: list[ScopeCount]
    by_age_group: list[ScopeCount]


def results_of(poll: Mapping[str, Any], tally: Mapping[str, Any]) -> Results:
    """Totals, shares and averages from the counters: the same work at any number of ballots."""
    questions: list[Mapping[str, Any]] = poll["questions"]
    districts = dict.fromkeys(poll["audience"]["district_ids"])
    districts.update(dict.fromkeys(from_field_key(k) for k in tally.get("d", {})))
    by_district = [
        _scope(d, questions, tally.get("d", {}).get(field_key(d), {})) for d in sorted(districts)
    ]
    by_age = [
        _scope(label, questions, tally.get("a", {}).get(label, {})) for label, _, _ in AGE_GROUPS
    ]
    whole = _scope("", questions, tally)
    return Results(whole.total, whole.questions, by_district, by_age)


def _scope(key: str, questions: Sequence[Mapping[str, Any]], node: Mapping[str, Any]) -> ScopeCount:
    total = int(node.get("total", 0))
    counts = node.get("q", {})
    return ScopeCount(key, total, [_question(q, counts.get(q["id"], {}), total) for q in questions])


def _question(question: Mapping[str, Any], node: Mapping[str, Any], total: int) -> QuestionCount:
    votes = node.get("o", {})
    options = [
        OptionCount(
            option=dict(o),
            votes=int(votes.get(o["id"], 0)),
            share=int(votes.get(o["id"], 0)) / total if total else 0.0,
        )
        for o in question["options"]
    ]
    average = None
    if question["kind"] == QuestionKind.SCALE and node.get("n"):
        average = node["sum"] / node["n"]
    return QuestionCount(question=dict(question), options=options, average=average)
