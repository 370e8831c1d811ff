"""`python -m veche_gateway`, the documented way to start it, as a real process."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable

import httpx


async def test_python_m_veche_gateway_serves(
    subgraph_urls: dict[str, str],
    port_factory: Callable[[], int],
    until: Callable[..., Awaitable[None]],
) -> None:
    port = port_factory()
    env = {
        **os.environ,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "SUBGRAPHS": ",".join(f"{name}={url}" for name, url in subgraph_urls.items()),
        "POLL_INTERVAL_SECONDS": "0",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "veche_gateway",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:

            async def ready() -> bool:
                try:
                    return (await http.get("/ready")).status_code == 200
                except httpx.TransportError:
                    return False

            await until(ready, timeout=20)
            response = await http.post(
                "/graphql", json={"query": '{ poll(id: "p1") { title author { name } } }'}
            )
            assert response.json() == {
                "data": {"poll": {"title": "Park renovation", "author": {"name": "Anna"}}}
            }
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 10)
