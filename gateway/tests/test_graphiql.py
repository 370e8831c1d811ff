"""GraphiQL: served offline by the gateway, and working in a real browser.

The HTTP tests use a stand-in build directory. The browser test opens the real
build (gateway/graphiql/build.sh, run by `make install`) in headless Chromium
with every outside host unresolvable (veche_stack.browser), and runs operations
through the page. tests/test_graphiql_live.py runs a subscription in it.
"""

from __future__ import annotations

import asyncio
import gzip
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from veche_gateway.graphiql import DEFAULT_DIR, IMMUTABLE
from veche_stack.browser import DevTools, installed_chromium, open_page
from veche_stack.browser import chromium as start_chromium

Start = Callable[..., Awaitable[Any]]
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
BUILD_HINT = "run gateway/graphiql/build.sh (or `make install`) to build GraphiQL"

APP = "app-ABCDEFGH.js"


@pytest.fixture
def fake_build(tmp_path: Path) -> Path:
    """A build directory shaped like build.mjs's output."""
    (tmp_path / "index.html").write_text(f'<html><script src="graphiql/{APP}"></script></html>')
    (tmp_path / APP).write_text("console.log('graphiql');\n" * 100)
    for name in ("index.html", APP):
        data = (tmp_path / name).read_bytes()
        (tmp_path / f"{name}.gz").write_bytes(gzip.compress(data))
    return tmp_path


async def test_a_browser_gets_the_page_and_json_clients_the_api(
    subgraph_urls: dict[str, str], start_gateway: Start, fake_build: Path
) -> None:
    gateway = await start_gateway(subgraph_urls, graphiql_dir=fake_build)
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        page = await http.get("/graphql", headers=BROWSER)
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert page.headers["content-encoding"] == "gzip"
        assert page.headers["cache-control"] == "no-cache"
        policy = page.headers["content-security-policy"]
        assert "default-src 'self'" in policy
        host = gateway.url.removeprefix("http://")
        assert f"connect-src 'self' ws://{host} wss://{host};" in policy  # subscriptions
        assert f"graphiql/{APP}" in page.text

        api = await http.get("/graphql", params={"query": "{ __typename }"})
        assert api.json() == {"data": {"__typename": "Query"}}
        both = await http.get(
            "/graphql", params={"query": "{ __typename }"}, headers={"Accept": "application/json"}
        )
        assert both.json() == {"data": {"__typename": "Query"}}


