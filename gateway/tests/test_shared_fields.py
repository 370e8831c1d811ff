"""Shared root fields and shareable fields that subgraphs complete between them.

Satisfiability as Apollo judges it (composition walks the paths a client can
select), and plans that split a shared field's selection over the subgraphs
that can answer each part. Subgraphs run in process (`veche_gateway.testing`).
"""

from __future__ import annotations

from textwrap import dedent

from veche_gateway.gateway import GraphQLRequest
from veche_gateway.testing import LocalSubgraph, local_gateway, plan_text

LINK = (
    'extend schema @link(url: "https://specs.apollo.dev/federation/v2.6", '
    'import: ["@key", "@shareable", "@external"])\n'
)


def _lines(text: str) -> str:
    return dedent(text).strip()


# Three departments each describe the same value type (no key) behind a shared root.
STOPS = (
    LINK
    + """
type Query { stop: Stop! @shareable }
type Stop { code: ID! @shareable lines: [String!]! }
"""
)
SHELTERS = (
    LINK
    + """
type Query { stop: Stop! @shareable }
type Stop { code: ID! @shareable shelter: Boolean! }
"""
)


async def test_a_shared_root_field_is_split_over_the_subgraphs_that_answer_each_part() -> None:
    stops = LocalSubgraph("stops", STOPS, root={"stop": {"code": "S1", "lines": ["7", "12"]}})
    shelters = LocalSubgraph("shelters", SHELTERS, root={"stop": {"code": "S1", "shelter": True}})
    gateway = await local_gateway(stops, shelters)
    query = "{ stop { code lines shelter } }"
    assert plan_text(gateway, query) == _lines(
        """
        QueryPlan {
          Parallel {
            Fetch(service: "stops") {
              query anonymous__stops{stop{_veche_t:__typename code lines}}
            }
            Fetch(service: "shelters") {
              query anonymous__shelters{stop{_veche_t:__typename shelter}}
            }
          }
        }
        """
    )
    assert await gateway.execute(GraphQLRequest(query), {}) == {
        "data": {"stop": {"code": "S1", "lines": ["7", "12"], "shelter": True}}
    }
    # what one subgraph answers alone is fetched from it alone
    assert "Parallel" not in plan_text(gateway, "{ stop { code lines } }")
    await gateway.stop()


# A value type (no key) that a third subgraph extends, reached only through an entity.
ROUTES = (
    LINK
    + """
type Query { routes: [Route!]! }
type Route @key(fields: "id") { id: ID! depot: Depot @shareable }
type Depot { name: String @shareable }
"""
)
DEPOTS = (
    LINK
    + """
type Route @key(fields: "id") { id: ID! depot: Depot @shareable }
type Depot { capacity: Int }
"""
)


async def test_a_value_type_field_is_fetched_through_the_entity_above_it() -> None:
    routes = LocalSubgraph(
        "routes", ROUTES, root={"routes": [{"id": "r1", "depot": {"name": "North"}}]}
    )
    depots = LocalSubgraph(
        "depots", DEPOTS, entities={"Route": [{"id": "r1", "depot": {"capacity": 40}}]}
    )
    gateway = await local_gateway(routes, depots)
    query = "{ routes { id depot { name capacity } } }"
    assert plan_text(gateway, query) == _lines(
        """
        QueryPlan {
          Sequence {
            Fetch(service: "routes") {
              query anonymous__routes{routes{_veche_t:__typename id depot{_veche_t:__typename name}_veche_k_id:id}}
            }
            Flatten {
              e0 at Query.routes <- $_veche_reps0: Route { id: _veche_k_id }
              Fetch(service: "depots") {
                query anonymous__depots_1($_veche_reps0:[_Any!]!){e0:_entities(representations:$_veche_reps0){...on Route{_veche_t:__typename depot{_veche_t:__typename capacity}}}}
              }
            }
          }
        }
        """
    )
    assert await gateway.execute(GraphQLRequest(query), {}) == {
        "data": {"routes": [{"id": "r1", "depot": {"name": "North", "capacity": 40}}]}
    }
    await gateway.stop()


# Two subgraphs each give part of a shareable field's object; one has the key of the next.
TIMETABLE = (
    LINK
    + """
type Query { trip(id: ID!): Trip }
type Trip @key(fields: "id") { id: ID! }
"""
)
CREWS = (
    LINK
    + """
type Trip @key(fields: "id") { id: ID! @external driver: Driver @shareable }
type Driver { shift: String }
"""
)
STAFF = (
    LINK
    + """
type Trip @key(fields: "id") { id: ID! @external driver: Driver @shareable }
type Driver { badge: ID @shareable }
"""
)
PEOPLE = (
    LINK
    + """
type Driver @key(fields: "badge") { badge: ID name: String }
"""
)


async def test_a_shareable_field_is_completed_by_several_subgraphs() -> None:
    subgraphs = [
        LocalSubgraph("timetable", TIMETABLE, root={"trip": lambda _info, id: {"id": id}}),
        LocalSubgraph("crews", CREWS, entities={"Trip": [{"id": "t1", "driver": {"shift": "am"}}]}),
        LocalSubgraph("staff", STAFF, entities={"Trip": [{"id": "t1", "driver": {"badge": "b7"}}]}),
        LocalSubgraph("people", PEOPLE, entities={"Driver": [{"badge": "b7", "name": "Oleg"}]}),
    ]
    gateway = await local_gateway(*subgraphs)
    query = '{ trip(id: "t1") { driver { shift badge name } } }'
    assert plan_text(gateway, query) == _lines(
        """
        QueryPlan {
          Sequence {
            Fetch(service: "timetable") {
              query anonymous__timetable{trip(id:"t1"){_veche_t:__typename _veche_k_id:id}}
            }
            Parallel {
              Flatten {
                e0 at Query.trip <- $_veche_reps0: Trip { id: _veche_k_id }
                Fetch(service: "crews") {
                  query anonymous__crews_1($_veche_reps0:[_Any!]!){e0:_entities(representations:$_veche_reps0){...on Trip{_veche_t:__typename driver{_veche_t:__typename shift}}}}
                }
              }
              Flatten {
                e0 at Query.trip <- $_veche_reps0: Trip { id: _veche_k_id }
                Fetch(service: "staff") {
                  query anonymous__staff_1($_veche_reps0:[_Any!]!){e0:_entities(representations:$_veche_reps0){...on Trip{_veche_t:__typename driver{_veche_t:__typename badge _veche_k_badge:badge}}}}
                }
              }
            }
            Flatten {
              e0 at Query.trip > Trip.driver <- $_veche_reps0: Driver { badge: _veche_k_badge }
              Fetch(service: "people") {
                query anonymous__people_2($_veche_reps0:[_Any!]!){e0:_entities(representations:$_veche_reps0){...on Driver{_veche_t:__typename name}}}
              }
            }
          }
        }
        """
    )
    assert await gateway.execute(GraphQLRequest(query), {}) == {
        "data": {"trip": {"driver": {"shift": "am", "badge": "b7", "name": "Oleg"}}}
    }
    await gateway.stop()
