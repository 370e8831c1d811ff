"""The users service served in-process on a real port, over a real MongoDB-wire
server and the real RabbitMQ; role-specific clients as fixtures."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from veche_kit.consumer import Consumer
from veche_stack.testing import GraphQLClient, serve
from veche_users.app import create_app
from veche_users.codes import LogCodeSender, LogMailer
from veche_users.service import UsersService
from veche_users.settings import DEFAULT_CONSENT_VERSION, UsersSettings

ADMIN_EMAIL = "admin@veche.test"
ADMIN_PASSWORD = "admin-password-1"
PASSWORD = "correct horse 42"

REGISTER = """
mutation($input: RegisterInput!) {
  register(input: $input) { accessToken refreshToken expiresAt user { id displayName roles email } }
}"""
LOGIN = """
mutation($email: String!, $password: String!) {
  login(email: $email, password: $password) { accessToken refreshToken user { id roles } }
}"""


@dataclass
class UsersServer:
    url: str
    settings: UsersSettings
    sender: LogCodeSender
    mailer: LogMailer
    service: UsersService
    client: GraphQLClient
    consumer: Consumer

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

    async def admin(self) -> GraphQLClient:
        data = await self.client.data(LOGIN, {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        return self.client.as_user(data["login"]["accessToken"])


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
        yield UsersServer(base, settings, sender, mailer, app.state.service, client, consumer)
        await client.aclose()
