"""The response shaper: exact responses, each checked against graphql-core's executor.

Every case shapes a merged raw tree (client response keys, objects typed by
`_veche_t`, planner keys beside them) with a `Shaper` and asserts the exact
`data` and errors; the same tree is then executed by graphql-core over the
same schema (what the gateway did before the shaper), which must agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from graphql import (
    GraphQLAbstractType,
    GraphQLResolveInfo,
    GraphQLSchema,
    build_schema,
    execute_sync,
    get_operation_ast,
    parse,
    validate,
)
from graphql.execution.values import get_variable_values

from veche_gateway.normalize import normalize
from veche_gateway.shape import Path, Shaper

SDL = """
type Query {
  me: User
  user(id: ID!): User!
  users: [User!]
  maybeUsers: [User]
  search: [Result!]!
  node: Node
  count: Int
  ratio: Float
  mood: Mood
  when: DateTime
  matrix: [[Int!]]
}
scalar DateTime
enum Mood { HAPPY SAD }
interface Node { id: ID! }
type User implements Node { id: ID! name: String! nick: String age: Int friends: [User!]! }
type Poll implements Node { id: ID! title: String! votes: Int! }
type Issue { id: ID! }
union Result = User | Poll | Issue
"""
SCHEMA = build_schema(SDL)


def _resolve_field(source: Any, info: GraphQLResolveInfo[Any], **_: Any) -> Any:
    return source.get(info.path.key) if isinstance(source, dict) else None


def _resolve_type(value: Any, info: GraphQLResolveInfo[Any], abstract: GraphQLAbstractType) -> Any:
    return value.get("_veche_t") if isinstance(value, dict) else None


def shape(
    query: str,
    raw: Mapping[str, Any],
    variables: Mapping[str, Any] | None = None,
    covered: tuple[Path, ...] = (),
    schema: GraphQLSchema = SCHEMA,
) -> dict[str, Any]:
    """The shaped response; without `covered`, also what graphql-core's executor gives."""
    document = parse(query)
    assert validate(schema, document) == []
    operation = get_operation_ast(document)
    assert operation is not None
    values = get_variable_values(
        schema, operation.variable_definitions or (), dict(variables or {})
    )
    assert not isinstance(values, list)
    shaper = Shaper(schema, normalize(schema, document, operation, values))
    assert not shaper.needs_executor
    data, errors = shaper.shape(raw, covered)
    response: dict[str, Any] = {"data": data}
    if errors:
        response["errors"] = errors
    if not covered:
        reference = execute_sync(
            schema,
            document,
            root_value=raw,
            variable_values=dict(variables or {}),
            field_resolver=_resolve_field,
            type_resolver=_resolve_type,
        )
        expected: dict[str, Any] = {"data": reference.data}
        if reference.errors:
            expected["errors"] = [dict(e.formatted) for e in reference.errors]
        assert response == expected
        assert list(_keys(response["data"])) == list(_keys(expected["data"]))  # field order
    return response


