"""Federation's demand-control directives (2.9), read from the subgraphs for the cost limit.

`@listSize(assumedSize:, slicingArguments:, sizedFields:)` says how long a list can
be: as long as its slicing argument asks (`first: 50`), or at most `assumedSize`;
on a connection-returning field, `sizedFields` names the lists inside it that the
slicing argument sizes (`edges`). `@cost(weight:)` on a field, or on the type it
returns, says what resolving it costs (see `limits.py` for the defaults). A
subgraph states these next to the code that knows them (the maxima its inputs
enforce), so the gateway needs no table of its own. A field several subgraphs
resolve takes the largest of what they say.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DirectiveNode,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    value_from_ast_untyped,
)

from veche_gateway.subgraph import Subgraph

LIST_SIZE = ("listSize", "federation__listSize")
COST = ("cost", "federation__cost")
# What a list field may be sliced by when its @listSize names no slicing argument.
DEFAULT_SLICING = ("first", "last", "limit")


@dataclass(frozen=True)
class ListSize:
    assumed_size: int | None = None
    slicing_arguments: tuple[str, ...] = ()
    sized_fields: tuple[str, ...] = ()

    def merged(self, other: ListSize) -> ListSize:
        sizes = [s for s in (self.assumed_size, other.assumed_size) if s is not None]
        return ListSize(
            max(sizes) if sizes else None,
            tuple(dict.fromkeys(self.slicing_arguments + other.slicing_arguments)),
            tuple(dict.fromkeys(self.sized_fields + other.sized_fields)),
        )


@dataclass
class DemandControl:
    """Per client (type, field): its list size and its weight; per type: its weight."""

    list_sizes: dict[tuple[str, str], ListSize] = field(default_factory=dict)
    field_weights: dict[tuple[str, str], int] = field(default_factory=dict)
    type_weights: dict[str, int] = field(default_factory=dict)

    def list_size(self, type_name: str, field_name: str) -> ListSize | None:
        return self.list_sizes.get((type_name, field_name))

    def weight(self, type_name: str, field_name: str, returns: str) -> int | None:
        """The stated weight of the field, else of the type it returns; None if neither."""
        stated = self.field_weights.get((type_name, field_name))
        return stated if stated is not None else self.type_weights.get(returns)


def read_demand(
    subgraphs: Iterable[Subgraph], renames: Mapping[str, Mapping[str, str]]
) -> DemandControl:
    """The directives of every subgraph, under the client's type names (`renames`:
    subgraph -> {its root type name: the client's})."""
    demand = DemandControl()
    for subgraph in subgraphs:
        named = renames.get(subgraph.name, {})
        for type_name, graphql_type in subgraph.schema.type_map.items():
            client_type = named.get(type_name, type_name)
            _read_type(demand, client_type, graphql_type)
    return demand


def _read_type(demand: DemandControl, client_type: str, graphql_type: GraphQLNamedType) -> None:
    cost = _argument(graphql_type.ast_node, COST, "weight")
    if isinstance(cost, int):
        demand.type_weights[client_type] = max(cost, demand.type_weights.get(client_type, cost))
    if not isinstance(graphql_type, GraphQLObjectType | GraphQLInterfaceType):
        return
    for field_name, definition in graphql_type.fields.items():
        key = (client_type, field_name)
        weight = _argument(definition.ast_node, COST, "weight")
        if isinstance(weight, int):
            demand.field_weights[key] = max(weight, demand.field_weights.get(key, weight))
        size = _list_size(definition.ast_node)
        if size is not None:
            known = demand.list_sizes.get(key)
            demand.list_sizes[key] = size if known is None else known.merged(size)


def _list_size(node: Any) -> ListSize | None:
    directive = _directive(node, LIST_SIZE)
    if directive is None:
        return None
    values = {a.name.value: value_from_ast_untyped(a.value) for a in directive.arguments or ()}
    assumed = values.get("assumedSize")
    return ListSize(
        assumed if isinstance(assumed, int) else None,
        tuple(str(v) for v in values.get("slicingArguments") or ()),
        tuple(str(v) for v in values.get("sizedFields") or ()),
    )


def _directive(node: Any, names: tuple[str, ...]) -> DirectiveNode | None:
    for directive in getattr(node, "directives", None) or ():
        if directive.name.value in names:
            found: DirectiveNode = directive
            return found
    return None


def _argument(node: Any, names: tuple[str, ...], argument: str) -> object:
    directive = _directive(node, names)
    for arg in directive.arguments or () if directive is not None else ():
        if arg.name.value == argument:
            return value_from_ast_untyped(arg.value)
    return None
