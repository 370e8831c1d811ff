"""Two-factor sign-in (issue #20): RFC 6238 itself, and a staff role without TOTP
cannot sign in; enrolment with the ticket, codes used once (in parallel too),
recovery codes, refreshes after a role grant, and the audited admin reset."""

from __future__ import annotations

import asyncio
import base64
from datetime import timedelta
from typing import Any

import pytest

from veche_kit import totp
from veche_kit.clock import utcnow
from veche_kit.retention import Retention
from veche_stack.testing import GraphQLClient, fresh_code_async
from veche_users import store

from .conftest import (
    ADMIN_TOTP_SECRET,
    CONFIRM_TOTP,
    GRANT_ROLE,
    LOGIN,
    PASSWORD,
    REFRESH,
    START_TOTP,
    UsersServer,
    enrol,
    enrolment_ticket,
)
from .test_audit import exactly_one

TWO_FACTOR = "{ me { twoFactor { enabled required recoveryCodesLeft } } }"
REGENERATE = "mutation($c: String!) { regenerateRecoveryCodes(totp: $c) }"
RESET = "mutation($u: ID!, $r: String!) { resetTotp(userId: $u, reason: $r) }"

# RFC 6238 appendix B: the seeds, and (time, SHA-1, SHA-256, SHA-512) 8-digit codes.
SEEDS = {
    "sha1": b"12345678901234567890",
    "sha256": b"12345678901234567890123456789012",
    "sha512": b"1234567890" * 6 + b"1234",
}
RFC6238 = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]
# RFC 4226 appendix D: HOTP of the SHA-1 seed for counters 0 to 9.
RFC4226 = ["755224", "287082", "359152", "969429", "338314"]
RFC4226 += ["254676", "287922", "162583", "399871", "520489"]


def reason(body: dict[str, Any]) -> tuple[str, str | None]:
    extensions = body["errors"][0]["extensions"]
    return extensions["code"], extensions.get("reason")


def login(email: str, code: str | None = None) -> dict[str, Any]:
    return {"email": email, "password": PASSWORD, "totp": code}


@pytest.mark.parametrize(("at", "sha1", "sha256", "sha512"), RFC6238)
def test_rfc6238_vectors(at: int, sha1: str, sha256: str, sha512: str) -> None:
    for digest, expected in (("sha1", sha1), ("sha256", sha256), ("sha512", sha512)):
        secret = base64.b32encode(SEEDS[digest]).decode()
        assert totp.code_at(secret, at, digits=8, digest=digest) == expected
    assert totp.code_at(base64.b32encode(SEEDS["sha1"]).decode(), at) == sha1[-6:]


def test_rfc4226_vectors_and_the_skew_window() -> None:
    assert [totp.hotp(SEEDS["sha1"], counter) for counter in range(10)] == RFC4226
    secret = totp.new_secret()
    code = totp.code_at(secret, 1_000_000_000)
    step = totp.step_at(1_000_000_000)
    assert totp.matching_step(secret, code, 1_000_000_000 + 30) == step
    assert totp.matching_step(secret, code, 1_000_000_000 - 30) == step
    assert totp.matching_step(secret, code, 1_000_000_000 + 60) is None
    uri = totp.otpauth_uri(secret, "anna@example.ru", "Veche")
    assert uri.startswith("otpauth://totp/Veche:anna@example.ru?secret=")
    assert "issuer=Veche" in uri
    assert "algorithm=SHA1&digits=6&period=30" in uri
    with pytest.raises(ValueError, match="base32"):
        totp.secret_bytes("not base32!")


async def test_staff_without_totp_cannot_sign_in_and_enrols_with_the_ticket(
    users: UsersServer,
) -> None:
    _, auth = await users.citizen()
    await (await users.admin()).data(GRANT_ROLE, {"u": auth["user"]["id"], "r": "MODERATOR"})
    refused = await users.client.post(LOGIN, login(auth["email"]))
    assert reason(refused) == ("UNAUTHENTICATED", "TOTP_ENROLMENT_REQUIRED")
    assert refused["data"] is None
    ticket = refused["errors"][0]["extensions"]["enrolmentTicket"]
    bad = await users.client.post(START_TOTP, {"t": ticket[:-4] + "AAAA"})
    assert reason(bad) == ("UNAUTHENTICATED", "TOTP_TICKET_INVALID")

    started = (await users.client.data(START_TOTP, {"t": ticket}))["startTotpEnrolment"]
    assert started["otpauthUri"].startswith("otpauth://totp/Veche:")
    assert (started["digits"], started["periodSeconds"]) == (6, 30)
    # Stored sealed: the plain secret is nowhere in the enrolment document.
    stored = await users.service.db[store.TOTP].find_one({"_id": auth["user"]["id"]})
    assert stored is not None
    assert started["secret"] not in str(stored)
    wrong = await users.client.post(CONFIRM_TOTP, {"t": ticket, "c": "000000"})
    assert wrong["errors"][0]["extensions"]["field"] == "code"

    confirm = {"t": ticket, "c": await fresh_code_async(started["secret"])}
    done = (await users.client.data(CONFIRM_TOTP, confirm))["confirmTotpEnrolment"]
    assert "MODERATOR" in done["auth"]["user"]["roles"]
    assert len(set(done["recoveryCodes"])) == 10
    again = await users.client.post(START_TOTP, {"t": ticket})
    assert again["errors"][0]["extensions"]["code"] == "CONFLICT"


