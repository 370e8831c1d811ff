"""The users service served in-process on a real port, over a real MongoDB-wire
server and the real RabbitMQ; role-specific clients as fixtures."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from veche_kit.consumer import PROCESSED, Consumer
from veche_kit.events import CategoriesPublished, CategoryItem, Envelope
from veche_kit.reference import CATEGORIES
from veche_stack.testing import GraphQLClient, eventually, fresh_code_async, publish, serve
from veche_users.app import create_app
from veche_users.codes import LogCodeSender, LogMailer
from veche_users.service import UsersService
from veche_users.settings import DEFAULT_CONSENT_VERSION, UsersSettings

ADMIN_EMAIL = "admin@veche.test"
ADMIN_PASSWORD = "admin-password-1"
# The seeded admin signs in with a code from this secret (base32, 160 bits).
ADMIN_TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
PASSWORD = "correct horse 42"

REGISTER = """
mutation($input: RegisterInput!) {
  register(input: $input) { accessToken refreshToken expiresAt user { id displayName roles email } }
}"""
LOGIN = """
mutation($email: String!, $password: String!, $totp: String) {
  login(email: $email, password: $password, totp: $totp) {
    accessToken refreshToken user { id roles }
  }
}"""
REFRESH = """
mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken refreshToken } }"""
GRANT_ROLE = """mutation($u: ID!, $r: Role!, $d: ID) {
  grantRole(userId: $u, role: $r, departmentId: $d) { id } }"""
START_TOTP = """mutation($t: String, $p: String) {
  startTotpEnrolment(ticket: $t, password: $p) { secret otpauthUri digits periodSeconds }
}"""
CONFIRM_TOTP = """mutation($t: String, $c: String!) {
  confirmTotpEnrolment(ticket: $t, code: $c) {
    auth { accessToken refreshToken user { id roles } } recoveryCodes
  }
}"""


@dataclass
class Staff:
    """A signed-in staff member who enrolled in two-factor sign-in."""

    client: GraphQLClient
    email: str
    user_id: str
    secret: str
    recovery_codes: list[str]
    refresh_token: str


@dataclass
class UsersServer:
    url: str
    settings: UsersSettings
    sender: LogCodeSender
    mailer: LogMailer
    service: UsersService
    client: GraphQLClient
    consumer: Consumer
    # The admin's session: signed in once (a TOTP code works once, so signing in for
    # every test would wait for new codes), refreshed before its access token expires.
    _admin: dict[str, Any] = field(default_factory=dict)

    async def tell_categories(self, *extra: str) -> Envelope:
        """The issues service's list of categories as it would tell it: the demo city's
        and `extra`, published on the bus; returns once the service has applied it."""
        rows = [
            CategoryItem(id=c.id, name=c.name, department_id=c.department_id) for c in CATEGORIES
        ]
        rows += [CategoryItem(id=c, name=c, department_id=None) for c in extra]
        envelope = Envelope.wrap(CategoriesPublished(categories=rows), "issues")
        await publish(self.settings.amqp_url, self.settings.namespace, envelope)
        await eventually(lambda: self.handled(envelope), timeout=10, interval=0.02)
        return envelope

    async def handled(self, envelope: Envelope) -> bool:
        """Whether the service's consumer has applied the event."""
        found = await self.service.db[PROCESSED].find_one({"_id": str(envelope.id)})
        return found is not None

    async def register(self, tag: str = "", **fields: Any) -> dict[str, Any]:
        """Registers a fresh citizen; returns the AuthPayload."""
        email = f"citizen-{tag}{uuid.uuid4().hex[:8]}@example.ru"
        payload = {
            "email": email,
            "password": PASSWORD,
            "displayName": "Иван Петров",
            "districtId": "leninsky",
            "birthYear": 1990,
            "consentVersion": DEFAULT_CONSENT_VERSION,
            **fields,
        }
        data = await self.client.data(REGISTER, {"input": payload})
        result: dict[str, Any] = data["register"]
        result["email"] = email
        return result

    async def citizen(self, **fields: Any) -> tuple[GraphQLClient, dict[str, Any]]:
        auth = await self.register(**fields)
        return self.client.as_user(auth["accessToken"]), auth

    async def staff(self, role: str, department: str | None = None) -> Staff:
        """A fresh account granted `role` by the admin, signed in again so its token says
        so: enrolled in two-factor sign-in when the role needs it."""
        _, auth = await self.citizen()
        grant = {"u": auth["user"]["id"], "r": role, "d": department}
        await (await self.admin()).data(GRANT_ROLE, grant)
        if role in ("OFFICIAL", "MODERATOR", "ADMIN", "AUDITOR"):
            return await enrol(self.client, auth["email"])
        signed_in = await self.client.data(LOGIN, {"email": auth["email"], "password": PASSWORD})
        token = signed_in["login"]
        return Staff(
            self.client.as_user(token["accessToken"]),
            auth["email"],
            auth["user"]["id"],
            "",
            [],
            token["refreshToken"],
        )

    async def admin(self) -> GraphQLClient:
        if not self._admin:
            code = await fresh_code_async(ADMIN_TOTP_SECRET)
            login = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "totp": code}
            self._admin.update((await self.client.data(LOGIN, login))["login"], at=time.time())
        elif time.time() - self._admin["at"] > 60:
            fresh = await self.client.data(REFRESH, {"t": self._admin["refreshToken"]})
            self._admin.update(fresh["refreshToken"], at=time.time())
        return self.client.as_user(self._admin["accessToken"])


