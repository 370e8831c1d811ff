"""`@key` on interfaces and `@interfaceObject`: a subgraph that has an interface as a
plain object type adds fields to every implementation without knowing them.

The places desk defines the `Venue` interface and its implementations; the
bookings desk sees venues only as `type Venue @interfaceObject` (it adds
`rating`, and `summary` from the venue's name with `@requires`); the access desk
likewise, adding `open` (which places also gives for parks, shareable).
"""

from __future__ import annotations

from textwrap import dedent
from typing import Any

import pytest

from veche_gateway.compose import compose
from veche_gateway.gateway import GraphQLRequest
from veche_gateway.subgraph import load_subgraph
from veche_gateway.testing import LocalSubgraph, local_gateway, plan_text

LINK = (
    'extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", '
    'import: ["@key", "@interfaceObject", "@shareable", "@external", "@requires"])\n'
)
PLACES = (
    LINK
    + """
interface Venue @key(fields: "id") { id: ID! name: String! }
type Library implements Venue @key(fields: "id") { id: ID! name: String! books: Int! }
type Park implements Venue @key(fields: "id") {
  id: ID! name: String! hectares: Int! open: Boolean! @shareable
}
type Query { venues: [Venue!]! }
"""
)
BOOKINGS = (
    LINK
    + """
type Venue @key(fields: "id") @interfaceObject {
  id: ID!
  rating: Int!
  name: String! @external
  summary: String! @requires(fields: "name")
}
type Query { topVenues: [Venue!]! }
"""
)
ACCESS = (
    LINK
    + """
type Venue @key(fields: "id") @interfaceObject { id: ID! open: Boolean! @shareable }
"""
)
VENUES = [
    {"__typename": "Library", "id": "v1", "name": "Central Library", "books": 9000},
    {"__typename": "Park", "id": "v2", "name": "River Park", "hectares": 12, "open": True},
]
RATINGS = [
    {"id": "v2", "rating": 5, "summary": lambda venue: f"{venue['name']}: 5 stars"},
    {"id": "v1", "rating": 4, "summary": lambda venue: f"{venue['name']}: 4 stars"},
]


def _lines(text: str) -> str:
    return dedent(text).strip()


def _subgraphs() -> tuple[LocalSubgraph, LocalSubgraph, LocalSubgraph]:
    places = LocalSubgraph(
        "places",
        PLACES,
        root={"venues": VENUES},
        entities={"Venue": VENUES, "Library": VENUES[:1], "Park": VENUES[1:]},
    )
    bookings = LocalSubgraph(
        "bookings", BOOKINGS, root={"topVenues": RATINGS}, entities={"Venue": RATINGS}
    )
    # access closes every venue: a park's `open` from places says otherwise
    access = LocalSubgraph(
        "access", ACCESS, entities={"Venue": [{"id": v["id"], "open": False} for v in VENUES]}
    )
    return places, bookings, access


async def _run(query: str) -> tuple[str, dict[str, Any], list[list[str]]]:
    subgraphs = _subgraphs()
    gateway = await local_gateway(*subgraphs)
    try:
        plan = plan_text(gateway, query)
        response = await gateway.execute(GraphQLRequest(query), {})
    finally:
        await gateway.stop()
    return plan, response, [s.received[1:] for s in subgraphs]


def test_the_interface_gets_the_interface_objects_fields_and_so_does_each_implementation() -> None:
    supergraph = compose(
        [
            load_subgraph("places", "http://p", PLACES),
            load_subgraph("bookings", "http://b", BOOKINGS),
            load_subgraph("access", "http://a", ACCESS),
        ]
    )
    venue = supergraph.schema.type_map["Venue"]
    park = supergraph.schema.type_map["Park"]
    assert type(venue).__name__ == "GraphQLInterfaceType"
    assert list(venue.fields) == ["id", "name", "rating", "summary", "open"]  # type: ignore[attr-defined]
    assert list(park.fields) == ["id", "name", "hectares", "open", "rating", "summary"]  # type: ignore[attr-defined]
    assert supergraph.model.field_resolvers("Park", "open") == ("places", "access")
    assert supergraph.model.field_resolvers("Library", "rating") == ("bookings",)


