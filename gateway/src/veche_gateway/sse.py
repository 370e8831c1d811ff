"""GraphQL over Server-Sent Events, "distinct connections" mode: a POST to /graphql
with `Accept: text/event-stream` holds one subscription open as one event stream.

Each event of the subscription is `event: next` with the response as its data;
the end is `event: complete`. A refusal before it starts (limits, validation, a
bad document) is the usual JSON answer; a failure after the stream began
(the subgraph refused it or went away) is a last `next` with its errors, then
`complete`. A comment line every `KEEP_ALIVE_SECONDS` keeps proxies from
closing an idle stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import StreamingResponse

from veche_gateway.gateway import Gateway, GraphQLRequest, LiveOperation
from veche_gateway.language import said
from veche_gateway.subscriptions import LiveLimit, SubscriptionFailed, events, plan

EVENT_STREAM = "text/event-stream"
KEEP_ALIVE_SECONDS = 15.0


def wanted(request: Request) -> bool:
    """The client asks for an event stream (and not JSON first)."""
    return request.method == "POST" and EVENT_STREAM in request.headers.get("accept", "")


def _event(kind: str, data: Any) -> bytes:
    body = orjson.dumps(data).decode() if data is not None else ""
    return f"event: {kind}\ndata: {body}\n\n".encode()


def open_stream(
    request: Request,
    gateway: Gateway,
    graphql_request: GraphQLRequest,
    headers: dict[str, str],
    limit: LiveLimit,
) -> StreamingResponse:
    """The event stream of one subscription; `SubscriptionFailed` when it is refused."""
    live = plan(gateway, graphql_request)
    address = request.client.host if request.client else ""
    if not limit.acquire(address):
        raise SubscriptionFailed(
            [
                {
                    "message": said(
                        "Too many live connections from this address: close one first",
                        "Слишком много живых соединений с этого адреса: закройте одно из них",
                    ),
                    "extensions": {"code": "RATE_LIMITED"},
                }
            ]
        )
    stream = _stream(gateway, live, headers, limit, address)
    return StreamingResponse(
        stream,
        media_type=EVENT_STREAM,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **_request_id(headers)},
    )


def _request_id(headers: dict[str, str]) -> dict[str, str]:
    return {"X-Request-Id": headers["X-Request-Id"]} if "X-Request-Id" in headers else {}


async def _stream(
    gateway: Gateway, live: LiveOperation, headers: dict[str, str], limit: LiveLimit, address: str
) -> AsyncIterator[bytes]:
    try:
        async for item in _with_keep_alive(events(gateway, live, headers)):
            yield b": keep-alive\n\n" if item is None else _event("next", item)
    except SubscriptionFailed as failed:
        yield _event("next", {"errors": failed.errors})
    finally:
        limit.release(address)
    yield _event("complete", None)


async def _with_keep_alive(
    source: AsyncIterator[dict[str, Any]],
) -> AsyncIterator[dict[str, Any] | None]:
    """The source's items, and None whenever it has been quiet for a while."""
    iterator = aiter(source)
    pending: asyncio.Task[dict[str, Any]] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(iterator))
            done, _ = await asyncio.wait({pending}, timeout=KEEP_ALIVE_SECONDS)
            if not done:
                yield None
                continue
            finished, pending = pending, None
            try:
                yield finished.result()
            except StopAsyncIteration:
                return
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        closing = getattr(iterator, "aclose", None)
        if closing is not None:
            await closing()
