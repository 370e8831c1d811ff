"""GraphiQL: served offline by the gateway, and working in a real browser.

The HTTP tests use a stand-in build directory. The browser test opens the real
build (gateway/graphiql/build.sh, run by `make install`) in headless Chromium
with every outside host unresolvable, driven over the DevTools protocol through
Chromium's `--remote-debugging-pipe` (NUL-separated JSON on fds 3 and 4, so no
WebSocket library is needed), and runs operations through the page.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gzip
import itertools
import json
import os
import subprocess
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from veche_gateway.graphiql import DEFAULT_DIR, IMMUTABLE

Start = Callable[..., Awaitable[Any]]
CHROMIUM = "/usr/bin/chromium"
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
        assert "default-src 'self'" in page.headers["content-security-policy"]
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
    """Debian's Chromium, installed when missing (CI is root on a fresh machine)."""
    if not os.access(CHROMIUM, os.X_OK):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], check=True, env=env)
    return CHROMIUM


@pytest.fixture(scope="session")
def built_graphiql() -> Path:
    if not (DEFAULT_DIR / "index.html").is_file():
        pytest.fail(f"GraphiQL is not built in {DEFAULT_DIR}: {BUILD_HINT}")
    return DEFAULT_DIR


class DevTools:
    """A Chrome DevTools Protocol session over Chromium's debugging pipe."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.WriteTransport) -> None:
        self._reader = reader
        self._writer = writer
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            try:
                raw = await self._reader.readuntil(b"\0")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            message = json.loads(raw[:-1])
            future = self._pending.pop(message.get("id", -1), None)
            if future is None:
                self.events.append(message)
            elif not future.done():
                future.set_result(message)
        for future in self._pending.values():
            future.set_exception(ConnectionError("Chromium closed the debugging pipe"))

    async def send(self, method: str, session: str | None = None, **params: Any) -> Any:
        message_id = next(self._ids)
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        future = asyncio.get_running_loop().create_future()
        self._pending[message_id] = future
        self._writer.write(json.dumps(message).encode() + b"\0")
        reply = await asyncio.wait_for(future, 15)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    async def close(self) -> None:
        self._writer.close()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def _high_fd(fd: int) -> int:
    """A copy of `fd` numbered past 9, so bash can put the pipes on 3 and 4 safely."""
    copy = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return copy


@pytest.fixture
async def browser(chromium: str, tmp_path: Path) -> AsyncIterator[DevTools]:
    to_chromium_r, to_chromium_w = map(_high_fd, os.pipe())
    from_chromium_r, from_chromium_w = map(_high_fd, os.pipe())
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--remote-debugging-pipe",
        # offline: no host resolves but loopback
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--window-size=1400,900",
        "about:blank",
    ]
    process = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        f'exec "$@" 3<&{to_chromium_r} 4>&{from_chromium_w}',
        "bash",
        chromium,
        *flags,
        pass_fds=(to_chromium_r, from_chromium_w),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    os.close(to_chromium_r)
    os.close(from_chromium_w)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(from_chromium_r, "rb", 0)
    )
    writer, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(to_chromium_w, "wb", 0))
    devtools = DevTools(reader, writer)
    try:
        yield devtools
    finally:
        with contextlib.suppress(Exception):
            await devtools.send("Browser.close")
        await devtools.close()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


class Page:
    def __init__(self, devtools: DevTools, session: str) -> None:
        self.devtools = devtools
        self.session = session

    async def eval(self, expression: str) -> Any:
        result = await self.devtools.send(
            "Runtime.evaluate",
            self.session,
            expression=expression,
            returnByValue=True,
            awaitPromise=True,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, what: str, timeout: float = 15) -> Any:
        """Evaluate until the value is truthy; fail with what the page logged."""
        try:
            async with asyncio.timeout(timeout):
                while not (value := await self.eval(expression)):  # noqa: ASYNC110 - in the page
                    await asyncio.sleep(0.1)
                return value
        except TimeoutError:
            text = await self.eval("document.body.innerText.slice(0, 2000)")
            raise AssertionError(
                f"timed out waiting for {what}; page text: {text!r}; errors: {self.errors()}"
            ) from None

    async def response_text(self) -> str:
        text = await self.eval(
            "document.querySelector('.graphiql-response .view-lines')?.innerText ?? ''"
        )
        return str(text).replace("\u00a0", " ")

    async def type(self, text: str) -> None:
        await self.devtools.send("Input.insertText", self.session, text=text)

    def requested_urls(self) -> list[str]:
        return [
            e["params"]["request"]["url"]
            for e in self.devtools.events
            if e.get("method") == "Network.requestWillBeSent"
        ]

    def response_headers(self, part: str) -> dict[str, str]:
        """The headers of the first response whose URL contains `part`."""
        for event in self.devtools.events:
            if event.get("method") == "Network.responseReceived":
                response = event["params"]["response"]
                if part in response["url"]:
                    return {k.lower(): v for k, v in response["headers"].items()}
        raise AssertionError(f"no response from a URL with {part!r}")

    def errors(self) -> list[str]:
        """Uncaught exceptions and console errors, as one line each."""
        found = []
        for event in self.devtools.events:
            if event.get("method") == "Runtime.exceptionThrown":
                found.append(json.dumps(event["params"]["exceptionDetails"])[:500])
            elif event.get("method") == "Log.entryAdded":
                entry = event["params"]["entry"]
                if entry["level"] == "error":
                    found.append(f"{entry['text']} {entry.get('url', '')}")
        return found


async def open_page(devtools: DevTools, url: str) -> Page:
    target = await devtools.send("Target.createTarget", url="about:blank")
    attached = await devtools.send(
        "Target.attachToTarget", targetId=target["targetId"], flatten=True
    )
    page = Page(devtools, attached["sessionId"])
    for domain in ("Runtime.enable", "Network.enable", "Log.enable", "Page.enable"):
        await devtools.send(domain, page.session)
    await devtools.send("Page.navigate", page.session, url=url)
    return page


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
