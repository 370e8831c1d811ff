"""Consent to processing personal data (152-FZ) and the minimum age (issue #19)."""

from __future__ import annotations

from typing import Any

from veche_kit.clock import utcnow
from veche_users import store
from veche_users.settings import DEFAULT_CONSENT_VERSION

from .conftest import PASSWORD, REGISTER, UsersServer

CURRENT = "{ currentConsent { version text publishedAt } }"
PUBLISH = """mutation($v: String!, $t: String!) {
  publishConsentVersion(version: $v, text: $t) { version } }"""


def code_of(body: dict[str, Any]) -> str | None:
    errors = body.get("errors")
    return errors[0]["extensions"]["code"] if errors else None


def _input(**fields: Any) -> dict[str, Any]:
    base = {"email": f"c-{utcnow().timestamp()}@example.ru", "password": PASSWORD}
    return {"input": {**base, "displayName": "Анна", **fields}}


async def test_register_needs_the_current_consent_version(users: UsersServer) -> None:
    current = (await users.client.data(CURRENT))["currentConsent"]
    assert current["version"] == DEFAULT_CONSENT_VERSION
    assert "152-ФЗ" in current["text"]
    missing = await users.client.post(REGISTER, _input())
    assert code_of(missing) == "BAD_USER_INPUT"
    assert "currentConsent" in missing["errors"][0]["message"]
    old = await users.client.post(REGISTER, _input(consentVersion="2020-01-01"))
    assert code_of(old) == "BAD_USER_INPUT"
    assert DEFAULT_CONSENT_VERSION in old["errors"][0]["message"]
    auth = await users.register()
    consents = await users.service.consents(auth["user"]["id"])
    assert [c["version"] for c in consents] == [DEFAULT_CONSENT_VERSION]
    assert consents[0]["client"] == "127.0.0.1"
    assert consents[0]["withdrawn_at"] is None


async def test_publishing_is_for_admins_once_per_version(users: UsersServer) -> None:
    citizen, _ = await users.citizen()
    body = await citizen.post(PUBLISH, {"v": "9999-01-01", "t": "Текст"})
    assert code_of(body) == "FORBIDDEN"
    admin = await users.admin()
    version = f"v{int(utcnow().timestamp() * 1000)}"
    assert (await admin.data(PUBLISH, {"v": version, "t": "Текст"}))["publishConsentVersion"]
    assert code_of(await admin.post(PUBLISH, {"v": version, "t": "Текст"})) == "CONFLICT"
    # The other tests register with the default version: it becomes current again.
    await users.service.db[store.CONSENT_VERSIONS].delete_many({"version": version})
    current = (await users.client.data(CURRENT))["currentConsent"]["version"]
    assert current == DEFAULT_CONSENT_VERSION


async def test_a_restart_does_not_publish_the_default_twice(users: UsersServer) -> None:
    before = await users.service.db[store.CONSENT_VERSIONS].count_documents({})
    await users.service.publish_default_consent()
    assert await users.service.db[store.CONSENT_VERSIONS].count_documents({}) == before


async def test_minimum_age_is_a_setting(users: UsersServer) -> None:
    year = utcnow().year
    version = users.service.settings.consent_version
    young = await users.client.post(REGISTER, _input(birthYear=year - 13, consentVersion=version))
    assert code_of(young) == "BAD_USER_INPUT"
    assert await users.register(birthYear=year - 14, consentVersion=version)
    settings = users.service.settings
    users.service.settings = settings.model_copy(update={"min_age": 16})
    try:
        body = await users.client.post(
            REGISTER, _input(birthYear=year - 15, consentVersion=version)
        )
        assert code_of(body) == "BAD_USER_INPUT"
    finally:
        users.service.settings = settings


async def test_consents_are_private(users: UsersServer) -> None:
    _, auth = await users.citizen()
    other, _ = await users.citizen()
    query = "query($id: ID!) { user(id: $id) { consents { version } } }"
    body = await other.post(query, {"id": auth["user"]["id"]})
    assert code_of(body) == "FORBIDDEN"
    assert body["data"]["user"]["consents"] is None
