"""Federation directives the gateway does not implement are refused at composition,
each with a named error, never silently ignored."""

from __future__ import annotations

import pytest

from veche_gateway.compose import compose
from veche_gateway.errors import CompositionError
from veche_gateway.subgraph import load_subgraph

LINK = (
    'extend schema @link(url: "https://specs.apollo.dev/federation/v2.8", '
    'import: ["@key", "@override", "@context", "@fromContext", "@composeDirective", '
    '"@authenticated", "@requiresScopes", "@policy"])\n'
)
BASE = 'type Query { ward: Ward }\ntype Ward @key(fields: "id") { id: ID! name: String }\n'
REFUSED = " is not supported by this gateway: it would be ignored, changing what clients get; "
REFUSED += "remove it from the subgraph or compose without it"


@pytest.mark.parametrize(
    ("sdl", "named"),
    [
        (
            'type Query { ward: Ward }\ntype Ward @key(fields: "id") @context(name: "ward") '
            "{ id: ID! name: String }\n",
            '@context on type "Ward"',
        ),
        (
            'type Query { ward: Ward }\ntype Ward @key(fields: "id") { id: ID! name: String '
            'label(prefix: String @fromContext(field: "$ward { name }")): String }\n',
            '@fromContext on argument "Ward.label(prefix:)"',
        ),
        (
            'type Query { ward: Ward }\ntype Ward @key(fields: "id") '
            '{ id: ID! name: String @override(from: "old", label: "percent(10)") }\n',
            '@override(label:) on field "Ward.name"',
        ),
        (
            'extend schema @composeDirective(name: "@audit")\n' + BASE,
            "@composeDirective on the schema",
        ),
        (
            'type Query { ward: Ward @authenticated }\ntype Ward @key(fields: "id") { id: ID! }\n',
            '@authenticated on field "Query.ward"',
        ),
        (
            'type Query { ward: Ward }\ntype Ward @key(fields: "id") '
            '@requiresScopes(scopes: [["admin"]]) { id: ID! }\n',
            '@requiresScopes on type "Ward"',
        ),
        (
            'type Query { ward: Ward @policy(policies: [["staff"]]) }\n'
            'type Ward @key(fields: "id") { id: ID! }\n',
            '@policy on field "Query.ward"',
        ),
    ],
)
def test_an_unsupported_directive_is_refused_by_name(sdl: str, named: str) -> None:
    with pytest.raises(CompositionError) as refused:
        compose([load_subgraph("wards", "http://w", LINK + sdl)])
    assert str(refused.value) == f"[wards] {named}{REFUSED}"


def test_override_without_a_label_still_composes() -> None:
    old = LINK + BASE.replace("type Query { ward: Ward }\n", "type Query { old: Ward }\n")
    new = LINK + BASE.replace("name: String", 'name: String @override(from: "old")')
    supergraph = compose(
        [load_subgraph("old", "http://o", old), load_subgraph("new", "http://n", new)]
    )
    assert supergraph.model.field_resolvers("Ward", "name") == ("new",)
