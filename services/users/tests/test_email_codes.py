"""E-mail verification, password reset and password change (issue #19): a mailed code
works once, for an hour, for a few tries; a new password ends every session."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta

import pytest

from veche_kit.clock import utcnow
from veche_users import store
from veche_users.codes import MailPurpose

from .conftest import LOGIN, PASSWORD, UsersServer

VERIFY = "mutation($e: String!, $c: String!) { verifyEmail(email: $e, code: $c) }"
REQUEST_VERIFY = "mutation { requestEmailVerification }"
REQUEST_RESET = "mutation($e: String!) { requestPasswordReset(email: $e) }"
RESET = """
mutation($e: String!, $c: String!, $p: String!) {
  resetPassword(email: $e, code: $c, newPassword: $p)
}"""
CHANGE = """
mutation($old: String!, $new: String!) {
  changePassword(currentPassword: $old, newPassword: $new)
}"""
REFRESH = "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken } }"
ME = "{ me { id emailVerified } }"
NEW_PASSWORD = "Другой-пароль-2026"


def mailed(users: UsersServer, email: str, purpose: MailPurpose) -> str:
    return users.mailer.sent[(email, purpose)]


async def test_registration_mails_a_code_that_confirms_the_address_once(
    users: UsersServer,
) -> None:
    citizen, auth = await users.citizen()
    email = auth["email"]
    assert (await citizen.data(ME))["me"]["emailVerified"] is False
    code = mailed(users, email, MailPurpose.VERIFY_EMAIL)
    # As a person types it from the mail app: lower case, a dash in the middle.
    typed = f"{code[:4].lower()}-{code[4:]}"
    assert (await users.client.data(VERIFY, {"e": email, "c": typed}))["verifyEmail"] is True
    assert (await citizen.data(ME))["me"]["emailVerified"] is True
    body = await users.client.post(VERIFY, {"e": email, "c": code})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "requestEmailVerification" in body["errors"][0]["message"]
    assert await citizen.error_code(REQUEST_VERIFY) == "CONFLICT"


async def test_wrong_codes_are_counted_and_end_the_code(users: UsersServer) -> None:
    _, auth = await users.citizen()
    email = auth["email"]
    code = mailed(users, email, MailPurpose.VERIFY_EMAIL)
    attempts = users.settings.email_code_attempts
    wrong = [users.client.post(VERIFY, {"e": email, "c": "WRONG222"}) for _ in range(attempts + 3)]
    codes = [b["errors"][0]["extensions"]["code"] for b in await asyncio.gather(*wrong)]
    # Parallel guesses share one budget (a conditional update counts each).
    assert codes.count("BAD_USER_INPUT") == attempts
    assert codes.count("RATE_LIMITED") == 3
    # Even the right code is refused now: ask for a new one.
    assert await users.client.error_code(VERIFY, {"e": email, "c": code}) == "RATE_LIMITED"


async def test_a_code_expires_after_an_hour(users: UsersServer) -> None:
    _, auth = await users.citizen()
    email = auth["email"]
    code = mailed(users, email, MailPurpose.VERIFY_EMAIL)
    key = f"{MailPurpose.VERIFY_EMAIL}:{auth['user']['id']}"
    entry = await users.service.db[store.EMAIL_CODES].find_one({"_id": key})
    assert entry is not None
    assert entry["expires_at"] - entry["sent_at"] == timedelta(hours=1)
    await users.service.db[store.EMAIL_CODES].update_one(
        {"_id": key}, {"$set": {"expires_at": utcnow() - timedelta(seconds=1)}}
    )
    body = await users.client.post(VERIFY, {"e": email, "c": code})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "expired" in body["errors"][0]["message"]


async def test_a_reset_sets_the_password_once_and_ends_every_session(users: UsersServer) -> None:
    citizen, auth = await users.citizen()
    email = auth["email"]
    assert (await users.client.data(REQUEST_RESET, {"e": email}))["requestPasswordReset"]
    code = mailed(users, email, MailPurpose.RESET_PASSWORD)
    variables = {"e": email, "c": code, "p": NEW_PASSWORD}
    assert (await users.client.data(RESET, variables))["resetPassword"] is True
    # Once only.
    assert await users.client.error_code(RESET, variables) == "BAD_USER_INPUT"
    # The old session is over: its refresh token and its access token.
    refresh = {"t": auth["refreshToken"]}
    assert await users.client.error_code(REFRESH, refresh) == "UNAUTHENTICATED"
    await asyncio.sleep(1.1)  # the stale-token record is cached for a second
    assert await citizen.error_code(ME) == "UNAUTHENTICATED"
    old = {"email": email, "password": PASSWORD}
    assert await users.client.error_code(LOGIN, old) == "UNAUTHENTICATED"
    login = await users.client.data(LOGIN, {"email": email, "password": NEW_PASSWORD})
    me = await users.client.as_user(login["login"]["accessToken"]).data(ME)
    assert me["me"]["emailVerified"] is True  # the code proved the address


async def test_two_resets_with_one_code_at_once_succeed_once(users: UsersServer) -> None:
    _, auth = await users.citizen()
    email = auth["email"]
    await users.client.data(REQUEST_RESET, {"e": email})
    code = mailed(users, email, MailPurpose.RESET_PASSWORD)
    tries = [
        users.client.post(RESET, {"e": email, "c": code, "p": f"{NEW_PASSWORD}-{i}"})
        for i in range(4)
    ]
    bodies = await asyncio.gather(*tries)
    succeeded = [i for i, b in enumerate(bodies) if not b.get("errors")]
    assert len(succeeded) == 1
    # The password is the one that won.
    winner = f"{NEW_PASSWORD}-{succeeded[0]}"
    assert await users.client.data(LOGIN, {"email": email, "password": winner})


async def test_unknown_addresses_get_the_same_answer_and_no_mail(users: UsersServer) -> None:
    nobody = f"nobody-{uuid.uuid4().hex[:8]}@example.ru"
    assert (await users.client.data(REQUEST_RESET, {"e": nobody}))["requestPasswordReset"]
    assert (nobody, MailPurpose.RESET_PASSWORD) not in users.mailer.sent
    body = await users.client.post(RESET, {"e": nobody, "c": "ABCDEFGH", "p": NEW_PASSWORD})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert await users.client.error_code(REQUEST_RESET, {"e": "not-an-address"}) == (
        "BAD_USER_INPUT"
    )


async def test_a_weak_new_password_is_refused_before_the_code_is_spent(
    users: UsersServer,
) -> None:
    _, auth = await users.citizen()
    email = auth["email"]
    await users.client.data(REQUEST_RESET, {"e": email})
    code = mailed(users, email, MailPurpose.RESET_PASSWORD)
    body = await users.client.post(RESET, {"e": email, "c": code, "p": "short"})
    assert body["errors"][0]["extensions"]["field"] == "password"
    assert await users.client.data(RESET, {"e": email, "c": code, "p": NEW_PASSWORD})


async def test_changing_the_password_ends_every_session(users: UsersServer) -> None:
    citizen, auth = await users.citizen()
    body = await citizen.post(CHANGE, {"old": "not-it-at-all-1", "new": NEW_PASSWORD})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert body["errors"][0]["extensions"]["field"] == "currentPassword"
    assert (await citizen.data(CHANGE, {"old": PASSWORD, "new": NEW_PASSWORD}))["changePassword"]
    assert await users.client.error_code(REFRESH, {"t": auth["refreshToken"]}) == (
        "UNAUTHENTICATED"
    )
    assert await users.client.data(LOGIN, {"email": auth["email"], "password": NEW_PASSWORD})
    assert await users.client.error_code(CHANGE, {"old": PASSWORD, "new": "x"}) == (
        "UNAUTHENTICATED"
    )


async def test_the_log_keeps_the_domain_of_an_address_only(
    users: UsersServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="veche_users.codes"):
        _, auth = await users.citizen()
    [record] = [r for r in caplog.records if r.name == "veche_users.codes"]
    local_part = auth["email"].split("@")[0]
    assert local_part not in str(record.__dict__)
    assert record.__dict__["to"] == "…@example.ru"


async def test_erasure_takes_the_pending_codes(users: UsersServer) -> None:
    citizen, auth = await users.citizen()
    await users.client.data(REQUEST_RESET, {"e": auth["email"]})
    codes = users.service.db[store.EMAIL_CODES]
    mine = {"user_id": auth["user"]["id"]}
    assert await codes.count_documents(mine) == 2  # the welcome code and the reset code
    await citizen.data("mutation($p: String!) { deleteMyAccount(password: $p) }", {"p": PASSWORD})
    assert await codes.count_documents(mine) == 0
