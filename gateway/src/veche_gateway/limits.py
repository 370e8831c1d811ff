"""Operation limits: depth, aliases, total fields and an estimated cost.

Measured on the validated operation with fragments expanded, before any
subgraph is called. A `first` on a field that returns a connection object
(not a list) sizes the lists directly inside it (`edges`, `nodes`), as
Apollo's `@listSize(sizedFields:)` would. Introspection (`__schema`, `__type`) is answered by the
gateway from memory and left out of these counts, so GraphiQL's full
introspection query always fits; its nesting is bounded at validation. The cost counts one per field, multiplied by the sizes
of the lists above it; a list's size is its `first` argument (a literal or a
variable) or `default_list_size`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLNamedType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_list_type,
)

from veche_gateway.errors import FORBIDDEN, QUERY_TOO_COMPLEX, RequestError


@dataclass(frozen=True)
class Limits:
    max_depth: int
    max_aliases: int
    max_fields: int
    max_cost: int
    default_list_size: int
    introspection: bool


@dataclass
class Measure:
    depth: int = 0
    aliases: int = 0
    fields: int = 0
    cost: int = 0
    introspection: bool = False


def measure(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
    default_list_size: int,
) -> Measure:
    found = Measure()

    def list_size(node: FieldNode) -> int | None:
        for arg in node.arguments or ():
            if arg.name.value in ("first", "last", "limit"):
                if isinstance(arg.value, IntValueNode):
                    return max(int(arg.value.value), 1)
                if isinstance(arg.value, VariableNode):
                    value = variables.get(arg.value.name.value)
                    if isinstance(value, int):
                        return max(value, 1)
        return None

    def walk(
        selection_set: SelectionSetNode,
        parent: GraphQLNamedType | None,
        depth: int,
        multiplier: int,
        sized: int | None,  # a `first` given to the connection holding these fields
    ) -> int:
        cost = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                name = selection.name.value
                if name in ("__schema", "__type"):
                    # Answered from memory; graphql-core's MaxIntrospectionDepthRule
                    # (run with validation) bounds it instead of these limits.
                    found.introspection = True
                    continue
                found.fields += 1
                found.aliases += selection.alias is not None
                found.depth = max(found.depth, depth)
                cost += multiplier
                if selection.selection_set is None:
                    continue
                definition = getattr(parent, "fields", {}).get(name) if parent else None
                child_type = get_named_type(definition.type) if definition else None
                size = list_size(selection)
                if definition is not None and is_list_type(get_nullable_type(definition.type)):
                    child_multiplier = multiplier * (size or sized or default_list_size)
                    child_sized = None
                else:
                    child_multiplier, child_sized = multiplier, size
                cost += walk(
                    selection.selection_set, child_type, depth + 1, child_multiplier, child_sized
                )
            elif isinstance(selection, InlineFragmentNode):
                condition = (
                    schema.get_type(selection.type_condition.name.value)
                    if selection.type_condition
                    else parent
                )
                cost += walk(selection.selection_set, condition, depth, multiplier, sized)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = fragments.get(selection.name.value)
                if fragment is not None:
                    condition = schema.get_type(fragment.type_condition.name.value)
                    cost += walk(fragment.selection_set, condition, depth, multiplier, sized)
        return cost

    root = schema.get_root_type(operation.operation)
    found.cost = walk(operation.selection_set, root, 1, 1, None)
    return found


def enforce(found: Measure, limits: Limits) -> None:
    """Raise `RequestError` for the first limit the operation exceeds."""
    if found.introspection and not limits.introspection:
        raise RequestError("GraphQL introspection is disabled on this gateway", FORBIDDEN)
    checks = (
        ("depth", found.depth, limits.max_depth),
        ("number of aliases", found.aliases, limits.max_aliases),
        ("number of fields", found.fields, limits.max_fields),
        ("estimated cost", found.cost, limits.max_cost),
    )
    for what, value, limit in checks:
        if value > limit:
            raise RequestError(
                f"The operation is too complex: its {what} is {value}, the limit is {limit}",
                QUERY_TOO_COMPLEX,
            )
