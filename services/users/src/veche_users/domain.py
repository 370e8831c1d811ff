"""Pure rules of the users domain: what a valid account, profile and role look like."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from veche_kit.auth import Principal
from veche_kit.errors import BadUserInputError, ForbiddenError, UnauthenticatedError
from veche_kit.mongo import Document, new_id
from veche_kit.text import clean_slugs
from veche_kit.text import clean_text as clean_text


class Role(StrEnum):
    CITIZEN = "CITIZEN"
    SOLVER = "SOLVER"
    OFFICIAL = "OFFICIAL"
    MODERATOR = "MODERATOR"
    ADMIN = "ADMIN"
    AUDITOR = "AUDITOR"


MAX_EMAIL = 254
MIN_PASSWORD = 10
MAX_PASSWORD = 128
MAX_NAME = 80
MAX_ORGANIZATION = 120
MAX_SKILLS = 20
MAX_TEXT = 2000
MIN_AGE = 14  # the default minimum age (USERS_MIN_AGE); the youngest age group polled
MAX_AGE = 120

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
_PHONE = re.compile(r"^\+[1-9]\d{7,14}$")


def clean_email(email: str) -> str:
    """The form emails are compared and stored in: trimmed, lower case, checked."""
    value = email.strip().lower()
    if len(value) > MAX_EMAIL or not _EMAIL.match(value):
        raise BadUserInputError(
            "Enter a valid email address, like name@example.ru.",
            field="email",
            ru="Введите правильный адрес электронной почты, например name@example.ru.",
        )
    return value


def check_password(password: str, email: str | None = None) -> None:
    """The password policy: long enough, mixed, not the email."""
    if len(password) < MIN_PASSWORD:
        raise BadUserInputError(
            f"Choose a password of at least {MIN_PASSWORD} characters.",
            field="password",
            ru=f"Пароль должен быть не короче {MIN_PASSWORD} символов.",
        )
    if len(password) > MAX_PASSWORD:
        raise BadUserInputError(
            f"Choose a password of at most {MAX_PASSWORD} characters.",
            field="password",
            ru=f"Пароль должен быть не длиннее {MAX_PASSWORD} символов.",
        )
    has_letter = any(c.isalpha() for c in password)
    has_other = any(not c.isalpha() for c in password)
    if not (has_letter and has_other):
        raise BadUserInputError(
            "Use letters together with digits or symbols in your password.",
            field="password",
            ru="Используйте в пароле буквы вместе с цифрами или символами.",
        )
    if email and password.strip().lower() in {email.lower(), email.split("@")[0].lower()}:
        raise BadUserInputError(
            "Your password must not be your email address.",
            field="password",
            ru="Пароль не должен совпадать с адресом электронной почты.",
        )


def clean_name(name: str, field: str = "displayName") -> str:
    value = " ".join(name.split())
    if not value:
        raise BadUserInputError(
            "Enter a name to show to others.", field=field, ru="Введите имя, которое увидят другие."
        )
    if len(value) > MAX_NAME:
        raise BadUserInputError(
            f"Keep the name within {MAX_NAME} characters.",
            field=field,
            ru=f"Имя должно быть не длиннее {MAX_NAME} символов.",
        )
    return value


def clean_birth_year(year: int | None, this_year: int, min_age: int = MIN_AGE) -> int | None:
    """A birth year that makes the person between `min_age` (the city's setting) and
    MAX_AGE this year."""
    if year is None:
        return None
    if not this_year - MAX_AGE <= year <= this_year - min_age:
        raise BadUserInputError(
            f"Birth year must be between {this_year - MAX_AGE} and {this_year - min_age}"
            f" (Veche is for people aged {min_age} and over).",
            field="birthYear",
            ru=(
                f"Год рождения должен быть от {this_year - MAX_AGE} до {this_year - min_age}"
                f" (Вече — для людей от {min_age} лет)."
            ),
        )
    return year


def clean_phone(phone: str) -> str:
    """E.164 form: '+' and 8 to 15 digits; spaces, dashes and brackets are dropped."""
    value = re.sub(r"[\s\-()]", "", phone)
    if value.startswith("8") and len(value) == 11:  # Russian trunk prefix: 8XXXXXXXXXX
        value = "+7" + value[1:]
    if not _PHONE.match(value):
        raise BadUserInputError(
            "Enter the phone number in international form, like +7 910 123-45-67.",
            field="phone",
            ru="Введите номер телефона в международном формате, например +7 910 123-45-67.",
        )
    return value


# ─────────────────────────── e-mailed codes ───────────────────────────

# 8 characters of an alphabet without look-alikes (0/O, 1/I/L): 40 bits, typed from a
# phone's mail app without mistakes, out of reach of the few guesses a code allows.
EMAIL_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
EMAIL_CODE_LENGTH = 8


def new_email_code() -> str:
    return "".join(secrets.choice(EMAIL_CODE_ALPHABET) for _ in range(EMAIL_CODE_LENGTH))


def clean_email_code(code: str) -> str:
    """A typed code as it was sent: spaces and dashes dropped, upper case."""
    return re.sub(r"[\s\-]", "", code).upper()


def clean_skills(skills: list[str]) -> list[str]:
    """Skills are issue category ids (lowercase slugs), without repeats."""
    if len(skills) > MAX_SKILLS:  # before cleaning: the count bounds the work
        raise BadUserInputError(
            f"Name at most {MAX_SKILLS} skills.",
            field="skills",
            ru=f"Укажите не больше {MAX_SKILLS} навыков.",
        )
    cleaned = clean_slugs(
        skills,
        field="skills",
        what="a category id (lowercase letters, digits and dashes)",
        what_ru="id категории (строчные латинские буквы, цифры и дефисы)",
    )
    if not cleaned:
        raise BadUserInputError(
            "Name at least one category you can help with.",
            field="skills",
            ru="Укажите хотя бы одну категорию, в которой можете помочь.",
        )
    return cleaned


# ─────────────────────────── consent (152-FZ) ───────────────────────────

MAX_CONSENT_VERSION = 32
MAX_CONSENT_TEXT = 20_000
_CONSENT_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.\-]{0,31}$")
NO_CONSENT = "Accept the consent text (currentConsent) and pass its version as consentVersion."
NO_CONSENT_RU = "Примите текст согласия (currentConsent) и передайте его версию в consentVersion."


def clean_consent_version(version: str) -> str:
    """A version label such as `2026-12-01`: letters, digits, dots and dashes."""
    value = version.strip()
    if not _CONSENT_VERSION.match(value):
        raise BadUserInputError(
            f"Name the version with up to {MAX_CONSENT_VERSION} letters, digits, dots and"
            " dashes, like 2026-12-01.",
            field="version",
            ru=(
                f"Назовите версию: до {MAX_CONSENT_VERSION} латинских букв, цифр, точек и дефисов,"
                " например 2026-12-01."
            ),
        )
    return value


def check_consent(given: str | None, current: str | None) -> str:
    """The version a person accepts at sign-up: the one published last, nothing older."""
    if not given or not given.strip():
        raise BadUserInputError(NO_CONSENT, field="consentVersion", ru=NO_CONSENT_RU)
    if current is None:
        raise BadUserInputError(
            "No consent text is published yet; registration opens once an admin publishes one.",
            field="consentVersion",
            ru="Текст согласия ещё не опубликован; регистрация откроется, когда администратор его опубликует.",
        )
    if given.strip() != current:
        raise BadUserInputError(
            f"The consent text has changed: read version {current} (currentConsent) and pass"
            f" consentVersion: {current}.",
            field="consentVersion",
            ru=(
                f"Текст согласия изменился: прочитайте версию {current} (currentConsent) и передайте"
                f" consentVersion: {current}."
            ),
        )
    return current


def new_consent(user_id: str, version: str, client: str | None, now: datetime) -> Document:
    """The record of one acceptance: who, which text, when and from which address."""
    return {
        "_id": new_id(),
        "user_id": user_id,
        "version": version,
        "accepted_at": now,
        "client": client,
        "withdrawn_at": None,
    }


def check_may_sign_in(user: Document, now: datetime) -> None:
    """No tokens for an erased account, nor for a suspended one until its suspension
    ends, whatever path asks (sign-in, refresh)."""
    if user.get("erased_at") is not None:
        raise UnauthenticatedError("This account was deleted.", ru="Этот аккаунт удалён.")
    suspension = user.get("suspension")
    if suspension is not None and (suspension["until"] is None or suspension["until"] > now):
        until = suspension["until"]
        when = f"until {until:%Y-%m-%d %H:%M} UTC" if until else "until a moderator lifts it"
        when_ru = f"до {until:%Y-%m-%d %H:%M} UTC" if until else "до снятия блокировки модератором"
        raise ForbiddenError(
            f"This account is suspended {when}: {suspension['reason']}",
            reason="SUSPENDED",
            ru=f"Этот аккаунт заблокирован {when_ru}: {suspension['reason']}",
        )


# ─────────────────────────── two-factor sign-in ───────────────────────────

# Roles whose sign-in needs a TOTP code (issue #20); anyone else may enrol by choice.
# AUDITOR too: the audit log shows every staff action of every service.
TOTP_ROLES = frozenset({Role.OFFICIAL, Role.MODERATOR, Role.ADMIN, Role.AUDITOR})
TOTP_REQUIRED = "TOTP_REQUIRED"
TOTP_INVALID = "TOTP_INVALID"
TOTP_ENROLMENT_REQUIRED = "TOTP_ENROLMENT_REQUIRED"
TOTP_TICKET_INVALID = "TOTP_TICKET_INVALID"
RECOVERY_CODES = 10
RECOVERY_CODE_LENGTH = 10  # of EMAIL_CODE_ALPHABET: about 49 bits each
TOTP_DIGITS = 6


def needs_totp(roles: list[str]) -> bool:
    """Whether these roles may sign in only with a second factor."""
    return any(role in TOTP_ROLES for role in roles)


def new_recovery_codes() -> list[str]:
    """Single-use codes shown once, as `ABCDE-FGHJK`."""
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(EMAIL_CODE_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def second_factor(code: str) -> tuple[str, str]:
    """What a typed code is: ("totp", six digits), ("recovery", the code as issued,
    without its dash) or ("unknown", ...); spaces, dashes and case do not matter."""
    value = clean_email_code(code)
    if len(value) == TOTP_DIGITS and value.isascii() and value.isdigit():
        return "totp", value
    if len(value) == RECOVERY_CODE_LENGTH:
        return "recovery", value
    return "unknown", value


def check_totp_reset(caller: Principal, user_id: str) -> None:
    """Admins reset someone else's two-factor sign-in (a lost phone); never their own."""
    caller.require_role(Role.ADMIN)
    if caller.user_id == user_id:
        raise ForbiddenError(
            "You cannot reset your own two-factor sign-in; ask another admin.",
            ru="Нельзя сбросить двухфакторный вход самому себе; попросите другого администратора.",
        )


# ─────────────────────────── suspension ───────────────────────────

MAX_SUSPENSION_REASON = 500
STAFF = frozenset({Role.OFFICIAL, Role.MODERATOR, Role.ADMIN, Role.AUDITOR})


def check_suspension(caller: Principal, target: Document) -> None:
    """Moderators and admins suspend and reinstate accounts; only admins those of
    staff, and nobody their own."""
    caller.require_role(Role.MODERATOR, Role.ADMIN)
    if target["_id"] == caller.user_id:
        raise ForbiddenError(
            "You cannot suspend or reinstate your own account.",
            ru="Нельзя заблокировать или разблокировать собственный аккаунт.",
        )
    if target.get("erased_at") is not None:
        raise BadUserInputError(
            "This account was deleted.", field="userId", ru="Этот аккаунт удалён."
        )
    if STAFF & set(target["roles"]) and not caller.is_admin:
        raise ForbiddenError(
            "Only an admin suspends or reinstates a staff account.",
            ru="Заблокировать или разблокировать аккаунт сотрудника может только администратор.",
        )


def new_suspension(
    caller: Principal, reason: str, until: datetime | None, now: datetime
) -> Document:
    if until is not None and until <= now:
        raise BadUserInputError(
            "`until` must be in the future; omit it for no end.",
            field="until",
            ru="`until` должно быть в будущем; не указывайте его для бессрочной блокировки.",
        )
    return {"reason": reason, "since": now, "until": until, "by": caller.user_id}


def require_self_or_staff(caller: Principal | None, user_id: str) -> None:
    """A suspension is the person's own business and their moderators'."""
    if caller is None or not (
        caller.user_id == user_id or caller.has_role(Role.MODERATOR) or caller.is_admin
    ):
        raise ForbiddenError(
            "Only the user themself, moderators and admins see this.",
            ru="Это видят только сам пользователь, модераторы и администраторы.",
        )


# ─────────────────────────── who may do what ───────────────────────────

MAX_MARK_READ = 500  # notification ids one markNotificationsRead may name


def require_self_or_admin(caller: Principal | None, user_id: str) -> None:
    """Private fields: the user themself and admins only."""
    if caller is None or (caller.user_id != user_id and not caller.is_admin):
        raise ForbiddenError(
            "Only the user themself and admins can see this field.",
            ru="Это поле видят только сам пользователь и администраторы.",
        )


def role_fields(
    caller: Principal, user_id: str, role: Role, *, grant: bool, department_id: str | None
) -> dict[str, str | None]:
    """Checks a grant or revoke of `role` (admins only); the other fields it sets."""
    if grant:
        if role is Role.OFFICIAL:
            if not department_id:
                raise BadUserInputError(
                    "An official needs a department: pass departmentId.",
                    field="departmentId",
                    ru="Сотруднику нужно ведомство: передайте departmentId.",
                )
            return {"department_id": department_id}
        if department_id is not None:
            raise BadUserInputError(
                "Only the OFFICIAL role takes a department.",
                field="departmentId",
                ru="Ведомство указывается только для роли OFFICIAL.",
            )
        return {}
    if role is Role.CITIZEN:
        raise BadUserInputError(
            "Every account keeps the CITIZEN role.",
            field="role",
            ru="У каждого аккаунта остаётся роль CITIZEN.",
        )
    if role is Role.ADMIN and user_id == caller.user_id:
        raise ForbiddenError(
            "You cannot revoke your own ADMIN role; ask another admin.",
            ru="Нельзя снять роль ADMIN с самого себя; попросите другого администратора.",
        )
    return {"department_id": None} if role is Role.OFFICIAL else {}


def check_mark_read(ids: list[str] | None) -> None:
    if ids is not None and len(ids) > MAX_MARK_READ:
        raise BadUserInputError(
            f"Mark at most {MAX_MARK_READ} notifications at once, or leave ids out for all.",
            field="ids",
            ru=f"Отмечайте не больше {MAX_MARK_READ} уведомлений за раз или не указывайте ids, чтобы отметить все.",
        )


def clean_reward(title: str | None, cost: int, stock: int) -> str:
    """A new reward's checked title."""
    if not title:
        raise BadUserInputError(
            "Give the reward a title.", field="title", ru="Укажите название поощрения."
        )
    if cost < 1:
        raise BadUserInputError(
            "A reward costs at least 1 point.",
            field="cost",
            ru="Поощрение стоит не меньше 1 балла.",
        )
    if stock < 0:
        raise BadUserInputError(
            "Stock cannot be negative.", field="stock", ru="Остаток не может быть отрицательным."
        )
    return title


# ─────────────────────────── the audit log ───────────────────────────

MAX_AUDIT_CSV_ROWS = 5000


@dataclass(frozen=True)
class AuditFilter:
    """Which audit entries to read; every condition given must hold."""

    action: str | None = None
    actor_id: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def require_audit_reader(caller: Principal) -> None:
    caller.require_role(Role.ADMIN, Role.AUDITOR)


def csv_cell(value: object) -> str:
    """A cell a spreadsheet shows as text: a leading = + - @ would run as a formula."""
    text = "" if value is None else str(value)
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# ─────────────────────────── erasure ───────────────────────────

ERASED_NAME = "Удалённый пользователь"
MAX_ERASURE_REASON = 500


def erased_account(user_id: str, now: datetime) -> dict[str, Any]:
    """What is left of an erased account: its id (links from ballots, reports and comments
    stay valid and show a neutral author), a placeholder e-mail that no one can sign in
    with (the unique index stays whole), and no personal fact."""
    return {
        "_id": user_id,
        "email": f"erased-{user_id}@erased.invalid",
        "display_name": ERASED_NAME,
        "district_id": None,
        "birth_year": None,
        "phone": None,
        "phone_verified": False,
        "email_verified": False,
        "roles": [],
        "department_id": None,
        "organization": None,
        "skills": [],
        "points": 0,
        "password_hash": None,
        "created_at": now,
        "updated_at": now,
        "erased_at": now,
    }
