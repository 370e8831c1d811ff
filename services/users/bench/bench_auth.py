"""Sign-up and sign-in latency (issue #13, item 8), and what a burst of sign-ins does
to everyone else's requests.

    python services/users/bench/bench_auth.py [--burst 100] [--clients 16]

Starts its own SecantusDB server and the users service (`python -m veche_users`) as
child processes and uses the RabbitMQ at AMQP_URL. Measures, from outside the
service's interpreter: `register` and `login` one at a time (p50/p95, and the
service's CPU per call from /proc), then a light read (`currentConsent`) on its own
and again while `--burst` logins run `--clients` at a time. argon2id runs at OWASP's
minimum (19 MiB, 2 passes, 1 lane; see UsersService). Not a test: numbers depend on
the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from veche_stack.broker import amqp_answers
from veche_stack.processes import Process, free_port
from veche_stack.stack import DEFAULT_AMQP_URL, mongo_url
from veche_stack.testing import cpu_seconds, percentile, run_concurrently

REGISTER = """mutation($input: RegisterInput!) { register(input: $input) { accessToken } }"""
LOGIN = """mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }"""
PROBE = "{ currentConsent { version } }"
PASSWORD = "bench password 1"
SAMPLES = 30


class Users:
    """The users service under test, seen from outside: its URL and its CPU clock."""

    def __init__(self, http: httpx.AsyncClient, url: str, pid: int) -> None:
        self.http = http
        self.url = url
        self.pid = pid
        self.consent = ""

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    async def call(self, query: str, variables: dict[str, Any] | None = None) -> float:
        """One request; its latency in seconds (a GraphQL error stops the run)."""
        started = time.perf_counter()
        answer = await self.http.post(self.url, json={"query": query, "variables": variables})
        took = time.perf_counter() - started
        body = answer.json()
        if body.get("errors"):
            sys.exit(f"{query[:40]}...: {body['errors'][0]['message']}")
        return took

    async def register(self, email: str) -> float:
        payload = {
            "email": email,
            "password": PASSWORD,
            "displayName": "Житель",
            "consentVersion": self.consent,
        }
        return await self.call(REGISTER, {"input": payload})

    async def login(self, email: str) -> float:
        return await self.call(LOGIN, {"e": email, "p": PASSWORD})


async def one_at_a_time(
    users: Users, name: str, call: Callable[[int], Awaitable[float]]
) -> tuple[str, str]:
    cpu = users.cpu_seconds()
    took = [await call(i) for i in range(SAMPLES)]
    cpu_ms = (users.cpu_seconds() - cpu) / SAMPLES * 1000
    p50, p95 = statistics.median(took) * 1000, percentile(took, 0.95) * 1000
    return name, f"p50 {p50:.0f} ms, p95 {p95:.0f} ms, service CPU {cpu_ms:.0f} ms/call"


async def probes(users: Users, until: Callable[[], bool]) -> list[float]:
    """Light reads one after another, 20 a second, until `until()`."""
    took: list[float] = []
    while not until() or len(took) < 5:
        took.append(await users.call(PROBE))
        await asyncio.sleep(0.05)
    return took


async def burst_effect(
    users: Users, emails: list[str], count: int, clients: int
) -> list[tuple[str, str]]:
    quiet_end = time.monotonic() + 3
    quiet = await probes(users, lambda: time.monotonic() > quiet_end)
    done = asyncio.Event()

    async def burst() -> float:
        async def one(i: int) -> None:
            await users.login(emails[i % len(emails)])

        wall = await run_concurrently(count, clients, one)
        done.set()
        return wall

    wall, busy = await asyncio.gather(burst(), probes(users, done.is_set))
    return [
        (f"{count} logins, {clients} at a time", f"{wall:.1f} s ({count / wall:.0f}/s)"),
        ("light read alone", _latencies(quiet)),
        ("light read during the burst", _latencies(busy)),
    ]


def _latencies(took: list[float]) -> str:
    p50, p95 = statistics.median(took) * 1000, percentile(took, 0.95) * 1000
    return f"p50 {p50:.0f} ms, p95 {p95:.0f} ms ({len(took)} reads)"


async def measure(users: Users, burst: int, clients: int) -> list[tuple[str, str]]:
    consent = (await users.http.post(users.url, json={"query": PROBE})).json()
    users.consent = consent["data"]["currentConsent"]["version"]
    run = uuid.uuid4().hex[:6]
    emails = [f"bench-{run}-{i}@example.ru" for i in range(SAMPLES)]
    rows = [
        await one_at_a_time(users, "register, one at a time", lambda i: users.register(emails[i])),
        await one_at_a_time(users, "login, one at a time", lambda i: users.login(emails[i])),
    ]
    return rows + await burst_effect(users, emails, burst, clients)


def _processes(work: Path, amqp: str) -> tuple[Process, Process, int]:
    mongo_port, users_port = free_port(), free_port()
    mongo = Process(
        "mongo-bench",
        [sys.executable, "-m", "secantus", "--host", "127.0.0.1", "--port", str(mongo_port),
         "--storage-path", str(work / "mongo"), "--log-level", "WARNING"],
        work / "mongo.log",
    )  # fmt: skip
    users = Process(
        "users-bench",
        [sys.executable, "-m", "veche_users"],
        work / "users.log",
        {
            "USERS_PORT": str(users_port),
            "USERS_MONGO_URL": mongo_url(mongo_port),
            "USERS_MONGO_DB": "bench_users",
            "USERS_REGISTRATIONS_PER_CLIENT": "100000",
            "AMQP_URL": amqp,
            "VECHE_NAMESPACE": f"bench-{uuid.uuid4().hex[:8]}.",
            "VECHE_DATA_DIR": str(work),
            "LOG_LEVEL": "WARNING",
        },
    )
    mongo.start()
    mongo.wait_port(mongo_port)
    return mongo, users, users_port


async def main(burst: int, clients: int) -> None:
    amqp = os.environ.get("AMQP_URL", DEFAULT_AMQP_URL)
    if not amqp_answers(amqp):
        sys.exit(f"No RabbitMQ answers at {amqp}; set AMQP_URL.")
    work = Path(tempfile.mkdtemp(prefix="veche-bench-auth-"))
    mongo, service, port = _processes(work, amqp)
    try:
        service.start()
        service.wait_http(f"http://127.0.0.1:{port}/ready")
        async with httpx.AsyncClient(timeout=60) as http:
            assert service.pid is not None
            users = Users(http, f"http://127.0.0.1:{port}/graphql", service.pid)
            rows = await measure(users, burst, clients)
        print("\n| users service | measured |\n|---|---|")
        for name, value in rows:
            print(f"| {name} | {value} |")
    finally:
        service.stop()
        mongo.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--clients", type=int, default=16)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.burst, arguments.clients))