async def test_an_implementation_gets_interface_object_fields_sent_as_the_interface() -> None:
    plan, response, _ = await _run("{ venues { name rating } }")
    assert plan == _lines(
        """
        QueryPlan {
          Sequence {
            Fetch(service: "places") {
              query anonymous__places{venues{_veche_t:__typename ...on Library{name _veche_k_id:id}...on Park{name _veche_k_id:id}}}
            }
            Flatten {
              e0 at Query.venues <- $_veche_reps0: Library as Venue { id: _veche_k_id }; Park as Venue { id: _veche_k_id }
              Fetch(service: "bookings") {
                query anonymous__bookings_1($_veche_reps0:[_Any!]!){e0:_entities(representations:$_veche_reps0){...on Venue{rating}}}
              }
            }
          }
        }
        """
    )
    assert response == {
        "data": {
            "venues": [
                {"name": "Central Library", "rating": 4},
                {"name": "River Park", "rating": 5},
            ]
        }
    }


async def test_an_interface_objects_objects_get_their_concrete_type_from_the_interface() -> None:
    query = "{ topVenues { __typename rating name ... on Park { hectares } } }"
    plan, response, received = await _run(query)
    # one call to places tells each venue's type and gives what it resolves for it
    assert plan == _lines(
        """
        QueryPlan {
          Sequence {
            Fetch(service: "bookings") {
              query anonymous__bookings{topVenues{_veche_t:__typename rating _veche_k_id:id}}
            }
            Flatten {
              e0 at Query.topVenues <- $_veche_reps0: Venue { id: _veche_k_id }
              Fetch(service: "places") {
                query anonymous__places_1($_veche_reps0:[_Any!]!){e0:_entities(representations:$_veche_reps0){...on Venue{_veche_t:__typename ...on Library{name}...on Park{name hectares}}}}
              }
            }
          }
        }
        """
    )
    assert response == {
        "data": {
            "topVenues": [
                {"__typename": "Park", "rating": 5, "name": "River Park", "hectares": 12},
                {"__typename": "Library", "rating": 4, "name": "Central Library"},
            ]
        }
    }
    assert received[2] == []  # access was not asked


async def test_a_field_every_type_selects_alike_comes_from_another_interface_object() -> None:
    plan, response, _ = await _run("{ topVenues { id open } }")
    assert plan == _lines(
        """
        QueryPlan {
          Sequence {
            Fetch(service: "bookings") {
              query anonymous__bookings{topVenues{_veche_t:__typename id _veche_k_id:id}}
            }
            Parallel {
              Flatten {
                e0 at Query.topVenues <- $_veche_reps0: Venue { id: _veche_k_id }
                Fetch(service: "access") {
                  query anonymous__access_1($_veche_reps0:[_Any!]!){e0:_entities(representations:$_veche_reps0){...on Venue{open}}}
                }
              }
              Flatten {
                e0 at Query.topVenues <- $_veche_reps0: Venue { id: _veche_k_id }
                Fetch(service: "places") {
                  query anonymous__places_1($_veche_reps0:[_Any!]!){e0:_entities(representations:$_veche_reps0){...on Venue{_veche_t:__typename}}}
                }
              }
            }
          }
        }
        """
    )
    assert response == {
        "data": {"topVenues": [{"id": "v2", "open": False}, {"id": "v1", "open": False}]}
    }


async def test_a_field_one_type_selects_comes_with_its_type() -> None:
    plan, response, received = await _run("{ topVenues { id ... on Park { open } } }")
    assert "access" not in plan
    assert response == {"data": {"topVenues": [{"id": "v2", "open": True}, {"id": "v1"}]}}
    assert received[0] == [
        "query anonymous__places_1($_veche_reps0:[_Any!]!){e0:_entities(representations:"
        "$_veche_reps0){...on Venue{_veche_t:__typename ...on Park{open}}}}"
    ]


@pytest.mark.parametrize("root", ["venues", "topVenues"])
async def test_a_requires_on_an_interface_object_is_met_from_the_interface(root: str) -> None:
    plan, response, received = await _run(f"{{ {root} {{ summary }} }}")
    assert response["data"][root] == (
        [{"summary": "Central Library: 4 stars"}, {"summary": "River Park: 5 stars"}]
        if root == "venues"
        else [{"summary": "River Park: 5 stars"}, {"summary": "Central Library: 4 stars"}]
    )
    assert "errors" not in response
    # bookings is asked for `summary` with the venue's name, sent as a Venue
    summary_fetch = received[1][-1]
    assert summary_fetch.endswith("{...on Venue{summary}}}")
    assert "_veche_k_name:name" in plan
