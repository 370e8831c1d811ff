"""Key conversion: a key whose fields no one subgraph holding the object has.

The registry lists the lots on a board (each lot's `ward` its own, the lot's
`id` from its key); the serials desk gives a lot's `serial` by `id`; pricing
knows a lot only by `id serial ward { id code }`, gathered from the registry
and serials; picks knows a board by `lots { id serial }`, the registry's list
with each lot's serial from serials. Composition accepts it as Apollo's does,
and the plan fetches the serials first, then pricing and picks together.
"""

from __future__ import annotations

from textwrap import dedent

from graphql import FieldNode

from veche_gateway.compose import compose
from veche_gateway.gateway import GraphQLRequest
from veche_gateway.subgraph import load_subgraph, parse_field_set
from veche_gateway.testing import LocalSubgraph, local_gateway, plan_text

LINK = (
    'extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", '
    'import: ["@key", "@shareable", "@external", "@extends"])\n'
)
REGISTRY = (
    LINK
    + """
type Query { board: Board! }
type Board @key(fields: "lots { id }") { lots: [Lot!]! }
type Lot @extends @key(fields: "id") { id: ID! @external ward: Ward! @shareable }
type Ward @shareable { id: ID! code: String! }
"""
)
SERIALS = LINK + 'type Lot @key(fields: "id") { id: ID! serial: String! @shareable }\n'
PRICING = (
    LINK
    + """
type Lot @key(fields: "id serial ward { id code }") {
  id: ID! serial: String! ward: Ward! price: Int!
}
type Ward @shareable { id: ID! code: String! }
"""
)
PICKS = (
    LINK
    + """
type Board @key(fields: "lots { id serial }") { lots: [Lot!]! featured: Lot }
type Lot @key(fields: "id serial") { id: ID! serial: String! }
"""
)
WARDS = {"l1": {"id": "w1", "code": "N"}, "l2": {"id": "w2", "code": "S"}}
SERIAL = {"l1": "S-1", "l2": "S-2"}
QUERY = "{ board { lots { id serial price } featured { id } } }"


def _subgraphs() -> list[LocalSubgraph]:
    lots = [{"id": i, "ward": WARDS[i]} for i in WARDS]
    return [
        LocalSubgraph("registry", REGISTRY, root={"board": {"lots": lots}}),
        LocalSubgraph(
            "serials", SERIALS, entities={"Lot": [{"id": i, "serial": SERIAL[i]} for i in WARDS]}
        ),
        LocalSubgraph(
            "pricing",
            PRICING,
            entities={
                "Lot": [
                    {"id": i, "serial": SERIAL[i], "ward": WARDS[i], "price": 100 * n}
                    for n, i in enumerate(WARDS, 1)
                ]
            },
        ),
        LocalSubgraph(
            "picks",
            PICKS,
            entities={
                "Board": [
                    {
                        # a representation's lots, as the gateway sends them
                        "lots": [
                            {"__typename": "Lot", "id": i, "serial": SERIAL[i]} for i in WARDS
                        ],
                        "featured": {"id": "l2", "serial": "S-2"},
                    }
                ]
            },
        ),
    ]


def _lines(text: str) -> str:
    return dedent(text).strip()


def _field(text: str) -> FieldNode:
    node = parse_field_set(text).selections[0]
    assert isinstance(node, FieldNode)
    return node


def test_a_key_gathered_from_several_subgraphs_reaches_its_subgraph() -> None:
    model = compose([load_subgraph(s.name, f"http://{s.name}", s.sdl) for s in _subgraphs()]).model
    # no direct entry: the registry has no serial...
    assert model.entry_key("registry", "pricing", "Lot") is None
    assert model.entry_key("registry", "picks", "Board") is None
    assert not model.provides_field("registry", "Board", _field("lots { id serial }"))
    # ...but it reaches serials by `id`, and so pricing and picks
    assert model.reaches("registry", "pricing", "Lot")
    assert model.reaches("registry", "picks", "Board")
    # serials avoided, no one gives a serial: pricing and picks need one to be entered
    assert not model.obtainable("registry", "Lot", _field("serial"), frozenset({"serials"}))


async def test_the_plan_fetches_the_missing_key_fields_first() -> None:
    subgraphs = _subgraphs()
    gateway = await local_gateway(*subgraphs)
    try:
        assert plan_text(gateway, QUERY) == _lines(
            """
            QueryPlan {
              Sequence {
                Fetch(service: "registry") {
                  query anonymous__registry{board{_veche_t:__typename lots{_veche_t:__typename id _veche_k_id:id _veche_k_ward:ward{id code}}_veche_k_lots:lots{_veche_t:__typename id _veche_k_id:id}}}
                }
                Flatten {
                  e0 at Query.board > Board.lots <- $_veche_reps0: Lot { id: _veche_k_id }
                  e1 at Query.board > Board._veche_k_lots <- $_veche_reps1: Lot { id: _veche_k_id }
                  Fetch(service: "serials") {
                    query anonymous__serials_1($_veche_reps0:[_Any!]!$_veche_reps1:[_Any!]!){e0:_entities(representations:$_veche_reps0){...on Lot{_veche_t:__typename serial _veche_k_serial:serial}}e1:_entities(representations:$_veche_reps1){...on Lot{_veche_t:__typename serial}}}
                  }
                }
                Parallel {
                  Flatten {
                    e0 at Query.board > Board.lots <- $_veche_reps0: Lot { id: _veche_k_id serial: _veche_k_serial ward: _veche_k_ward { id code } }
                    Fetch(service: "pricing") {
                      query anonymous__pricing_2($_veche_reps0:[_Any!]!){e0:_entities(representations:$_veche_reps0){...on Lot{_veche_t:__typename price}}}
                    }
                  }
                  Flatten {
                    e0 at Query.board <- $_veche_reps0: Board { lots: _veche_k_lots { id serial } }
                    Fetch(service: "picks") {
                      query anonymous__picks_2($_veche_reps0:[_Any!]!){e0:_entities(representations:$_veche_reps0){...on Board{_veche_t:__typename featured{_veche_t:__typename id}}}}
                    }
                  }
                }
              }
            }
            """
        )
        assert await gateway.execute(GraphQLRequest(QUERY), {}) == {
            "data": {
                "board": {
                    "lots": [
                        {"id": "l1", "serial": "S-1", "price": 100},
                        {"id": "l2", "serial": "S-2", "price": 200},
                    ],
                    "featured": {"id": "l2"},
                }
            }
        }
    finally:
        await gateway.stop()