async def test_assets_are_gzipped_when_accepted_and_cached_for_a_year(
    subgraph_urls: dict[str, str], start_gateway: Start, fake_build: Path
) -> None:
    gateway = await start_gateway(subgraph_urls, graphiql_dir=fake_build)
    raw = (fake_build / APP).read_bytes()
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        zipped = await http.get(f"/graphiql/{APP}", headers={"Accept-Encoding": "gzip"})
        assert zipped.status_code == 200
        assert zipped.headers["content-encoding"] == "gzip"
        assert int(zipped.headers["content-length"]) == (fake_build / f"{APP}.gz").stat().st_size
        assert zipped.content == raw  # httpx decodes
        assert zipped.headers["content-type"] == "text/javascript; charset=utf-8"
        assert zipped.headers["cache-control"] == IMMUTABLE
        assert "Accept-Encoding" in zipped.headers["vary"]

        plain = await http.get(f"/graphiql/{APP}", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers
        assert int(plain.headers["content-length"]) == len(raw)
        assert plain.content == raw

        for name in (f"{APP}.gz", "index.html", "app-ABCDEFGH.exe", "nothere-ABCDEFGH.js"):
            assert (await http.get(f"/graphiql/{name}")).status_code == 404, name
        assert (await http.get("/graphiql/..%2Findex.html")).status_code == 404


async def test_without_a_build_the_page_says_how_to_build_and_the_api_works(
    subgraph_urls: dict[str, str], start_gateway: Start, tmp_path: Path
) -> None:
    gateway = await start_gateway(subgraph_urls, graphiql_dir=tmp_path / "missing")
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        page = await http.get("/graphql", headers=BROWSER)
        assert page.status_code == 503
        assert "gateway/graphiql/build.sh" in page.text
        api = await http.post("/graphql", json={"query": '{ user(id: "u1") { name } }'})
        assert api.json() == {"data": {"user": {"name": "Anna"}}}
        assert (await http.get(f"/graphiql/{APP}")).status_code == 404


async def test_graphiql_can_be_switched_off(
    subgraph_urls: dict[str, str], start_gateway: Start, fake_build: Path
) -> None:
    gateway = await start_gateway(subgraph_urls, graphiql=False, graphiql_dir=fake_build)
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        page = await http.get("/graphql", headers=BROWSER)
        assert page.headers["content-type"].startswith("application/json")
        assert (await http.get(f"/graphiql/{APP}")).status_code == 404


# ───────────────────────────── in a browser ─────────────────────────────


@pytest.fixture(scope="session")
def chromium() -> str:
    return installed_chromium()


@pytest.fixture(scope="session")
def built_graphiql() -> Path:
    if not (DEFAULT_DIR / "index.html").is_file():
        pytest.fail(f"GraphiQL is not built in {DEFAULT_DIR}: {BUILD_HINT}")
    return DEFAULT_DIR


@pytest.fixture
async def browser(chromium: str, tmp_path: Path) -> AsyncIterator[DevTools]:
    async with start_chromium(chromium, tmp_path / "profile") as devtools:
        yield devtools


QUERY = """query Explore {
  me { name }
  user(id: "u1") { name polls { title issues { title } } }
}"""
EXECUTE = "document.querySelector('.graphiql-execute-button').click(), true"


async def test_graphiql_runs_a_query_with_a_token_and_shows_the_docs(
    browser: DevTools, built_graphiql: Path, gateway: Any
) -> None:
    url = f"{gateway.url}/graphql?query={urllib.parse.quote(QUERY)}"
    page = await open_page(browser, url)
    await page.wait_for("!!document.querySelector('.graphiql-execute-button')", "GraphiQL")

    # anonymous: `me` is null; the rest joins users, polls and issues
    await page.eval(EXECUTE)
    await page.wait_for(
        "(document.querySelector('.graphiql-response .view-lines')?.innerText ?? '')"
        ".includes('Pothole')",
        "the first result",
    )
    text = await page.response_text()
    assert '"me": null' in text, text
    assert '"name": "Anna"' in text, text
    assert '"title": "Park renovation"' in text, text

    # a pasted token is sent as Authorization: Bearer …, which `me` reads
    await page.eval("document.getElementById('veche-token').focus(), true")
    await page.type("Bearer u2")
    await page.eval(EXECUTE)
    await page.wait_for(
        "(document.querySelector('.graphiql-response .view-lines')?.innerText ?? '')"
        ".includes('Boris')",
        "the result with the token",
    )
    assert '"me": {' in await page.response_text()

    # the supergraph's docs, with the subgraphs' descriptions
    await page.eval(
        "document.querySelector('[aria-label=\"Show Documentation Explorer\"]').click(), true"
    )
    await page.wait_for(
        "document.querySelector('.graphiql-doc-explorer')?.innerText.includes('Query')",
        "the docs",
    )
    await page.eval(
        "[...document.querySelectorAll('.graphiql-doc-explorer a')]"
        ".find(a => a.innerText === 'Query').click(), true"
    )
    await page.wait_for(
        "document.querySelector('.graphiql-doc-explorer')?.innerText.includes('One user by id.')",
        "the Query type's docs",
    )

    # everything came from the gateway, Monaco's workers included
    outside = [
        u for u in page.requested_urls() if not u.startswith((gateway.url, "data:", "blob:"))
    ]
    assert outside == []
    assert page.errors() == []
    app = page.response_headers("/graphiql/app-")
    assert (app["content-encoding"], app["cache-control"]) == ("gzip", IMMUTABLE)
    async with asyncio.timeout(10):  # each worker starts when its editor first needs it
        for worker in ("editor.worker-", "json.worker-", "graphql.worker-"):
            while not any(worker in url for url in page.requested_urls()):  # noqa: ASYNC110
                await asyncio.sleep(0.1)
