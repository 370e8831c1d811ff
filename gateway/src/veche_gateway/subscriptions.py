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

Every way a subscription ends badly is one `SubscriptionFailed` with the GraphQL
errors the client gets: refused by the gateway (a `RequestError`), refused by
the subgraph (its `error` message, codes kept), or the subgraph gone
(`SUBGRAPH_UNAVAILABLE`: it restarted or stopped; subscribe again).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from veche_gateway.errors import INTERNAL, SUBGRAPH_UNAVAILABLE, PlanError, RequestError
from veche_gateway.execute import subscription_root
from veche_gateway.gateway import Gateway, GraphQLRequest, LiveOperation, NotASubscription
from veche_gateway.language import said
from veche_gateway.transport import SubgraphUnavailable
from veche_gateway.upstream import UpstreamRefused, subscribe

log = logging.getLogger("veche_gateway")


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
    try:
        url = gateway.instance_url(root.subgraph)  # the next instance whose breaker is closed
        async for body in subscribe(root.subgraph, url, payload, headers, timeout):
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
