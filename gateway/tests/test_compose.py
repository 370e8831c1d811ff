"""Composition rules and error messages, from SDL text (no HTTP)."""

from __future__ import annotations

import pytest

from veche_gateway.compose import compose
from veche_gateway.errors import CompositionError
from veche_gateway.subgraph import load_subgraph
from veche_gateway.supergraph import Supergraph

LINK = (
    'extend schema @link(url: "https://specs.apollo.dev/federation/v2.11", '
    'import: ["@key", "@shareable", "@external", "@requires", "@provides", '
    '"@inaccessible", "@override"])\n'
)


def _compose(**sdls: str) -> Supergraph:
    return compose(
        [load_subgraph(name, f"http://{name}/graphql", sdl) for name, sdl in sdls.items()]
    )


def _error(**sdls: str) -> str:
    with pytest.raises(CompositionError) as caught:
        _compose(**sdls)
    return str(caught.value)


A = (
    LINK
    + '''
"""A person."""
type User @key(fields: "id") {
  id: ID!
  "How others see them"
  name: String!
  secret: String @inaccessible
  old: String @deprecated(reason: "use name")
}
type Query {
  _service: _Service!
  _entities(representations: [_Any!]!): [_Entity]!
  "Look a user up"
  user(id: ID!): User
}
scalar _Any
union _Entity = User
type _Service { sdl: String! }
'''
)

B = (
    LINK
    + """
type User @key(fields: "id") { id: ID! reviews: [Review!]! }
type Review { stars: Int! }
type Query { topReviews(first: Int = 5): [Review!]! }
"""
)


def test_the_client_schema_keeps_descriptions_and_drops_federation_plumbing() -> None:
    assert _compose(a=A, b=B).sdl == (
        "type Query {\n"
        '  """Look a user up"""\n'
        "  user(id: ID!): User\n"
        "  topReviews(first: Int = 5): [Review!]!\n"
        "}\n"
        "\n"
        '"""A person."""\n'
        "type User {\n"
        "  id: ID!\n"
        "\n"
        '  """How others see them"""\n'
        "  name: String!\n"
        '  old: String @deprecated(reason: "use name")\n'
        "  reviews: [Review!]!\n"
        "}\n"
        "\n"
        "type Review {\n"
        "  stars: Int!\n"
        "}"
    )


def test_planning_metadata() -> None:
    supergraph = _compose(a=A, b=B)
    assert supergraph.field_resolvers("User", "name") == ["a"]
    assert supergraph.field_resolvers("User", "id") == ["a", "b"]
    assert supergraph.field_resolvers("User", "reviews") == ["b"]
    assert [k.fields for k in supergraph.keys("b", "User")] == ["id"]
    assert supergraph.field_resolvers("User", "secret") == ["a"]  # hidden, still plannable


def test_non_shareable_field_in_two_subgraphs_is_refused() -> None:
    clash = LINK + 'type User @key(fields: "id") { id: ID! name: String! }\ntype Query { x: Int }'
    assert _error(a=A, c=clash) == (
        'Non-shareable field "User.name" is resolved from multiple subgraphs: it is resolved '
        'from subgraphs "a", "c" and defined as non-shareable in subgraph(s) "a", "c"'
    )


def test_shareable_and_override() -> None:
    shared = LINK + (
        'type User @key(fields: "id") { id: ID! name: String! @shareable }\ntype Query { x: Int }'
    )
    a = A.replace("name: String!", "name: String! @shareable")
    assert _compose(a=a, s=shared).field_resolvers("User", "name") == ["a", "s"]
    taking = LINK + (
        'type User @key(fields: "id") { id: ID! name: String! @override(from: "a") }\n'
        "type Query { x: Int }"
    )
    assert _compose(a=A, t=taking).field_resolvers("User", "name") == ["t"]


def test_kind_mismatch_names_the_subgraphs() -> None:
    other = LINK + "interface Review { stars: Int! }\ntype Query { y: Int }"
    assert _error(b=B, o=other) == (
        'Type "Review" has mismatched kinds: Object in subgraph "b"; Interface in subgraph "o"'
    )


def test_incompatible_field_types() -> None:
    other = LINK + "type Review @shareable { stars: String! }\ntype Query { y: Int }"
    b = B.replace("type Review {", "type Review @shareable {")
    assert _error(b=b, o=other) == (
        'Type of field "Review.stars" is incompatible across subgraphs: '
        '"Int!" in subgraph "b"; "String!" in subgraph "o"'
    )


