"""Operation limits: depth, aliases, total fields and an estimated cost.

Measured on the normalized operation (`normalize.py`: fragments inlined,
`@skip`/`@include` decided, fields merged by response key, so a fragment
spread twice costs once), before any subgraph is called. Under an interface
or union each measure is the largest among the concrete types it may hold:
one object is one of them. An introspection field (`__schema`, `__type`)
counts as one field (and one alias when aliased) but what it selects does not:
the gateway answers it from memory, GraphiQL's full introspection query must
fit, its nesting is bounded at validation and its selections by the structural
pass (`structure.py`).

The cost is Federation's demand-control model (`demand.py`): every field costs
its weight times how often it is resolved, the product of the sizes of the lists
above it and its own. The weight is the subgraph's `@cost(weight:)` on the field
or on the type it returns, else 1 for an object, interface or union (a record to
read, an entity to fetch) and 0 for a scalar or enum (it comes with its object).
A list's size is what its slicing argument asks (`@listSize(slicingArguments:)`,
else `first`/`last`/`limit`, a literal or a variable), else what a sliced
connection above gives it (`first` on a field returning a connection object
sizes the lists directly inside it, or those its `@listSize(sizedFields:)`
names), else its `@listSize(assumedSize:)`, else `default_list_size`.
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
    get_named_type,
    get_nullable_type,
    is_leaf_type,
    is_list_type,
)

from veche_gateway.demand import DEFAULT_SLICING, DemandControl, ListSize
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
    demand: DemandControl | None = None,
) -> Measure:
    demand = demand or DemandControl()
    introspection = False

    def walk(selection: Selection, depth: int, multiplier: int, sized: Sized) -> Measure:
        """The measures of one selection set; `sized` is the size a connection above
        gives the lists directly inside it (and which of them, if it says)."""
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
                definition = parent.fields.get(field.name)
                if definition is None:  # __typename: known without resolving anything
                    continue
                rule = demand.list_size(type_name, field.name)
                size = _slice(field, rule, variables)
                times, inner = multiplier, (size, rule.sized_fields if rule else ())
                if is_list_type(get_nullable_type(definition.type)):
                    given = sized[0] if not sized[1] or field.name in sized[1] else None
                    assumed = rule.assumed_size if rule else None
                    times = multiplier * (size or given or assumed or default_list_size)
                    inner = (None, ())
                found.cost += times * _weight(demand, type_name, field.name, definition.type)
                if field.selection is None:
                    continue
                child = walk(field.selection, depth + 1, times, inner)
                found.fields += child.fields
                found.aliases += child.aliases
                found.depth = max(found.depth, child.depth)
                found.cost += child.cost
            worst.fields = max(worst.fields, found.fields)
            worst.aliases = max(worst.aliases, found.aliases)
            worst.depth = max(worst.depth, found.depth)
            worst.cost = max(worst.cost, found.cost)
        return worst

    found = walk(operation.root, 1, 1, (None, ()))
    found.introspection = introspection
    return found


# A size a connection gives the lists inside it, and the names of those lists (all if empty).
Sized = tuple[int | None, tuple[str, ...]]


def _slice(field: Field, rule: ListSize | None, variables: Mapping[str, Any]) -> int | None:
    """The size a slicing argument asks for (`first: 50`), the largest if several do."""
    names = rule.slicing_arguments if rule and rule.slicing_arguments else DEFAULT_SLICING
    asked: list[int] = []
    for arg in field.node.arguments or ():
        if arg.name.value not in names:
            continue
        if isinstance(arg.value, IntValueNode):
            asked.append(max(int(arg.value.value), 1))
        elif isinstance(arg.value, VariableNode):
            value = variables.get(arg.value.name.value)
            if isinstance(value, int):
                asked.append(max(value, 1))
    return max(asked) if asked else None


def _weight(demand: DemandControl, type_name: str, field_name: str, returns: Any) -> int:
    """A field's stated `@cost`, else 1 for each object it returns and 0 for a scalar or
    enum, which comes with the object that holds it."""
    named = get_named_type(returns)
    stated = demand.weight(type_name, field_name, named.name)
    if stated is not None:
        return stated
    return 0 if is_leaf_type(named) else 1


def enforce(found: Measure, limits: Limits) -> None:
    """Raise `RequestError` for the first limit the operation exceeds."""
    if found.introspection and not limits.introspection:
        raise RequestError(
            "GraphQL introspection is disabled on this gateway",
            FORBIDDEN,
            ru="Интроспекция GraphQL на этом шлюзе выключена",
        )
    checks = (
        ("depth", "глубина", found.depth, limits.max_depth),
        ("number of aliases", "число псевдонимов", found.aliases, limits.max_aliases),
        ("number of fields", "число полей", found.fields, limits.max_fields),
        ("estimated cost", "оценка стоимости", found.cost, limits.max_cost),
    )
    for what, what_ru, value, limit in checks:
        if value > limit:
            raise RequestError(
                f"The operation is too complex: its {what} is {value}, the limit is {limit}",
                QUERY_TOO_COMPLEX,
                ru=f"Операция слишком сложна: её {what_ru} — {value}, предел — {limit}",
            )
