"""Use cases of the users service: load, decide, save with the outbox in one transaction."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import io
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pymongo.errors import DuplicateKeyError
from starlette.requests import Request

from veche_kit import audit_log, export, mongo, reference_lists
from veche_kit.audit_log import AuditAction
from veche_kit.auth import Principal, StaleTokens
from veche_kit.clock import utcnow
from veche_kit.errors import (
    BadUserInputError,
    ConflictError,
    DomainError,
    NotFoundError,
    RateLimitedError,
    UnauthenticatedError,
)
from veche_kit.events import (
    AuditRecorded,
    DepartmentsPublished,
    DistrictsPublished,
    Event,
    ReferenceItem,
    UserErased,
    UserProfileUpdated,
    UserRegistered,
    UserRoleChanged,
    UserTokensRevoked,
)
from veche_kit.mongo import Database, Document, Session
from veche_kit.outbox import Outbox, OutboxRelay, Transaction
from veche_kit.reference_lists import (
    CATEGORY_LIST,
    DEPARTMENT_LIST,
    DISTRICT_LIST,
    ProjectedLists,
)
from veche_kit.signing import SigningKey
from veche_kit.text import is_slug
from veche_kit.throttle import UNKNOWN_CLIENT, RateLimiter, Window, client_address, trusted_networks
from veche_kit.wordfilter import WordFilter
from veche_users import domain, store
from veche_users.codes import CodeSender, Mailer, MailPurpose
from veche_users.domain import Role
from veche_users.errors import DeliveryFailedError, InsufficientPointsError, OutOfStockError
from veche_users.moderation import name_flags
from veche_users.settings import UsersSettings
from veche_users.store import UserStore
from veche_users.two_factor import Enrolment, TwoFactor, password_mark, ticket_error

log = logging.getLogger(__name__)

MAX_REWARD_TEXT = 500
_NOT_SENT = "We could not send the code just now; try again in a few minutes."
_NOT_SENT_RU = "Сейчас не удалось отправить код; попробуйте через несколько минут."


@dataclass(frozen=True)
class CodeKind:
    """One kind of one-time code: where it waits, how many tries and how often it may
    be sent, and the mutation that asks for a new one."""

    collection: str
    attempts: int
    resend_seconds: int
    ask: str

    @classmethod
    def all_of(cls, settings: UsersSettings) -> dict[str, CodeKind]:
        """By what the code is for: `phone`, and each `MailPurpose`."""
        mail = (settings.email_code_attempts, settings.email_code_resend_seconds)
        return {
            "phone": cls(
                store.PHONE_CODES,
                settings.phone_code_attempts,
                settings.phone_code_resend_seconds,
                "requestPhoneCode",
            ),
            MailPurpose.VERIFY_EMAIL: cls(store.EMAIL_CODES, *mail, "requestEmailVerification"),
            MailPurpose.RESET_PASSWORD: cls(store.EMAIL_CODES, *mail, "requestPasswordReset"),
        }


def _mail_key(purpose: MailPurpose, user_id: str) -> str:
    return f"{purpose}:{user_id}"


Page = tuple[list[Document], bool, int]


@dataclass(frozen=True)
class AuthResult:
    user: Document
    access_token: str
    refresh_token: str
    expires_at: datetime


def principal_of(user: Document) -> Principal:
    return Principal(
        user_id=user["_id"],
        roles=frozenset(user["roles"]),
        department_id=user.get("department_id"),
        district_id=user.get("district_id"),
        birth_year=user.get("birth_year"),
        phone_verified=bool(user.get("phone_verified")),
    )


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _code_link(page: str | None, purpose: MailPurpose, email: str, code: str) -> str | None:
    """The front end's page that takes the code, when the city set one."""
    if not page:
        return None
    query = urlencode({"purpose": purpose.value, "email": email, "code": code})
    return f"{page}{'&' if '?' in page else '?'}{query}"


def _profile_event(user: Document) -> UserProfileUpdated:
    return UserProfileUpdated(
        user_id=user["_id"],
        display_name=user["display_name"],
        district_id=user.get("district_id"),
        birth_year=user.get("birth_year"),
        phone_verified=bool(user.get("phone_verified")),
        skills=user.get("skills", []),
        organization=user.get("organization"),
    )


@dataclass(frozen=True)
class Windows:
    """The rate limits of sign-up, sign-in and phone codes, from the settings."""

    registrations: Window
    client_failures: Window
    codes_per_number: Window
    codes_per_client: Window
    mails_per_address: Window
    mails_per_client: Window

    @classmethod
    def of(cls, settings: UsersSettings) -> Windows:
        return cls(
            registrations=Window(
                settings.registrations_per_client,
                settings.registration_window_seconds,
                "Too many new accounts from your network.",
                "Из вашей сети создано слишком много аккаунтов.",
            ),
            client_failures=Window(
                settings.login_failures_per_client,
                settings.login_client_window_seconds,
                "Too many failed sign-ins from your network.",
                "Из вашей сети слишком много неудачных попыток входа.",
            ),
            codes_per_number=Window(
                settings.phone_codes_per_number,
                settings.phone_code_window_seconds,
                "Too many codes were sent to this number.",
                "На этот номер отправлено слишком много кодов.",
            ),
            codes_per_client=Window(
                settings.phone_codes_per_client,
                settings.phone_code_window_seconds,
                "Too many codes were asked for from your network.",
                "Из вашей сети запрошено слишком много кодов.",
            ),
            mails_per_address=Window(
                settings.email_codes_per_address,
                settings.email_code_window_seconds,
                "Too many e-mails were sent to this address.",
                "На этот адрес отправлено слишком много писем.",
            ),
            mails_per_client=Window(
                settings.email_codes_per_client,
                settings.email_code_window_seconds,
                "Too many e-mails were asked for from your network.",
                "Из вашей сети запрошено слишком много писем.",
            ),
        )


