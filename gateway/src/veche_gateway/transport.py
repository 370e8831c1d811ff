"""HTTP to the subgraphs: one pooled keep-alive client, a timeout per fetch.

A transport failure, a timeout, a 5xx or a body that is not a GraphQL
response becomes `SubgraphUnavailable`; anything else is handed back as the
subgraph's JSON response (its errors are the subgraph's to report).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

SDL_QUERY = "query __ApolloGetServiceDefinition__ { _service { sdl } }"
PROBE_QUERY = "query __VecheProbe__ { __typename }"  # the cheapest request a subgraph answers


class SubgraphUnavailable(Exception):
    def __init__(self, subgraph: str, reason: str) -> None:
        super().__init__(f'Subgraph "{subgraph}" is unavailable: {reason}')
        self.subgraph = subgraph
        self.reason = reason


class Transport:
    def __init__(self, timeout: float, max_connections: int = 100) -> None:
        self.timeout = timeout
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def post(
        self,
        subgraph: str,
        url: str,
        payload: Mapping[str, Any],
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        try:
            response = await self.client.post(
                url,
                json=payload,
                headers={"Accept": "application/json", **(headers or {})},
                timeout=timeout if timeout is not None else self.timeout,
            )
        except httpx.TimeoutException:
            raise SubgraphUnavailable(subgraph, "timed out") from None
        except httpx.HTTPError as exc:
            raise SubgraphUnavailable(subgraph, type(exc).__name__) from None
        if response.status_code >= 500:
            raise SubgraphUnavailable(subgraph, f"HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise SubgraphUnavailable(
                subgraph, f"HTTP {response.status_code} without a JSON body"
            ) from None
        if not isinstance(body, dict) or not ("data" in body or "errors" in body):
            raise SubgraphUnavailable(subgraph, "the response is not a GraphQL response")
        return body

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
