"""`graphql-transport-ws` (the `graphql-ws` library's protocol) on the WebSocket
upgrade of /graphql.

connection_init (once; its payload may carry `{"Authorization": "Bearer ..."}`,
else the upgrade's header is used) -> connection_ack; ping -> pong; each
`subscribe` runs one subscription (`subscriptions.py`) sending `next` per event
and `complete` at its end, or one `error`; a client's `complete` stops it.
Close codes as the protocol says: 4400 a malformed message, 4401 a subscribe
before the ack, 4406 no such subprotocol, 4408 no connection_init in time, 4409 a
subscription id in use, 4429 a second connection_init or too many connections
from one address. A subscription past the per-connection cap gets an `error`
(RATE_LIMITED) and the socket stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from veche_gateway.errors import INTERNAL, RequestError
from veche_gateway.gateway import Gateway, GraphQLRequest, NotASubscription
from veche_gateway.language import said
from veche_gateway.subscriptions import LiveLimit, SubscriptionFailed, events, plan

log = logging.getLogger("veche_gateway")

PROTOCOL = "graphql-transport-ws"
INTERNAL_ERROR = {"message": "Internal gateway error", "extensions": {"code": INTERNAL}}
RATE_LIMITED = "RATE_LIMITED"


class _Close(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


async def serve(
    websocket: WebSocket, gateway: Gateway, limit: LiveLimit, headers: dict[str, str]
) -> None:
    """One client socket, from the upgrade to its close."""
    if PROTOCOL not in websocket.scope.get("subprotocols", []):
        await websocket.accept()
        await websocket.close(4406, f"Subprotocol not acceptable: use {PROTOCOL}")
        return
    await websocket.accept(subprotocol=PROTOCOL)
    address = websocket.client.host if websocket.client else ""
    if not limit.acquire(address):
        await websocket.close(4429, "Too many connections from this address")
        return
    session = _Session(websocket, gateway, headers)
    try:
        await session.run()
    except _Close as close:
        with contextlib.suppress(Exception):
            await websocket.close(close.code, close.reason)
    except WebSocketDisconnect:
        pass
    finally:
        limit.release(address)
        await session.stop()


class _Session:
    """The protocol's state for one socket."""

    def __init__(self, websocket: WebSocket, gateway: Gateway, headers: dict[str, str]) -> None:
        self.websocket = websocket
        self.gateway = gateway
        self.headers = headers
        self.acknowledged = False
        self.operations: dict[str, asyncio.Task[None]] = {}
        self._send_lock = asyncio.Lock()

    async def run(self) -> None:
        wait = self.gateway.settings.connection_init_timeout_seconds
        try:
            first = await asyncio.wait_for(self._receive(), wait)
        except TimeoutError:
            raise _Close(4408, "Connection initialisation timeout") from None
        await self._handle(first)
        while True:
            await self._handle(await self._receive())

    async def stop(self) -> None:
        for task in list(self.operations.values()):
            task.cancel()
        for task in list(self.operations.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _receive(self) -> dict[str, Any]:
        raw = await self.websocket.receive_text()
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise _Close(4400, "Invalid message: not JSON") from None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise _Close(4400, "Invalid message: no type")
        return message

    async def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "connection_init":
            await self._init(message.get("payload"))
        elif kind == "ping":
            await self.send({"type": "pong"})
        elif kind == "pong":
            return
        elif kind == "subscribe":
            await self._subscribe(message)
        elif kind == "complete":
            self._complete(message.get("id"))
        else:
            raise _Close(4400, f"Invalid message type: {kind}")

    async def _init(self, payload: Any) -> None:
        if self.acknowledged:
            raise _Close(4429, "Too many initialisation requests")
        if payload is not None and not isinstance(payload, dict):
            raise _Close(4400, "Invalid connection_init payload: send an object")
        given = (payload or {}).get("Authorization") or (payload or {}).get("authorization")
        if given is not None:
            if not isinstance(given, str):
                raise _Close(4400, "Authorization must be a string: 'Bearer <access token>'")
            self.headers["authorization"] = given
        self.acknowledged = True
        await self.send({"type": "connection_ack"})

    async def _subscribe(self, message: dict[str, Any]) -> None:
        if not self.acknowledged:
            raise _Close(4401, "Unauthorized: send connection_init first")
        operation_id, request = _subscribe_message(message)
        if operation_id in self.operations:
            raise _Close(4409, f"Subscriber for {operation_id} already exists")
        cap = self.gateway.settings.max_subscriptions_per_connection
        if len(self.operations) >= cap:
            error = {
                "message": said(
                    f"At most {cap} subscriptions per connection: complete one first",
                    f"Не больше {cap} подписок на одно соединение: завершите одну из них",
                ),
                "extensions": {"code": RATE_LIMITED},
            }
            await self.send({"id": operation_id, "type": "error", "payload": [error]})
            return
        task = asyncio.create_task(self._run(operation_id, request))
        self.operations[operation_id] = task

    def _complete(self, operation_id: Any) -> None:
        task = self.operations.pop(str(operation_id), None)
        if task is not None:
            task.cancel()

    async def _run(self, operation_id: str, request: GraphQLRequest) -> None:
        """One subscription: `next` per event, then `complete`; or one `error`."""
        try:
            async for response in self._responses(request):
                await self.send({"id": operation_id, "type": "next", "payload": response})
            final: dict[str, Any] = {"id": operation_id, "type": "complete"}
        except SubscriptionFailed as failed:
            final = {"id": operation_id, "type": "error", "payload": failed.errors}
        except Exception:  # the socket and its other subscriptions carry on
            log.exception("subscription %s failed", self.headers.get("X-Request-Id"))
            final = {"id": operation_id, "type": "error", "payload": [INTERNAL_ERROR]}
        if self.operations.pop(operation_id, None) is not None:
            with contextlib.suppress(Exception):  # the socket may be gone
                await self.send(final)

    async def _responses(self, request: GraphQLRequest) -> AsyncIterator[dict[str, Any]]:
        """A subscription's responses; a query's or mutation's one (graphql-ws runs them too)."""
        try:
            live = plan(self.gateway, request)
        except NotASubscription:
            try:
                yield await self.gateway.execute(request, self.headers)
            except RequestError as exc:
                raise SubscriptionFailed(exc.errors) from None
            return
        async for response in events(self.gateway, live, self.headers):
            yield response

    async def send(self, message: Mapping[str, Any]) -> None:
        async with self._send_lock:
            await self.websocket.send_text(orjson.dumps(message).decode())


def _subscribe_message(message: dict[str, Any]) -> tuple[str, GraphQLRequest]:
    operation_id = message.get("id")
    payload = message.get("payload")
    if not isinstance(operation_id, str) or not operation_id or not isinstance(payload, dict):
        raise _Close(4400, "Invalid subscribe message: it needs an id and a payload")
    query = payload.get("query")
    variables = payload.get("variables")
    name = payload.get("operationName")
    extensions = payload.get("extensions")
    if (
        not isinstance(query, str | None)
        or not isinstance(variables, dict | None)
        or not isinstance(name, str | None)
        or not isinstance(extensions, dict | None)
    ):
        raise _Close(4400, "Invalid subscribe payload: query, variables, operationName")
    return operation_id, GraphQLRequest(query, name, variables or {}, extensions)