class UsersService:
    """Holds the service's dependencies; each method is one use case."""

    def __init__(
        self,
        store: UserStore,
        outbox: Outbox,
        settings: UsersSettings,
        key: SigningKey,
        sender: CodeSender,
        mailer: Mailer,
    ) -> None:
        self.store = store
        self.outbox = outbox
        self.settings = settings
        self.key = key
        self.sender = sender
        self.mailer = mailer
        # argon2id at OWASP's minimum (19 MiB, 2 passes, 1 lane): 30 ms a hash on one core
        # here, where the library's default (64 MiB, 3 passes, 4 lanes) took 100 ms on both
        # cores and slowed every other request during a burst of sign-ins. Hashes made with
        # the old parameters still verify: they carry their own.
        self.hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
        self._dummy_hash = self.hasher.hash(secrets.token_hex(8))
        self._hashing = asyncio.Semaphore(settings.password_hash_threads)
        self.limits = RateLimiter(store.db)
        self.words = WordFilter.from_file(settings.word_filter_file)
        # The users service's own record; the other services keep theirs from the events.
        self.stale = StaleTokens(store.db)
        self.trusted = trusted_networks(settings.trusted_proxies.split(","))
        self.windows = Windows.of(settings)
        self.codes = CodeKind.all_of(settings)
        self.two_factor = TwoFactor(store, outbox, settings, key, self.limits, self.stale)

    def client_of(self, request: Request) -> str:
        """The client address a request comes from (the gateway's `X-Forwarded-For` believed)."""
        return client_address(request, self.trusted)

    @property
    def db(self) -> Database:
        """The service's database, for tests that set up or inspect its documents."""
        return self.store.db

    @property
    def relay(self) -> OutboxRelay | None:
        return self.outbox.relay

    # ───────────────────────── helpers ─────────────────────────

    async def _hash(self, password: str) -> str:
        # argon2 is deliberately slow: keep it off the event loop, and on at most
        # `password_hash_threads` cores, so a burst of sign-ins queues for the hasher
        # instead of starving every other request of CPU.
        async with self._hashing:
            return await asyncio.to_thread(self.hasher.hash, password)

    async def _verify(self, hashed: str, password: str) -> bool:
        try:
            async with self._hashing:
                return await asyncio.to_thread(self.hasher.verify, hashed, password)
        except (VerificationError, InvalidHashError):
            return False

    async def _check_district(self, district_id: str | None) -> None:
        if district_id is not None and not await self.store.exists(store.DISTRICTS, district_id):
            raise BadUserInputError(
                f"Unknown district '{district_id[:40]}'; pick one from `districts`.",
                field="districtId",
                ru=f"Неизвестный район «{district_id[:40]}»; выберите из `districts`.",
            )

    async def _check_department(self, department_id: str) -> None:
        if not await self.store.exists(store.DEPARTMENTS, department_id):
            raise BadUserInputError(
                f"Unknown department '{department_id[:40]}'; pick one from `departments`.",
                field="departmentId",
                ru=f"Неизвестное ведомство «{department_id[:40]}»; выберите из `departments`.",
            )

    async def get_user(self, user_id: str) -> Document:
        user = await self.store.get(user_id)
        if user is None:
            raise NotFoundError(
                f"No user with id '{user_id[:40]}'.", ru=f"Пользователя с id «{user_id[:40]}» нет."
            )
        return user

    async def _tokens(
        self, user: Document, family: str | None = None, *, totp: bool = False
    ) -> AuthResult:
        """`totp`: the session passed a second factor (its refreshes keep that)."""
        now = utcnow()
        domain.check_may_sign_in(user, now)  # every sign-in and refresh comes through here
        ttl = timedelta(minutes=self.settings.access_token_minutes)
        access = self.key.issue(
            principal_of(user), issuer=self.settings.token_issuer, now=now, ttl=ttl
        )
        refresh = secrets.token_urlsafe(32)
        await self.store.add_refresh_token(
            {
                "_id": _digest(refresh),
                "family": family or mongo.new_id(),
                "user_id": user["_id"],
                "created_at": now,
                "expires_at": now + timedelta(days=self.settings.refresh_token_days),
                "used_at": None,
                "revoked": False,
                "totp": totp,
            }
        )
        return AuthResult(user, access, refresh, now + ttl)

    # ───────────────────────── accounts ─────────────────────────

    async def register(
        self,
        *,
        email: str,
        password: str,
        display_name: str,
        district_id: str | None,
        birth_year: int | None,
        phone: str | None = None,
        roles: tuple[Role, ...] = (Role.CITIZEN,),
        client: str | None = None,
        consent_version: str | None = None,
    ) -> AuthResult:
        """`client`: the caller's address, limited to so many new accounts an hour (None: the
        service itself, e.g. the demo admin). `consent_version` must be the current one."""
        now = utcnow()
        email = domain.clean_email(email)
        domain.check_password(password, email)
        if client is not None:  # first: refused tries count against the network too
            await self.limits.hit("register", client, self.windows.registrations, now)
        current = await self.store.current_consent_version()
        version = domain.check_consent(consent_version, current["version"] if current else None)
        user: Document = {
            "_id": mongo.new_id(),
            "email": email,
            "display_name": domain.clean_name(display_name),
            "district_id": district_id,
            "birth_year": domain.clean_birth_year(birth_year, now.year, self.settings.min_age),
            "roles": [r.value for r in roles],
            "phone": domain.clean_phone(phone) if phone else None,
        }
        await self._check_district(district_id)
        user = _new_account(user, await self._hash(password), now)
        await self._save_account(user, domain.new_consent(user["_id"], version, client, now))
        await self._first_verification(user, now)
        return await self._tokens(user)

    async def _first_verification(self, user: Document, now: datetime) -> None:
        """The welcome code; the account stands without it (requestEmailVerification
        sends another), so a mail outage must not fail a sign-up."""
        with contextlib.suppress(DeliveryFailedError):  # logged; the account is saved
            await self._mail_code(user, MailPurpose.VERIFY_EMAIL, now)

    async def _save_account(self, user: Document, consent: Document) -> None:
        """The account and its consent record in one transaction, or neither."""

        async def work(tx: Transaction) -> None:
            await self.store.add(user, tx.session)
            await self.store.add_consent(consent, tx.session)
            tx.emit(_registered(user), *name_flags(self.words, user))

        try:
            await self.outbox.transaction(work)
        except DuplicateKeyError as error:
            raise ConflictError(
                "An account with this email already exists; sign in or reset the password.",
                field="email",
                ru="Аккаунт с этим адресом уже есть; войдите или сбросьте пароль.",
            ) from error

    async def login(
        self,
        email: str,
        password: str,
        client: str = UNKNOWN_CLIENT,
        totp: str | None = None,
    ) -> AuthResult:
        """Checks the password unless this (email, client) must wait, or this client has
        failed too often across accounts. Unknown and known emails are answered alike,
        throttled alike, and cost the same work. Then the second factor, when the account
        has or needs one (TwoFactor.check_sign_in)."""
        wrong = UnauthenticatedError(
            "The email or the password is wrong.", ru="Неверный адрес электронной почты или пароль."
        )
        try:
            email = domain.clean_email(email)
        except BadUserInputError:
            raise wrong from None
        now = utcnow()
        await self._take_login_attempt(email, client, now)
        user = await self.store.by_email(email)
        if user is None or user.get("erased_at") is not None:
            await self._verify(self._dummy_hash, password)  # same work as a real check
            raise wrong
        if not await self._verify(user["password_hash"], password):
            raise wrong
        # A right password counts against neither limit: only failures are throttled.
        await self.limits.reset("login", f"{email}|{client}")
        await self.limits.give_back("login-client", client, self.windows.client_failures, now)
        domain.check_may_sign_in(user, now)  # a suspended account gets no enrolment ticket
        passed = await self.two_factor.check_sign_in(user, totp)
        return await self._tokens(user, totp=passed)

    async def _take_login_attempt(self, email: str, client: str, now: datetime) -> None:
        """One try of the password for (email, client), and of this client's failures."""
        await self.limits.hit("login-client", client, self.windows.client_failures, now)
        try:
            await self.limits.attempt(
                "login",
                f"{email}|{client}",
                free=self.settings.login_free_attempts,
                base_seconds=self.settings.login_delay_seconds,
                longest_seconds=self.settings.login_longest_delay_seconds,
                message="Too many failed sign-ins for this email from your network.",
                ru="Слишком много неудачных попыток входа с этим адресом из вашей сети.",
                now=now,
            )
        except RateLimitedError:
            await self.limits.give_back("login-client", client, self.windows.client_failures, now)
            raise

    async def refresh(self, token: str) -> AuthResult:
        """Rotates a refresh token; reusing one revokes its whole family."""
        current = await self.store.use_refresh_token(_digest(token), utcnow())
        if current is None:
            known = await self.store.refresh_token(_digest(token))
            if known is not None and known["used_at"] is not None and not known["revoked"]:
                await self._end_session(known, "REFRESH_REUSED")  # stolen, maybe
                raise UnauthenticatedError(
                    "This refresh token was already used; every session it belonged to has been "
                    "signed out. Sign in again.",
                    ru=(
                        "Этот токен обновления уже использовали; все сеансы, к которым он относился, завершены. "
                        "Войдите снова."
                    ),
                )
            raise UnauthenticatedError(
                "The refresh token is not valid any more; sign in again.",
                ru="Токен обновления больше не действителен; войдите снова.",
            )
        user = await self.get_user(current["user_id"])
        passed = bool(current.get("totp"))
        refusal = await self.two_factor.session_refusal(user, passed)
        if refusal is not None:  # became staff, or enrolled, since this session began
            await self.store.revoke_family(current["family"])
            raise refusal
        return await self._tokens(user, family=current["family"], totp=passed)

    # ───────────────────────── two-factor enrolment ─────────────────────────

    async def _enrolling(
        self, ticket: str | None, caller: Principal | None, password: str | None
    ) -> Document:
        """Who enrols: the holder of a ticket from login, or the signed-in caller who
        confirms with their password (None: the caller started already)."""
        if ticket:
            user_id, mark = self.two_factor.ticket_holder(ticket)
            user = await self.store.get(user_id)
            if user is None or password_mark(user) != mark:
                raise ticket_error()  # a password changed since: the ticket proves nothing
        elif caller is None:
            raise UnauthenticatedError(
                "Pass the enrolment ticket from login (`extensions.enrolmentTicket`), or sign"
                " in to turn two-factor sign-in on for your account.",
                ru=(
                    "Передайте билет подключения из login (`extensions.enrolmentTicket`) или войдите, чтобы"
                    " включить двухфакторный вход для своего аккаунта."
                ),
            )
        else:
            user = await self.get_user(caller.user_id)
            if password is not None:
                await self._confirm_password(user, password)
        domain.check_may_sign_in(user, utcnow())
        return user

    async def _confirm_password(self, user: Document, password: str) -> None:
        """The signed-in person's password, a few wrong tries per account and window."""
        window = self.two_factor.password_window
        await self.limits.hit("totp-password", user["_id"], window)
        if not await self._verify(user.get("password_hash") or "", password):
            raise BadUserInputError(
                "The password is wrong.", field="password", ru="Неверный пароль."
            )
        await self.limits.give_back("totp-password", user["_id"], window)

    async def start_totp_enrolment(
        self, ticket: str | None, caller: Principal | None, password: str | None
    ) -> Enrolment:
        if not ticket and caller is not None and password is None:
            raise BadUserInputError(
                "Confirm with your password to turn two-factor sign-in on.",
                field="password",
                ru="Подтвердите паролем, чтобы включить двухфакторный вход.",
            )
        return await self.two_factor.start(await self._enrolling(ticket, caller, password))

    async def confirm_totp_enrolment(
        self, ticket: str | None, caller: Principal | None, code: str
    ) -> tuple[AuthResult, list[str]]:
        """Two-factor sign-in on; a session that passed it, and the recovery codes."""
        user = await self._enrolling(ticket, caller, None)
        codes = await self.two_factor.confirm(user, code)
        return await self._tokens(user, totp=True), codes

    async def logout(self, token: str) -> bool:
        """Ends the session; the user's access tokens issued until now are stale everywhere."""
        known = await self.store.refresh_token(_digest(token))
        if known is None:
            return False
        return await self._end_session(known, "SIGNED_OUT")

    async def _end_session(self, refresh: Document, reason: str) -> bool:
        async def work(tx: Transaction) -> bool:
            if await self.store.revoke_family(refresh["family"], tx.session) == 0:
                return False
            await self.stale.mark(refresh["user_id"], utcnow(), tx.session)
            tx.emit(UserTokensRevoked(user_id=refresh["user_id"], reason=reason))
            return True

        return await self.outbox.transaction(work)

    # ───────────────────────── export and erasure ─────────────────────────

    async def export_of(self, caller: Principal, user_id: str) -> dict[str, list[Any]]:
        """The person's own records here (152-FZ): only they may read them."""
        export.require_owner(caller, user_id)
        return await self.store.export_of(user_id)

    async def delete_my_account(self, caller: Principal, password: str) -> bool:
        """Erases the caller's own account once they confirm it with their password."""
        user = await self.get_user(caller.user_id)
        if not user.get("password_hash") or not await self._verify(user["password_hash"], password):
            raise UnauthenticatedError(
                "The password is wrong; the account was not deleted.",
                ru="Неверный пароль; аккаунт не удалён.",
            )
        return await self._erase(caller.user_id, by=caller, reason="SELF")

    async def erase_user(self, caller: Principal, user_id: str, reason: str) -> bool:
        """An admin erases someone's account (a written request, a court order...)."""
        caller.require_role(Role.ADMIN)
        await self.get_user(user_id)  # NOT_FOUND for an unknown id
        text = domain.clean_text(reason, "reason", domain.MAX_ERASURE_REASON)
        assert text is not None
        return await self._erase(user_id, by=caller, reason=text)

    async def _erase(
        self, user_id: str, *, by: Principal, reason: str, withdraw: bool = False
    ) -> bool:
        """Pseudonymises the account and tells every service, in one transaction (with
        the consent `withdraw`n); False when it was erased before. Audited when staff
        erase someone else's account."""
        now = utcnow()
        remains = domain.erased_account(user_id, now)
        record = {
            "_id": mongo.new_id(),
            "user_id": user_id,
            "by": by.user_id,
            "reason": reason,
            "at": now,
        }
        audited = () if by.user_id == user_id else (_audit_erasure(by, user_id, reason),)

        async def work(tx: Transaction) -> bool:
            if not await self.store.erase(remains, record, tx.session):
                return False
            if withdraw:
                await self.store.withdraw_consents(user_id, now, tx.session)
            await self.stale.mark(user_id, now, tx.session)
            tx.emit(UserErased(user_id=user_id), *audited)
            return True

        return await self.outbox.transaction(work)

    # ───────────────────────── consent ─────────────────────────

    async def current_consent(self) -> Document | None:
        return await self.store.current_consent_version()

    async def publish_consent_version(
        self, caller: Principal | None, version: str, text: str, *, now: datetime | None = None
    ) -> Document:
        """A new consent text (admins; None: the service's default at start). New sign-ups
        accept the version published last; earlier acceptances keep the version they name."""
        if caller is not None:
            caller.require_role(Role.ADMIN)
        document = {
            "_id": mongo.new_id(),
            "version": domain.clean_consent_version(version),
            "text": domain.clean_text(text, "text", domain.MAX_CONSENT_TEXT),
            "published_at": now or utcnow(),
            "published_by": caller.user_id if caller is not None else None,
        }

        async def work(tx: Transaction) -> None:
            await self.store.add_consent_version(document, tx.session)
            if caller is not None:
                after = {"version": document["version"]}
                tx.emit(
                    audit_log.entry(
                        caller,
                        AuditAction.CONSENT_VERSION_PUBLISHED,
                        "ConsentVersion",
                        str(document["_id"]),
                        after=after,
                    )
                )

        try:
            await self.outbox.transaction(work)
        except DuplicateKeyError as error:
            raise ConflictError(
                f"Version {document['version']} is published already; name the new text"
                " with a new version.",
                field="version",
                ru=f"Версия {document['version']} уже опубликована; назовите новый текст новой версией.",
            ) from error
        return document

    async def publish_default_consent(self) -> None:
        """On start: the settings' consent text, when no version is published yet. Two
        starts at once publish it once (the unique version index)."""
        if await self.store.current_consent_version() is not None:
            return
        with contextlib.suppress(ConflictError):
            await self.publish_consent_version(
                None, self.settings.consent_version, self.settings.consent_text
            )

    async def consents(self, user_id: str) -> list[Document]:
        return await self.store.consents_of(user_id)

    async def withdraw_consent(self, caller: Principal) -> bool:
        """Ends processing (152-FZ): the consent records are marked withdrawn and the
        account is erased, in one transaction."""
        return await self._erase(
            caller.user_id, by=caller, reason="CONSENT_WITHDRAWN", withdraw=True
        )

    # ───────────────────────── phone ─────────────────────────

    async def request_phone_code(
        self, caller: Principal, phone: str, client: str = UNKNOWN_CLIENT
    ) -> bool:
        """One code a minute per account, and so many an hour per number and per client
        address: many accounts cannot pump texts to one number."""
        phone = domain.clean_phone(phone)
        now = utcnow()
        await self._check_resend(self.codes["phone"], caller.user_id, now)
        await self.limits.hit("phone-client", client, self.windows.codes_per_client, now)
        await self.limits.hit("phone-number", phone, self.windows.codes_per_number, now)
        code = f"{secrets.randbelow(1_000_000):06d}"
        await self.store.put_code(
            store.PHONE_CODES,
            caller.user_id,
            {
                "phone": phone,
                "code_hash": _digest(f"{caller.user_id}:{code}"),
                "sent_at": now,
                "expires_at": now + timedelta(minutes=self.settings.phone_code_minutes),
                "attempts": 0,
            },
        )
        try:
            await self.sender.send(phone, code)
        except Exception as error:  # any gateway's failure; a new try may come at once
            await self.store.drop_code(store.PHONE_CODES, caller.user_id)
            log.warning("phone code not sent", extra={"user_id": caller.user_id})
            raise DeliveryFailedError(_NOT_SENT, ru=_NOT_SENT_RU) from error
        return True

    async def verify_phone(self, caller: Principal, code: str) -> Document:
        now = utcnow()
        entry = await self._matching_code(self.codes["phone"], caller.user_id, code, now)
        fields = {
            "phone": entry["phone"],
            "verified_phone": entry["phone"],
            "phone_verified": True,
            "updated_at": now,
        }

        async def work(tx: Transaction) -> Document:
            user = await self.store.save(caller.user_id, fields, tx.session)
            if user is None:
                raise NotFoundError(
                    "Your account no longer exists.", ru="Вашего аккаунта больше нет."
                )
            await self.store.drop_code(store.PHONE_CODES, caller.user_id, tx.session)
            tx.emit(_profile_event(user))
            return user

        try:
            return await self.outbox.transaction(work)
        except DuplicateKeyError as error:
            raise ConflictError(
                "This phone number is already verified by another account.",
                field="phone",
                ru="Этот номер телефона уже подтверждён другим аккаунтом.",
            ) from error

    async def _sent_lately(self, kind: CodeKind, key: str, now: datetime) -> bool:
        previous = await self.store.code(kind.collection, key)
        wait = timedelta(seconds=kind.resend_seconds)
        return previous is not None and previous["sent_at"] > now - wait

    async def _check_resend(self, kind: CodeKind, key: str, now: datetime) -> None:
        """One code a minute per account and purpose."""
        if await self._sent_lately(kind, key, now):
            raise RateLimitedError(
                f"A code was sent less than {kind.resend_seconds} seconds ago; wait before"
                " asking again.",
                ru=f"Код отправлен меньше {kind.resend_seconds} секунд назад; подождите, прежде чем запрашивать снова.",
            )

    async def _matching_code(self, kind: CodeKind, key: str, code: str, now: datetime) -> Document:
        """The pending code, once this attempt is counted and the code matches."""
        entry = await self.store.try_code(kind.collection, key, kind.attempts)
        if entry is None:
            if await self.store.code(kind.collection, key) is None:
                raise BadUserInputError(
                    f"Ask for a code first with {kind.ask}.",
                    field="code",
                    ru=f"Сначала запросите код через {kind.ask}.",
                )
            raise RateLimitedError(
                f"Too many wrong codes; ask for a new one with {kind.ask}.",
                ru=f"Слишком много неверных кодов; запросите новый через {kind.ask}.",
            )
        if entry["expires_at"] <= now:
            raise BadUserInputError(
                f"The code has expired; ask for a new one with {kind.ask}.",
                field="code",
                ru=f"Срок действия кода истёк; запросите новый через {kind.ask}.",
            )
        if not secrets.compare_digest(entry["code_hash"], _digest(f"{key}:{code.strip()}")):
            left = kind.attempts - entry["attempts"]
            raise BadUserInputError(
                f"The code is wrong; {left} attempt(s) left.",
                field="code",
                ru=f"Неверный код; осталось попыток: {left}.",
            )
        return entry

    # ───────────────────────── e-mail and password ─────────────────────────

    async def request_email_verification(
        self, caller: Principal, client: str = UNKNOWN_CLIENT
    ) -> bool:
        """Sends a code to the account's address (registration sends the first one)."""
        user = await self.get_user(caller.user_id)
        if user.get("email_verified"):
            raise ConflictError(
                "Your e-mail address is confirmed already.",
                field="email",
                ru="Ваш адрес электронной почты уже подтверждён.",
            )
        purpose = MailPurpose.VERIFY_EMAIL
        now = utcnow()
        await self._check_resend(self.codes[purpose], _mail_key(purpose, user["_id"]), now)
        await self._hit_mail_limits(user["email"], client, now)
        await self._mail_code(user, purpose, now)
        return True

    async def verify_email(self, email: str, code: str) -> bool:
        """Confirms the address with the code mailed to it; no sign-in needed (the code
        may come from a link opened on another device)."""
        user = await self._account_for_code(email)
        purpose = MailPurpose.VERIFY_EMAIL
        key = _mail_key(purpose, user["_id"])
        await self._matching_code(self.codes[purpose], key, domain.clean_email_code(code), utcnow())

        async def work(tx: Transaction) -> bool:
            if not await self.store.drop_code(store.EMAIL_CODES, key, tx.session):
                return bool(user.get("email_verified"))  # a parallel request used it
            fields = {"email_verified": True, "updated_at": utcnow()}
            await self.store.save(user["_id"], fields, tx.session)
            return True

        return await self.outbox.transaction(work)

    async def request_password_reset(self, email: str, client: str = UNKNOWN_CLIENT) -> bool:
        """Mails a reset code when an account has the address. Known and unknown
        addresses get the same answer and count against the same limits."""
        email = domain.clean_email(email)
        now = utcnow()
        await self._hit_mail_limits(email, client, now)
        user = await self.store.by_email(email)
        if user is None or user.get("erased_at") is not None:
            return True
        purpose = MailPurpose.RESET_PASSWORD
        if await self._sent_lately(self.codes[purpose], _mail_key(purpose, user["_id"]), now):
            return True  # the code sent a moment ago stays valid; saying so would tell
        await self._mail_code(user, purpose, now)
        return True

    async def reset_password(
        self, email: str, code: str, new_password: str, client: str = UNKNOWN_CLIENT
    ) -> bool:
        """Sets a new password with a mailed code (once); every session of the account
        ends, and the address counts as confirmed."""
        domain.check_password(new_password, email.strip().lower())
        user = await self._account_for_code(email)
        purpose = MailPurpose.RESET_PASSWORD
        key = _mail_key(purpose, user["_id"])
        now = utcnow()
        await self._matching_code(self.codes[purpose], key, domain.clean_email_code(code), now)
        hashed = await self._hash(new_password)
        fields = {"password_hash": hashed, "email_verified": True, "updated_at": now}
        if not await self._set_password(user["_id"], fields, "PASSWORD_RESET", used=key):
            raise BadUserInputError(
                "This code was used already; ask for a new one with requestPasswordReset.",
                field="code",
                ru="Этот код уже использован; запросите новый через requestPasswordReset.",
            )
        await self.limits.reset("login", f"{user['email']}|{client}")
        return True

    async def change_password(self, caller: Principal, current: str, new_password: str) -> bool:
        """A new password for the signed-in user; every session ends (sign in again)."""
        user = await self.get_user(caller.user_id)
        if not user.get("password_hash") or not await self._verify(user["password_hash"], current):
            raise BadUserInputError(
                "The current password is wrong.",
                field="currentPassword",
                ru="Неверный текущий пароль.",
            )
        domain.check_password(new_password, user["email"])
        fields = {"password_hash": await self._hash(new_password), "updated_at": utcnow()}
        return await self._set_password(user["_id"], fields, "PASSWORD_CHANGED")

    async def _set_password(
        self, user_id: str, fields: Document, reason: str, *, used: str | None = None
    ) -> bool:
        """Saves the new hash and ends every session, with the code `used` used up in the
        same transaction; False when that code was used already."""

        async def work(tx: Transaction) -> bool:
            if used is not None and not await self.store.drop_code(
                store.EMAIL_CODES, used, tx.session
            ):
                return False
            await self.store.save(user_id, fields, tx.session)
            await self.store.revoke_user_tokens(user_id, tx.session)
            await self.stale.mark(user_id, utcnow(), tx.session)
            tx.emit(UserTokensRevoked(user_id=user_id, reason=reason))
            return True

        return await self.outbox.transaction(work)

    async def _account_for_code(self, email: str) -> Document:
        """The live account a code was mailed to; the same answer as a wrong code when
        there is none."""
        user = await self.store.by_email(domain.clean_email(email))
        if user is None or user.get("erased_at") is not None:
            raise BadUserInputError(
                "The code is wrong or has expired.", field="code", ru="Код неверный или устарел."
            )
        return user

    async def _hit_mail_limits(self, email: str, client: str, now: datetime) -> None:
        await self.limits.hit("mail-client", client, self.windows.mails_per_client, now)
        await self.limits.hit("mail-address", email, self.windows.mails_per_address, now)

    async def _mail_code(self, user: Document, purpose: MailPurpose, now: datetime) -> None:
        """A new code replaces the pending one of its purpose, then goes out."""
        code = domain.new_email_code()
        key = _mail_key(purpose, user["_id"])
        minutes = self.settings.email_code_minutes
        await self.store.put_code(
            store.EMAIL_CODES,
            key,
            {
                "user_id": user["_id"],
                "code_hash": _digest(f"{key}:{code}"),
                "sent_at": now,
                "expires_at": now + timedelta(minutes=minutes),
                "attempts": 0,
            },
        )
        link = _code_link(self.settings.email_link_url, purpose, user["email"], code)
        try:
            await self.mailer.send_code(user["email"], purpose, code, link, minutes)
        except Exception as error:  # any mail server's failure; a new try may come at once
            await self.store.drop_code(store.EMAIL_CODES, key)
            log.warning("e-mail code not sent", extra={"user_id": user["_id"]})
            raise DeliveryFailedError(_NOT_SENT, ru=_NOT_SENT_RU) from error

    # ───────────────────────── profile and roles ─────────────────────────

    async def update_profile(self, caller: Principal, changes: dict[str, Any]) -> Document:
        """`changes` holds only the fields the caller sent (None clears where allowed)."""
        update: dict[str, Any] = {}
        if "display_name" in changes:
            name = domain.clean_name(changes["display_name"] or "")
            if name != (await self.get_user(caller.user_id))["display_name"]:
                # A new name replaces a hidden one; a late decision on the old one loses.
                update.update(
                    display_name=name, display_name_hidden=None, display_name_moderated_at=utcnow()
                )
        if "district_id" in changes:
            await self._check_district(changes["district_id"])
            update["district_id"] = changes["district_id"]
        if "birth_year" in changes:
            update["birth_year"] = domain.clean_birth_year(
                changes["birth_year"], utcnow().year, self.settings.min_age
            )
        if "organization" in changes:
            update["organization"] = domain.clean_text(
                changes["organization"], "organization", domain.MAX_ORGANIZATION, required=False
            )
        if not update:
            return await self.get_user(caller.user_id)
        update["updated_at"] = utcnow()
        return await self._save_profile(caller.user_id, update)

    async def _save_profile(
        self, user_id: str, fields: dict[str, Any], *extra: Event, grant: str | None = None
    ) -> Document:
        async def work(tx: Transaction) -> Document:
            user = await self.store.save(user_id, fields, tx.session, grant=grant)
            if user is None:
                raise NotFoundError(
                    f"No user with id '{user_id[:40]}'.",
                    ru=f"Пользователя с id «{user_id[:40]}» нет.",
                )
            flags = name_flags(self.words, user) if "display_name" in fields else ()
            tx.emit(*extra, _profile_event(user), *flags)
            return user

        return await self.outbox.transaction(work)

    async def become_solver(
        self, caller: Principal, skills: list[str], organization: str | None
    ) -> Document:
        cleaned = domain.clean_skills(skills)
        org = domain.clean_text(
            organization, "organization", domain.MAX_ORGANIZATION, required=False
        )
        await ProjectedLists(self.db).require_known(
            CATEGORY_LIST, cleaned, field="skills", seeded=self.settings.demo_data
        )
        user = await self.get_user(caller.user_id)
        roles = sorted(set(user["roles"]) | {Role.SOLVER.value})
        extra: tuple[Event, ...] = ()
        if Role.SOLVER.value not in user["roles"]:
            extra = (
                UserRoleChanged(
                    user_id=caller.user_id,
                    role=Role.SOLVER.value,
                    granted=True,
                    roles=roles,
                    department_id=user.get("department_id"),
                ),
            )
        fields = {"skills": cleaned, "organization": org, "updated_at": utcnow()}
        return await self._save_profile(caller.user_id, fields, *extra, grant=Role.SOLVER.value)

    async def change_role(
        self,
        caller: Principal,
        user_id: str,
        role: Role,
        *,
        grant: bool,
        department_id: str | None = None,
    ) -> Document:
        caller.require_role(Role.ADMIN)
        before = await self.get_user(user_id)  # NOT_FOUND before any other check
        ruled = domain.role_fields(caller, user_id, role, grant=grant, department_id=department_id)
        if grant and department_id:
            await self._check_department(department_id)
        fields: dict[str, Any] = {**ruled, "updated_at": utcnow()}
        granted, revoked = (role.value, None) if grant else (None, role.value)

        async def work(tx: Transaction) -> Document:
            saved = await self.store.save(
                user_id, fields, tx.session, grant=granted, revoke=revoked
            )
            assert saved is not None
            event = UserRoleChanged(
                user_id=user_id,
                role=role.value,
                granted=grant,
                roles=saved["roles"],
                department_id=saved.get("department_id"),
            )
            now = utcnow()
            await self.stale.after_role_change(event, now, tx.session)
            tx.emit(event, _audit_role(caller, event, before, saved))
            moved = before.get("department_id") != saved.get("department_id")
            if moved and Role.OFFICIAL.value in before["roles"]:
                # Tokens naming the old department must not act for it any more.
                await self.stale.mark(user_id, now, tx.session)
                tx.emit(UserTokensRevoked(user_id=user_id, reason="DEPARTMENT_CHANGED"))
            return saved

        return await self.outbox.transaction(work)

    # ───────────────────────── reference data ─────────────────────────

    async def create_district(self, caller: Principal, ref_id: str, name: str) -> Document:
        return await self._create_reference(caller, store.DISTRICTS, ref_id, name)

    async def create_department(self, caller: Principal, ref_id: str, name: str) -> Document:
        return await self._create_reference(caller, store.DEPARTMENTS, ref_id, name)

    async def _create_reference(
        self, caller: Principal, collection: str, ref_id: str, name: str
    ) -> Document:
        """Adds a district or a department (admins)."""
        caller.require_role(Role.ADMIN)
        ref = ref_id.strip().lower()
        if not is_slug(ref):
            raise BadUserInputError(
                "Use a short id of lowercase letters, digits and dashes.",
                field="id",
                ru="Задайте короткий id из строчных латинских букв, цифр и дефисов.",
            )
        document = {"_id": ref, "name": domain.clean_name(name, field="name")}

        async def work(tx: Transaction) -> None:
            await self.store.add_reference(collection, document, tx.session)
            await self._reference_told(tx, caller, collection, "CREATED", ref, after=document)

        try:
            await self.outbox.transaction(work)
        except DuplicateKeyError as error:
            raise ConflictError(
                f"'{ref}' exists already.", field="id", ru=f"«{ref}» уже существует."
            ) from error
        return document

    async def rename_reference(
        self, caller: Principal, collection: str, ref_id: str, name: str
    ) -> Document:
        """Renames a district or a department (admins); ids and what names them stay."""
        caller.require_role(Role.ADMIN)
        fields = {"name": domain.clean_name(name, field="name")}
        return await self._change_reference(caller, collection, ref_id, fields, "RENAMED")

    async def retire_reference(self, caller: Principal, collection: str, ref_id: str) -> Document:
        """Retires a district or a department (admins): no longer offered nor accepted for
        new data; accounts, polls and issues naming it keep it."""
        caller.require_role(Role.ADMIN)
        fields = {"retired_at": utcnow()}
        return await self._change_reference(caller, collection, ref_id, fields, "RETIRED")

    async def _change_reference(
        self, caller: Principal, collection: str, ref_id: str, fields: Document, verb: str
    ) -> Document:
        async def work(tx: Transaction) -> Document:
            before = await self.store.update_reference(collection, ref_id, fields, tx.session)
            if before is None:
                raise await self._missing_reference(collection, ref_id)
            changed = {k: before.get(k) for k in fields}
            await self._reference_told(tx, caller, collection, verb, ref_id, fields, changed)
            return {**before, **fields}

        saved: Document = await self.outbox.transaction(work)
        return saved

    async def _missing_reference(self, collection: str, ref_id: str) -> DomainError:
        noun = "district" if collection == store.DISTRICTS else "department"
        if await self.store.reference(collection, ref_id) is not None:
            return ConflictError(
                f"The {noun} '{ref_id[:40]}' is retired already.",
                ru=f"{'Район' if collection == store.DISTRICTS else 'Ведомство'} «{ref_id[:40]}» уже в архиве.",
            )
        return NotFoundError(
            f"No {noun} with id '{ref_id[:40]}'.",
            ru=f"{'Района' if collection == store.DISTRICTS else 'Ведомства'} с id «{ref_id[:40]}» нет.",
        )

    async def _reference_told(
        self,
        tx: Transaction,
        caller: Principal,
        collection: str,
        verb: str,
        ref_id: str,
        after: Document,
        before: Document | None = None,
    ) -> None:
        """The audit entry and, for districts, the whole list the other services check."""
        target = "District" if collection == store.DISTRICTS else "Department"
        action = AuditAction(f"{target.upper()}_{verb}")
        shown = {k: v for k, v in after.items() if k != "_id"}
        tx.emit(audit_log.entry(caller, action, target, ref_id, before=before, after=shown))
        tx.emit(await self._list_told(collection, tx.session))  # others check ids against it

    async def publish_references(self) -> None:
        """Tells the other services the whole lists of districts and departments (at every
        start, after the demo data), so a list they missed or lost is whole again."""

        async def work(tx: Transaction) -> None:
            for collection in (store.DISTRICTS, store.DEPARTMENTS):
                tx.emit(await self._list_told(collection, tx.session))

        await self.outbox.transaction(work)

    async def _list_told(self, collection: str, session: Session) -> Event:
        """The list of districts or departments not retired, marked told in `session`."""
        districts = collection == store.DISTRICTS
        await reference_lists.tell(
            self.db, DISTRICT_LIST if districts else DEPARTMENT_LIST, session
        )
        rows = await self.store.references(collection, session)
        items = [ReferenceItem(id=row["_id"], name=row["name"]) for row in rows]
        return (
            DistrictsPublished(districts=items)
            if districts
            else DepartmentsPublished(departments=items)
        )

    async def districts(self) -> list[Document]:
        return await self.store.references(store.DISTRICTS)

    async def departments(self) -> list[Document]:
        return await self.store.references(store.DEPARTMENTS)

    # ───────────────────────── reading ─────────────────────────

    async def solvers(
        self, *, skill: str | None, district_id: str | None, first: int, after: str | None
    ) -> Page:
        return await self.store.page_solvers(
            skill=skill, district_id=district_id, first=first, after=after
        )

    def private_owner(self, caller: Principal | None, user_id: str) -> str:
        """The user whose private fields the caller may read: their own, or anyone's (admins)."""
        domain.require_self_or_admin(caller, user_id)
        return user_id

    async def points_history(self, user_id: str, *, first: int, after: str | None) -> Page:
        return await self.store.page_ledger(user_id, first=first, after=after)

    async def redemptions(self, user_id: str, *, first: int, after: str | None) -> Page:
        return await self.store.page_redemptions(user_id, first=first, after=after)

    async def notifications(
        self, user_id: str, *, unread_only: bool, first: int, after: str | None
    ) -> Page:
        return await self.store.page_notifications(
            user_id, unread_only=unread_only, first=first, after=after
        )

    # ───────────────────────── suspension ─────────────────────────

    async def suspend_user(
        self, caller: Principal, user_id: str, reason: str, until: datetime | None
    ) -> Document:
        """Ends every session now; sign-in is refused until `until` (None: until lifted)."""
        target = await self.get_user(user_id)
        domain.check_suspension(caller, target)
        text = domain.clean_text(reason, "reason", domain.MAX_SUSPENSION_REASON)
        assert text is not None
        now = utcnow()
        suspension = domain.new_suspension(caller, text, until, now)
        after = {"until": until.isoformat() if until else None}
        entry = audit_log.entry(
            caller, AuditAction.USER_SUSPENDED, "User", user_id, after=after, reason=text
        )

        async def work(tx: Transaction) -> Document:
            user = await self.store.save(
                user_id, {"suspension": suspension, "updated_at": now}, tx.session
            )
            assert user is not None
            await self.store.revoke_user_tokens(user_id, tx.session)
            await self.stale.mark(user_id, now, tx.session)
            tx.emit(UserTokensRevoked(user_id=user_id, reason="SUSPENDED"), entry)
            return user

        return await self.outbox.transaction(work)

    async def unsuspend_user(self, caller: Principal, user_id: str, reason: str) -> Document:
        """Lifts a suspension before its end; the person signs in again."""
        target = await self.get_user(user_id)
        domain.check_suspension(caller, target)
        if target.get("suspension") is None:
            raise BadUserInputError(
                "This account is not suspended.", field="userId", ru="Этот аккаунт не заблокирован."
            )
        text = domain.clean_text(reason, "reason", domain.MAX_SUSPENSION_REASON)
        entry = audit_log.entry(caller, AuditAction.USER_UNSUSPENDED, "User", user_id, reason=text)

        async def work(tx: Transaction) -> Document:
            fields = {"suspension": None, "updated_at": utcnow()}
            user = await self.store.save(user_id, fields, tx.session)
            assert user is not None
            tx.emit(entry)
            return user

        return await self.outbox.transaction(work)

    # ───────────────────────── the audit log ─────────────────────────

    async def audit_log(
        self, caller: Principal, wanted: domain.AuditFilter, *, first: int, after: str | None
    ) -> Page:
        domain.require_audit_reader(caller)
        return await self.store.page_audit(wanted, first=first, after=after)

    async def audit_csv(self, caller: Principal, wanted: domain.AuditFilter, rows: int) -> str:
        """The newest `rows` entries the filter picks, as CSV (RFC 4180) for a spreadsheet."""
        domain.require_audit_reader(caller)
        if not 1 <= rows <= domain.MAX_AUDIT_CSV_ROWS:
            raise BadUserInputError(
                f"Ask for 1 to {domain.MAX_AUDIT_CSV_ROWS} rows; narrow the time with"
                " `until` for older ones.",
                field="rows",
                ru=(
                    f"Запросите от 1 до {domain.MAX_AUDIT_CSV_ROWS} строк; более старые получите, сузив"
                    " время через `until`."
                ),
            )
        entries, _, _ = await self.store.page_audit(wanted, first=rows, after=None)
        return _csv(entries)

    async def audit_private_read(self, caller: Principal, user_id: str) -> None:
        """An admin read someone's private fields: that is audited too (once a request)."""

        async def work(tx: Transaction) -> None:
            tx.emit(audit_log.entry(caller, AuditAction.PRIVATE_FIELDS_READ, "User", user_id))

        await self.outbox.transaction(work)

    # ───────────────────────── points and rewards ─────────────────────────

    async def credit_points(
        self,
        user_id: str,
        amount: int,
        reason: str,
        source_event: str,
        session: Session | None = None,
    ) -> bool:
        """Credits once per (user, source event); False when that event was credited before
        or the account was erased (nothing is kept about an erased person)."""
        entry = _ledger_entry(user_id, amount, reason, source_event, utcnow())

        async def work(s: Session) -> bool:
            if await self.store.credit(entry, s):
                return True
            if await self.store.is_erased(user_id):
                return False
            raise NotFoundError(
                f"No user with id '{user_id[:40]}'.", ru=f"Пользователя с id «{user_id[:40]}» нет."
            )

        try:
            if session is not None:
                return await work(session)
            return await mongo.in_transaction(self.outbox.client, work)
        except DuplicateKeyError:
            return False

    async def rewards(self) -> list[Document]:
        return await self.store.rewards()

    async def create_reward(
        self, caller: Principal, *, title: str, description: str | None, cost: int, stock: int
    ) -> Document:
        caller.require_role(Role.ADMIN)
        clean_title = domain.clean_text(title, "title", domain.MAX_NAME, required=False)
        reward = {
            "_id": mongo.new_id(),
            "title": domain.clean_reward(clean_title, cost, stock),
            "description": domain.clean_text(
                description, "description", MAX_REWARD_TEXT, required=False
            ),
            "cost": cost,
            "stock": stock,
            "created_at": utcnow(),
        }
        after = {k: reward[k] for k in ("title", "cost", "stock")}

        async def work(tx: Transaction) -> None:
            await self.store.add_reward(reward, tx.session)
            tx.emit(
                audit_log.entry(
                    caller, AuditAction.REWARD_CREATED, "Reward", str(reward["_id"]), after=after
                )
            )

        await self.outbox.transaction(work)
        return reward

    async def rename_reward(self, caller: Principal, reward_id: str, title: str) -> Document:
        """A new title for a reward still offered; redemptions keep the title they had."""
        caller.require_role(Role.ADMIN)
        clean = domain.clean_text(title, "title", domain.MAX_NAME, required=False)
        if not clean:
            raise BadUserInputError(
                "Give the reward a title.", field="title", ru="Укажите название поощрения."
            )
        return await self._change_reward(
            caller, reward_id, {"title": clean}, AuditAction.REWARD_RENAMED
        )

    async def retire_reward(self, caller: Principal, reward_id: str) -> Document:
        """Takes a reward out of the catalogue: no longer listed nor redeemable; the
        redemptions made keep their copy of it, code included."""
        caller.require_role(Role.ADMIN)
        return await self._change_reward(
            caller, reward_id, {"retired_at": utcnow()}, AuditAction.REWARD_RETIRED
        )

    async def _change_reward(
        self, caller: Principal, reward_id: str, fields: Document, action: AuditAction
    ) -> Document:
        async def work(tx: Transaction) -> Document:
            before = await self.store.update_reward(reward_id, fields, tx.session)
            if before is None:
                raise await self._reward_missing(reward_id, tx.session)
            shown = {"title": before["title"]}
            after = {"title": fields["title"]} if "title" in fields else None
            tx.emit(audit_log.entry(caller, action, "Reward", reward_id, before=shown, after=after))
            return {**before, **fields}

        changed: Document = await self.outbox.transaction(work)
        return changed

    async def _reward_missing(self, reward_id: str, session: mongo.Session) -> DomainError:
        if await self.store.reward_exists(reward_id, session, retired=True):
            return ConflictError(
                "This reward is retired already.", ru="Это поощрение уже снято с каталога."
            )
        return NotFoundError(
            f"No reward with id '{reward_id[:40]}'.", ru=f"Поощрения с id «{reward_id[:40]}» нет."
        )

    async def redeem_reward(self, caller: Principal, reward_id: str) -> Document:
        """Atomic: points never below zero, stock never below zero (conditional updates)."""

        async def work(tx: Transaction) -> Document:
            reward = await self.store.take_reward(reward_id, tx.session)
            if reward is None:
                if not await self.store.reward_exists(reward_id, tx.session):
                    raise NotFoundError(
                        f"No reward with id '{reward_id[:40]}'.",
                        ru=f"Поощрения с id «{reward_id[:40]}» нет.",
                    )
                raise OutOfStockError(
                    "This reward is out of stock.", ru="Это поощрение закончилось."
                )
            cost = reward["cost"]
            if not await self.store.spend(caller.user_id, cost, tx.session):
                raise InsufficientPointsError(
                    f"This reward costs {cost} points; you have fewer.",
                    ru=f"Это поощрение стоит {cost} баллов; у вас меньше.",
                )
            redemption = _redemption(caller.user_id, reward, utcnow())
            await self.store.add_redemption(redemption, tx.session)
            await self.store.add_ledger_entry(
                _ledger_entry(
                    caller.user_id,
                    -cost,
                    f"Reward: {reward['title']}",
                    f"redemption:{redemption['_id']}",
                    redemption["at"],
                ),
                tx.session,
            )
            return redemption

        return await self.outbox.transaction(work)

    async def mark_notifications_read(self, caller: Principal, ids: list[str] | None) -> int:
        domain.check_mark_read(ids)
        return await self.store.mark_read(caller.user_id, ids)