def test_nullability_differences_merge_to_the_nullable_output() -> None:
    other = LINK + "type Review @shareable { stars: Int }\ntype Query { y: Int }"
    b = B.replace("type Review {", "type Review @shareable {")
    assert "  stars: Int\n" in _compose(b=b, o=other).sdl


def test_a_field_external_everywhere_is_refused() -> None:
    c = LINK + (
        'type User @key(fields: "id") { id: ID! age: Int @external '
        'label: String @requires(fields: "age") }\ntype Query { z: Int }'
    )
    assert _error(a=A, c=c) == (
        'Field "User.age" is marked @external in every subgraph that defines it ("c"): '
        "no subgraph resolves it"
    )


def test_unreachable_field_is_refused() -> None:
    # c adds User.badge but its key is not resolvable: a cannot get there
    c = LINK + (
        'type User @key(fields: "id", resolvable: false) { id: ID! badge: String }\n'
        "type Query { z: Int }"
    )
    assert _error(a=A, c=c) == (
        'Field "User.badge" cannot be resolved at "Query.user.badge" from subgraph(s) "a": '
        'it is resolved only by subgraph(s) "c", and none of them has a resolvable @key on '
        'type "User" whose fields subgraph(s) "a" can provide'
    )


def test_satisfiability_follows_the_paths_a_client_can_select() -> None:
    # profiles knows users by handle only, and never returns one itself: the User.id it
    # cannot fetch is never asked of it (User is reached from a, which reaches it)
    a = LINK + (
        'type User @key(fields: "id") { id: ID! handle: String! }\ntype Query { user: User }'
    )
    profiles = LINK + ('type User @key(fields: "handle") { handle: String! @external bio: String }')
    assert "bio: String" in _compose(a=a, profiles=profiles).sdl
    # once profiles returns a User, the id it cannot provide is unreachable there
    root = profiles + "\ntype Query { featured: User }"
    assert _error(a=a, profiles=root) == (
        'Field "User.id" cannot be resolved at "Query.featured.id" from subgraph(s) '
        '"profiles": it is resolved only by subgraph(s) "a", and none of them has a '
        'resolvable @key on type "User" whose fields subgraph(s) "profiles" can provide'
    )


def test_a_shared_root_field_is_held_by_every_subgraph_resolving_it() -> None:
    # no keys: each subgraph adds its own field to a value type behind a shared root
    first = LINK + (
        "type Query { item: Item @shareable }\ntype Item { id: ID! @shareable size: Int }"
    )
    second = LINK + (
        "type Query { item: Item @shareable }\ntype Item { id: ID! @shareable color: String }"
    )
    sdl = _compose(first=first, second=second).sdl
    assert "type Item {\n  id: ID!\n  size: Int\n  color: String\n}" in sdl


def test_enums_merge_by_usage() -> None:
    out_a = LINK + "enum Color { RED GREEN }\ntype Query { a: Color }"
    out_b = LINK + "enum Color { RED BLUE }\ntype Query { b: Color }"
    assert "enum Color {\n  RED\n  GREEN\n  BLUE\n}" in _compose(a=out_a, b=out_b).sdl
    in_a = LINK + "enum Color { RED GREEN }\ntype Query { a(c: Color): Int }"
    in_b = LINK + "enum Color { RED BLUE }\ntype Query { b(c: Color): Int }"
    assert "enum Color {\n  RED\n}" in _compose(a=in_a, b=in_b).sdl
    both = LINK + "enum Color { RED BLUE }\ntype Query { b(c: Color): Color }"
    assert _error(a=out_a, b=both) == (
        'Enum type "Color" is used as both input and output type and its values are '
        "inconsistent across subgraphs: ['GREEN', 'RED'] in subgraph \"a\"; "
        "['BLUE', 'RED'] in subgraph \"b\""
    )


def test_inputs_are_intersected() -> None:
    a = LINK + "input Filter { text: String limit: Int }\ntype Query { a(f: Filter): Int }"
    b = LINK + "input Filter { text: String }\ntype Query { b(f: Filter): Int }"
    assert "input Filter {\n  text: String\n}" in _compose(a=a, b=b).sdl
    required = LINK + "input Filter { text: String limit: Int! }\ntype Query { a(f: Filter): Int }"
    assert _error(a=required, b=b) == (
        'Input field "Filter.limit" is required in subgraph(s) "a" but missing in subgraph(s) "b"'
    )


def test_one_of_inputs_stay_one_of() -> None:
    a = LINK + "input Pick @oneOf { id: ID name: String }\ntype Query { a(p: Pick): Int }"
    assert "input Pick @oneOf {" in _compose(a=a).sdl


