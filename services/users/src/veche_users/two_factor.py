"""Two-factor sign-in (issue #20): TOTP codes (RFC 6238, `veche_kit.totp`) and
single-use recovery codes, required of OFFICIAL, MODERATOR, ADMIN and AUDITOR.

- A staff sign-in without an enrolment gets an enrolment ticket instead of tokens:
  a short-lived token signed with the service's key that proves the password was
  right (and goes stale when the password changes). With it, `start` keeps a new
  secret waiting and `confirm` makes it the account's once a code from it matches.
- Secrets are stored encrypted (AES-GCM, bound to the account) and never shown
  again after `start`; recovery codes are stored as digests.
- A time step and a recovery code are each used once: one conditional update each
  (`UserStore.use_totp_step`, `use_recovery_code`), so of two parallel sign-ins
  with one code exactly one gets a session.
- Every code tried counts against `totp_attempts` per `totp_window_seconds` per
  account (a right one is given back), parallel guesses sharing one budget.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from veche_kit import audit_log, totp
from veche_kit.audit_log import AuditAction
from veche_kit.auth import ALGORITHM, Principal, StaleTokens
from veche_kit.clock import utcnow
from veche_kit.errors import (
    BadUserInputError,
    ConflictError,
    NotFoundError,
    UnauthenticatedError,
)
from veche_kit.events import UserTokensRevoked
from veche_kit.mongo import Document
from veche_kit.outbox import Outbox, Transaction
from veche_kit.signing import SigningKey
from veche_kit.throttle import RateLimiter, Window
from veche_users import domain
from veche_users.settings import UsersSettings
from veche_users.store import UserStore

ISSUER = "Veche"  # the name authenticator apps show beside the code
TICKET_AUDIENCE = "veche-totp-enrolment"
PENDING_MINUTES = 15  # a started enrolment waits this long for its first code
_WRONG = (
    "The code is wrong or was used already: enter the next code your authenticator app"
    " shows (each code works once), or one of your recovery codes."
)
_WRONG_RU = (
    "Код неверный или уже использован: введите следующий код из приложения-аутентификатора"
    " (каждый код действует один раз) или один из кодов восстановления."
)


class SecretBox:
    """Encrypts TOTP secrets at rest, each bound to its account (AES-GCM, the user id
    as associated data: a secret copied to another account does not open)."""

    def __init__(self, material: bytes) -> None:
        self._aead = AESGCM(hashlib.sha256(b"veche-totp-secrets:" + material).digest())

    @classmethod
    def of(cls, settings: UsersSettings, key: SigningKey) -> SecretBox:
        if settings.totp_key:
            return cls(settings.totp_key.encode())
        raw = key.private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return cls(raw)

    def seal(self, secret: str, user_id: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, secret.encode(), user_id.encode())
        return base64.b64encode(nonce + sealed).decode()

    def open(self, sealed: str, user_id: str) -> str:
        """The secret; ValueError when the key that sealed it is not this one."""
        raw = base64.b64decode(sealed)
        try:
            return self._aead.decrypt(raw[:12], raw[12:], user_id.encode()).decode()
        except InvalidTag as error:
            raise ValueError("a TOTP secret sealed with another key (USERS_TOTP_KEY?)") from error


def password_mark(user: Document) -> str:
    """Changes whenever the password does: a ticket names the password it was won with."""
    return hashlib.sha256(str(user.get("password_hash")).encode()).hexdigest()[:16]


def _recovery_digest(user_id: str, code: str) -> str:
    return hashlib.sha256(f"{user_id}:{domain.clean_email_code(code)}".encode()).hexdigest()


def ticket_error() -> UnauthenticatedError:
    return UnauthenticatedError(
        "The enrolment ticket is not valid any more; sign in again with your password for a"
        " new one.",
        reason=domain.TOTP_TICKET_INVALID,
        ru=(
            "Билет подключения больше не действителен; войдите снова с паролем, чтобы получить"
            " новый."
        ),
    )


@dataclass(frozen=True)
class Enrolment:
    """What `start` hands out, once: the secret and the URI an app scans."""

    secret: str
    uri: str
    expires_at: datetime


class TwoFactor:
    """The second factor of sign-in: enrolment, codes, recovery codes and resets."""

    def __init__(
        self,
        store: UserStore,
        outbox: Outbox,
        settings: UsersSettings,
        key: SigningKey,
        limits: RateLimiter,
        stale: StaleTokens,
    ) -> None:
        self.store, self.outbox, self.settings = store, outbox, settings
        self.key, self.limits, self.stale = key, limits, stale
        self.box = SecretBox.of(settings, key)
        self.window = Window(
            settings.totp_attempts,
            settings.totp_window_seconds,
            "Too many wrong two-factor codes for this account.",
            "Слишком много неверных кодов двухфакторного входа для этого аккаунта.",
        )
        # A signed-in start confirms the password: a stolen access token must not be a
        # way to guess it at leisure.
        self.password_window = Window(
            settings.totp_attempts,
            settings.totp_window_seconds,
            "Too many wrong passwords for this account.",
            "Слишком много неверных паролей для этого аккаунта.",
        )

    async def enrolment(self, user_id: str) -> Document | None:
        """The account's enrolment document (secret sealed), if it has one."""
        return await self.store.totp(user_id)

    # ───────────────────────── tickets ─────────────────────────

    def ticket(self, user: Document, now: datetime) -> tuple[str, datetime]:
        """Proof that this person gave the right password just now."""
        expires = now + timedelta(minutes=self.settings.totp_ticket_minutes)
        claims = {
            "sub": user["_id"],
            "pwd": password_mark(user),
            "aud": TICKET_AUDIENCE,
            "iss": self.settings.token_issuer,
            "iat": int(now.timestamp()),
            "exp": int(expires.timestamp()),
        }
        token = jwt.encode(claims, self.key.private, algorithm=ALGORITHM)
        return token, expires

    def ticket_holder(self, ticket: str) -> tuple[str, str]:
        """(user id, password mark) of a valid ticket; TOTP_TICKET_INVALID otherwise."""
        try:
            claims = jwt.decode(
                ticket,
                self.key.public,
                algorithms=[ALGORITHM],
                audience=TICKET_AUDIENCE,
                issuer=self.settings.token_issuer,
                options={"require": ["exp", "sub", "pwd"]},
            )
        except jwt.PyJWTError:
            raise ticket_error() from None
        return str(claims["sub"]), str(claims["pwd"])

    # ───────────────────────── sign-in ─────────────────────────

    async def check_sign_in(self, user: Document, code: str | None) -> bool:
        """Whether this sign-in passed a second factor (False: none is needed); refuses
        with TOTP_ENROLMENT_REQUIRED (and a ticket), TOTP_REQUIRED or TOTP_INVALID."""
        enrolment = await self.store.totp(user["_id"])
        if enrolment is None or enrolment.get("enrolled_at") is None:
            if not domain.needs_totp(user["roles"]):
                return False
            raise self.enrolment_required(user)
        if code is None or not code.strip():
            raise UnauthenticatedError(
                "This account signs in with a code from its authenticator app: pass it as"
                " `totp` (or a recovery code).",
                reason=domain.TOTP_REQUIRED,
                ru=(
                    "Этот аккаунт входит с кодом из приложения-аутентификатора: передайте его в `totp`"
                    " (или код восстановления)."
                ),
            )
        if not await self.passes(enrolment, code):
            raise UnauthenticatedError(_WRONG, reason=domain.TOTP_INVALID, ru=_WRONG_RU)
        return True

    def enrolment_required(self, user: Document) -> UnauthenticatedError:
        ticket, expires = self.ticket(user, utcnow())
        return UnauthenticatedError(
            "Staff accounts sign in with two-factor sign-in: set it up with"
            " startTotpEnrolment(ticket:) and confirmTotpEnrolment(ticket:, code:), passing"
            f" `extensions.enrolmentTicket` (valid until {expires:%H:%M} UTC).",
            reason=domain.TOTP_ENROLMENT_REQUIRED,
            enrolmentTicket=ticket,
            ticketExpiresAt=expires.isoformat(),
            ru=(
                "Сотрудники входят с двухфакторной проверкой: настройте её через"
                " startTotpEnrolment(ticket:) и confirmTotpEnrolment(ticket:, code:), передав"
                f" `extensions.enrolmentTicket` (действует до {expires:%H:%M} UTC)."
            ),
        )

    async def session_refusal(
        self, user: Document, passed_totp: bool
    ) -> UnauthenticatedError | None:
        """Why a refresh of a session that did not pass a second factor must not give
        tokens now (the person became staff, or enrolled); None when it may. No ticket:
        a refresh token does not prove the password."""
        if passed_totp:
            return None
        enrolment = await self.store.totp(user["_id"])
        if enrolment is not None and enrolment.get("enrolled_at") is not None:
            return UnauthenticatedError(
                "This account now signs in with two-factor sign-in: sign in again with login"
                " and a code from your authenticator app.",
                reason=domain.TOTP_REQUIRED,
                ru=(
                    "Теперь этот аккаунт входит с двухфакторной проверкой: войдите снова через login"
                    " с кодом из приложения-аутентификатора."
                ),
            )
        if domain.needs_totp(user["roles"]):
            return UnauthenticatedError(
                "This account now holds a staff role, which needs two-factor sign-in: sign in"
                " again with login for an enrolment ticket.",
                reason=domain.TOTP_ENROLMENT_REQUIRED,
                ru=(
                    "Теперь у этого аккаунта роль сотрудника, а для неё нужна двухфакторная проверка:"
                    " войдите снова через login, чтобы получить билет подключения."
                ),
            )
        return None

    async def passes(self, enrolment: Document, code: str) -> bool:
        """Counts the try, then uses the code's time step or the recovery code up."""
        user_id = enrolment["_id"]
        await self.limits.hit("totp", user_id, self.window)
        kind, value = domain.second_factor(code)
        if kind == "totp":
            secret = self.box.open(enrolment["secret"], user_id)
            step = totp.matching_step(secret, value)
            passed = step is not None and await self.store.use_totp_step(user_id, step)
        elif kind == "recovery":
            passed = await self.store.use_recovery_code(user_id, _recovery_digest(user_id, value))
        else:
            passed = False
        if passed:
            await self.limits.give_back("totp", user_id, self.window)
        return passed

    # ───────────────────────── enrolment ─────────────────────────

    async def start(self, user: Document) -> Enrolment:
        """A new secret, waiting for its first code; CONFLICT when enrolled already."""
        now = utcnow()
        secret = totp.new_secret()
        if not await self.store.start_totp(user["_id"], self.box.seal(secret, user["_id"]), now):
            raise ConflictError(
                "Two-factor sign-in is on for this account already; an admin resets it"
                " (resetTotp) when the authenticator is lost.",
                ru=(
                    "Двухфакторный вход для этого аккаунта уже включён; если аутентификатор потерян, его"
                    " сбрасывает администратор (resetTotp)."
                ),
            )
        uri = totp.otpauth_uri(secret, user["email"], ISSUER)
        return Enrolment(secret, uri, now + timedelta(minutes=PENDING_MINUTES))

    async def confirm(self, user: Document, code: str) -> list[str]:
        """Turns two-factor sign-in on with the first code of the started secret; the
        recovery codes, to show once."""
        user_id = user["_id"]
        enrolment = await self.store.totp(user_id)
        if enrolment is not None and enrolment.get("enrolled_at") is not None:
            raise ConflictError(
                "Two-factor sign-in is on for this account already.",
                ru="Двухфакторный вход для этого аккаунта уже включён.",
            )
        pending = enrolment.get("pending_secret") if enrolment else None
        if not pending or enrolment is None or _expired(enrolment["pending_at"]):
            raise BadUserInputError(
                "Start (again) with startTotpEnrolment: no enrolment is waiting.",
                field="code",
                ru="Начните (заново) с startTotpEnrolment: подключение не ожидается.",
            )
        await self.limits.hit("totp", user_id, self.window)
        step = totp.matching_step(self.box.open(pending, user_id), domain.second_factor(code)[1])
        if step is None:
            raise BadUserInputError(_WRONG, field="code", reason=domain.TOTP_INVALID, ru=_WRONG_RU)
        await self.limits.give_back("totp", user_id, self.window)
        codes = domain.new_recovery_codes()
        digests = [_recovery_digest(user_id, c) for c in codes]
        if not await self.store.confirm_totp(user_id, pending, step, digests, utcnow()):
            raise ConflictError(
                "The enrolment changed meanwhile; start it again.",
                ru="Подключение тем временем изменилось; начните его заново.",
            )
        return codes

    async def regenerate(self, caller: Principal, code: str) -> list[str]:
        """New recovery codes (the old ones stop working), for a current TOTP code."""
        enrolment = await self.store.totp(caller.user_id)
        if enrolment is None or enrolment.get("enrolled_at") is None:
            raise BadUserInputError(
                "Two-factor sign-in is off for this account: enrol first.",
                field="totp",
                ru="Двухфакторный вход для этого аккаунта выключен: сначала подключите его.",
            )
        await self.limits.hit("totp", caller.user_id, self.window)
        kind, value = domain.second_factor(code)
        secret = self.box.open(enrolment["secret"], caller.user_id)
        step = totp.matching_step(secret, value) if kind == "totp" else None
        codes = domain.new_recovery_codes()
        digests = [_recovery_digest(caller.user_id, c) for c in codes]
        if step is None or not await self.store.use_totp_step(caller.user_id, step, digests):
            raise BadUserInputError(_WRONG, field="totp", reason=domain.TOTP_INVALID, ru=_WRONG_RU)
        await self.limits.give_back("totp", caller.user_id, self.window)
        return codes

    async def seed(self, user_id: str, secret: str) -> bool:
        """Enrols an account with a known secret (the seeded admin), unless enrolled."""
        sealed = self.box.seal(secret.replace(" ", "").upper(), user_id)
        return await self.store.seed_totp(user_id, sealed, utcnow())

    # ───────────────────────── reset ─────────────────────────

    async def reset(self, caller: Principal, user_id: str, reason: str) -> bool:
        """An admin turns someone's two-factor sign-in off (a lost phone): every session
        ends, the next sign-in enrols again. Audited; False when it was off already."""
        domain.check_totp_reset(caller, user_id)
        if await self.store.get(user_id) is None:
            raise NotFoundError(
                f"No user with id '{user_id[:40]}'.", ru=f"Пользователя с id «{user_id[:40]}» нет."
            )
        text = domain.clean_text(reason, "reason", domain.MAX_SUSPENSION_REASON)
        entry = audit_log.entry(caller, AuditAction.TOTP_RESET, "User", user_id, reason=text)

        async def work(tx: Transaction) -> bool:
            if not await self.store.drop_totp(user_id, tx.session):
                return False
            await self.store.revoke_user_tokens(user_id, tx.session)
            await self.stale.mark(user_id, utcnow(), tx.session)
            tx.emit(UserTokensRevoked(user_id=user_id, reason="TOTP_RESET"), entry)
            return True

        return await self.outbox.transaction(work)


def _expired(started: datetime) -> bool:
    return started + timedelta(minutes=PENDING_MINUTES) <= utcnow()