def _audit_role(
    caller: Principal, event: UserRoleChanged, before: Document, after: Document
) -> AuditRecorded:
    action = AuditAction.ROLE_GRANTED if event.granted else AuditAction.ROLE_REVOKED
    fields = ("roles", "department_id")
    return audit_log.entry(
        caller,
        action,
        "User",
        event.user_id,
        before={k: before.get(k) for k in fields},
        after={k: after.get(k) for k in fields},
    )


def _audit_erasure(caller: Principal, user_id: str, reason: str) -> AuditRecorded:
    return audit_log.entry(caller, AuditAction.USER_ERASED, "User", user_id, reason=reason)


_CSV_HEADER = (
    "at",
    "service",
    "action",
    "actor_id",
    "actor_roles",
    "target_type",
    "target_id",
    "reason",
    "before",
    "after",
)


def _csv_row(e: Document) -> list[object]:
    def changes(value: object) -> str:
        return json.dumps(value, ensure_ascii=False) if value else ""

    return [
        e["at"].isoformat(),
        e.get("service"),
        e.get("action"),
        e.get("actor_id"),
        " ".join(e.get("actor_roles") or []),
        e.get("target_type"),
        e.get("target_id"),
        e.get("reason"),
        changes(e.get("before")),
        changes(e.get("after")),
    ]


