"""Subscriptions through the gateway, whatever the client's protocol (ws.py, sse.py).

```
client ── subscribe ──▶ Gateway.plan_subscription   limits, validation, the query planner
                              │ root fetch: `subscription { pollResults … }` to its owner
                              ▼
                        upstream.subscribe ──▶ owning subgraph (graphql-transport-ws)
                              │ each `next`
                              ▼
                        Executor.run_event          the rest of the plan (e.g. Poll.author
                              │                      from users), shaped as a query's
                              ▼
client ◀── next ── one response per event; `complete` when the subgraph completes
```

An accepted subscription lives no longer than the caller's access token: at the
token's `exp` it ends with UNAUTHENTICATED (reason TOKEN_EXPIRED), updates or
not (the subgraph checks the token again only before an update). The gateway
reads `exp` without verifying the token: the subgraph verified it on subscribe,
and a token the subgraph took has a genuine `exp`.

Every way a subscription ends badly is one `SubscriptionFailed` with the GraphQL
errors the client gets: refused by the gateway (a `RequestError`), refused by
the subgraph (its `error` message, codes kept), or the subgraph gone
(`SUBGRAPH_UNAVAILABLE`: it restarted or stopped; subscribe again).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import orjson

from veche_gateway.errors import INTERNAL, SUBGRAPH_UNAVAILABLE, PlanError, RequestError
from veche_gateway.execute import subscription_root
from veche_gateway.gateway import Gateway, GraphQLRequest, LiveOperation, NotASubscription
from veche_gateway.language import said
from veche_gateway.shared import Feeds, feed_key, root_field
from veche_gateway.transport import SubgraphUnavailable
from veche_gateway.upstream import UpstreamRefused, subscribe

log = logging.getLogger("veche_gateway")

UNAUTHENTICATED = "UNAUTHENTICATED"
TOKEN_EXPIRED = "TOKEN_EXPIRED"


class SubscriptionFailed(Exception):
    """A subscription refused or ended by a failure: the errors the client gets."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors[0].get("message") if errors else "subscription failed")
        self.errors = errors


class LiveLimit:
    """Open live connections (WebSockets and event streams) per client address."""

    def __init__(self, per_client: int) -> None:
        self.per_client = per_client
        self._open: dict[str, int] = {}

    def acquire(self, address: str) -> bool:
        if self._open.get(address, 0) >= self.per_client:
            return False
        self._open[address] = self._open.get(address, 0) + 1
        return True

    def release(self, address: str) -> None:
        left = self._open.get(address, 1) - 1
        if left > 0:
            self._open[address] = left
        else:
            self._open.pop(address, None)


def plan(gateway: Gateway, request: GraphQLRequest) -> LiveOperation:
    """The planned subscription, or `SubscriptionFailed` with the refusal's errors
    (`NotASubscription` for a query or mutation: the caller answers it once)."""
    try:
        return gateway.plan_subscription(request)
    except NotASubscription:
        raise
    except RequestError as exc:
        raise SubscriptionFailed(exc.errors) from None


async def events(
    gateway: Gateway, live: LiveOperation, headers: Mapping[str, str]
) -> AsyncIterator[dict[str, Any]]:
    """One client response per event of the owning subgraph, until it completes."""
    try:
        root, _ = subscription_root(live.plan)
    except PlanError as exc:
        raise SubscriptionFailed([_error(str(exc), INTERNAL)]) from None
    sent = {n: live.variables[n] for n in root.variable_usages if n in live.variables}
    payload: dict[str, Any] = {"query": root.document, "variables": sent}
    timeout = gateway.settings.fetch_timeout_seconds

    async def upstream() -> AsyncIterator[dict[str, Any]]:
        url = gateway.instance_url(root.subgraph)  # the next instance whose breaker is closed
        async for body in subscribe(root.subgraph, url, payload, headers, timeout):
            yield body

    # Shared by the subgraph's whole url list: identical subscriptions share one feed
    # whichever instance it was opened on.
    all_instances = gateway.urls[root.subgraph]
    bodies = _shared(gateway, root.document, all_instances, sent, headers, upstream)
    try:
        async for body in until_expiry(bodies, token_expiry(headers)):
            yield await gateway.executor.run_event(
                live.plan, live.shaper, body, live.variables, headers
            )
    except UpstreamRefused as exc:
        raise SubscriptionFailed([_coded(e, root.subgraph) for e in exc.errors]) from None
    except SubgraphUnavailable as exc:
        log.warning("subscription %s: %s", headers.get("X-Request-Id"), exc)
        message = said(
            f"{exc}; subscribe again",
            f"Сервис «{exc.subgraph}» недоступен ({exc.reason}): подпишитесь снова",
        )
        error = _error(message, SUBGRAPH_UNAVAILABLE)
        error["extensions"]["serviceName"] = exc.subgraph
        raise SubscriptionFailed([error]) from None


_FEEDS: weakref.WeakKeyDictionary[Gateway, Feeds] = weakref.WeakKeyDictionary()


def _shared(
    gateway: Gateway,
    document: str,
    url: str,
    variables: Mapping[str, Any],
    headers: Mapping[str, str],
    upstream: Callable[[], AsyncIterator[dict[str, Any]]],
) -> AsyncIterator[dict[str, Any]]:
    """The upstream events: of a feed shared with identical subscriptions when the root
    field is one of `shared_subscription_fields`, else of a subscription of its own."""
    shared = {f.strip() for f in gateway.settings.shared_subscription_fields.split(",")}
    if root_field(document) not in shared:
        return upstream()
    feeds = _FEEDS.setdefault(gateway, Feeds())
    return feeds.bodies(feed_key(url, document, variables, headers), upstream)


def token_expiry(headers: Mapping[str, str]) -> float | None:
    """The `exp` (epoch seconds) of the bearer token in `headers`, if it names one."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    parts = token.strip().split(".")
    if scheme.lower() != "bearer" or len(parts) != 3:
        return None
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


async def until_expiry(
    source: AsyncIterator[dict[str, Any]], expires_at: float | None
) -> AsyncIterator[dict[str, Any]]:
    """The source's items until `expires_at`, then `SubscriptionFailed` (UNAUTHENTICATED).

    A wait per item rather than one timeout around the loop: a timeout spanning a
    `yield` would cancel whatever the consumer awaits meanwhile."""
    iterator = aiter(source)
    try:
        while True:
            left = None if expires_at is None else expires_at - time.time()
            if left is not None and left <= 0:
                raise SubscriptionFailed([_expired()])
            try:
                item = await asyncio.wait_for(anext(iterator), left)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise SubscriptionFailed([_expired()]) from None
            yield item
    finally:
        closing = getattr(iterator, "aclose", None)
        if closing is not None:
            await closing()


def _expired() -> dict[str, Any]:
    message = said(
        "The access token has expired; refresh it and subscribe again.",
        "Срок действия токена доступа истёк; обновите его и подпишитесь снова.",
    )
    return {"message": message, "extensions": {"code": UNAUTHENTICATED, "reason": TOKEN_EXPIRED}}


def _error(message: str, code: str) -> dict[str, Any]:
    return {"message": message, "extensions": {"code": code}}


def _coded(error: Any, subgraph: str) -> dict[str, Any]:
    """A subgraph's error as the client gets it: every error has a code."""
    if not isinstance(error, dict):
        return _error(str(error), INTERNAL)
    out = dict(error)
    extensions = dict(out.get("extensions") or {})
    extensions.setdefault("code", INTERNAL)
    extensions.setdefault("serviceName", subgraph)
    out["extensions"] = extensions
    return out
