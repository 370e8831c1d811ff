"""`@requires` chains: a required field that itself `@requires` a field from another
subgraph is fetched first, each fetch after the one it needs."""

from __future__ import annotations

from textwrap import dedent

from veche_gateway.gateway import GraphQLRequest
from veche_gateway.testing import LocalSubgraph, local_gateway, plan_text

LINK = (
    'extend schema @link(url: "https://specs.apollo.dev/federation/v2.6", '
    'import: ["@key", "@external", "@requires"])\n'
)
CATALOG = (
    LINK
    + """
type Query { item: Item }
type Item @key(fields: "id") { id: ID! }
"""
)
PRICES = (
    LINK
    + """
type Item @key(fields: "id") { id: ID! price: Int! }
"""
)
RULES = (
    LINK
    + """
type Item @key(fields: "id") {
  id: ID!
  price: Int! @external
  expensive: Boolean! @requires(fields: "price")
}
"""
)
BUDGET = (
    LINK
    + """
type Item @key(fields: "id") {
  id: ID!
  expensive: Boolean! @external
  affordable: Boolean! @requires(fields: "expensive")
}
"""
)


def _lines(text: str) -> str:
    return dedent(text).strip()


async def test_a_required_field_that_requires_another_is_fetched_first() -> None:
    gateway = await local_gateway(
        LocalSubgraph("catalog", CATALOG, root={"item": {"id": "i1"}}),
        LocalSubgraph("prices", PRICES, entities={"Item": [{"id": "i1", "price": 120}]}),
        LocalSubgraph(
            "rules",
            RULES,
            entities={"Item": [{"id": "i1", "expensive": lambda obj: obj["price"] > 100}]},
        ),
        LocalSubgraph(
            "budget",
            BUDGET,
            entities={"Item": [{"id": "i1", "affordable": lambda obj: not obj["expensive"]}]},
        ),
    )
    query = "{ item { affordable } }"
    assert plan_text(gateway, query) == _lines(
        """
        QueryPlan {
          Sequence {
            Fetch(service: "catalog") {
              query anonymous__catalog{item{_veche_t:__typename _veche_k_id:id}}
            }
            Flatten {
              e0 at Query.item <- $_veche_reps0: Item { id: _veche_k_id }
              Fetch(service: "prices") {
                query anonymous__prices_1($_veche_reps0:[_Any!]!){e0:_entities(representations:$_veche_reps0){...on Item{_veche_t:__typename _veche_k_price:price}}}
              }
            }
            Flatten {
              e0 at Query.item <- $_veche_reps0: Item { id: _veche_k_id price: _veche_k_price }
              Fetch(service: "rules") {
                query anonymous__rules_2($_veche_reps0:[_Any!]!){e0:_entities(representations:$_veche_reps0){...on Item{_veche_t:__typename _veche_k_expensive:expensive}}}
              }
            }
            Flatten {
              e0 at Query.item <- $_veche_reps0: Item { id: _veche_k_id expensive: _veche_k_expensive }
              Fetch(service: "budget") {
                query anonymous__budget_3($_veche_reps0:[_Any!]!){e0:_entities(representations:$_veche_reps0){...on Item{_veche_t:__typename affordable}}}
              }
            }
          }
        }
        """
    )
    assert await gateway.execute(GraphQLRequest(query), {}) == {
        "data": {"item": {"affordable": False}}
    }
    both = "{ item { expensive affordable } }"
    assert await gateway.execute(GraphQLRequest(both), {}) == {
        "data": {"item": {"expensive": True, "affordable": False}}
    }
    await gateway.stop()


# desk decides urgency from the editor's seniority, which only staff knows
NEWS = (
    LINK
    + """
type Query { headlines: [Post!]! }
type Post @key(fields: "id") { id: ID! }
"""
)
DESK = (
    LINK
    + """
type Post @key(fields: "id") {
  id: ID!
  editor: Editor!
  urgent: Boolean! @requires(fields: "editor { seniority }")
}
type Editor @key(fields: "id") { id: ID! seniority: Int! @external }
"""
)
STAFF = (
    LINK
    + """
type Editor @key(fields: "id") { id: ID! seniority: Int! }
"""
)


async def test_a_required_selection_behind_another_entity_is_fetched_first() -> None:
    def urgent(obj: dict[str, object]) -> bool:
        assert obj["editor"] == {"__typename": "Editor", "seniority": 12}  # exactly the set
        return True

    gateway = await local_gateway(
        LocalSubgraph("news", NEWS, root={"headlines": [{"id": "h1"}]}),
        LocalSubgraph(
            "desk",
            DESK,
            entities={"Post": [{"id": "h1", "editor": {"id": "e1"}, "urgent": urgent}]},
        ),
        LocalSubgraph("staff", STAFF, entities={"Editor": [{"id": "e1", "seniority": 12}]}),
    )
    query = "{ headlines { urgent } }"
    assert plan_text(gateway, query) == _lines(
        """
        QueryPlan {
          Sequence {
            Fetch(service: "news") {
              query anonymous__news{headlines{_veche_t:__typename _veche_k_id:id}}
            }
            Flatten {
              e0 at Query.headlines <- $_veche_reps0: Post { id: _veche_k_id }
              Fetch(service: "desk") {
                query anonymous__desk_1($_veche_reps0:[_Any!]!){e0:_entities(representations:$_veche_reps0){...on Post{_veche_t:__typename _veche_k_editor:editor{_veche_t:__typename _veche_k_id:id}}}}
              }
            }
            Flatten {
              e0 at Query.headlines > Post._veche_k_editor <- $_veche_reps0: Editor { id: _veche_k_id }
              Fetch(service: "staff") {
                query anonymous__staff_2($_veche_reps0:[_Any!]!){e0:_entities(representations:$_veche_reps0){...on Editor{_veche_t:__typename seniority}}}
              }
            }
            Flatten {
              e0 at Query.headlines <- $_veche_reps0: Post { id: _veche_k_id editor: _veche_k_editor { seniority } }
              Fetch(service: "desk") {
                query anonymous__desk_3($_veche_reps0:[_Any!]!){e0:_entities(representations:$_veche_reps0){...on Post{_veche_t:__typename urgent}}}
              }
            }
          }
        }
        """
    )
    assert await gateway.execute(GraphQLRequest(query), {}) == {
        "data": {"headlines": [{"urgent": True}]}
    }
    await gateway.stop()
