"""The gateway as a `graphql-transport-ws` client of a subgraph: one subscription.

One WebSocket per client subscription (the subgraph's own subscribers are its
sockets; no state is shared between gateway instances). The `websockets`
package is the client: uvicorn serves WebSockets with it too, so one pinned
library does both, and its asyncio API gives the close code and reason a
subgraph sends.

`subscribe` yields each `next` payload as it arrives and returns on `complete`;
an `error` message raises `UpstreamRefused` with its errors; a socket that
cannot be opened, or closes without `complete` (the subgraph restarted), raises
`SubgraphUnavailable`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.typing import Subprotocol

from veche_gateway.transport import SubgraphUnavailable

PROTOCOL = Subprotocol("graphql-transport-ws")
# An event of a subgraph is one small object; this bounds a misbehaving one.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


class UpstreamRefused(Exception):
    """The subgraph answered the subscription with an `error` message."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors[0].get("message") if errors else "refused")
        self.errors = errors


class _Ended(Exception):
    """The subgraph's socket ended the subscription outside the protocol."""


def ws_url(url: str) -> str:
    """The subgraph's GraphQL URL as a WebSocket URL (same path)."""
    if url.startswith("https://"):
        return "wss://" + url[len("https://") :]
    if url.startswith("http://"):
        return "ws://" + url[len("http://") :]
    return url


async def subscribe(
    subgraph: str,
    url: str,
    payload: Mapping[str, Any],
    headers: Mapping[str, str],
    timeout: float,
) -> AsyncIterator[dict[str, Any]]:
    """Each `next` payload of one subscription to `subgraph` (see the module doc)."""
    try:
        async with connect(
            ws_url(url),
            subprotocols=[PROTOCOL],
            additional_headers=dict(headers),
            open_timeout=timeout,
            max_size=MAX_MESSAGE_BYTES,
        ) as socket:
            await _handshake(socket, headers, timeout)
            await _send(socket, {"id": "1", "type": "subscribe", "payload": dict(payload)})
            async for message in _messages(socket):
                yield message
    except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
        raise SubgraphUnavailable(subgraph, f"cannot subscribe: {exc}") from None
    except (ConnectionClosed, _Ended) as exc:
        raise SubgraphUnavailable(subgraph, f"the subscription ended: {exc}") from None


async def _send(socket: ClientConnection, message: Mapping[str, Any]) -> None:
    await socket.send(orjson.dumps(message).decode())


async def _handshake(socket: ClientConnection, headers: Mapping[str, str], timeout: float) -> None:
    """connection_init (the caller's token in its payload too) and its ack."""
    init: dict[str, Any] = {"type": "connection_init", "payload": {}}
    if "authorization" in headers:
        init["payload"] = {"Authorization": headers["authorization"]}
    await _send(socket, init)
    reply = orjson.loads(await asyncio.wait_for(socket.recv(), timeout))
    if reply.get("type") != "connection_ack":
        raise _Ended(f"the subgraph answered connection_init with {reply.get('type')!r}")


async def _messages(socket: ClientConnection) -> AsyncIterator[dict[str, Any]]:
    """The subscription's `next` payloads, answering pings, until `complete`."""
    async for raw in socket:
        message = orjson.loads(raw)
        kind = message.get("type")
        if kind == "ping":
            await _send(socket, {"type": "pong"})
        elif kind == "next" and isinstance(message.get("payload"), dict):
            yield message["payload"]
        elif kind == "error":
            errors = message.get("payload")
            raise UpstreamRefused(errors if isinstance(errors, list) else [])
        elif kind == "complete":
            return
    raise _Ended(f"the socket closed without `complete` (code {socket.close_code})")
