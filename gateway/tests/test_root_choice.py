"""Which subgraph answers a shared root field: the one whose plan needs the fewest
entity fetches (a `@provides` can save them), then the fewest fields asked of them at
every depth, settings order on a tie."""

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


SHELVES = (
    LINK
    + """
type Query { shelf: Shelf @shareable }
type Shelf @key(fields: "id") { id: ID! books: [Book] @shareable }
type Book @key(fields: "id") { id: ID! @external }
"""
)
PICKS = (
    LINK
    + """
type Query { shelf: Shelf @shareable @provides(fields: "books { id title }") }
type Shelf { id: ID! @shareable books: [Book] @external }
type Book { id: ID! @external title: String @external }
"""
)
CATALOG = (
    LINK
    + """
type Shelf @key(fields: "id") { id: ID! books: [Book] @shareable }
type Book @key(fields: "id") { id: ID! title: String @shareable year: Int }
"""
)
DUNE = {"id": "b1", "title": "Dune", "year": 1965}


async def test_on_equal_fetches_the_plan_asking_fewer_fields_at_every_depth_wins() -> None:
    # shelves cannot return its books' ids (@external on a type it defines): through
    # it, the catalog would send each shelf's whole list again; picks provides the
    # books and the catalog adds only each book's year
    gateway = await local_gateway(
        LocalSubgraph("shelves", SHELVES, root={"shelf": {"id": "s1", "books": [{"id": "never"}]}}),
        LocalSubgraph(
            "picks",
            PICKS,
            root={"shelf": {"id": "s1", "books": [{"id": "b1", "title": "Dune"}]}},
        ),
        LocalSubgraph(
            "catalog",
            CATALOG,
            entities={"Shelf": [{"id": "s1", "books": [DUNE]}], "Book": [DUNE]},
        ),
    )
    query = "{ shelf { id books { id title year } } }"
    try:
        assert plan_text(gateway, query) == _lines(
            """
            QueryPlan {
              Sequence {
                Fetch(service: "picks") {
                  query anonymous__picks{shelf{_veche_t:__typename id books{_veche_t:__typename id title _veche_k_id:id}}}
                }
                Flatten {
                  e0 at Query.shelf > Shelf.books <- $_veche_reps0: Book { id: _veche_k_id }
                  Fetch(service: "catalog") {
                    query anonymous__catalog_1($_veche_reps0:[_Any!]!){e0:_entities(representations:$_veche_reps0){...on Book{_veche_t:__typename year}}}
                  }
                }
              }
            }
            """
        )
        assert await gateway.execute(GraphQLRequest(query), {}) == {
            "data": {"shelf": {"id": "s1", "books": [DUNE]}}
        }
    finally:
        await gateway.stop()
