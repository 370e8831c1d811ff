"""An enum used as input and output whose values differ only by @inaccessible ones."""

from __future__ import annotations

import pytest

from veche_gateway.errors import RequestError
from veche_gateway.gateway import GraphQLRequest
from veche_gateway.testing import LocalSubgraph, local_gateway

LINK = (
    'extend schema @link(url: "https://specs.apollo.dev/federation/v2.6", '
    'import: ["@key", "@shareable", "@inaccessible"])\n'
)
PERMITS = (
    LINK
    + """
type Query { permits: [Permit!]! }
type Permit @key(fields: "id") { id: ID! zone: Zone @shareable }
enum Zone { CENTRE SUBURB }
"""
)
# the parking desk also knows a zone still in trial, which no client may see
PARKING = (
    LINK
    + """
type Query { permitsIn(zone: Zone!): [Permit!]! }
type Permit @key(fields: "id") { id: ID! zone: Zone @shareable }
enum Zone { CENTRE SUBURB TRIAL @inaccessible }
"""
)


async def test_the_hidden_value_is_out_of_the_schema_and_of_the_answers() -> None:
    permits = LocalSubgraph("permits", PERMITS, root={"permits": [{"id": "p1", "zone": "CENTRE"}]})
    parking = LocalSubgraph(
        "parking",
        PARKING,
        root={"permitsIn": lambda _info, zone: [{"id": "p9", "zone": "TRIAL"}]},
    )
    gateway = await local_gateway(permits, parking)
    assert gateway.supergraph is not None, gateway.last_composition_error
    assert "enum Zone {\n  CENTRE\n  SUBURB\n}" in gateway.supergraph.sdl
    assert await gateway.execute(GraphQLRequest("{ permits { zone } }"), {}) == {
        "data": {"permits": [{"zone": "CENTRE"}]}
    }
    # a subgraph answering with the hidden value: that field is null, with an error
    answer = await gateway.execute(GraphQLRequest("{ permitsIn(zone: SUBURB) { id zone } }"), {})
    assert answer["data"] == {"permitsIn": [{"id": "p9", "zone": None}]}
    assert [(e["path"], e["extensions"]["code"]) for e in answer["errors"]] == [
        (["permitsIn", 0, "zone"], "INTERNAL")
    ]
    with pytest.raises(RequestError) as refused:
        await gateway.execute(GraphQLRequest("{ permitsIn(zone: TRIAL) { id } }"), {})
    assert refused.value.errors[0]["extensions"] == {"code": "BAD_USER_INPUT"}
    await gateway.stop()


async def test_a_visible_value_missing_somewhere_is_still_refused() -> None:
    parking = LocalSubgraph("parking", PARKING.replace("TRIAL @inaccessible", "TRIAL"))
    gateway = await local_gateway(LocalSubgraph("permits", PERMITS), parking, refused=True)
    assert gateway.last_composition_error is not None
    assert gateway.last_composition_error.startswith(
        'Enum type "Zone" is used as both input and output type and its values are '
        "inconsistent across subgraphs"
    )
    await gateway.stop()
