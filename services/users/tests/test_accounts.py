"""Accounts over HTTP: register, login, tokens, profile, bad input."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx

from veche_kit.clock import utcnow
from veche_users.service import principal_of
from veche_users.settings import DEFAULT_CONSENT_VERSION

from .conftest import LOGIN, PASSWORD, REGISTER, UsersServer

ME = "{ me { id displayName email birthYear points roles phoneVerified district { id name } } }"
REFRESH = "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken refreshToken } }"
LOGOUT = "mutation($t: String!) { logout(refreshToken: $t) }"
USER = "query($id: ID!) { user(id: $id) { id displayName email } }"
UPDATE = """mutation($input: UpdateProfileInput!) {
  updateProfile(input: $input) { displayName birthYear district { id } organization }
}"""


async def test_register_then_me(users: UsersServer) -> None:
    client, auth = await users.citizen()
    me = (await client.data(ME))["me"]
    assert me["id"] == auth["user"]["id"]
    assert me["email"] == auth["email"]
    assert me["roles"] == ["CITIZEN"]
    assert me["points"] == 0
    assert me["district"] == {"id": "leninsky", "name": "Ленинский округ"}
    assert me["phoneVerified"] is False


async def test_me_without_token_is_null(users: UsersServer) -> None:
    assert (await users.client.data(ME))["me"] is None


async def test_login_refresh_rotates_and_reuse_revokes_family(users: UsersServer) -> None:
    auth = await users.register()
    login = (
        await users.client.data(LOGIN, {"email": auth["email"].upper(), "password": PASSWORD})
    )["login"]
    first = login["refreshToken"]
    second = (await users.client.data(REFRESH, {"t": first}))["refreshToken"]["refreshToken"]
    assert second != first
    # Reusing the first token is refused and ends the whole family, the second token included.
    assert await users.client.error_code(REFRESH, {"t": first}) == "UNAUTHENTICATED"
    assert await users.client.error_code(REFRESH, {"t": second}) == "UNAUTHENTICATED"
    # The session from registration is a different family and still works.
    assert (await users.client.data(REFRESH, {"t": auth["refreshToken"]}))["refreshToken"][
        "accessToken"
    ]


async def test_logout_ends_the_session(users: UsersServer) -> None:
    auth = await users.register()
    assert (await users.client.data(LOGOUT, {"t": auth["refreshToken"]}))["logout"] is True
    assert (await users.client.data(LOGOUT, {"t": auth["refreshToken"]}))["logout"] is False
    assert await users.client.error_code(REFRESH, {"t": auth["refreshToken"]}) == "UNAUTHENTICATED"


async def test_wrong_passwords_then_a_wait(users: UsersServer) -> None:
    auth = await users.register()
    for _ in range(users.settings.login_free_attempts):
        assert (
            await users.client.error_code(
                LOGIN, {"email": auth["email"], "password": "wrong-pass-1"}
            )
            == "UNAUTHENTICATED"
        )
    body = await users.client.post(LOGIN, {"email": auth["email"], "password": PASSWORD})
    assert body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert "Try again in" in body["errors"][0]["message"]


async def test_unknown_email_is_the_same_refusal(users: UsersServer) -> None:
    body = await users.client.post(LOGIN, {"email": "nobody@example.ru", "password": PASSWORD})
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert body["errors"][0]["message"] == "The email or the password is wrong."


async def test_bad_registrations_are_clear(users: UsersServer) -> None:
    base = {"email": "ok@example.ru", "password": PASSWORD, "displayName": "A"}
    base["consentVersion"] = DEFAULT_CONSENT_VERSION
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"email": "not-an-email"}, "BAD_USER_INPUT", "email"),
        ({"password": "short1"}, "BAD_USER_INPUT", "password"),
        ({"password": "onlyletterslong"}, "BAD_USER_INPUT", "password"),
        ({"displayName": "x" * 200}, "BAD_USER_INPUT", "displayName"),
        ({"districtId": "atlantis"}, "BAD_USER_INPUT", "districtId"),
        ({"birthYear": 1800}, "BAD_USER_INPUT", "birthYear"),
        ({"phone": "12"}, "BAD_USER_INPUT", "phone"),
    ]
    for change, code, field in cases:
        body = await users.client.post(REGISTER, {"input": {**base, **change}})
        error = body["errors"][0]
        assert error["extensions"]["code"] == code, (change, error)
        assert error["extensions"]["field"] == field, (change, error)
        assert body["data"] is None


async def test_wrong_types_and_malformed_documents_are_coded(users: UsersServer) -> None:
    body = await users.client.post(
        REGISTER, {"input": {"email": 5, "password": PASSWORD, "displayName": "A"}}
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    body = await users.client.post("{ me { id ")
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    body = await users.client.post("{ me { noSuchField } }")
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_twenty_concurrent_registrations_one_email(users: UsersServer) -> None:
    email = f"race-{id(users)}-{asyncio.get_running_loop().time()}@example.ru"
    payload = {"email": email, "password": PASSWORD, "displayName": "Гонка"}
    payload["consentVersion"] = DEFAULT_CONSENT_VERSION
    bodies = await asyncio.gather(
        *[users.client.post(REGISTER, {"input": payload}) for _ in range(20)]
    )
    ok = [b for b in bodies if not b.get("errors")]
    codes = sorted(b["errors"][0]["extensions"]["code"] for b in bodies if b.get("errors"))
    assert len(ok) == 1
    assert codes == ["CONFLICT"] * 19
    assert await users.service.db["users"].count_documents({"email": email}) == 1


async def test_private_fields_for_self_and_admin_only(users: UsersServer) -> None:
    alice, alice_auth = await users.citizen()
    _, bob_auth = await users.citizen()
    bob_id = bob_auth["user"]["id"]
    public = "query($id: ID!) { user(id: $id) { id displayName } }"
    assert (await alice.data(public, {"id": bob_id}))["user"]["displayName"] == "Иван Петров"
    body = await alice.post(USER, {"id": bob_id})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert body["errors"][0]["path"] == ["user", "email"]
    assert body["data"]["user"]["email"] is None
    # Every private field costs only itself: the user stays, each refusal at its path.
    every = """query($id: ID!) { user(id: $id) { displayName email birthYear points
      pointsHistory { totalCount } notifications { totalCount } redemptions { totalCount } } }"""
    body = await alice.post(every, {"id": bob_id})
    assert body["data"]["user"] == {
        "displayName": "Иван Петров",
        "email": None,
        "birthYear": None,
        "points": None,
        "pointsHistory": None,
        "notifications": None,
        "redemptions": None,
    }
    assert sorted(e["path"][1] for e in body["errors"]) == sorted(
        ["email", "birthYear", "points", "pointsHistory", "notifications", "redemptions"]
    )
    assert {e["extensions"]["code"] for e in body["errors"]} == {"FORBIDDEN"}
    admin = await users.admin()
    assert (await admin.data(USER, {"id": bob_id}))["user"]["email"] == bob_auth["email"]
    assert (await alice.data(USER, {"id": alice_auth["user"]["id"]}))["user"][
        "email"
    ] == alice_auth["email"]


async def test_update_profile_changes_only_what_is_sent(users: UsersServer) -> None:
    client, _ = await users.citizen()
    updated = (await client.data(UPDATE, {"input": {"districtId": "moskovsky"}}))["updateProfile"]
    assert updated == {
        "displayName": "Иван Петров",
        "birthYear": 1990,
        "district": {"id": "moskovsky"},
        "organization": None,
    }
    assert await client.error_code(UPDATE, {"input": {"birthYear": 2030}}) == "BAD_USER_INPUT"
    assert (
        await users.client.error_code(UPDATE, {"input": {"displayName": "X"}}) == "UNAUTHENTICATED"
    )


async def test_tampered_and_foreign_tokens_are_refused(users: UsersServer) -> None:
    _, auth = await users.citizen()
    token = auth["accessToken"]
    head, payload, signature = token.split(".")
    tampered = f"{head}.{payload[:-2]}AA.{signature}"
    for bad in (tampered, "not-a-token", token + "x"):
        assert await users.client.as_user(bad).error_code(ME) == "UNAUTHENTICATED"
    # A malformed Authorization header is refused with an actionable message.
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{users.url}/graphql", json={"query": ME}, headers={"Authorization": "Token x"}
        )
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_expired_token_is_refused_with_a_hint_to_refresh(users: UsersServer) -> None:
    _, auth = await users.citizen()
    user = await users.service.get_user(auth["user"]["id"])
    expired = users.service.key.issue(
        principal_of(user),
        issuer=users.settings.token_issuer,
        now=utcnow() - timedelta(hours=1),
        ttl=timedelta(minutes=15),
    )
    body = await users.client.as_user(expired).post(ME)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert body["errors"][0]["message"] == "The access token has expired; refresh it."


async def test_jwks_is_published(users: UsersServer) -> None:
    async with httpx.AsyncClient() as http:
        keys = (await http.get(f"{users.url}/.well-known/jwks.json")).json()["keys"]
    assert [(k["kty"], k["crv"], k["alg"]) for k in keys] == [("OKP", "Ed25519", "EdDSA")]


async def test_passwords_are_argon2id_at_owasp_minimum(users: UsersServer) -> None:
    _, auth = await users.citizen()
    stored = await users.service.db["users"].find_one({"email": auth["email"]})
    assert stored is not None
    assert stored["password_hash"].startswith("$argon2id$v=19$m=19456,t=2,p=1$")
