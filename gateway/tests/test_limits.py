"""Measuring operations for the limits (no HTTP)."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import OperationDefinitionNode, build_schema, parse
from graphql.execution.values import get_variable_values

from veche_gateway.errors import RequestError
from veche_gateway.limits import Limits, Measure, enforce, measure
from veche_gateway.normalize import normalize

SCHEMA = build_schema(
    """
    type Query { polls(first: Int): PollConnection! tags: [String!]! }
    type PollConnection { edges: [PollEdge!]! totalCount: Int! }
    type PollEdge { node: Poll! }
    type Poll { id: ID! voters(first: Int): [Voter!]! }
    type Voter { name: String! }
    union Entry = Poll | Voter
    extend type Query { entries: [Entry!]! }
    """
)


def _measure(query: str, variables: dict[str, Any] | None = None) -> Measure:
    document = parse(query)
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    values = get_variable_values(SCHEMA, operation.variable_definitions or (), variables or {})
    assert not isinstance(values, list)
    return measure(SCHEMA, normalize(SCHEMA, document, operation, values), values.coerced, 20)


def test_a_connection_first_sizes_its_edges() -> None:
    # polls, totalCount, edges: 1 each; node and id: 5 each (first: 5 sizes edges)
    assert _measure("{ polls(first: 5) { totalCount edges { node { id } } } }") == Measure(
        depth=4, aliases=0, fields=5, cost=13
    )


def test_lists_multiply_and_variables_count() -> None:
    query = """
    query Q($n: Int) {
      polls(first: $n) { edges { node { voters(first: 3) { name } } } }
      t: tags
    }
    """
    # polls 1, edges 1, node 10, voters 10, name 30, tags 1
    assert _measure(query, {"n": 10}) == Measure(depth=5, aliases=1, fields=6, cost=53)
    # without a size, the default (20) applies: node 20, voters 20, name 60
    assert _measure(query).cost == 103


def test_fragments_are_expanded_and_introspection_counts_as_one_field() -> None:
    # __schema counts as one field (and s as one alias, no cost); what it selects does not
    query = """
    { polls { ...P } s: __schema { types { name } } }
    fragment P on PollConnection { edges { node { id } } }
    """
    assert _measure(query) == Measure(depth=4, aliases=1, fields=5, cost=42, introspection=True)


def test_a_field_selected_twice_counts_once() -> None:
    query = """
    { polls { ...P ...P edges { node { id } } } }
    fragment P on PollConnection { edges { node { id } } }
    """
    assert _measure(query) == Measure(depth=4, aliases=0, fields=4, cost=42)


def test_an_abstract_selection_counts_its_costliest_type() -> None:
    # entries 1; Poll: id 20 + voters 20 + name 400; Voter: name 20
    query = "{ entries { ... on Poll { id voters { name } } ... on Voter { name } } }"
    assert _measure(query) == Measure(depth=3, aliases=0, fields=4, cost=441)


def test_enforce_names_the_first_limit_exceeded() -> None:
    limits = Limits(
        max_depth=3,
        max_aliases=5,
        max_fields=50,
        max_cost=100,
        default_list_size=20,
        introspection=True,
    )
    with pytest.raises(RequestError) as refused:
        enforce(Measure(depth=4, cost=1000), limits)
    assert refused.value.errors == [
        {
            "message": "The operation is too complex: its depth is 4, the limit is 3",
            "extensions": {"code": "QUERY_TOO_COMPLEX"},
        }
    ]
