"""Live schema updates: subgraphs that appear, change, or break while the gateway runs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

Start = Callable[..., Awaitable[Any]]
ADMIN = {"X-Admin-Secret": "s3cret"}
CLASH = (
    'Non-shareable field "User.name" is resolved from multiple subgraphs: it is resolved '
    'from subgraphs "users", "extras" and defined as non-shareable in subgraph(s) '
    '"users", "extras"'
)


async def _query(http: httpx.AsyncClient, query: str) -> dict[str, Any]:
    response = await http.post("/graphql", json={"query": query})
    body: dict[str, Any] = response.json()
    return body


async def test_starts_while_a_subgraph_is_down_and_adds_it_when_it_appears(
    subgraph_urls: dict[str, str],
    start_gateway: Start,
    start_subgraph: Start,
    port_factory: Callable[[], int],
) -> None:
    port = port_factory()
    urls = {"users": subgraph_urls["users"], "extras": f"http://127.0.0.1:{port}/graphql"}
    gateway = await start_gateway(urls)
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        assert (await http.get("/ready")).status_code == 200
        health = (await http.get("/health")).json()
        assert health["status"] == "degraded"
        assert health["subgraphs"]["extras"]["status"] == "down"
        assert (await _query(http, "{ hello }"))["errors"][0]["message"] == (
            "Cannot query field 'hello' on type 'Query'."
        )

        await start_subgraph("extras", "v1", port)
        reload = (await http.post("/admin/reload", headers=ADMIN)).json()
        assert reload["changed"] is True
        assert await _query(http, '{ hello user(id: "u1") { name } }') == {
            "data": {"hello": "hello", "user": {"name": "Anna"}}
        }
        assert (await http.get("/health")).json()["status"] == "ok"


async def test_a_schema_change_is_picked_up_on_the_interval(
    subgraph_urls: dict[str, str],
    start_gateway: Start,
    start_subgraph: Start,
    until: Callable[..., Awaitable[None]],
) -> None:
    extras = await start_subgraph("extras", "v1")
    urls = {"users": subgraph_urls["users"], "extras": f"{extras.url}/graphql"}
    gateway = await start_gateway(urls, poll_interval_seconds=0.1)
    query = '{ goodbye user(id: "u2") { name badge } }'
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        assert "errors" in await _query(http, query)
        extras.extra["use"]("v2")

        async def picked_up() -> bool:
            return "errors" not in await _query(http, query)

        await until(picked_up)
        assert await _query(http, query) == {
            "data": {"goodbye": "goodbye", "user": {"name": "Boris", "badge": "badge of u2"}}
        }


async def test_a_breaking_change_is_refused_and_the_last_good_supergraph_kept(
    subgraph_urls: dict[str, str], start_gateway: Start, start_subgraph: Start
) -> None:
    extras = await start_subgraph("extras", "v2")
    urls = {"users": subgraph_urls["users"], "extras": f"{extras.url}/graphql"}
    gateway = await start_gateway(urls)
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        version = (await http.get("/ready")).json()["version"]
        extras.extra["use"]("broken")
        reload = (await http.post("/admin/reload", headers=ADMIN)).json()
        assert reload == {"changed": False, "version": version, "lastCompositionError": CLASH}
        health = (await http.get("/health")).json()
        assert (health["status"], health["lastCompositionError"]) == ("degraded", CLASH)
        assert health["supergraph"]["version"] == version
        assert await _query(http, "{ hello }") == {"data": {"hello": "hello"}}
        refused = await _query(http, "{ someone { id } }")
        assert refused["errors"][0]["message"] == "Cannot query field 'someone' on type 'Query'."

        extras.extra["use"]("v2")
        healed = (await http.post("/admin/reload", headers=ADMIN)).json()
        assert healed["lastCompositionError"] is None


async def test_a_swap_does_not_drop_requests_in_flight(
    subgraph_urls: dict[str, str],
    start_gateway: Start,
    start_subgraph: Start,
    seen_headers: dict[str, list[dict[str, str]]],
    until: Callable[..., Awaitable[None]],
) -> None:
    extras = await start_subgraph("extras", "v2")
    urls = {"users": subgraph_urls["users"], "extras": f"{extras.url}/graphql"}
    gateway = await start_gateway(urls)
    seen_headers.clear()
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        in_flight = asyncio.create_task(_query(http, "{ wait(seconds: 0.3) goodbye }"))

        async def reached_the_subgraph() -> bool:
            return bool(seen_headers.get("extras"))

        await until(reached_the_subgraph)
        extras.extra["use"]("v1")
        reload = (await http.post("/admin/reload", headers=ADMIN)).json()
        assert reload["changed"] is True
        assert await in_flight == {"data": {"wait": "waited", "goodbye": "goodbye"}}
        assert (await _query(http, "{ goodbye }"))["errors"][0]["extensions"] == {
            "code": "BAD_USER_INPUT"
        }


async def test_at_start_a_subgraph_that_breaks_composition_is_left_out(
    subgraph_urls: dict[str, str], start_gateway: Start, start_subgraph: Start
) -> None:
    extras = await start_subgraph("extras", "broken")
    urls = {"users": subgraph_urls["users"], "extras": f"{extras.url}/graphql"}
    gateway = await start_gateway(urls)
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        health = (await http.get("/health")).json()
        assert health["supergraph"]["subgraphs"] == ["users"]
        assert health["lastCompositionError"] == CLASH
        assert await _query(http, '{ user(id: "u1") { name } }') == {
            "data": {"user": {"name": "Anna"}}
        }
        extras.extra["use"]("v2")
        reload = (await http.post("/admin/reload", headers=ADMIN)).json()
        assert (reload["changed"], reload["lastCompositionError"]) == (True, None)
        assert await _query(http, "{ goodbye }") == {"data": {"goodbye": "goodbye"}}
