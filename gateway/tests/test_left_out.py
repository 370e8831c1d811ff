"""A subgraph that does not compose is refused loudly: the gateway serves the rest,
`/health` names the one left out and why, and the log says so at error level."""

from __future__ import annotations

import logging

import httpx
import pytest

from veche_gateway.app import create_app
from veche_gateway.testing import LocalSubgraph, local_gateway

LINK = (
    'extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", '
    'import: ["@key", "@context"])\n'
)
WARDS = LINK + 'type Query { ward: Ward }\ntype Ward @key(fields: "id") { id: ID! name: String }\n'
# uses a directive the gateway refuses
NOTES = (
    LINK
    + 'type Query { note: Ward }\ntype Ward @key(fields: "id") @context(name: "w") { id: ID! }\n'
)


async def test_the_subgraph_that_does_not_compose_is_named_in_health_and_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="veche_gateway")
    gateway = await local_gateway(
        LocalSubgraph("wards", WARDS), LocalSubgraph("notes", NOTES), refused=True
    )
    reason = (
        '[notes] @context on type "Ward" is not supported by this gateway: it would be '
        "ignored, changing what clients get; remove it from the subgraph or compose without it"
    )
    health = gateway.health()
    assert health["status"] == "degraded"
    assert health["supergraph"]["subgraphs"] == ["wards"]
    assert health["leftOut"] == {"notes": f"does not compose: {reason}"}
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [
        f"composition refused; serving without some subgraphs: {reason}"
    ]
    await gateway.stop()


async def test_nothing_is_left_out_when_every_subgraph_composes() -> None:
    gateway = await local_gateway(LocalSubgraph("wards", WARDS))
    assert gateway.health()["leftOut"] == {}
    await gateway.stop()


async def test_ready_names_the_subgraph_left_out_and_stays_ready_for_the_rest() -> None:
    gateway = await local_gateway(
        LocalSubgraph("wards", WARDS), LocalSubgraph("notes", NOTES), refused=True
    )
    app = create_app(gateway.settings, gateway)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway"
    ) as http:
        ready = await http.get("/ready")
    await gateway.stop()
    assert ready.status_code == 200  # one department's broken schema keeps the rest served
    assert ready.json()["ready"] is True
    assert list(ready.json()["leftOut"]) == ["notes"]
    assert ready.json()["leftOut"]["notes"].startswith("does not compose: [notes] @context")
