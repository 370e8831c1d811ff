"""Two-factor sign-in in the users subgraph: the types its mutations return and the
arguments they share (the mutations themselves are in `schema.Mutation`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from veche_kit import totp
from veche_kit.inputs import bounded
from veche_kit.mongo import Document
from veche_users import domain
from veche_users.two_factor import PENDING_MINUTES, Enrolment

MAX_TICKET = 1000
MAX_SECOND_FACTOR = 16

SecondFactor = Annotated[
    str | None,
    strawberry.argument(
        description="For accounts with two-factor sign-in (every OFFICIAL, MODERATOR, ADMIN and AUDITOR, and anyone who turned it on): the 6-digit code the authenticator app shows now, or one of the account's recovery codes (`ABCDE-FGHJK`; each works once). Each code works once: a second sign-in within the same 30 seconds waits for the next code. Spaces and dashes do not matter.",
        metadata=bounded(chars=MAX_SECOND_FACTOR),
    ),
]
CurrentCode = Annotated[
    str,
    strawberry.argument(
        description="The 6-digit code the authenticator app shows now.",
        metadata=bounded(chars=MAX_SECOND_FACTOR),
    ),
]
EnrolmentTicket = Annotated[
    str | None,
    strawberry.argument(
        description="The ticket from a refused login (`extensions.enrolmentTicket` of its TOTP_ENROLMENT_REQUIRED error; valid for minutes, see `extensions.ticketExpiresAt`). Leave it out when signed in (a citizen turning two-factor sign-in on by choice).",
        metadata=bounded(chars=MAX_TICKET),
    ),
]


@strawberry.type(
    description="A two-factor secret waiting for its first code: show `otpauthUri` as a QR code (or `secret` for typing), then pass the app's code to confirmTotpEnrolment. Shown only now: the secret is never returned again."
)
class TotpEnrolment:
    secret: str = strawberry.field(
        description="The shared secret in base32, for apps that take it typed."
    )
    otpauth_uri: str = strawberry.field(
        description='`otpauth://totp/...` with issuer "Veche": render it as a QR code for the authenticator app to scan.'
    )
    digits: int = strawberry.field(description="Digits per code (6).")
    period_seconds: int = strawberry.field(description="Seconds each code stands for (30).")
    expires_at: datetime = strawberry.field(
        description=f"Confirm before this (UTC; {PENDING_MINUTES} minutes), or start again."
    )

    @classmethod
    def of(cls, enrolment: Enrolment) -> TotpEnrolment:
        return cls(
            secret=enrolment.secret,
            otpauth_uri=enrolment.uri,
            digits=totp.DIGITS,
            period_seconds=totp.PERIOD,
            expires_at=enrolment.expires_at,
        )


@strawberry.type(
    description="Whether the account signs in with a second factor. Private: the user themself and admins."
)
class TwoFactorStatus:
    enabled: bool = strawberry.field(
        description="True once two-factor sign-in is on (confirmTotpEnrolment)."
    )
    required: bool = strawberry.field(
        description="True when the account's roles need it (OFFICIAL, MODERATOR, ADMIN, AUDITOR): without it, login refuses with TOTP_ENROLMENT_REQUIRED."
    )
    enabled_at: datetime | None = strawberry.field(description="When it was turned on (UTC).")
    recovery_codes_left: int = strawberry.field(
        description="Unused recovery codes; when few are left, get new ones with regenerateRecoveryCodes."
    )

    @classmethod
    def of(cls, user: Document, enrolment: Document | None) -> TwoFactorStatus:
        enabled_at = enrolment.get("enrolled_at") if enrolment else None
        return cls(
            enabled=enabled_at is not None,
            required=domain.needs_totp(user["roles"]),
            enabled_at=enabled_at,
            recovery_codes_left=len(enrolment.get("recovery") or []) if enrolment else 0,
        )
