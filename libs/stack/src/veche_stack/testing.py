"""Test helpers: serve an app on a real port, a TCP proxy that can cut the broker
off, a GraphQL client, a bounded wait for eventual effects, and the broker as
another service sees it (a bound queue to read events, publishing events), the
seeded admin's TOTP codes, and what the benches measure with."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import aio_pika
import httpx
import uvicorn
from aio_pika.abc import AbstractQueue
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from veche_kit import totp
from veche_kit.auth import Jwks, Principal, TokenVerifier
from veche_kit.bus import EXCHANGE
from veche_kit.clock import utcnow
from veche_kit.events import Envelope
from veche_stack.processes import free_port

T = TypeVar("T")


@contextlib.asynccontextmanager
async def serve(app: Any, port: int | None = None) -> AsyncIterator[str]:
    """Serves an ASGI app (lifespan included) on loopback; yields its base URL."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 30
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("server stopped while starting")
        if time.monotonic() > deadline:
            raise TimeoutError("server did not start")
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def eventually(
    check: Callable[[], Awaitable[T]], timeout: float = 15.0, interval: float = 0.1
) -> T:
    """Polls `check` until it returns a truthy value; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last value: {value!r})")
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def bound_queue(amqp_url: str, namespace: str, *keys: str) -> AsyncIterator[AbstractQueue]:
    """An exclusive queue bound to the namespace's exchange, as any consumer would bind."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            namespace + EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(exclusive=True)
        for key in keys:
            await queue.bind(exchange, routing_key=key)
        yield queue


async def take(queue: AbstractQueue) -> list[dict[str, Any]]:
    """Every message waiting in the queue now."""
    received: list[dict[str, Any]] = []
    while (message := await queue.get(no_ack=True, fail=False)) is not None:
        received.append(json.loads(message.body))
    return received


