"""Measuring operations for the limits (no HTTP)."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import OperationDefinitionNode, build_schema, parse
from graphql.execution.values import get_variable_values

from veche_gateway.demand import DemandControl, ListSize
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


def _measure(
    query: str, variables: dict[str, Any] | None = None, demand: DemandControl | None = None
) -> Measure:
    document = parse(query)
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    values = get_variable_values(SCHEMA, operation.variable_definitions or (), variables or {})
    assert not isinstance(values, list)
    normalized = normalize(SCHEMA, document, operation, values)
    return measure(SCHEMA, normalized, values.coerced, 20, demand)


def test_a_connection_first_sizes_its_edges() -> None:
    # objects cost 1 each, scalars nothing: polls 1, edges 5, node 5 (first: 5 sizes edges)
    assert _measure("{ polls(first: 5) { totalCount edges { node { id } } } }") == Measure(
        depth=4, aliases=0, fields=5, cost=11
    )


def test_lists_multiply_and_variables_count() -> None:
    query = """
    query Q($n: Int) {
      polls(first: $n) { edges { node { voters(first: 3) { name } } } }
      t: tags
    }
    """
    # polls 1, edges 10, node 10, voters 10 x 3; tags (scalars) and name nothing
    assert _measure(query, {"n": 10}) == Measure(depth=5, aliases=1, fields=6, cost=51)
    # without a size, the default (20) applies: edges 20, node 20, voters 60
    assert _measure(query).cost == 101


def test_fragments_are_expanded_and_introspection_counts_as_one_field() -> None:
    # __schema counts as one field (and s as one alias, no cost); what it selects does not
    query = """
    { polls { ...P } s: __schema { types { name } } }
    fragment P on PollConnection { edges { node { id } } }
    """
    assert _measure(query) == Measure(depth=4, aliases=1, fields=5, cost=41, introspection=True)


def test_a_field_selected_twice_counts_once() -> None:
    query = """
    { polls { ...P ...P edges { node { id } } } }
    fragment P on PollConnection { edges { node { id } } }
    """
    assert _measure(query) == Measure(depth=4, aliases=0, fields=4, cost=41)


def test_an_abstract_selection_counts_its_costliest_type() -> None:
    # entries 20 (a list of a union: objects); Poll: voters 20 x 20; Voter: nothing more
    query = "{ entries { ... on Poll { id voters { name } } ... on Voter { name } } }"
    assert _measure(query) == Measure(depth=3, aliases=0, fields=4, cost=420)


def test_list_sizes_and_weights_come_from_the_subgraphs_directives() -> None:
    query = "{ polls(first: 10) { edges { node { voters { name } } } } }"
    # No directive: voters take the default size (20).
    assert _measure(query).cost == 1 + 10 + 10 + 200
    sized = DemandControl(list_sizes={("Poll", "voters"): ListSize(assumed_size=5)})
    assert _measure(query, demand=sized).cost == 1 + 10 + 10 + 50
    # A slicing argument still wins over the assumed size.
    sliced = "{ polls(first: 10) { edges { node { voters(first: 2) { name } } } } }"
    assert _measure(sliced, demand=sized).cost == 1 + 10 + 10 + 20
    # @cost on the type a field returns, and on a scalar field.
    weighed = DemandControl(
        list_sizes=sized.list_sizes,
        type_weights={"Voter": 3},
        field_weights={("Voter", "name"): 2},
    )
    assert _measure(query, demand=weighed).cost == 1 + 10 + 10 + 50 * 3 + 50 * 2


def test_sized_fields_name_the_lists_a_slice_sizes() -> None:
    rule = ListSize(slicing_arguments=("first",), sized_fields=("edges",))
    demand = DemandControl(list_sizes={("Query", "polls"): rule})
    assert _measure("{ polls(first: 7) { edges { node { id } } } }", demand=demand).cost == 15
    elsewhere = ListSize(slicing_arguments=("first",), sized_fields=("nodes",))
    other = DemandControl(list_sizes={("Query", "polls"): elsewhere})
    # edges is not a sized field here: the default size applies to it.
    assert _measure("{ polls(first: 7) { edges { node { id } } } }", demand=other).cost == 41


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