async def test_an_enrolled_account_signs_in_only_with_a_code(users: UsersServer) -> None:
    staff = await users.staff("MODERATOR")
    assert reason(await users.client.post(LOGIN, login(staff.email))) == (
        "UNAUTHENTICATED",
        "TOTP_REQUIRED",
    )
    assert reason(await users.client.post(LOGIN, login(staff.email, "123 456"))) == (
        "UNAUTHENTICATED",
        "TOTP_INVALID",
    )
    code = await fresh_code_async(staff.secret)
    signed_in = (await users.client.data(LOGIN, login(staff.email, code)))["login"]
    status = await users.client.as_user(signed_in["accessToken"]).data(TWO_FACTOR)
    assert status["me"]["twoFactor"] == {"enabled": True, "required": True, "recoveryCodesLeft": 10}


async def test_a_code_works_once_even_in_parallel(users: UsersServer) -> None:
    staff = await users.staff("OFFICIAL", "roads")
    code = await fresh_code_async(staff.secret)
    both = await asyncio.gather(
        *(users.client.post(LOGIN, login(staff.email, code)) for _ in range(2))
    )
    sessions = [body for body in both if not body.get("errors")]
    assert len(sessions) == 1, both
    assert [reason(body) for body in both if body.get("errors")] == [
        ("UNAUTHENTICATED", "TOTP_INVALID")
    ]
    replayed = await users.client.post(LOGIN, login(staff.email, code))
    assert reason(replayed) == ("UNAUTHENTICATED", "TOTP_INVALID")


async def test_wrong_codes_are_counted_per_account(users: UsersServer) -> None:
    staff = await users.staff("OFFICIAL", "roads")
    for guess in range(users.settings.totp_attempts):
        body = await users.client.post(LOGIN, login(staff.email, f"{guess:06d}"))
        assert reason(body) == ("UNAUTHENTICATED", "TOTP_INVALID")
    # Spent: even the right code waits (a recovery code too).
    body = await users.client.post(LOGIN, login(staff.email, staff.recovery_codes[0]))
    assert body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert body["errors"][0]["extensions"]["retryAfterSeconds"] > 0


async def test_recovery_codes_work_once_and_are_regenerated_with_a_code(
    users: UsersServer,
) -> None:
    staff = await users.staff("ADMIN")
    first, second = staff.recovery_codes[:2]
    assert await users.client.data(LOGIN, login(staff.email, first.lower()))
    used = await users.client.post(LOGIN, login(staff.email, first))
    assert reason(used) == ("UNAUTHENTICATED", "TOTP_INVALID")
    status = await staff.client.data(TWO_FACTOR)
    assert status["me"]["twoFactor"]["recoveryCodesLeft"] == 9

    assert await staff.client.error_code(REGENERATE, {"c": second}) == "BAD_USER_INPUT"
    fresh = (await staff.client.data(REGENERATE, {"c": await fresh_code_async(staff.secret)}))[
        "regenerateRecoveryCodes"
    ]
    assert len(fresh) == 10
    old = await users.client.post(LOGIN, login(staff.email, second))
    assert reason(old) == ("UNAUTHENTICATED", "TOTP_INVALID")
    assert await users.client.data(LOGIN, login(staff.email, fresh[0]))


