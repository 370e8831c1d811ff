"""In the users service itself: a sign-out and a revoked role make the access tokens
issued before them stale at once (they are recorded beside the change)."""

from __future__ import annotations

from typing import Any

from veche_stack.testing import GraphQLClient

from .conftest import UsersServer, enrol

ME = "{ me { id roles } }"
LOGOUT = "mutation($t: String!) { logout(refreshToken: $t) }"
REFRESH = "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken } }"
REVOKE = "mutation($u: ID!, $r: Role!) { revokeRole(userId: $u, role: $r) { roles } }"
GRANT = "mutation($u: ID!, $r: Role!) { grantRole(userId: $u, role: $r) { roles } }"
STALE = {"code": "UNAUTHENTICATED", "reason": "TOKEN_STALE"}


async def extensions(client: GraphQLClient, query: str, variables: Any = None) -> Any:
    body = await client.post(query, variables)
    assert body.get("errors"), body
    return body["errors"][0]["extensions"]


async def test_a_sign_out_makes_the_access_token_stale(users: UsersServer) -> None:
    client, auth = await users.citizen()
    assert (await client.data(ME))["me"]["id"] == auth["user"]["id"]
    assert (await users.client.data(LOGOUT, {"t": auth["refreshToken"]}))["logout"] is True
    assert await extensions(client, ME) == STALE


async def test_a_revoked_role_makes_older_tokens_stale(users: UsersServer) -> None:
    client, auth = await users.citizen()
    admin = await users.admin()
    user_id = auth["user"]["id"]
    await admin.data(GRANT, {"u": user_id, "r": "MODERATOR"})
    # A grant leaves the older token working (it only lacks the new role; the session
    # cannot refresh into a staff one without two-factor sign-in, test_totp.py)...
    assert (await client.data(ME))["me"]["id"] == user_id
    moderator = (await enrol(users.client, auth["email"])).client
    assert "MODERATOR" in (await moderator.data(ME))["me"]["roles"]
    await admin.data(REVOKE, {"u": user_id, "r": "MODERATOR"})
    # ...a revocation does not: the token that said MODERATOR is refused, and the one before.
    assert await extensions(moderator, ME) == STALE
    assert await extensions(client, ME) == STALE


async def test_an_official_moved_to_another_department_needs_a_new_token(
    users: UsersServer,
) -> None:
    client, auth = await users.citizen()
    admin = await users.admin()
    user_id = auth["user"]["id"]
    grant = "mutation($u: ID!, $d: ID) { grantRole(userId: $u, role: OFFICIAL, departmentId: $d) { roles } }"
    await admin.data(grant, {"u": user_id, "d": "roads"})
    assert (await client.data(ME))["me"]["id"] == user_id  # becoming an official: no change
    official = await enrol(users.client, auth["email"])  # signing in again, with TOTP
    renewed = await users.client.data(REFRESH, {"t": official.refresh_token})
    roads = users.client.as_user(renewed["refreshToken"]["accessToken"])
    await admin.data(grant, {"u": user_id, "d": "ecology"})
    assert await extensions(roads, ME) == STALE  # it said: official of roads
