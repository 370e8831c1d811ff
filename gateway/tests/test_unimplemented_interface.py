"""An interface that no object type implements anywhere, given fields by an
`@interfaceObject` that cannot be entered (`resolvable: false`).

The notes desk defines `interface Tag @key(fields: "id")` and declares no
implementation; the labels desk has `type Tag @interfaceObject` with a
non-resolvable key and adds `colour`. A tag from labels has no concrete type
to learn, so its own fields come from labels as they are; what would need a
concrete type (`__typename`) or a field no one can give a tag from notes is
refused at planning.
"""

from __future__ import annotations

from textwrap import dedent

from veche_gateway.gateway import GraphQLRequest
from veche_gateway.testing import LocalSubgraph, local_gateway, plan_text

LINK = (
    'extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", '
    'import: ["@key", "@interfaceObject"])\n'
)
NOTES = (
    LINK
    + """
interface Tag @key(fields: "id") { id: ID! }
type Query { pinned: Tag }
"""
)
LABELS = (
    LINK
    + """
type Tag @key(fields: "id", resolvable: false) @interfaceObject { id: ID! colour: String }
type Query { label: Tag }
"""
)


def _subgraphs() -> tuple[LocalSubgraph, LocalSubgraph]:
    notes = LocalSubgraph("notes", NOTES, root={"pinned": {"__typename": "Tag", "id": "t1"}})
    labels = LocalSubgraph(
        "labels", LABELS, root={"label": {"__typename": "Tag", "id": "t1", "colour": "red"}}
    )
    return notes, labels


def _lines(text: str) -> str:
    return dedent(text).strip()


async def test_an_interface_objects_own_fields_come_as_they_are() -> None:
    notes, labels = _subgraphs()
    gateway = await local_gateway(notes, labels)
    query = "{ label { id colour } }"
    try:
        assert plan_text(gateway, query) == _lines(
            """
            QueryPlan {
              Fetch(service: "labels") {
                query anonymous__labels{label{_veche_t:__typename id colour}}
              }
            }
            """
        )
        assert await gateway.execute(GraphQLRequest(query), {}) == {
            "data": {"label": {"id": "t1", "colour": "red"}}
        }
    finally:
        await gateway.stop()
    assert notes.received[1:] == []  # no one was asked for a concrete type


async def test_what_needs_a_concrete_type_or_an_unreachable_field_is_refused() -> None:
    gateway = await local_gateway(*_subgraphs())
    refusals = {
        "{ label { __typename id } }": 'Cannot plan "Tag.__typename" from subgraph "labels": '
        'it has "Tag" as an @interfaceObject, no object type implements "Tag" in the '
        "supergraph, and so its objects have no type to name",
        # labels' key is not resolvable: a tag from notes cannot be handed to it
        "{ pinned { colour } }": 'Cannot plan "Tag.colour" from subgraph "notes": it is '
        "resolved by labels, and none of them has a resolvable @key on Tag whose fields "
        "notes can provide",
    }
    try:
        for query, message in refusals.items():
            assert await gateway.execute(GraphQLRequest(query), {}) == {
                "errors": [{"message": message, "extensions": {"code": "INTERNAL"}}],
                "data": None,
            }
    finally:
        await gateway.stop()
