"""The normalized operation (no HTTP): fragments inlined, conditions decided, fields merged."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import OperationDefinitionNode, build_schema, get_operation_ast, parse
from graphql.execution.values import get_variable_values

from veche_gateway.errors import RequestError
from veche_gateway.normalize import (
    NormalizedOperation,
    Selection,
    condition_variables,
    normalize,
)

SCHEMA = build_schema(
    """
    type Query { feed: [Item!]! me: User }
    interface Item { id: ID! }
    type Poll implements Item { id: ID! title: String! author: User }
    type Issue implements Item { id: ID! status: String! author: User }
    type Idea implements Item { id: ID! }
    type User { id: ID! name: String! friend: User }
    """
)


def _normalize(
    query: str, variables: dict[str, Any] | None = None, **kw: Any
) -> NormalizedOperation:
    document = parse(query)
    operation = get_operation_ast(document, None)
    assert isinstance(operation, OperationDefinitionNode)
    values = get_variable_values(SCHEMA, operation.variable_definitions or (), variables or {})
    assert not isinstance(values, list)
    return normalize(SCHEMA, document, operation, values, **kw)


def _shape(selection: Selection | None) -> Any:
    """The normalized form as plain data: type -> [key or (key, sub-shape)]."""
    if selection is None:
        return None
    return {
        type_name: [f.key if f.selection is None else (f.key, _shape(f.selection)) for f in fields]
        for type_name, fields in selection.by_type.items()
    }


def test_fragments_are_inlined_and_fields_merged_by_response_key() -> None:
    operation = _normalize(
        """
        { me { ...Who name who: name friend { id } } me { friend { name } } }
        fragment Who on User { id name }
        """
    )
    assert _shape(operation.root) == {
        "Query": [("me", {"User": ["id", "name", "who", ("friend", {"User": ["id", "name"]})]})]
    }


def test_abstract_selections_are_kept_per_concrete_type() -> None:
    operation = _normalize(
        "{ feed { id ... on Poll { title } ... on Issue { status author { name } } } }"
    )
    ((feed,),) = operation.root.by_type.values()
    assert feed.selection is not None
    assert feed.selection.type_name == "Item"
    assert _shape(feed.selection) == {
        "Poll": ["id", "title"],
        "Issue": ["id", "status", ("author", {"User": ["name"]})],
        "Idea": ["id"],
    }


def test_a_type_that_selects_nothing_is_left_out() -> None:
    operation = _normalize("{ feed { ... on Poll { title } } }")
    ((feed,),) = operation.root.by_type.values()
    assert _shape(feed.selection) == {"Poll": ["title"]}


def test_skip_and_include_are_decided_with_the_variables() -> None:
    query = "query($s: Boolean!) { me { id @skip(if: $s) name @include(if: $s) } }"
    assert _shape(_normalize(query, {"s": True}).root) == {"Query": [("me", {"User": ["name"]})]}
    assert _shape(_normalize(query, {"s": False}).root) == {"Query": [("me", {"User": ["id"]})]}
    assert condition_variables(parse(query)) == ("s",)


def test_introspection_is_not_descended_into() -> None:
    operation = _normalize("{ __typename __schema { types { name } } me { id } }")
    assert _shape(operation.root) == {"Query": ["__typename", "__schema", ("me", {"User": ["id"]})]}


def test_fragments_that_expand_beyond_the_budget_are_refused() -> None:
    # each level doubles the response keys: 2 ** 12 of them at the bottom
    levels = "\n".join(
        f"fragment F{i} on User {{ a: friend {{ ...F{i + 1} }} b: friend {{ ...F{i + 1} }} }}"
        for i in range(12)
    )
    query = "{ me { ...F0 } }\n" + levels + "\nfragment F12 on User { id }"
    assert _normalize(query, budget=100_000).root  # fits the default
    with pytest.raises(RequestError) as refused:
        _normalize(query, budget=1000)
    assert refused.value.errors[0]["extensions"] == {"code": "QUERY_TOO_COMPLEX"}