def test_a_visible_field_cannot_expose_an_inaccessible_type() -> None:
    a = LINK + "type Secret @inaccessible { x: Int }\ntype Query { s: Secret }"
    assert _error(a=a) == (
        'Field "Query.s" is visible but its type "Secret" is @inaccessible (subgraph "a")'
    )


def test_federation_1_style_extensions_and_renamed_imports() -> None:
    fed1 = """
    extend type User @key(fields: "id") { id: ID! @external reviews: [String!]! }
    type Query { reviewsCount: Int }
    """
    renamed = (
        'schema @link(url: "https://specs.apollo.dev/federation/v2.3", '
        'import: [{name: "@key", as: "@primaryKey"}]) { query: Query }\n'
        'type User @primaryKey(fields: "id") @federation__shareable { id: ID! name: String! }\n'
        "type Query { me: User }"
    )
    supergraph = _compose(r=renamed, f=fed1)
    assert supergraph.field_resolvers("User", "reviews") == ["f"]
    assert supergraph.field_resolvers("User", "id") == ["r", "f"]
    assert [k.fields for k in supergraph.keys("r", "User")] == ["id"]


def test_bad_sdl_names_the_subgraph() -> None:
    assert _error(a="type Query {") == (
        "[a] the SDL does not parse: Syntax Error: Expected Name, found <EOF>."
    )


def test_an_invalid_composed_schema_is_refused() -> None:
    a = (
        LINK
        + "interface Node { id: ID! }\ntype Thing implements Node { id: ID! }\ntype Query { a: Node }"
    )
    b = LINK + "interface Node { id: ID! label: String }\ntype Query { b: Node }"
    assert _error(a=a, b=b) == (
        "The composed schema is invalid: Interface field Node.label expected "
        "but Thing does not provide it."
    )


def test_field_sets_must_name_existing_fields() -> None:
    bad_key = LINK + 'type User @key(fields: "uuid") { id: ID! }\ntype Query { u: User }'
    assert _error(a=bad_key) == (
        '[a] @key(fields: "uuid") on type "User" selects "uuid", which the type does not have'
    )
    bad_requires = LINK + (
        'type User @key(fields: "id") { id: ID! age: Int @external '
        'label: String @requires(fields: "birth { year }") }\ntype Query { u: User }'
    )
    assert _error(a=bad_requires) == (
        '[a] @requires(fields: "birth { year }") on field "User.label" selects "birth", '
        'which type "User" does not have'
    )
    bad_provides = LINK + (
        'type User @key(fields: "id") { id: ID! name: String @external }\n'
        'type Post { author: User @provides(fields: "nickname") }\ntype Query { p: Post }'
    )
    assert _error(a=bad_provides) == (
        '[a] @provides(fields: "nickname") on field "Post.author" selects "nickname", '
        "which its type does not have"
    )


def test_renamed_root_types_merge_into_query() -> None:
    renamed = LINK.replace("extend schema", "schema").rstrip("\n") + (
        " { query: RootQuery }\ntype RootQuery { a: Int }"
    )
    supergraph = _compose(r=renamed, b=B)
    assert "type Query {\n  a: Int\n  topReviews(first: Int = 5): [Review!]!\n}" in supergraph.sdl
    assert supergraph.field_resolvers("Query", "a") == ["r"]
    assert supergraph.local_type("r", "Query") == "RootQuery"


def test_fields_nested_in_a_key_are_shareable() -> None:
    # both subgraphs resolve Ref.code and Ref.year: only a key makes that legal
    def sdl(extra: str) -> str:
        return LINK + (
            f'type Doc @key(fields: "ref {{ code year }}") {{ ref: Ref! {extra} }}\n'
            "type Ref { code: ID! year: Int! }"
        )

    supergraph = _compose(a=sdl("title: String") + "\ntype Query { doc: Doc }", b=sdl("pages: Int"))
    assert supergraph.field_resolvers("Ref", "code") == ["a", "b"]
    unkeyed = (
        LINK
        + 'type Doc @key(fields: "ref { code }") { ref: Ref! pages: Int }\ntype Ref { code: ID! year: Int! }'
    )
    assert _error(a=sdl("title: String") + "\ntype Query { doc: Doc }", b=unkeyed) == (
        'Non-shareable field "Ref.year" is resolved from multiple subgraphs: it is resolved '
        'from subgraphs "a", "b" and defined as non-shareable in subgraph(s) "b"'
    )
