"""HTTP to the subgraphs: pooled keep-alive HTTP/1.1 connections, a timeout per fetch.

A subgraph fetch is the gateway's most frequent piece of work, so it is done
with as little as asyncio allows: one `asyncio.Protocol` per connection, the
request head prepared once per URL, bodies encoded and decoded with orjson,
idle connections reused last-in first-out (a connection the subgraph closed
is dropped as soon as the loop sees it close). Plain `http` and `https` (TLS
with the system's trust store); no proxies, no compression (`Accept-Encoding:
identity`), response bodies by Content-Length, chunked, or up to close.

A transport failure, a timeout, a 5xx or a body that is not a GraphQL
response becomes `SubgraphUnavailable`; anything else is handed back as the
subgraph's JSON response (its errors are the subgraph's to report).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

SDL_QUERY = "query __ApolloGetServiceDefinition__ { _service { sdl } }"
PROBE_QUERY = "query __VecheProbe__ { __typename }"  # the cheapest request a subgraph answers
MAX_HEAD_BYTES = 64 * 1024  # a response head larger than this is not a subgraph's
# Failures that happen before any byte of the request is written.
_UNSENT = frozenset({"ConnectError", "UnsupportedProtocol"})


class SubgraphUnavailable(Exception):
    def __init__(self, subgraph: str, reason: str, *, sent: bool = True) -> None:
        super().__init__(f'Subgraph "{subgraph}" is unavailable: {reason}')
        self.subgraph = subgraph
        self.reason = reason
        # False: no byte of the request reached the subgraph (it may go to another instance)
        self.sent = sent


class _Failed(Exception):
    """A connection-level failure; its `reason` names it as the client error it is."""

    def __init__(self, reason: str, sent: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.sent = sent  # False: nothing of the response arrived on a reused connection


@dataclass(frozen=True)
class _Origin:
    host: str
    port: int
    tls: bool
    path: bytes
    head: bytes  # the request head up to the per-request headers


def _origin(url: str) -> _Origin:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _Failed("UnsupportedProtocol")
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default = port == (443 if tls else 80)
    host = parts.hostname if default else f"{parts.hostname}:{port}"
    if ":" in parts.hostname:  # an IPv6 literal goes back in brackets
        host = f"[{parts.hostname}]" + ("" if default else f":{port}")
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\n"
        "Content-Type: application/json\r\nAccept: application/json\r\n"
        "Accept-Encoding: identity\r\n"
    ).encode("latin-1")
    return _Origin(parts.hostname, port, tls, path.encode(), head)


class _Response:
    __slots__ = ("body", "keep_alive", "status")

    def __init__(self, status: int, body: bytes, keep_alive: bool) -> None:
        self.status = status
        self.body = body
        self.keep_alive = keep_alive


class _Connection(asyncio.Protocol):
    """One keep-alive connection, one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[_Response] | None = None
        self.closed = False
        self.reused = False
        # the head being read: status, keep-alive, body framing
        self._status = 0
        self._keep_alive = True
        self._length: int | None = None
        self._chunked = False
        self._body_at = -1

    # --- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is None or self.waiter.done():
            self.close()  # bytes nobody asked for: the connection is not in a known state
            return
        try:
            response = self._parse(eof=False)
        except _Failed as exc:
            self._fail(exc)
            return
        if response is not None:
            self.waiter.set_result(response)

    def eof_received(self) -> bool:
        if self.waiter is not None and not self.waiter.done():
            if not self.buffer:  # closed before answering (an idle timeout, most likely)
                self._fail(_Failed("RemoteProtocolError", sent=False))
                return False
            try:
                response = self._parse(eof=True)
            except _Failed as exc:
                self._fail(exc)
            else:
                if response is not None:
                    self.waiter.set_result(response)
                else:
                    self._fail(_Failed("RemoteProtocolError"))
        self.closed = True
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(_Failed("ReadError", sent=bool(self.buffer)))

    # --- requests -----------------------------------------------------------------

    async def request(self, data: bytes) -> _Response:
        assert self.transport is not None
        self.buffer.clear()
        self._body_at = -1
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        try:
            return await self.waiter
        finally:
            self.waiter = None

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _fail(self, exc: _Failed) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)
        self.close()

    def _parse(self, eof: bool) -> _Response | None:
        """The response, once all of it is in the buffer."""
        buffer = self.buffer
        if self._body_at < 0:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > MAX_HEAD_BYTES or eof:
                    raise _Failed("RemoteProtocolError")
                return None
            self._read_head(bytes(buffer[:end]))
            if 100 <= self._status < 200:  # an interim response: the real one follows
                del buffer[: end + 4]
                return self._parse(eof)
            self._body_at = end + 4
        start = self._body_at
        if self._chunked:
            return self._parse_chunked(start)
        if self._length is not None:
            if len(buffer) - start < self._length:
                if eof:
                    raise _Failed("RemoteProtocolError")
                return None
            return _Response(
                self._status, bytes(buffer[start : start + self._length]), self._keep_alive
            )
        if not eof:  # the body runs up to the end of the connection
            return None
        return _Response(self._status, bytes(buffer[start:]), False)

    def _read_head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        status = lines[0].split(b" ", 2)
        if len(status) < 2 or not status[0].startswith(b"HTTP/1.") or not status[1].isdigit():
            raise _Failed("RemoteProtocolError")
        self._status = int(status[1])
        self._keep_alive = status[0] == b"HTTP/1.1"
        self._length, self._chunked = None, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            value = value.strip().lower()
            if name == b"content-length":
                if not value.isdigit():
                    raise _Failed("RemoteProtocolError")
                self._length = int(value)
            elif name == b"transfer-encoding":
                self._chunked = value.endswith(b"chunked")
            elif name == b"connection":
                if b"close" in value:
                    self._keep_alive = False
                elif b"keep-alive" in value:
                    self._keep_alive = True
            elif name == b"content-encoding" and value not in (b"", b"identity"):
                raise _Failed("DecodingError")
        if self._status in (204, 304):
            self._length = 0

    def _parse_chunked(self, at: int) -> _Response | None:
        buffer = self.buffer
        body = bytearray()
        while True:
            line_end = buffer.find(b"\r\n", at)
            if line_end < 0:
                return None
            try:
                size = int(bytes(buffer[at:line_end]).split(b";", 1)[0], 16)
            except ValueError:
                raise _Failed("RemoteProtocolError") from None
            if size == 0:
                # the trailer section ends with an empty line
                if buffer.find(b"\r\n\r\n", line_end) < 0:
                    return None
                return _Response(self._status, bytes(body), self._keep_alive)
            if len(buffer) < line_end + 2 + size + 2:
                return None
            body += buffer[line_end + 2 : line_end + 2 + size]
            at = line_end + 2 + size + 2


