"""`@requires` field sets with arguments and with fragments: the representation carries
what the field set selects, and every subgraph document stays valid."""

from __future__ import annotations

from textwrap import dedent
from typing import Any

from veche_gateway.gateway import GraphQLRequest
from veche_gateway.testing import LocalSubgraph, local_gateway, plan_text

LINK = (
    'extend schema @link(url: "https://specs.apollo.dev/federation/v2.6", '
    'import: ["@key", "@external", "@requires", "@shareable"])\n'
)
PARCELS = (
    LINK
    + """
type Query { parcel: Parcel }
type Parcel @key(fields: "id") { id: ID! weight(unit: String!): Float content: Content }
union Content = Letter | Goods
type Letter @shareable { pages: Int! }
type Goods @shareable { value: Int! }
"""
)
SHIPPING = (
    LINK
    + """
type Parcel @key(fields: "id") {
  id: ID!
  weight(unit: String!): Float @external
  content: Content @external
  cost: Float @requires(fields: "weight(unit: \\"kg\\")")
  insured: Boolean @requires(fields: "content { ... on Goods { value } }")
}
union Content = Letter | Goods
type Letter @shareable { pages: Int! }
type Goods @shareable { value: Int! }
"""
)


def _lines(text: str) -> str:
    return dedent(text).strip()


def _weight(_obj: Any, unit: str) -> float:
    return 2.0 if unit == "kg" else 4.4


async def test_required_fields_keep_their_arguments_and_fragments() -> None:
    parcel = {"id": "p1", "weight": _weight, "content": {"__typename": "Goods", "value": 900}}
    parcels = LocalSubgraph("parcels", PARCELS, root={"parcel": parcel})
    shipping = LocalSubgraph(
        "shipping",
        SHIPPING,
        entities={
            "Parcel": [
                {
                    "id": "p1",
                    "cost": lambda obj: obj["weight"] * 10,
                    "insured": lambda obj: obj["content"]["value"] > 500,
                }
            ]
        },
    )
    gateway = await local_gateway(parcels, shipping)
    query = '{ parcel { weight(unit: "lb") cost insured } }'
    assert plan_text(gateway, query) == _lines(
        """
        QueryPlan {
          Sequence {
            Fetch(service: "parcels") {
              query anonymous__parcels{parcel{_veche_t:__typename weight(unit:"lb")_veche_k_id:id _veche_k_weight_155e5f:weight(unit:"kg")_veche_k_content:content{__typename ...on Goods{value}}}}
            }
            Flatten {
              e0 at Query.parcel <- $_veche_reps0: Parcel { id: _veche_k_id weight: _veche_k_weight_155e5f content: _veche_k_content { __typename value } }
              Fetch(service: "shipping") {
                query anonymous__shipping_1($_veche_reps0:[_Any!]!){e0:_entities(representations:$_veche_reps0){...on Parcel{_veche_t:__typename cost insured}}}
              }
            }
          }
        }
        """
    )
    assert await gateway.execute(GraphQLRequest(query), {}) == {
        "data": {"parcel": {"weight": 4.4, "cost": 20.0, "insured": True}}
    }
    (sent,) = [q for q in shipping.received if "_entities" in q]
    assert "_veche_reps0" in sent
    await gateway.stop()


HIDDEN_LINK = (
    'extend schema @link(url: "https://specs.apollo.dev/federation/v2.6", '
    'import: ["@key", "@external", "@requires", "@shareable", "@inaccessible"])\n'
)
CONTENTS = """
interface Content { label: String! }
interface Boxed implements Content { label: String! size: Int! }
type Crate implements Content & Boxed @shareable %s { label: String! size: Int! slats: Int! }
type Tube implements Content & Boxed @shareable { label: String! size: Int! length: Int! }
"""
DEPOT = (
    HIDDEN_LINK
    + """
type Query { parcel: Parcel }
type Parcel @key(fields: "id") { id: ID! content: Content }
"""
    + CONTENTS % ""
)
HANDLING = (
    HIDDEN_LINK
    + """
type Parcel @key(fields: "id") {
  id: ID!
  content: Content @external
  handling: String @requires(fields: "content { label ... on Boxed { size ... on Crate { slats } ... on Tube { length } } }")
}
"""
    + CONTENTS % "@inaccessible"
)


async def test_a_required_fragment_on_a_type_the_client_schema_hides_is_kept() -> None:
    tube = {"__typename": "Tube", "label": "maps", "size": 3, "length": 90}
    depot = LocalSubgraph("depot", DEPOT, root={"parcel": {"id": "p1", "content": tube}})
    handling = LocalSubgraph(
        "handling",
        HANDLING,
        entities={
            "Parcel": [
                {
                    "id": "p1",
                    "handling": lambda obj: "{label}: {length} cm".format(**obj["content"]),
                }
            ]
        },
    )
    gateway = await local_gateway(depot, handling)
    query = "{ parcel { handling } }"
    try:
        # Crate is @inaccessible in handling, so not in the client schema: its part of
        # the field set is still asked of the depot as written
        assert plan_text(gateway, query) == _lines(
            """
            QueryPlan {
              Sequence {
                Fetch(service: "depot") {
                  query anonymous__depot{parcel{_veche_t:__typename _veche_k_id:id _veche_k_content:content{__typename label ...on Boxed{__typename size ...on Crate{slats}...on Tube{length}}}}}
                }
                Flatten {
                  e0 at Query.parcel <- $_veche_reps0: Parcel { id: _veche_k_id content: _veche_k_content { __typename label size slats length } }
                  Fetch(service: "handling") {
                    query anonymous__handling_1($_veche_reps0:[_Any!]!){e0:_entities(representations:$_veche_reps0){...on Parcel{_veche_t:__typename handling}}}
                  }
                }
              }
            }
            """
        )
        assert await gateway.execute(GraphQLRequest(query), {}) == {
            "data": {"parcel": {"handling": "maps: 90 cm"}}
        }
    finally:
        await gateway.stop()
