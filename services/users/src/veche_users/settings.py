"""Users service settings (environment variables prefixed `USERS_`)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from veche_kit import totp
from veche_kit.settings import ServiceSettings

# The consent text published on first start when the store has none (an admin publishes
# newer ones with publishConsentVersion). Tests and tools register with this version.
DEFAULT_CONSENT_VERSION = "2026-12-01"
DEFAULT_CONSENT_TEXT = (
    "Регистрируясь в системе «Вече», я в соответствии с Федеральным законом от 27.07.2006"
    " № 152-ФЗ «О персональных данных» свободно, своей волей и в своём интересе даю согласие"
    " администрации города на обработку моих персональных данных: имени, адреса электронной"
    " почты, номера телефона, года рождения, района проживания, а также моих голосов в"
    " опросах, сообщений о проблемах, комментариев и поддержанных инициатив. Цель обработки:"
    " участие в опросах и обсуждениях городской жизни, рассмотрение моих обращений и"
    " начисление баллов. Обработка включает сбор, запись, хранение, уточнение, использование"
    " и удаление данных, в том числе с помощью средств автоматизации. Согласие действует до"
    " его отзыва. Я могу отозвать его в любой момент в личном кабинете; после отзыва"
    " обработка прекращается, а мои данные удаляются."
)


class UsersSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="USERS_", extra="ignore", populate_by_name=True)

    service_name: str = "users"
    port: int = 4001
    mongo_url: str = "mongodb://127.0.0.1:27101/?directConnection=true"
    mongo_db: str = "veche_users"
    # Access tokens are short-lived (a client refreshes them); a role change or a sign-out
    # makes older ones stale in every service at once anyway (veche_kit.auth.StaleTokens).
    access_token_minutes: int = 5
    # Subscription.myNotifications: inbox subscribers are woken at most this often.
    live_interval_ms: int = Field(default=500, ge=10)
    refresh_token_days: int = 30
    # The youngest a person may be to register or keep a birth year on their profile.
    min_age: int = 14
    # Retention (veche_kit.retention): read notifications go this many days after they
    # were written; expired sessions and phone codes go at once. Swept this often.
    read_notification_days: int = 90
    # The audit log of staff actions (every service's) is kept this long: five years.
    audit_days: int = 1826
    retention_sweep_seconds: float = 600.0
    # PEM of an Ed25519 private key; required in production, generated in development.
    signing_key: str | None = None
    code_sender: str = "log"
    phone_code_minutes: int = 10
    phone_code_attempts: int = 5
    phone_code_resend_seconds: int = 60
    # SMS cost the city money: codes per number and per client address, per hour.
    phone_codes_per_number: int = 3
    phone_codes_per_client: int = 10
    phone_code_window_seconds: int = 3600
    # E-mail codes (verification, password reset): `log`, `smtp` or `module:Class`.
    email_sender: str = "log"
    email_code_minutes: int = 60
    email_code_attempts: int = 5
    email_code_resend_seconds: int = 60
    # Codes per address and per client address, per hour: nobody floods an inbox.
    email_codes_per_address: int = 3
    email_codes_per_client: int = 10
    email_code_window_seconds: int = 3600
    # The front end's page that takes a code from a link (`?purpose=&email=&code=`);
    # without it the e-mail carries the code alone.
    email_link_url: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "Вече <noreply@localhost>"
    smtp_starttls: bool = True
    # Sign-in: per (email, client address) `login_free_attempts`, then growing delays
    # (1 s, 2 s, 4 s... up to the longest): nobody elsewhere can lock the owner out.
    login_free_attempts: int = 5
    login_delay_seconds: float = 1.0
    login_longest_delay_seconds: float = 300.0
    # Password spraying: failed sign-ins per client address across all accounts.
    login_failures_per_client: int = 30
    login_client_window_seconds: int = 900
    # Password hashes (argon2id) computed at once: on a 2-core server one leaves a core for
    # everything else while a burst of sign-ins runs; raise it with the cores.
    password_hash_threads: int = Field(default=1, ge=1, le=64)
    # New accounts per client address.
    registrations_per_client: int = 20
    registration_window_seconds: int = 3600
    # Two-factor sign-in (TOTP), required of OFFICIAL, MODERATOR, ADMIN and AUDITOR: wrong codes per
    # account per window (TOTP and recovery codes alike), and how long the enrolment
    # ticket a staff sign-in without TOTP gets stays valid.
    totp_attempts: int = 5
    totp_window_seconds: int = 900
    totp_ticket_minutes: int = 10
    # Encrypts the stored TOTP secrets (any long random string). Unset: derived from the
    # signing key, so set it before you ever rotate USERS_SIGNING_KEY (or every staff
    # member enrols again).
    totp_key: str | None = None
    # Points credited from other services' events (the voter's reward comes with the vote).
    points_report_accepted: int = 20
    points_initiative_threshold: int = 50
    points_issue_solved: int = 100
    demo_data: bool = False
    consent_version: str = DEFAULT_CONSENT_VERSION
    consent_text: str = DEFAULT_CONSENT_TEXT
    admin_email: str | None = Field(
        default=None, validation_alias=AliasChoices("VECHE_ADMIN_EMAIL", "USERS_ADMIN_EMAIL")
    )
    # A file of word-filter patterns replacing the built-in list of мат (veche_kit.wordfilter);
    # one setting for every service.
    word_filter_file: str | None = Field(
        default=None,
        validation_alias=AliasChoices("VECHE_WORD_FILTER_FILE", "USERS_WORD_FILTER_FILE"),
    )
    admin_password: str | None = Field(
        default=None, validation_alias=AliasChoices("VECHE_ADMIN_PASSWORD", "USERS_ADMIN_PASSWORD")
    )
    # The seeded admin is enrolled in two-factor sign-in with this base32 secret (the
    # stack generates one; `python -m veche_kit.totp SECRET` shows the current code).
    admin_totp_secret: str | None = Field(
        default=None,
        validation_alias=AliasChoices("VECHE_ADMIN_TOTP_SECRET", "USERS_ADMIN_TOTP_SECRET"),
    )

    @field_validator("admin_totp_secret")
    @classmethod
    def _base32_secret(cls, value: str | None) -> str | None:
        if value:
            totp.secret_bytes(value)  # ValueError names what is wrong
        return value or None

    @model_validator(mode="after")
    def _production_needs_a_key(self) -> UsersSettings:
        if self.environment == "production" and not self.signing_key:
            raise ValueError(
                "USERS_SIGNING_KEY (an Ed25519 private key in PEM) is required in production"
            )
        return self