async def enrolment_ticket(client: GraphQLClient, email: str) -> str:
    """The ticket a staff sign-in without two-factor gets instead of tokens."""
    body = await client.post(LOGIN, {"email": email, "password": PASSWORD})
    extensions = body["errors"][0]["extensions"]
    assert extensions["reason"] == "TOTP_ENROLMENT_REQUIRED", body
    ticket: str = extensions["enrolmentTicket"]
    return ticket


async def enrol(client: GraphQLClient, email: str) -> Staff:
    """Signs in as a staff member the first time: the ticket, a secret, its first code."""
    ticket = await enrolment_ticket(client, email)
    secret = (await client.data(START_TOTP, {"t": ticket}))["startTotpEnrolment"]["secret"]
    confirm = {"t": ticket, "c": await fresh_code_async(secret)}
    done = (await client.data(CONFIRM_TOTP, confirm))["confirmTotpEnrolment"]
    auth = done["auth"]
    return Staff(
        client.as_user(auth["accessToken"]),
        email,
        auth["user"]["id"],
        secret,
        done["recoveryCodes"],
        auth["refreshToken"],
    )


def users_settings(
    mongo_url: str, amqp_url: str, data_dir: Path, **overrides: Any
) -> UsersSettings:
    # Every test here comes from 127.0.0.1: the per-client limits are tested on their own
    # server with the defaults (test_abuse.py).
    generous = {
        "registrations_per_client": 100_000,
        "login_failures_per_client": 100_000,
        "phone_codes_per_client": 100_000,
        "email_codes_per_client": 100_000,
    }
    return UsersSettings(
        mongo_url=mongo_url,
        mongo_db=f"users_{uuid.uuid4().hex[:8]}",
        amqp_url=amqp_url,
        namespace=f"test-{uuid.uuid4().hex[:8]}.",
        data_dir=str(data_dir),
        demo_data=True,
        admin_email=ADMIN_EMAIL,
        admin_password=ADMIN_PASSWORD,
        admin_totp_secret=ADMIN_TOTP_SECRET,
        environment="test",
        outbox_poll_seconds=0.2,
        **{**generous, **overrides},
    )


@pytest.fixture(scope="session")
async def users(
    mongo_server_url: str, amqp_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[UsersServer]:
    settings = users_settings(mongo_server_url, amqp_url, tmp_path_factory.mktemp("users"))
    sender, mailer = LogCodeSender(), LogMailer()
    app = create_app(settings, sender=sender, mailer=mailer)
    async with serve(app) as base:
        client = GraphQLClient(f"{base}/graphql")
        consumer = app.state.runtime.consumer
        await consumer.wait_subscribed(15)
        server = UsersServer(base, settings, sender, mailer, app.state.service, client, consumer)
        await server.tell_categories()  # solvers' skills name categories from this list
        yield server
        await client.aclose()
