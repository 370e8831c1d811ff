"""A field whose type is a union (or interface) in one subgraph and a member of it in
another, and unions whose members differ between subgraphs."""

from __future__ import annotations

from textwrap import dedent

import pytest

from veche_gateway.compose import compose
from veche_gateway.errors import CompositionError
from veche_gateway.gateway import GraphQLRequest
from veche_gateway.subgraph import load_subgraph
from veche_gateway.testing import LocalSubgraph, local_gateway, plan_text

LINK = (
    'extend schema @link(url: "https://specs.apollo.dev/federation/v2.6", '
    'import: ["@key", "@shareable"])\n'
)
# The city desk knows notices and posters; the transit desk notices and alerts.
CITY = (
    LINK
    + """
union Bulletin = Notice | Poster
type Notice @key(fields: "id") { id: ID! text: String! @shareable }
type Poster @key(fields: "id") { id: ID! image: String! }
type Query { latest: Notice @shareable board: [Bulletin!]! @shareable }
"""
)
TRANSIT = (
    LINK
    + """
union Bulletin = Notice | Alert
type Notice @key(fields: "id") { id: ID! text: String! @shareable }
type Alert @key(fields: "id") { id: ID! line: String! }
type Query { latest: Bulletin @shareable board: [Bulletin!]! @shareable }
"""
)


def _lines(text: str) -> str:
    return dedent(text).strip()


def test_the_union_is_the_merged_type_and_its_members_are_unioned() -> None:
    supergraph = compose(
        [load_subgraph("city", "http://c", CITY), load_subgraph("transit", "http://t", TRANSIT)]
    )
    assert "union Bulletin = Notice | Poster | Alert" in supergraph.sdl
    assert "  latest: Bulletin\n" in supergraph.sdl


def test_unrelated_types_stay_incompatible() -> None:
    other = TRANSIT.replace("latest: Bulletin", "latest: Alert")
    with pytest.raises(CompositionError) as refused:
        compose(
            [load_subgraph("city", "http://c", CITY), load_subgraph("transit", "http://t", other)]
        )
    assert str(refused.value) == (
        'Type of field "Query.latest" is incompatible across subgraphs: '
        '"Notice" in subgraph "city"; "Alert" in subgraph "transit"'
    )


async def test_each_subgraph_is_asked_only_for_the_types_it_can_return_there() -> None:
    city = LocalSubgraph(
        "city",
        CITY,
        root={
            "latest": {"id": "n1", "text": "Water off"},
            "board": [
                {"__typename": "Notice", "id": "n1", "text": "Water off"},
                {"__typename": "Poster", "id": "p1", "image": "fair.png"},
            ],
        },
    )
    transit = LocalSubgraph("transit", TRANSIT)
    gateway = await local_gateway(city, transit)
    query = """
    { latest { ... on Notice { text } ... on Alert { line } }
      board { __typename ... on Poster { image } ... on Alert { line } } }
    """
    # city's latest is a Notice: no fragment on Alert (invalid there); nor on its board
    assert plan_text(gateway, query) == _lines(
        """
        QueryPlan {
          Fetch(service: "city") {
            query anonymous__city{latest{_veche_t:__typename ...on Notice{text}}board{_veche_t:__typename ...on Poster{image}}}
          }
        }
        """
    )
    assert await gateway.execute(GraphQLRequest(query), {}) == {
        "data": {
            "latest": {"text": "Water off"},
            "board": [{"__typename": "Notice"}, {"__typename": "Poster", "image": "fair.png"}],
        }
    }
    assert not transit.received[1:]  # only its SDL was read
    await gateway.stop()