def _keys(value: Any, at: str = "") -> Any:
    """Every response key path in document order."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield f"{at}.{key}"
            yield from _keys(item, f"{at}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _keys(item, f"{at}[{index}]")


def test_aliases_order_typename_and_planner_keys() -> None:
    raw = {
        "who": {"_veche_t": "User", "_veche_k_id": "u1", "name": "Anna", "id": "u1"},
        "me": {"_veche_t": "User", "nick": None, "age": 41},
    }
    query = "{ who: user(id: 1) { __typename name id } me { age __typename nick } t: __typename }"
    assert shape(query, raw) == {
        "data": {
            "who": {"__typename": "User", "name": "Anna", "id": "u1"},
            "me": {"age": 41, "__typename": "User", "nick": None},
            "t": "Query",
        }
    }


def test_fragments_merge_by_response_key_in_first_seen_order() -> None:
    raw = {"me": {"_veche_t": "User", "id": "u1", "name": "Anna", "age": 3}}
    query = """
      { me { ...A id ... on User { age name } } }
      fragment A on User { name }
    """
    assert shape(query, raw) == {"data": {"me": {"name": "Anna", "id": "u1", "age": 3}}}


def test_skip_and_include_follow_the_variables() -> None:
    raw = {"me": {"_veche_t": "User", "id": "u1", "name": "Anna"}}
    query = "query Q($s: Boolean!) { me { id name @skip(if: $s) } }"
    assert shape(query, raw, {"s": True}) == {"data": {"me": {"id": "u1"}}}
    assert shape(query, raw, {"s": False}) == {"data": {"me": {"id": "u1", "name": "Anna"}}}


def test_abstract_types_take_their_concrete_type_from_the_raw_object() -> None:
    raw = {
        "search": [
            {"_veche_t": "Poll", "id": "p1", "title": "Bridge", "votes": 3},
            {"_veche_t": "User", "id": "u1", "name": "Anna"},
            {"_veche_t": "Issue", "id": "i1"},  # selected nothing: an empty object
        ],
        "node": {"_veche_t": "User", "id": "u2"},
    }
    query = """{
      search { __typename ... on Poll { title votes } ... on User { name } }
      node { id ... on Poll { title } }
    }"""
    assert shape(query, raw) == {
        "data": {
            "search": [
                {"__typename": "Poll", "title": "Bridge", "votes": 3},
                {"__typename": "User", "name": "Anna"},
                {"__typename": "Issue"},
            ],
            "node": {"id": "u2"},
        }
    }
    assert shape("{ search { ... on User { name } } }", raw)["data"] == {
        "search": [{}, {"name": "Anna"}, {}]
    }


@pytest.mark.parametrize(
    ("typename", "message"),
    [
        (
            None,
            "Abstract type 'Node' must resolve to an Object type at runtime for field"
            " 'Query.node'. Either the 'Node' type should provide a 'resolve_type' function"
            " or each possible type should provide an 'is_type_of' function.",
        ),
        (
            "Ghost",
            "Abstract type 'Node' was resolved to a type 'Ghost' that does not exist inside the schema.",
        ),
        ("Mood", "Abstract type 'Node' was resolved to a non-object type 'Mood'."),
        ("Issue", "Runtime Object type 'Issue' is not a possible type for 'Node'."),
    ],
)
def test_an_impossible_concrete_type_is_a_field_error(typename: str | None, message: str) -> None:
    raw = {"node": {"_veche_t": typename, "id": "x"}}
    assert shape("{ node { id } }", raw) == {
        "data": {"node": None},
        "errors": [{"message": message, "locations": [{"line": 1, "column": 3}], "path": ["node"]}],
    }


def test_null_in_a_non_null_field_nulls_the_nearest_nullable_parent() -> None:
    raw = {"me": {"_veche_t": "User", "id": "u1", "name": None, "age": 3}}
    assert shape("{ me { id name age } count }", {**raw, "count": 7}) == {
        "data": {"me": None, "count": 7},
        "errors": [
            {
                "message": "Cannot return null for non-nullable field User.name.",
                "locations": [{"line": 1, "column": 11}],
                "path": ["me", "name"],
            }
        ],
    }


def test_non_null_list_items_propagate_past_the_list() -> None:
    raw = {
        "users": [
            {"_veche_t": "User", "id": "u1", "friends": []},
            {"_veche_t": "User", "id": "u2", "friends": [{"_veche_t": "User", "id": None}]},
        ],
        "maybeUsers": [{"_veche_t": "User", "id": "u1"}, {"_veche_t": "User", "id": None}, None],
    }
    query = "{ users { id friends { id } } maybeUsers { id } }"
    assert shape(query, raw) == {
        "data": {"users": None, "maybeUsers": [{"id": "u1"}, None, None]},
        "errors": [
            {
                "message": "Cannot return null for non-nullable field User.id.",
                "locations": [{"line": 1, "column": 24}],
                "path": ["users", 1, "friends", 0, "id"],
            },
            {
                "message": "Cannot return null for non-nullable field User.id.",
                "locations": [{"line": 1, "column": 44}],
                "path": ["maybeUsers", 1, "id"],
            },
        ],
    }


def test_a_null_non_null_root_field_nulls_the_data() -> None:
    assert shape('{ count user(id: "u1") { id } }', {"count": 1, "user": None}) == {
        "data": None,
        "errors": [
            {
                "message": "Cannot return null for non-nullable field Query.user.",
                "locations": [{"line": 1, "column": 9}],
                "path": ["user"],
            }
        ],
    }


def test_siblings_after_a_propagating_error_are_not_looked_at() -> None:
    # the executor stops completing `me` at `name`: `friends` gets no error of its own
    raw = {"me": {"_veche_t": "User", "nick": 5, "name": None, "friends": None}}
    assert shape("{ me { nick name friends { id } } }", raw) == {
        "data": {"me": None},
        "errors": [
            {
                "message": "Cannot return null for non-nullable field User.name.",
                "locations": [{"line": 1, "column": 13}],
                "path": ["me", "name"],
            }
        ],
    }


def test_leaves_go_through_their_output_coercion() -> None:
    # as graphql-core coerces them: True is the Int 1, "4" is 4, 7 is the String "7"
    raw = {
        "count": 2**31,
        "ratio": 2,
        "mood": "ANGRY",
        "when": {"iso": "2026-12-02"},  # a custom scalar passes through
        "matrix": [[1, 2], None, [3, "4"]],
        "me": {"_veche_t": "User", "age": True, "nick": 7, "id": 12, "name": "A"},
    }
    query = "{ count ratio mood when matrix me { age nick id name } }"
    assert shape(query, raw) == {
        "data": {
            "count": None,
            "ratio": 2.0,
            "mood": None,
            "when": {"iso": "2026-12-02"},
            "matrix": [[1, 2], None, [3, 4]],
            "me": {"age": 1, "nick": "7", "id": "12", "name": "A"},
        },
        "errors": [
            {
                "message": "Int cannot represent non 32-bit signed integer value: 2147483648",
                "locations": [{"line": 1, "column": 3}],
                "path": ["count"],
            },
            {
                "message": "Enum 'Mood' cannot represent value: 'ANGRY'",
                "locations": [{"line": 1, "column": 15}],
                "path": ["mood"],
            },
        ],
    }


def test_an_object_or_list_of_the_wrong_shape_is_an_error() -> None:
    raw = {"users": {"id": "u1"}, "me": "u1"}
    assert shape("{ users { id } me { nick } }", raw) == {
        "data": {"users": None, "me": {"nick": None}},
        "errors": [
            {
                "message": "Expected Iterable, but did not find one for field 'Query.users'.",
                "locations": [{"line": 1, "column": 3}],
                "path": ["users"],
            }
        ],
    }


def test_nulls_a_reported_failure_explains_get_no_error_of_their_own() -> None:
    raw = {"me": {"_veche_t": "User", "id": "u1"}, "user": {"_veche_t": "User", "id": "u2"}}
    query = 'query { me { id name } other: user(id: "u2") { id name } }'
    # the subgraph that has `name` failed for `me` and reported it there
    assert shape(query, {**raw, "other": raw["user"]}, covered=(("me", "name"),)) == {
        "data": None,
        "errors": [
            {
                "message": "Cannot return null for non-nullable field User.name.",
                "locations": [{"line": 1, "column": 51}],
                "path": ["other", "name"],
            }
        ],
    }
    assert shape(query, {**raw, "other": raw["user"]}, covered=(("me",), ("other",))) == {
        "data": None
    }


def test_introspection_is_left_to_the_executor() -> None:
    document = parse("{ __schema { queryType { name } } me { id } }")
    operation = get_operation_ast(document)
    assert operation is not None
    values = get_variable_values(SCHEMA, (), {})
    assert not isinstance(values, list)
    assert Shaper(SCHEMA, normalize(SCHEMA, document, operation, values)).needs_executor
