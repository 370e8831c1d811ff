"""Operation limits: depth, aliases, total fields and an estimated cost.

Measured on the normalized operation (`normalize.py`: fragments inlined,
`@skip`/`@include` decided, fields merged by response key, so a fragment
spread twice costs once), before any subgraph is called. Under an interface
or union each measure is the largest among the concrete types it may hold:
one object is one of them. A `first` on a field that returns a connection
object (not a list) sizes the lists directly inside it (`edges`, `nodes`), as
Apollo's `@listSize(sizedFields:)` would. An introspection field (`__schema`,
`__type`) counts as one field (and one alias when aliased) but what it selects
does not: the gateway answers it from memory, GraphiQL's full introspection
query must fit, its nesting is bounded at validation and its selections by
the structural pass (`structure.py`). The cost counts one per field, multiplied by the
sizes of the lists above it; a list's size is its `first` argument (a
literal or a variable) or `default_list_size`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    IntValueNode,
    VariableNode,
    get_nullable_type,
    is_list_type,
)

from veche_gateway.errors import FORBIDDEN, QUERY_TOO_COMPLEX, RequestError
from veche_gateway.normalize import INTROSPECTION_FIELDS, Field, NormalizedOperation, Selection


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
    operation: NormalizedOperation,
    variables: Mapping[str, Any],
    default_list_size: int,
) -> Measure:
    introspection = False

    def list_size(field: Field) -> int | None:
        for arg in field.node.arguments or ():
            if arg.name.value in ("first", "last", "limit"):
                if isinstance(arg.value, IntValueNode):
                    return max(int(arg.value.value), 1)
                if isinstance(arg.value, VariableNode):
                    value = variables.get(arg.value.name.value)
                    if isinstance(value, int):
                        return max(value, 1)
        return None

    def walk(selection: Selection, depth: int, multiplier: int, sized: int | None) -> Measure:
        """The measures of one selection set; `sized` is a `first` given to the
        connection holding it."""
        worst = Measure()
        for type_name, fields in selection.by_type.items():
            parent = schema.type_map[type_name]
            # an interface no object implements holds its own fields (normalize.py)
            assert isinstance(parent, GraphQLObjectType | GraphQLInterfaceType)
            found = Measure()
            for field in fields:
                found.fields += 1
                found.aliases += field.node.alias is not None
                if field.name in INTROSPECTION_FIELDS:
                    nonlocal introspection
                    introspection = True
                    continue
                found.depth = max(found.depth, depth)
                found.cost += multiplier
                if field.selection is None:
                    continue
                definition = parent.fields[field.name]
                size = list_size(field)
                if is_list_type(get_nullable_type(definition.type)):
                    child_multiplier = multiplier * (size or sized or default_list_size)
                    child_sized = None
                else:
                    child_multiplier, child_sized = multiplier, size
                child = walk(field.selection, depth + 1, child_multiplier, child_sized)
                found.fields += child.fields
                found.aliases += child.aliases
                found.depth = max(found.depth, child.depth)
                found.cost += child.cost
            worst.fields = max(worst.fields, found.fields)
            worst.aliases = max(worst.aliases, found.aliases)
            worst.depth = max(worst.depth, found.depth)
            worst.cost = max(worst.cost, found.cost)
        return worst

    found = walk(operation.root, 1, 1, None)
    found.introspection = introspection
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
