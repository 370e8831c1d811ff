"""Which subgraph answers a shared root field: the one whose plan needs the fewest
entity fetches (a `@provides` can save them), settings order on a tie."""

from __future__ import annotations

from textwrap import dedent

from veche_gateway.gateway import GraphQLRequest
from veche_gateway.testing import LocalSubgraph, local_gateway, plan_text

LINK = (
    'extend schema @link(url: "https://specs.apollo.dev/federation/v2.6", '
    'import: ["@key", "@shareable", "@external", "@provides"])\n'
)
LIBRARY = (
    LINK
    + """
type Query { featured: Book @shareable }
type Book @key(fields: "id") { id: ID! author: Author @shareable }
type Author @key(fields: "id") { id: ID! name: String @external }
"""
)
SHOP = (
    LINK
    + """
type Query { featured: Book @shareable @provides(fields: "author { name }") }
type Book @key(fields: "id") { id: ID! author: Author @shareable }
type Author @key(fields: "id") { id: ID! name: String @external }
"""
)
PEOPLE = (
    LINK
    + """
type Author @key(fields: "id") { id: ID! name: String }
"""
)
BOOK = {"id": "b1", "author": {"id": "a1", "name": "Gogol"}}


def _lines(text: str) -> str:
    return dedent(text).strip()


async def test_the_subgraph_that_provides_the_selection_answers_alone() -> None:
    gateway = await local_gateway(
        LocalSubgraph("library", LIBRARY, root={"featured": None}),  # would be wrong
        LocalSubgraph("shop", SHOP, root={"featured": BOOK}),
        LocalSubgraph("people", PEOPLE, entities={"Author": [{"id": "a1", "name": "Gogol"}]}),
    )
    query = "{ featured { author { name } } }"
    assert plan_text(gateway, query) == _lines(
        """
        QueryPlan {
          Fetch(service: "shop") {
            query anonymous__shop{featured{_veche_t:__typename author{_veche_t:__typename name}}}
          }
        }
        """
    )
    assert await gateway.execute(GraphQLRequest(query), {}) == {
        "data": {"featured": {"author": {"name": "Gogol"}}}
    }
    # a tie: the first subgraph listed answers
    assert 'Fetch(service: "library")' in plan_text(gateway, "{ featured { id } }")
    await gateway.stop()
