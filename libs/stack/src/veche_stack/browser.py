"""Headless Chromium for tests, driven over the DevTools protocol through
Chromium's `--remote-debugging-pipe` (NUL-separated JSON on fds 3 and 4, so no
WebSocket library is needed), with every outside host unresolvable.

`chromium(executable, profile)` starts one browser; `open_page` opens a tab on a
URL; `Page` evaluates JavaScript in it, waits for a condition and tells what the
page requested and logged (gateway/tests/test_graphiql.py, tests/test_graphiql_live.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import json
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"


def installed_chromium() -> str:
    """Debian's Chromium, installed when missing (CI is root on a fresh machine)."""
    if not os.access(CHROMIUM, os.X_OK):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], check=True, env=env)
    return CHROMIUM


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


@contextlib.asynccontextmanager
async def chromium(executable: str, profile: Path) -> AsyncIterator[DevTools]:
    """Headless Chromium, offline but for loopback, driven over its debugging pipe."""
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
        f"--user-data-dir={profile}",
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
        executable,
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
