"""E-mail through a real SMTP server (aiosmtpd): what a city's mail server receives, and
what happens when it is down."""

from __future__ import annotations

import email
import email.policy
import re
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from veche_stack.testing import GraphQLClient, serve
from veche_users.app import create_app

from .conftest import PASSWORD, REGISTER, users_settings
from .test_email_codes import ME, REQUEST_RESET, RESET, VERIFY

PAGE = "https://portal.example.ru/account/code"


@dataclass
class Inbox:
    """An SMTP server's handler that keeps every message it accepts."""

    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"

    def code_for(self, address: str) -> str:
        [last] = [m for m in self.messages if m["To"] == address][-1:]
        found = re.search(r": ([A-Z0-9]{8})\n", _body(last))
        assert found, _body(last)
        return found.group(1)


def _body(message: EmailMessage) -> str:
    body: str = message.get_content()
    return body


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


async def _server(
    mongo_url: str, amqp_url: str, tmp: pytest.TempPathFactory, port: int
) -> AsyncIterator[GraphQLClient]:
    settings = users_settings(
        mongo_url,
        amqp_url,
        tmp.mktemp("mail-users"),
        email_sender="smtp",
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_starttls=False,
        smtp_from="Вече <noreply@veche.example.ru>",
        email_link_url=PAGE,
    )
    async with serve(create_app(settings)) as base:
        client = GraphQLClient(f"{base}/graphql")
        yield client
        await client.aclose()


@pytest.fixture
async def mailing(
    mongo_server_url: str,
    amqp_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    smtp: tuple[Inbox, int],
) -> AsyncIterator[GraphQLClient]:
    async for client in _server(mongo_server_url, amqp_url, tmp_path_factory, smtp[1]):
        yield client


async def _register(client: GraphQLClient) -> tuple[str, dict[str, Any]]:
    address = f"mail-{uuid.uuid4().hex[:8]}@example.ru"
    payload = {"email": address, "password": PASSWORD, "displayName": "Анна Иванова"}
    data = await client.data(REGISTER, {"input": {**payload, "consentVersion": "2026-12-01"}})
    return address, data["register"]


async def test_the_mail_server_gets_a_code_in_russian_and_english_with_a_link(
    mailing: GraphQLClient, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    address, auth = await _register(mailing)
    [message] = [m for m in inbox.messages if m["To"] == address]
    assert message["From"] == "Вече <noreply@veche.example.ru>"
    assert "подтвердите" in str(
        email.header.make_header(email.header.decode_header(message["Subject"]))
    )
    body = _body(message)
    code = inbox.code_for(address)
    assert "Код действует 60 мин." in body
    assert "valid for 60 minutes" in body
    assert f"{PAGE}?purpose=VERIFY_EMAIL&email={address.replace('@', '%40')}&code={code}" in body
    assert await mailing.data(VERIFY, {"e": address, "c": code})
    me = await mailing.as_user(auth["accessToken"]).data(ME)
    assert me["me"]["emailVerified"] is True


async def test_a_reset_code_arrives_by_mail_and_works(
    mailing: GraphQLClient, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    address, _ = await _register(mailing)
    await mailing.data(REQUEST_RESET, {"e": address})
    code = inbox.code_for(address)
    assert "восстановление" in inbox.messages[-1]["Subject"]
    assert await mailing.data(RESET, {"e": address, "c": code, "p": "Новый-пароль-2026"})


async def test_a_mail_outage_costs_the_mail_not_the_sign_up(
    mongo_server_url: str, amqp_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    closed = _free_port()  # nothing listens there
    async for client in _server(mongo_server_url, amqp_url, tmp_path_factory, closed):
        _, auth = await _register(client)  # the account stands
        me = client.as_user(auth["accessToken"])
        body = await me.post("mutation { requestEmailVerification }")
        assert body["errors"][0]["extensions"]["code"] == "DELIVERY_FAILED"
        assert "try again" in body["errors"][0]["message"]
        # No code is left pending: the next try is not told to wait a minute.
        body = await me.post("mutation { requestEmailVerification }")
        assert body["errors"][0]["extensions"]["code"] == "DELIVERY_FAILED"
