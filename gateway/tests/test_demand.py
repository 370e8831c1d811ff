"""Demand control (issue #13, item 3): list sizes and weights come from the subgraphs'
`@listSize`/`@cost`, and an ordinary screen's query fits the cost limit with room to
spare, measured on Veche's own three subgraphs composed as the gateway composes them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from graphql import OperationDefinitionNode, parse
from graphql.execution.values import get_variable_values

from veche_gateway.compose import compose
from veche_gateway.demand import ListSize
from veche_gateway.limits import measure
from veche_gateway.normalize import normalize
from veche_gateway.settings import Settings
from veche_gateway.subgraph import load_subgraph
from veche_gateway.supergraph import Supergraph

LINK = (
    'extend schema @link(url: "https://specs.apollo.dev/federation/v2.9", '
    'import: ["@key", "@shareable", "@listSize", "@cost"])\n'
)
WARDS = LINK + (
    'type Query { wards(first: Int): [Ward!]! @listSize(slicingArguments: ["first"]) }\n'
    'type Ward @key(fields: "id") { id: ID! streets: [Street!]! @shareable @listSize(assumedSize: 30) }\n'
    "type Street @cost(weight: 4) { name: String! @shareable }\n"
)
LAMPS = LINK + (
    'type Ward @key(fields: "id") { id: ID! streets: [Street!]! @shareable @listSize(assumedSize: 50) '
    "lamps: [String!]! @cost(weight: 2) }\n"
    "type Street { name: String! @shareable }\n"
)
SCREENS = """
query PollList { polls(first: 50) { edges { node { id title
  questions { id text kind options { id text } } } } } }
query PollResults($id: ID!) { poll(id: $id) { results { totalVotes
  questions { options { votes share } average }
  byDistrict { totalVotes questions { options { votes } average } }
  byAgeGroup { label totalVotes questions { options { votes } } } } } }
query IssueList { issues(first: 50) { edges { node { id title status photos
  comments(first: 10) { edges { node { id text } } } history { to at } } } } }
"""
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "operations.graphql"


def test_the_directives_are_read_merged_and_named_as_the_client_sees_them() -> None:
    supergraph = compose(
        [
            load_subgraph("wards", "http://wards/graphql", WARDS),
            load_subgraph("lamps", "http://lamps/graphql", LAMPS),
        ]
    )
    demand = supergraph.demand
    assert demand.list_size("Query", "wards") == ListSize(slicing_arguments=("first",))
    # Two subgraphs resolve Ward.streets: the larger assumed size counts.
    assert demand.list_size("Ward", "streets") == ListSize(assumed_size=50)
    assert demand.weight("Ward", "lamps", "String") == 2
    assert demand.weight("Ward", "streets", "Street") == 4
    assert demand.weight("Street", "name", "String") is None
    # wards 3, each with 50 streets at 4 and its lamps (a list of 20 by default) at 2.
    assert _cost(supergraph, "{ wards(first: 3) { id streets { name } lamps } }") == 3 + 600 + 120


@pytest.fixture(scope="module")
def veche() -> Supergraph:
    from veche_issues.schema import schema as issues
    from veche_polls.schema import schema as polls
    from veche_users.schema import schema as users

    return compose(
        [
            load_subgraph(name, f"http://{name}/graphql", schema.as_str())
            for name, schema in (("users", users), ("polls", polls), ("issues", issues))
        ]
    )


def test_veche_states_the_sizes_of_its_lists(veche: Supergraph) -> None:
    assert veche.demand.list_size("Poll", "questions") == ListSize(assumed_size=20)
    assert veche.demand.list_size("Question", "options") == ListSize(assumed_size=21)
    assert veche.demand.list_size("Issue", "history") == ListSize(50, ("last",))


@pytest.mark.parametrize("name", ["PollList", "PollResults", "IssueList"])
def test_an_ordinary_screen_fits_with_room_to_spare(veche: Supergraph, name: str) -> None:
    limit = Settings().max_cost
    cost = _cost(veche, SCREENS, name, {"id": "p1"})
    assert cost <= limit // 2, f"{name} costs {cost} of {limit}"


def test_every_front_end_example_fits_with_room_to_spare(veche: Supergraph) -> None:
    document = EXAMPLES.read_text()
    names = [
        d.name.value
        for d in parse(document).definitions
        if isinstance(d, OperationDefinitionNode)
        and d.name is not None
        and d.operation.value == "query"
    ]
    assert names
    limit = Settings().max_cost
    costs = {n: _cost(veche, document, n, _any_variables(veche, document, n)) for n in names}
    assert {n: c for n, c in costs.items() if c > limit // 2} == {}


def _cost(
    supergraph: Supergraph,
    document_text: str,
    name: str | None = None,
    variables: dict[str, Any] | None = None,
) -> int:
    document = parse(document_text)
    operation = next(
        d
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode)
        and (name is None or (d.name and d.name.value == name))
    )
    values = get_variable_values(
        supergraph.schema, operation.variable_definitions or (), variables or {}
    )
    assert not isinstance(values, list), values
    normalized = normalize(supergraph.schema, document, operation, values)
    return measure(supergraph.schema, normalized, values.coerced, 20, supergraph.demand).cost


def _any_variables(supergraph: Supergraph, document_text: str, name: str) -> dict[str, Any]:
    """Variables that coerce (no sizes given, so the defaults count: the worst case)."""
    operation = next(
        d
        for d in parse(document_text).definitions
        if isinstance(d, OperationDefinitionNode) and d.name and d.name.value == name
    )
    found: dict[str, Any] = {}
    for definition in operation.variable_definitions or ():
        if definition.default_value is None and type(definition.type).__name__ == "NonNullTypeNode":
            found[definition.variable.name.value] = _placeholder(definition.type)
    return found


def _placeholder(type_node: Any) -> Any:
    inner = type_node.type
    named = getattr(inner, "name", None)
    kind = named.value if named is not None else ""
    return {"Int": 1, "Float": 1.0, "Boolean": True}.get(kind, "x")