class Transport:
    def __init__(self, timeout: float, max_connections: int = 100) -> None:
        self.timeout = timeout
        self.max_connections = max_connections
        self._origins: dict[str, _Origin] = {}
        self._idle: dict[tuple[str, int, bool], list[_Connection]] = {}
        self._slots: asyncio.Semaphore | None = None  # made in the loop that uses it
        self._tls: ssl.SSLContext | None = None

    async def aclose(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()

    async def post(
        self,
        subgraph: str,
        url: str,
        payload: Mapping[str, Any],
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        try:
            origin = self._origins.get(url) or self._remember(url)
            data = _request(origin, orjson.dumps(payload), headers)
            async with asyncio.timeout(timeout if timeout is not None else self.timeout):
                response = await self._exchange(origin, data)
        except TimeoutError:
            raise SubgraphUnavailable(subgraph, "timed out") from None
        except _Failed as exc:
            unsent = exc.reason in _UNSENT
            raise SubgraphUnavailable(subgraph, exc.reason, sent=not unsent) from None
        if response.status >= 500:
            raise SubgraphUnavailable(subgraph, f"HTTP {response.status}")
        try:
            body = orjson.loads(response.body)
        except orjson.JSONDecodeError:
            raise SubgraphUnavailable(
                subgraph, f"HTTP {response.status} without a JSON body"
            ) from None
        if not isinstance(body, dict) or not ("data" in body or "errors" in body):
            raise SubgraphUnavailable(subgraph, "the response is not a GraphQL response")
        return body

    def _remember(self, url: str) -> _Origin:
        origin = _origin(url)
        if len(self._origins) < 1000:  # URLs come from settings: a handful
            self._origins[url] = origin
        return origin

    async def _exchange(self, origin: _Origin, data: bytes) -> _Response:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_connections)
        async with self._slots:
            for _ in range(2):
                connection = await self._connection(origin)
                try:
                    response = await connection.request(data)
                except _Failed as exc:
                    # The subgraph closed an idle connection as we reused it: once more, on
                    # a new connection. Its other idle ones are most likely closed too (it
                    # restarted, or was killed): a new one tells at once (ConnectError).
                    if connection.reused and not exc.sent:
                        self._drop_idle(origin)
                        continue
                    raise
                except BaseException:  # a timeout or cancellation leaves it mid-response
                    connection.close()
                    raise
                if response.keep_alive and not connection.closed:
                    connection.reused = True
                    self._idle.setdefault((origin.host, origin.port, origin.tls), []).append(
                        connection
                    )
                else:
                    connection.close()
                return response
        raise _Failed("ReadError")

    def _drop_idle(self, origin: _Origin) -> None:
        for connection in self._idle.pop((origin.host, origin.port, origin.tls), []):
            connection.close()

    async def _connection(self, origin: _Origin) -> _Connection:
        idle = self._idle.get((origin.host, origin.port, origin.tls))
        while idle:
            connection = idle.pop()
            if not connection.closed:
                return connection
        loop = asyncio.get_running_loop()
        tls: ssl.SSLContext | None = None
        if origin.tls:
            if self._tls is None:
                self._tls = ssl.create_default_context()
            tls = self._tls
        try:
            _, protocol = await loop.create_connection(
                _Connection, origin.host, origin.port, ssl=tls
            )
        except OSError:
            raise _Failed("ConnectError") from None
        return protocol

    async def fetch_sdl(self, subgraph: str, url: str, timeout: float) -> str:
        body = await self.post(subgraph, url, {"query": SDL_QUERY}, timeout=timeout)
        try:
            sdl = body["data"]["_service"]["sdl"]
        except (KeyError, TypeError):
            raise SubgraphUnavailable(
                subgraph, f"no _service.sdl in the response: {body.get('errors')}"
            ) from None
        if not isinstance(sdl, str):
            raise SubgraphUnavailable(subgraph, "_service.sdl is not a string")
        return sdl

    async def probe(self, subgraph: str, url: str, timeout: float) -> None:
        """Raise `SubgraphUnavailable` unless the subgraph answers a trivial query."""
        await self.post(subgraph, url, {"query": PROBE_QUERY}, timeout=timeout)


def _request(origin: _Origin, body: bytes, headers: Mapping[str, str] | None) -> bytes:
    parts = [origin.head]
    for name, value in (headers or {}).items():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            continue  # never let a forwarded value end the head early
        parts.append(f"{name}: {value}\r\n".encode("latin-1", "replace"))
    parts.append(b"Content-Length: %d\r\n\r\n" % len(body))
    parts.append(body)
    return b"".join(parts)
