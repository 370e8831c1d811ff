"""Suspension (issue #20): moderators stop an account at once, admins alone stop staff,
and the account signs in again when the suspension ends or is lifted."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from veche_kit.clock import utcnow
from veche_stack.testing import GraphQLClient

from .conftest import LOGIN, PASSWORD, UsersServer

GRANT = "mutation($u: ID!, $r: Role!, $d: ID) { grantRole(userId: $u, role: $r, departmentId: $d) { id } }"
SUSPEND = """mutation($u: ID!, $r: String!, $until: DateTime) {
  suspendUser(userId: $u, reason: $r, until: $until) { id suspension { reason until } }
}"""
UNSUSPEND = "mutation($u: ID!, $r: String!) { unsuspendUser(userId: $u, reason: $r) { id suspension { reason } } }"
REFRESH = "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken } }"
SUSPENSION = "query($id: ID!) { user(id: $id) { id suspension { reason } } }"


async def staff(users: UsersServer, role: str, department: str | None = None) -> GraphQLClient:
    """A fresh account holding `role`, signed in again (enrolling in two-factor sign-in)
    so its token says so."""
    return (await users.staff(role, department)).client


def first_error(body: dict[str, Any]) -> dict[str, Any]:
    error: dict[str, Any] = body["errors"][0]
    return error


async def test_a_suspended_account_is_signed_out_and_refused_until_lifted(
    users: UsersServer,
) -> None:
    moderator = await staff(users, "MODERATOR")
    citizen, auth = await users.citizen()
    user_id = auth["user"]["id"]
    suspended = await moderator.data(SUSPEND, {"u": user_id, "r": "Оскорбления в комментариях"})
    assert suspended["suspendUser"]["suspension"] == {
        "reason": "Оскорбления в комментариях",
        "until": None,
    }
    # The session is over: the access token at once (this service), the refresh token too.
    assert await citizen.error_code("{ me { id } }") == "UNAUTHENTICATED"
    assert await users.client.error_code(REFRESH, {"t": auth["refreshToken"]}) == (
        "UNAUTHENTICATED"
    )
    login = await users.client.post(LOGIN, {"email": auth["email"], "password": PASSWORD})
    error = first_error(login)
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["extensions"]["reason"] == "SUSPENDED"
    assert "Оскорбления" in error["message"]

    lifted = await moderator.data(UNSUSPEND, {"u": user_id, "r": "Обжаловано"})
    assert lifted["unsuspendUser"]["suspension"] is None
    assert await users.client.data(LOGIN, {"email": auth["email"], "password": PASSWORD})
    assert await moderator.error_code(UNSUSPEND, {"u": user_id, "r": "ещё раз"}) == (
        "BAD_USER_INPUT"
    )


async def test_a_suspension_ends_by_itself(users: UsersServer) -> None:
    moderator = await staff(users, "MODERATOR")
    _, auth = await users.citizen()
    until = (utcnow() + timedelta(days=7)).isoformat()
    await moderator.data(SUSPEND, {"u": auth["user"]["id"], "r": "Спам", "until": until})
    login = {"email": auth["email"], "password": PASSWORD}
    assert "until 20" in first_error(await users.client.post(LOGIN, login))["message"]
    # A week later (moved back in the store rather than waited for):
    await users.service.db["users"].update_one(
        {"_id": auth["user"]["id"]},
        {"$set": {"suspension.until": utcnow() - timedelta(seconds=1)}},
    )
    assert await users.client.data(LOGIN, login)
    past = (utcnow() - timedelta(hours=1)).isoformat()
    body = await moderator.post(SUSPEND, {"u": auth["user"]["id"], "r": "Спам", "until": past})
    assert first_error(body)["extensions"]["field"] == "until"


async def test_who_may_suspend_whom(users: UsersServer) -> None:
    moderator = await staff(users, "MODERATOR")
    official = await staff(users, "OFFICIAL", "roads")
    citizen, auth = await users.citizen()
    target = {"u": auth["user"]["id"], "r": "причина"}
    assert await citizen.error_code(SUSPEND, target) == "FORBIDDEN"
    assert await official.error_code(SUSPEND, target) == "FORBIDDEN"
    official_id = (await official.data("{ me { id } }"))["me"]["id"]
    assert await moderator.error_code(SUSPEND, {"u": official_id, "r": "x"}) == "FORBIDDEN"
    moderator_id = (await moderator.data("{ me { id } }"))["me"]["id"]
    assert await moderator.error_code(SUSPEND, {"u": moderator_id, "r": "x"}) == "FORBIDDEN"
    admin = await users.admin()
    assert await admin.data(SUSPEND, {"u": official_id, "r": "Проверка"})
    # Who sees a suspension: the person, moderators and admins; nobody else.
    assert (await moderator.data(SUSPENSION, {"id": official_id}))["user"]["suspension"]
    body = await citizen.post(SUSPENSION, {"id": official_id})
    assert first_error(body)["extensions"]["code"] == "FORBIDDEN"
    assert body["data"]["user"] == {"id": official_id, "suspension": None}
