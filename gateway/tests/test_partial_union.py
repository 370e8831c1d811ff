"""A shareable value below an entity whose union members differ between the
subgraphs that return it: only the members every one of them can return are
selected there (the answer must not depend on which subgraph the plan asks)."""

from __future__ import annotations

from textwrap import dedent

from veche_gateway.gateway import GraphQLRequest
from veche_gateway.testing import LocalSubgraph, local_gateway, plan_text

LINK = (
    'extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", '
    'import: ["@key", "@shareable"])\n'
)
CITY = (
    LINK
    + """
type Query { cityWard: Ward }
type Ward @key(fields: "id") { id: ID! board: Board @shareable }
type Board @shareable { items: [Item!]! @shareable }
union Item = Notice | Poster
type Notice @shareable { text: String }
type Poster { image: String }
"""
)
TRANSIT = (
    LINK
    + """
type Query { transitWard: Ward }
type Ward @key(fields: "id") { id: ID! board: Board @shareable transitBoard: Board }
type Board @shareable { items: [Item!]! @shareable }
union Item = Notice | Alert
type Notice @shareable { text: String }
type Alert { line: String }
"""
)
QUERY = "{ %s { %s { items { __typename ... on Notice { text } ... on Poster { image } "
QUERY += "... on Alert { line } } } } }"


def _lines(text: str) -> str:
    return dedent(text).strip()


async def _gateway() -> tuple[LocalSubgraph, LocalSubgraph]:
    notice = {"__typename": "Notice", "text": "Water off"}
    city = LocalSubgraph(
        "city",
        CITY,
        root={
            "cityWard": {
                "id": "w1",
                "board": {"items": [notice, {"__typename": "Poster", "image": "fair.png"}]},
            }
        },
    )
    alert = {"__typename": "Alert", "line": "Tram 3"}
    transit = LocalSubgraph(
        "transit",
        TRANSIT,
        entities={
            "Ward": [{"id": "w1", "board": {"items": [notice]}, "transitBoard": {"items": [alert]}}]
        },
    )
    return city, transit


async def test_members_not_every_holder_returns_are_not_selected_there() -> None:
    city, transit = await _gateway()
    gateway = await local_gateway(city, transit)
    query = QUERY % ("cityWard", "board")
    assert plan_text(gateway, query) == _lines(
        """
        QueryPlan {
          Fetch(service: "city") {
            query anonymous__city{cityWard{_veche_t:__typename board{_veche_t:__typename items{_veche_t:__typename ...on Notice{text}}}}}
          }
        }
        """
    )
    # a poster's image is not asked for: transit, which may return the board too, has none
    assert await gateway.execute(GraphQLRequest(query), {}) == {
        "data": {
            "cityWard": {
                "board": {
                    "items": [
                        {"__typename": "Notice", "text": "Water off"},
                        {"__typename": "Poster", "image": None},
                    ]
                }
            }
        }
    }
    await gateway.stop()


async def test_a_value_only_one_subgraph_returns_gets_all_its_members() -> None:
    city, transit = await _gateway()
    gateway = await local_gateway(city, transit)
    query = QUERY % ("cityWard", "transitBoard")
    assert "...on Alert{line}" in plan_text(gateway, query)
    assert await gateway.execute(GraphQLRequest(query), {}) == {
        "data": {
            "cityWard": {"transitBoard": {"items": [{"__typename": "Alert", "line": "Tram 3"}]}}
        }
    }
    await gateway.stop()