def _csv(entries: list[Document]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(_CSV_HEADER)
    for entry in entries:
        writer.writerow([domain.csv_cell(cell) for cell in _csv_row(entry)])
    return out.getvalue()


def _new_account(checked: Document, password_hash: str, now: datetime) -> Document:
    """A new account's document from its checked fields."""
    return {
        **checked,
        "password_hash": password_hash,
        "department_id": None,
        "organization": None,
        "skills": [],
        "phone_verified": False,
        "email_verified": False,
        "points": 0,
        "created_at": now,
        "updated_at": now,
    }


def _registered(user: Document) -> UserRegistered:
    return UserRegistered(
        user_id=user["_id"],
        display_name=user["display_name"],
        district_id=user["district_id"],
        birth_year=user["birth_year"],
        roles=user["roles"],
        phone_verified=False,
    )


def _ledger_entry(
    user_id: str, amount: int, reason: str, source_event: str, at: datetime
) -> Document:
    return {
        "_id": mongo.new_id(),
        "user_id": user_id,
        "amount": amount,
        "reason": reason,
        "source_event": source_event,
        "at": at,
    }


def _redemption(user_id: str, reward: Document, at: datetime) -> Document:
    return {
        "_id": mongo.new_id(),
        "user_id": user_id,
        "reward_id": reward["_id"],
        "reward": {k: reward[k] for k in ("_id", "title", "description", "cost")},
        "cost": reward["cost"],
        "code": secrets.token_hex(4).upper(),
        "at": at,
    }
