"""The attacks of issue #11 on accounts, each refused: parallel password guesses, locking
the owner out, password spraying, mass registration and SMS pumping.

A server of its own with small limits; each test comes from its own client addresses,
sent as `X-Forwarded-For` through 127.0.0.1, a trusted proxy (as the gateway does).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from veche_stack.testing import serve
from veche_users.app import create_app
from veche_users.codes import LogCodeSender
from veche_users.settings import DEFAULT_CONSENT_VERSION, UsersSettings

from .conftest import LOGIN, PASSWORD, REGISTER, users_settings

REQUEST_CODE = "mutation($p: String!) { requestPhoneCode(phone: $p) }"
FREE_ATTEMPTS = 5
REGISTRATIONS = 4
CLIENT_FAILURES = 12
CODES_PER_NUMBER = 3
CODES_PER_CLIENT = 6
MAILS_PER_ADDRESS = 3
MAILS_PER_CLIENT = 5
REQUEST_RESET = "mutation($e: String!) { requestPasswordReset(email: $e) }"


class CountingSender(LogCodeSender):
    """Keeps every text sent, not only the last per number."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    async def send(self, phone: str, code: str) -> None:
        self.texts.append(phone)
        await super().send(phone, code)


@dataclass
class Strict:
    url: str
    settings: UsersSettings
    sender: CountingSender
    http: httpx.AsyncClient

    async def post(
        self, query: str, variables: dict[str, Any], client: str, token: str | None = None
    ) -> dict[str, Any]:
        headers = {"X-Forwarded-For": client}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        response = await self.http.post(
            self.url, json={"query": query, "variables": variables}, headers=headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def register(self, client: str) -> dict[str, Any]:
        email = f"abuse-{uuid.uuid4().hex[:10]}@example.ru"
        payload = {"email": email, "password": PASSWORD, "displayName": "Пётр Смирнов"}
        payload["consentVersion"] = DEFAULT_CONSENT_VERSION
        body = await self.post(REGISTER, {"input": payload}, client)
        assert not body.get("errors"), body
        result: dict[str, Any] = body["data"]["register"]
        return {**result, "email": email}

    async def login(self, email: str, password: str, client: str) -> dict[str, Any]:
        return await self.post(LOGIN, {"email": email, "password": password}, client)


def code_of(body: dict[str, Any]) -> str | None:
    errors = body.get("errors")
    return str(errors[0]["extensions"]["code"]) if errors else None


def new_client() -> str:
    """A fresh documentation-range address (RFC 5737), so tests never share a budget."""
    n = uuid.uuid4().int
    return f"198.{18 + n % 2}.{n // 2 % 256}.{n // 512 % 254 + 1}"


@pytest.fixture(scope="module")
async def strict(
    mongo_server_url: str, amqp_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Strict]:
    settings = users_settings(
        mongo_server_url,
        amqp_url,
        tmp_path_factory.mktemp("strict-users"),
        login_free_attempts=FREE_ATTEMPTS,
        login_delay_seconds=30.0,  # no retry slips in while a test runs
        registrations_per_client=REGISTRATIONS,
        login_failures_per_client=CLIENT_FAILURES,
        phone_codes_per_number=CODES_PER_NUMBER,
        phone_codes_per_client=CODES_PER_CLIENT,
        email_codes_per_address=MAILS_PER_ADDRESS,
        email_codes_per_client=MAILS_PER_CLIENT,
    )
    sender = CountingSender()
    async with (
        serve(create_app(settings, sender=sender)) as base,
        httpx.AsyncClient(timeout=30) as http,  # a loaded machine: httpx waits 5 s by default
    ):
        yield Strict(f"{base}/graphql", settings, sender, http)


async def test_sixteen_parallel_guesses_get_only_the_free_checks(strict: Strict) -> None:
    attacker = new_client()
    victim = await strict.register(new_client())
    guesses = [strict.login(victim["email"], f"guess-{i}-password", attacker) for i in range(16)]
    codes = [code_of(body) for body in await asyncio.gather(*guesses)]
    # UNAUTHENTICATED means the password was checked; RATE_LIMITED, refused before that.
    assert codes.count("UNAUTHENTICATED") == FREE_ATTEMPTS
    assert codes.count("RATE_LIMITED") == 16 - FREE_ATTEMPTS
    # The next try from that network waits, however right its password is.
    body = await strict.login(victim["email"], PASSWORD, attacker)
    assert code_of(body) == "RATE_LIMITED"
    assert body["errors"][0]["extensions"]["retryAfterSeconds"] >= 1


async def test_others_cannot_lock_the_owner_out(strict: Strict) -> None:
    owner_network, attacker = new_client(), new_client()
    owner = await strict.register(owner_network)
    for i in range(FREE_ATTEMPTS + 3):
        await strict.login(owner["email"], f"wrong-{i}-password", attacker)
    assert code_of(await strict.login(owner["email"], "wrong-again-1", attacker)) == "RATE_LIMITED"
    body = await strict.login(owner["email"], PASSWORD, owner_network)
    assert code_of(body) is None
    assert body["data"]["login"]["user"]["id"] == owner["user"]["id"]


async def test_unknown_and_throttled_accounts_are_answered_alike(strict: Strict) -> None:
    network = new_client()
    known = (await strict.register(new_client()))["email"]
    unknown = f"nobody-{uuid.uuid4().hex[:8]}@example.ru"
    answers: dict[str, list[tuple[str | None, str]]] = {known: [], unknown: []}
    for email in (known, unknown):
        for _ in range(FREE_ATTEMPTS + 1):
            body = await strict.login(email, "not-the-password-1", network)
            message = body["errors"][0]["message"]
            answers[email].append((code_of(body), message.split(" Try again")[0]))
    assert answers[known] == answers[unknown]
    assert [code for code, _ in answers[known]] == ["UNAUTHENTICATED"] * FREE_ATTEMPTS + [
        "RATE_LIMITED"
    ]


async def test_password_spraying_is_limited_per_network(strict: Strict) -> None:
    sprayer = new_client()
    victims = [(await strict.register(new_client()))["email"] for _ in range(3)]
    emails = victims + [f"sprayed-{i}-{uuid.uuid4().hex[:6]}@example.ru" for i in range(20)]
    codes = [code_of(await strict.login(e, "Summer2026!", sprayer)) for e in emails]
    assert codes[:CLIENT_FAILURES] == ["UNAUTHENTICATED"] * CLIENT_FAILURES
    assert set(codes[CLIENT_FAILURES:]) == {"RATE_LIMITED"}
    # A victim signs in from their own network meanwhile.
    assert code_of(await strict.login(victims[0], PASSWORD, new_client())) is None


async def test_sign_ins_that_succeed_do_not_use_up_the_network_budget(strict: Strict) -> None:
    office = new_client()
    person = await strict.register(new_client())
    for _ in range(CLIENT_FAILURES + 3):
        assert code_of(await strict.login(person["email"], PASSWORD, office)) is None


async def test_registrations_are_limited_per_network(strict: Strict) -> None:
    farm = new_client()
    for _ in range(REGISTRATIONS):
        await strict.register(farm)
    payload = {"email": f"x-{uuid.uuid4().hex[:8]}@example.ru", "password": PASSWORD}
    body = await strict.post(REGISTER, {"input": {**payload, "displayName": "Бот"}}, farm)
    assert code_of(body) == "RATE_LIMITED"
    assert body["errors"][0]["extensions"]["retryAfterSeconds"] > 0
    assert await strict.register(new_client())  # another network is not held up


async def test_a_forged_forwarded_header_is_not_believed_from_an_untrusted_peer(
    strict: Strict,
) -> None:
    # 127.0.0.1 is trusted, so the hop it names is the client; a forged hop before that
    # one (sent by the client itself) does not change who the client is.
    farm = new_client()
    for i in range(REGISTRATIONS):
        body = await strict.post(
            REGISTER,
            {
                "input": {
                    "email": f"forged-{i}-{uuid.uuid4().hex[:6]}@example.ru",
                    "password": PASSWORD,
                    "consentVersion": DEFAULT_CONSENT_VERSION,
                    "displayName": "Бот",
                }
            },
            f"{new_client()}, {farm}",
        )
        assert code_of(body) is None
    payload = {"email": f"f-{uuid.uuid4().hex[:6]}@example.ru", "password": PASSWORD}
    body = await strict.post(
        REGISTER, {"input": {**payload, "displayName": "Бот"}}, f"{new_client()}, {farm}"
    )
    assert code_of(body) == "RATE_LIMITED"


async def test_phone_codes_are_limited_per_number(strict: Strict) -> None:
    number = f"+7915{uuid.uuid4().int % 10**7:07d}"
    accounts = [await strict.register(new_client()) for _ in range(10)]
    codes = [
        code_of(await strict.post(REQUEST_CODE, {"p": number}, new_client(), a["accessToken"]))
        for a in accounts
    ]
    assert codes == [None] * CODES_PER_NUMBER + ["RATE_LIMITED"] * (10 - CODES_PER_NUMBER)
    assert strict.sender.texts.count(number) == CODES_PER_NUMBER


async def test_phone_codes_are_limited_per_network(strict: Strict) -> None:
    network = new_client()
    accounts = [await strict.register(new_client()) for _ in range(CODES_PER_CLIENT + 2)]
    numbers = [f"+7916{uuid.uuid4().int % 10**7:07d}" for _ in accounts]
    codes = [
        code_of(await strict.post(REQUEST_CODE, {"p": n}, network, a["accessToken"]))
        for a, n in zip(accounts, numbers, strict=True)
    ]
    assert codes == [None] * CODES_PER_CLIENT + ["RATE_LIMITED"] * 2
    assert sum(strict.sender.texts.count(n) for n in numbers) == CODES_PER_CLIENT


async def test_reset_mails_are_limited_per_address_alike_for_unknown_ones(strict: Strict) -> None:
    known = (await strict.register(new_client()))["email"]
    unknown = f"nobody-{uuid.uuid4().hex[:8]}@example.ru"
    for address in (known, unknown):
        # From a new network each time: the address's own budget is what runs out.
        codes = [
            code_of(await strict.post(REQUEST_RESET, {"e": address}, new_client()))
            for _ in range(MAILS_PER_ADDRESS + 2)
        ]
        assert codes == [None] * MAILS_PER_ADDRESS + ["RATE_LIMITED"] * 2, address


async def test_reset_mails_are_limited_per_network(strict: Strict) -> None:
    pump = new_client()
    addresses = [f"pumped-{i}-{uuid.uuid4().hex[:6]}@example.ru" for i in range(8)]
    codes = [code_of(await strict.post(REQUEST_RESET, {"e": a}, pump)) for a in addresses]
    assert codes == [None] * MAILS_PER_CLIENT + ["RATE_LIMITED"] * 3
    assert code_of(await strict.post(REQUEST_RESET, {"e": addresses[-1]}, new_client())) is None
