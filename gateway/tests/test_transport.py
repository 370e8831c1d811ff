"""The subgraph transport against a raw loopback HTTP server that answers as told.

Each test scripts the server's bytes, so the framings a subgraph server may
use (Content-Length, chunked, up to close), keep-alive reuse, a subgraph
closing an idle connection, and every way a fetch can fail are each seen on
the wire.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from veche_gateway.transport import SubgraphUnavailable, Transport

Answer = Callable[[bytes], bytes | None]  # request bytes -> response bytes; None: close


@dataclass
class Server:
    url: str
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0


def _json(body: bytes, status: str = "200 OK", extra: bytes = b"") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n".encode()
        + extra
        + b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )


def _requests(buffer: bytearray) -> list[bytes]:
    """Complete requests (head and Content-Length body) taken off the buffer."""
    out = []
    while (end := buffer.find(b"\r\n\r\n")) >= 0:
        head = bytes(buffer[:end]).lower()
        length = int(head.split(b"content-length: ")[1].split(b"\r\n")[0])
        if len(buffer) < end + 4 + length:
            break
        out.append(bytes(buffer[: end + 4 + length]))
        del buffer[: end + 4 + length]
    return out


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Answer], Awaitable[Server]]]:
    servers: list[asyncio.Server] = []

    async def start(answer: Answer) -> Server:
        server_info = Server("")

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            server_info.connections += 1
            buffer = bytearray()
            try:
                while data := await reader.read(65536):
                    buffer += data
                    for request in _requests(buffer):
                        server_info.requests.append(request)
                        response = answer(request)
                        if response is None:
                            return
                        writer.write(response)
                        await writer.drain()
                        if response.startswith(b"HTTP/1.0"):
                            return  # HTTP/1.0 without a length: the body ends at close
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        server_info.url = f"http://127.0.0.1:{port}/graphql"
        return server_info

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def test_keep_alive_reuses_one_connection(
    serve: Callable[[Answer], Awaitable[Server]],
) -> None:
    server = await serve(lambda _: _json(b'{"data":{"n":1}}'))
    transport = Transport(timeout=5)
    try:
        for _ in range(3):
            body = await transport.post("s", server.url, {"query": "{ n }"}, {"X-Request-Id": "r1"})
            assert body == {"data": {"n": 1}}
    finally:
        await transport.aclose()
    assert server.connections == 1
    head, _, payload = server.requests[0].partition(b"\r\n\r\n")
    assert head.startswith(b"POST /graphql HTTP/1.1\r\n")
    assert b"\r\nX-Request-Id: r1" in head
    assert b"\r\nContent-Type: application/json" in head
    assert payload == b'{"query":"{ n }"}'


async def test_chunked_and_close_delimited_bodies(
    serve: Callable[[Answer], Awaitable[Server]],
) -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'5\r\n{"dat\r\n10;ext=1\r\na":{"n":2}}     \r\n0\r\n\r\n'
    )
    to_close = b'HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{"data":{"n":3}}'
    answers = iter([chunked, to_close])
    server = await serve(lambda _: next(answers))
    transport = Transport(timeout=5)
    try:
        assert await transport.post("s", server.url, {"query": "{ n }"}) == {"data": {"n": 2}}
        # an HTTP/1.0 answer without a length ends when the server closes
        closing = await serve(lambda _: to_close)
        assert await transport.post("s", closing.url, {"query": "{ n }"}) == {"data": {"n": 3}}
        assert await transport.post("s", closing.url, {"query": "{ n }"}) == {"data": {"n": 3}}
    finally:
        await transport.aclose()
    assert closing.connections == 2  # not kept: it was closed after each answer


async def test_an_idle_connection_the_subgraph_closed_is_replaced(
    serve: Callable[[Answer], Awaitable[Server]],
) -> None:
    # the server answers once per connection, then closes it without saying so
    seen = 0

    def once(_: bytes) -> bytes | None:
        nonlocal seen
        seen += 1
        return None if seen % 2 == 0 else _json(b'{"data":{"n":4}}')

    server = await serve(once)
    transport = Transport(timeout=5)
    try:
        assert await transport.post("s", server.url, {"query": "{ n }"}) == {"data": {"n": 4}}
        # the second request meets the closed connection, then goes on a new one
        assert await transport.post("s", server.url, {"query": "{ n }"}) == {"data": {"n": 4}}
    finally:
        await transport.aclose()
    assert server.connections == 2


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        (_json(b"oops", "502 Bad Gateway"), "HTTP 502"),
        (_json(b"<html>", "404 Not Found"), "HTTP 404 without a JSON body"),
        (_json(b"[1, 2]"), "the response is not a GraphQL response"),
        (b"SMTP ready\r\n\r\n", "RemoteProtocolError"),
        (_json(b"{}", extra=b"Content-Encoding: gzip\r\n"), "DecodingError"),
        (None, "RemoteProtocolError"),  # closed without an answer
    ],
)
async def test_failures_name_their_reason(
    serve: Callable[[Answer], Awaitable[Server]], response: bytes | None, reason: str
) -> None:
    server = await serve(lambda _: response)
    transport = Transport(timeout=5)
    try:
        with pytest.raises(SubgraphUnavailable) as caught:
            await transport.post("polls", server.url, {"query": "{ n }"})
    finally:
        await transport.aclose()
    assert str(caught.value) == f'Subgraph "polls" is unavailable: {reason}'


async def test_a_silent_subgraph_times_out_and_its_connection_is_dropped(
    serve: Callable[[Answer], Awaitable[Server]],
) -> None:
    silent = asyncio.Event()
    server = await serve(lambda _: b"" if not silent.is_set() else _json(b'{"data":{}}'))
    transport = Transport(timeout=0.2)
    try:
        with pytest.raises(SubgraphUnavailable, match=r"timed out$"):
            await transport.post("s", server.url, {"query": "{ n }"})
        silent.set()
        # the late connection is not reused: its answer would belong to the first fetch
        assert await transport.post("s", server.url, {"query": "{ n }"}) == {"data": {}}
    finally:
        await transport.aclose()
    assert server.connections == 2


async def test_unreachable_and_unsupported_urls() -> None:
    transport = Transport(timeout=5)
    try:
        with pytest.raises(SubgraphUnavailable, match=r"ConnectError$"):
            await transport.post("s", "http://127.0.0.1:9/graphql", {"query": "{ n }"})
        with pytest.raises(SubgraphUnavailable, match=r"UnsupportedProtocol$"):
            await transport.post("s", "ftp://127.0.0.1/graphql", {"query": "{ n }"})
    finally:
        await transport.aclose()


async def test_a_forwarded_header_cannot_end_the_request_head(
    serve: Callable[[Answer], Awaitable[Server]],
) -> None:
    server = await serve(lambda _: _json(b'{"data":{}}'))
    transport = Transport(timeout=5)
    try:
        await transport.post(
            "s",
            server.url,
            {"query": "{ n }"},
            {"authorization": "Bearer t\r\nX-Evil: 1", "traceparent": "00-ab-cd-01"},
        )
    finally:
        await transport.aclose()
    head = server.requests[0].partition(b"\r\n\r\n")[0]
    assert b"X-Evil" not in head
    assert b"authorization" not in head
    assert b"\r\ntraceparent: 00-ab-cd-01" in head
