"""`@external` key fields, and a shared field selected on an interface.

The members desk defines `Member` and knows rooms only by key (`Room.id` is
`@external` there: it cannot return a room's id, whatever its resolver says);
the rooms desk the other way round. Both answer the shared `node(id:)`. A
field selected on the interface itself (`node { id }`) must come whole from
one subgraph, for every type it may return, as Apollo plans it: neither can,
so the operation is refused rather than answered with the other desk's
placeholder ids. Type conditions (`... on Member { id }`) may go their own
ways. An `@external` key field of a type extension (`extend type`, `@extends`)
is the subgraph's own: Federation's "fake" external.
"""

from __future__ import annotations

from textwrap import dedent
from typing import Any

from veche_gateway.compose import compose
from veche_gateway.gateway import GraphQLRequest
from veche_gateway.subgraph import load_subgraph
from veche_gateway.testing import LocalSubgraph, local_gateway, plan_text

LINK = (
    'extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", '
    'import: ["@key", "@shareable", "@external"])\n'
)
MEMBERS = (
    LINK
    + """
type Query { node(id: ID!): Node @shareable }
interface Node { id: ID! }
type Member implements Node @key(fields: "id") { id: ID! name: String! }
type Room implements Node @key(fields: "id") { id: ID! @external host: Member! }
"""
)
ROOMS = (
    LINK
    + """
type Query { node(id: ID!): Node @shareable }
interface Node { id: ID! }
type Member implements Node @key(fields: "id") { id: ID! @external rooms: [Room!]! }
type Room implements Node @key(fields: "id") { id: ID! title: String! }
"""
)
BADGES = (
    LINK
    + """
extend type Member @key(fields: "id") { id: ID! @external badges: [String!]! }
"""
)
MEMBER = {"__typename": "Member", "id": "m1", "name": "Anna"}
ROOM = {"__typename": "Room", "id": "r1", "title": "Hall"}


def _node(found: dict[str, Any]) -> Any:
    # each desk returns "never" for the id it does not own, as a resolver of an
    # @external field may: the gateway must not ask it for that id
    def node(_info: Any, id: str) -> Any:
        if id == found["id"]:
            return found
        other = MEMBER if found is ROOM else ROOM
        return {**other, "id": "never"} if id == other["id"] else None

    return node


def _subgraphs() -> tuple[LocalSubgraph, LocalSubgraph]:
    members = LocalSubgraph("members", MEMBERS, root={"node": _node(MEMBER)})
    rooms = LocalSubgraph("rooms", ROOMS, root={"node": _node(ROOM)})
    return members, rooms


def _lines(text: str) -> str:
    return dedent(text).strip()


def test_an_external_key_field_is_resolved_only_where_it_is_not_external() -> None:
    supergraph = compose(
        [
            load_subgraph("members", "http://m", MEMBERS),
            load_subgraph("rooms", "http://r", ROOMS),
            load_subgraph("badges", "http://b", BADGES),
        ]
    )
    assert supergraph.model.field_resolvers("Room", "id") == ("rooms",)
    # on a type extension the @external key is the subgraph's own
    assert supergraph.model.field_resolvers("Member", "id") == ("members", "badges")


async def test_a_field_on_the_interface_no_one_subgraph_gives_for_every_type_is_refused() -> None:
    gateway = await local_gateway(*_subgraphs())
    try:
        for query in (
            '{ node(id: "m1") { id } }',
            '{ node(id: "m1") { id ... on Room { id } } }',
        ):
            assert await gateway.execute(GraphQLRequest(query), {}) == {
                "errors": [
                    {
                        "message": 'Cannot plan "Member.id" from subgraph "rooms": it is '
                        "resolved by members, and none of them has a resolvable @key on "
                        "Member whose fields rooms can provide",
                        "extensions": {"code": "INTERNAL"},
                    }
                ],
                "data": None,
            }
    finally:
        await gateway.stop()


async def test_type_conditions_go_to_the_subgraph_that_owns_each_id() -> None:
    members, rooms = _subgraphs()
    gateway = await local_gateway(members, rooms)
    query = (
        '{ m: node(id: "m1") { ... on Member { id name } ... on Room { id } } '
        'r: node(id: "r1") { __typename ... on Room { id title } } }'
    )
    try:
        assert plan_text(gateway, query) == _lines(
            """
            QueryPlan {
              Parallel {
                Fetch(service: "members") {
                  query anonymous__members{m:node(id:"m1"){_veche_t:__typename ...on Member{id name}}}
                }
                Fetch(service: "rooms") {
                  query anonymous__rooms{m:node(id:"m1"){_veche_t:__typename ...on Room{id}}r:node(id:"r1"){_veche_t:__typename ...on Room{id title}}}
                }
              }
            }
            """
        )
        assert await gateway.execute(GraphQLRequest(query), {}) == {
            "data": {
                "m": {"id": "m1", "name": "Anna"},
                "r": {"__typename": "Room", "id": "r1", "title": "Hall"},
            }
        }
    finally:
        await gateway.stop()