async def publish(amqp_url: str, namespace: str, *envelopes: Envelope) -> None:
    """Publishes envelopes to the namespace's exchange, as another service's relay would."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            namespace + EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        for envelope in envelopes:
            await exchange.publish(
                aio_pika.Message(envelope.model_dump_json().encode(), message_id=str(envelope.id)),
                routing_key=envelope.type,
            )


# The last step each (secret, server) got a code for, in this process: the users service
# takes each step once (a replayed code is refused), so tests that sign in as the admin
# several times in a row must never send one step's code twice to the same store.
_used_steps: dict[tuple[str, str], int] = {}
_MARGIN = 10.0  # seconds a code handed out must stay acceptable, at least


def _reserve_step(secret: str, scope: str) -> tuple[int, float]:
    """The next step not handed out yet that the server accepts now or soon, and how
    many seconds to wait until it does (none for the first two or three in a row). The
    past step only while it stays acceptable for `_MARGIN` seconds more."""
    now = time.time()
    current = totp.step_at(now)
    left_in_step = (current + 1) * totp.PERIOD - now
    earliest = current - totp.SKEW if left_in_step > _MARGIN else current
    step = max(_used_steps.get((secret, scope), earliest - 1) + 1, earliest)
    _used_steps[(secret, scope)] = step
    wait = (step - totp.SKEW) * totp.PERIOD - now
    return step, max(0.0, wait + 0.05)


def fresh_code(secret: str, scope: str = "") -> str:
    """A TOTP code for `secret` that no earlier call for `scope` (the server it goes to,
    e.g. the gateway's URL) got; waits, at most a step, when the accepted steps are used
    up. For synchronous tools: it blocks."""
    step, wait = _reserve_step(secret, scope)
    time.sleep(wait)
    return totp.hotp(totp.secret_bytes(secret), step)


async def fresh_code_async(secret: str, scope: str = "") -> str:
    """`fresh_code` for async tests: waits without blocking the event loop."""
    step, wait = _reserve_step(secret, scope)
    await asyncio.sleep(wait)
    return totp.hotp(totp.secret_bytes(secret), step)


# Tests read refusals in English (the language their asserts are written in); a real
# client that asks for nothing gets Russian. `without_header("Accept-Language")` is one.
DEFAULT_HEADERS = {"Accept-Language": "en"}


class GraphQLClient:
    """Posts GraphQL documents to one endpoint, optionally as a signed-in user; sends
    `DEFAULT_HEADERS` unless told other headers."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        http: httpx.AsyncClient | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.url = url
        self.token = token
        self.http = http or httpx.AsyncClient(timeout=60)
        self.headers = dict(DEFAULT_HEADERS) if headers is None else headers

    def as_user(self, token: str | None) -> GraphQLClient:
        return GraphQLClient(self.url, token, self.http, self.headers)

    def with_headers(self, **headers: str) -> GraphQLClient:
        """The same client sending these headers too (`Accept_Language="en"`: `_` is `-`)."""
        more = {name.replace("_", "-"): value for name, value in headers.items()}
        return GraphQLClient(self.url, self.token, self.http, {**self.headers, **more})

    def without_header(self, name: str) -> GraphQLClient:
        """The same client not sending header `name` (e.g. the default Accept-Language)."""
        kept = {key: value for key, value in self.headers.items() if key.lower() != name.lower()}
        return GraphQLClient(self.url, self.token, self.http, kept)

    async def post(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = dict(self.headers)
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        response = await self.http.post(
            self.url, json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code in (200, 400), (
            f"HTTP {response.status_code}: {response.text[:500]}"
        )
        body: dict[str, Any] = response.json()
        return body

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The `data` of a response that must have no errors."""
        body = await self.post(query, variables)
        assert not body.get("errors"), body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    async def error_code(self, query: str, variables: dict[str, Any] | None = None) -> str:
        """The `extensions.code` of the first error of a response that must fail."""
        body = await self.post(query, variables)
        assert body.get("errors"), f"expected an error, got {body}"
        code: str = body["errors"][0]["extensions"]["code"]
        return code

    async def aclose(self) -> None:
        await self.http.aclose()


class TcpProxy:
    """Forwards a loopback port to a target; `cut()` simulates the target going away."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _accept(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        self._writers.update({client_writer, upstream_writer})
        await asyncio.gather(
            self._pipe(client_reader, upstream_writer), self._pipe(upstream_reader, client_writer)
        )
        self._writers.difference_update({client_writer, upstream_writer})

    async def cut(self) -> None:
        """Stops accepting and drops every open connection."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        if server is not None:
            await server.wait_closed()

    async def restore(self) -> None:
        await self.start()

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"


class TokenMint:
    """Signs access tokens for tests of services other than users, and serves their JWKS."""

    def __init__(self, issuer: str = "veche-users") -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import (
            Encoding,
            NoEncryption,
            PrivateFormat,
        )

        from veche_kit.signing import SigningKey

        pem = Ed25519PrivateKey.generate().private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        )
        self.key = SigningKey.from_pem(pem)
        self.issuer = issuer

    def verifier(self) -> TokenVerifier:
        async def keys() -> Jwks:
            return self.key.jwks()

        return TokenVerifier(keys, self.issuer)

    def jwks_app(self) -> Starlette:
        """Serves the mint's keys at /.well-known/jwks.json, for a service run as a process."""

        async def jwks(_: Request) -> Response:
            return JSONResponse(self.key.jwks())

        return Starlette(routes=[Route("/.well-known/jwks.json", jwks)])

    def token(self, principal: Principal, ttl_minutes: int = 15) -> str:
        return self.key.issue(
            principal, issuer=self.issuer, now=utcnow(), ttl=timedelta(minutes=ttl_minutes)
        )


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def run_concurrently(
    count: int, clients: int, work: Callable[[int], Awaitable[None]]
) -> float:
    """Runs work(0..count-1) on `clients` workers; returns the wall time."""
    queue = iter(range(count))

    async def worker() -> None:
        for i in queue:
            await work(i)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return time.perf_counter() - started


# ─────────────────────────── benchmarks ───────────────────────────

# wrk posts one fixed body (`{body}`: a JSON string literal of the request); `BAD n`
# at the end counts answers that are not a clean 200.
WRK_POST_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = {body}
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0 end
function response(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then bad = bad + 1 end
end
function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + t:get("bad") end
  io.write(string.format("BAD %d\\n", total))
end
"""


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds (its threads included), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # stat(5) 14, 15