async def test_a_citizen_made_official_cannot_refresh_into_a_staff_session(
    users: UsersServer,
) -> None:
    _, auth = await users.citizen()
    grant = {"u": auth["user"]["id"], "r": "OFFICIAL", "d": "roads"}
    await (await users.admin()).data(GRANT_ROLE, grant)
    refused = await users.client.post(REFRESH, {"t": auth["refreshToken"]})
    assert reason(refused) == ("UNAUTHENTICATED", "TOTP_ENROLMENT_REQUIRED")
    assert "enrolmentTicket" not in refused["errors"][0]["extensions"]  # no password shown
    # The session is over; the person enrols at the next sign-in.
    ended = await users.client.post(REFRESH, {"t": auth["refreshToken"]})
    assert ended["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    staff = await enrol(users.client, auth["email"])
    refreshed = (await users.client.data(REFRESH, {"t": staff.refresh_token}))["refreshToken"]
    assert refreshed["accessToken"]


async def test_a_citizen_may_turn_it_on_and_then_signs_in_with_a_code(
    users: UsersServer,
) -> None:
    citizen, auth = await users.citizen()
    assert await citizen.error_code(START_TOTP, {}) == "BAD_USER_INPUT"  # the password
    assert await citizen.error_code(START_TOTP, {"p": "wrong password 1"}) == "BAD_USER_INPUT"
    started = (await citizen.data(START_TOTP, {"p": PASSWORD}))["startTotpEnrolment"]
    code = await fresh_code_async(started["secret"])
    done = (await citizen.data(CONFIRM_TOTP, {"c": code}))["confirmTotpEnrolment"]
    assert done["auth"]["user"]["roles"] == ["CITIZEN"]
    # The session from before has no second factor: it ends at its next refresh.
    old = await users.client.post(REFRESH, {"t": auth["refreshToken"]})
    assert reason(old) == ("UNAUTHENTICATED", "TOTP_REQUIRED")
    assert await users.client.data(REFRESH, {"t": done["auth"]["refreshToken"]})
    without = await users.client.post(LOGIN, login(auth["email"]))
    assert reason(without) == ("UNAUTHENTICATED", "TOTP_REQUIRED")
    status = await citizen.as_user(done["auth"]["accessToken"]).data(TWO_FACTOR)
    assert status["me"]["twoFactor"]["required"] is False


async def test_a_stolen_access_token_cannot_guess_the_password(users: UsersServer) -> None:
    citizen, _ = await users.citizen()
    for guess in range(users.settings.totp_attempts):
        body = await citizen.post(START_TOTP, {"p": f"guess number {guess}"})
        assert body["errors"][0]["extensions"]["field"] == "password"
    body = await citizen.post(START_TOTP, {"p": PASSWORD})
    assert body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


async def test_an_admin_reset_is_audited_and_the_next_sign_in_enrols(
    users: UsersServer,
) -> None:
    admin = await users.admin()
    staff = await users.staff("OFFICIAL", "roads")
    why = "Потерян телефон; личность подтверждена в отделе кадров"
    assert await staff.client.error_code(RESET, {"u": staff.user_id, "r": why}) == "FORBIDDEN"
    assert (await admin.data(RESET, {"u": staff.user_id, "r": why}))["resetTotp"] is True
    assert (await admin.data(RESET, {"u": staff.user_id, "r": why}))["resetTotp"] is False
    entry = await exactly_one(admin, action="TOTP_RESET", targetId=staff.user_id)
    assert entry["reason"] == why
    assert entry["targetType"] == "User"
    # Every session ended (the lost phone held one); the next sign-in enrols again.
    assert await staff.client.error_code(TWO_FACTOR) == "UNAUTHENTICATED"
    ended = await users.client.post(REFRESH, {"t": staff.refresh_token})
    assert ended["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await enrolment_ticket(users.client, staff.email)
    admin_id = (await admin.data("{ me { id } }"))["me"]["id"]
    assert await admin.error_code(RESET, {"u": admin_id, "r": why}) == "FORBIDDEN"


async def test_the_seeded_admin_is_enrolled_with_the_configured_secret(
    users: UsersServer,
) -> None:
    admin: GraphQLClient = await users.admin()
    status = await admin.data(TWO_FACTOR)
    assert status["me"]["twoFactor"]["enabled"] is True
    assert totp.current_code(ADMIN_TOTP_SECRET).isdigit()


async def test_an_enrolment_never_confirmed_is_swept_after_a_day(users: UsersServer) -> None:
    abandoned, started = await users.citizen(), await users.citizen()
    for client, _ in (abandoned, started):
        await client.data(START_TOTP, {"p": PASSWORD})
    abandoned_id, started_id = abandoned[1]["user"]["id"], started[1]["user"]["id"]
    day_ago = utcnow() - timedelta(days=1, minutes=1)
    db = users.service.db
    await db[store.TOTP].update_one({"_id": abandoned_id}, {"$set": {"pending_at": day_ago}})
    await Retention(db, store.retention_rules(90, 1826)).sweep()
    assert await db[store.TOTP].find_one({"_id": abandoned_id}) is None
    assert await db[store.TOTP].find_one({"_id": started_id}) is not None
    staff = await users.staff("OFFICIAL", "roads")  # enrolled long ago: kept
    await db[store.TOTP].update_one({"_id": staff.user_id}, {"$set": {"pending_at": day_ago}})
    await Retention(db, store.retention_rules(90, 1826)).sweep()
    assert await db[store.TOTP].find_one({"_id": staff.user_id}) is not None
