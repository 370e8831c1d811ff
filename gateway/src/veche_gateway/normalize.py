"""The normalized operation: the one place where fields are collected.

A validated operation is normalized once per document, operation and values
of the variables its `@skip`/`@include` read: fragments are inlined,
`@skip`/`@include` decided and fields merged by response key, with
graphql-core's own `collect_fields`/`collect_subfields` (the spec's
CollectFields, so the result is what an executor would see). A field's
sub-selection is kept per concrete type it may hold (an object type has one
entry, an interface or union one per possible type that selects anything; an
interface no object type implements has one entry, under its own name).

Limits (`limits.py`), planning (`plan.py`) and the caches read this form; the
raw document is used only to shape the response.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from graphql import (
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLIncludeDirective,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLSkipDirective,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    get_named_type,
    is_abstract_type,
    is_composite_type,
    visit,
)
from graphql.execution.collect_fields import (
    FieldDetails,
    FragmentDetails,
    collect_fields,
    collect_subfields,
)
from graphql.execution.values import VariableValues
from graphql.language import Visitor

from veche_gateway.errors import QUERY_TOO_COMPLEX, RequestError

# Fields answered by the gateway from the client schema: never planned, never counted.
INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})


@dataclass(frozen=True)
class Field:
    key: str  # the response key (alias or name)
    name: str
    node: FieldNode  # the first of the merged nodes: its arguments and alias
    selection: Selection | None  # None for leaves and introspection


@dataclass(frozen=True)
class Selection:
    """A selection set on a composite type, fields collected per concrete type."""

    type_name: str  # the named type of the field holding it (object, interface, union)
    by_type: Mapping[str, tuple[Field, ...]]  # concrete type -> its fields, in order

    def fields(self, concrete: str) -> tuple[Field, ...]:
        return self.by_type.get(concrete, ())


@dataclass(frozen=True)
class NormalizedOperation:
    operation: OperationDefinitionNode
    kind: OperationType
    root: Selection


class _Collector:
    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: VariableValues,
        budget: int,
    ) -> None:
        self.schema = schema
        self.operation = operation
        self.variables = variables
        self.fragments = {
            d.name.value: FragmentDetails(d)
            for d in document.definitions
            if isinstance(d, FragmentDefinitionNode)
        }
        self.budget = budget  # field nodes left to visit: fragments may repeat exponentially

    def root(self, root_type: GraphQLObjectType) -> Selection:
        collected = collect_fields(
            self.schema, self.fragments, self.variables, root_type, self.operation
        ).grouped_field_set
        return Selection(root_type.name, {root_type.name: self._fields(root_type, collected)})

    def _fields(
        self, parent: GraphQLObjectType, grouped: Mapping[str, list[FieldDetails]]
    ) -> tuple[Field, ...]:
        fields: list[Field] = []
        for key, details in grouped.items():
            self.budget -= len(details)
            if self.budget < 0:
                raise RequestError(
                    "The operation is too complex: its fragments expand to too many fields",
                    QUERY_TOO_COMPLEX,
                    ru="Операция слишком сложна: её фрагменты раскрываются в слишком много полей",
                )
            node = details[0].node
            name = node.name.value
            selection = None
            definition = parent.fields.get(name)
            if name not in INTROSPECTION_FIELDS and definition is not None:
                named = get_named_type(definition.type)
                if is_composite_type(named):
                    selection = self._selection(named.name, details)
            fields.append(Field(key, name, node, selection))
        return tuple(fields)

    def _selection(self, type_name: str, details: list[FieldDetails]) -> Selection:
        named = self.schema.type_map[type_name]
        concrete: list[GraphQLObjectType]
        if is_abstract_type(named):
            concrete = list(self.schema.get_possible_types(named))
            if not concrete and isinstance(named, GraphQLInterfaceType):
                # An interface no object type implements in the supergraph (a subgraph's
                # `@interfaceObject` whose implementations no one declares): its objects
                # have no concrete type, so its own fields are collected for it as if it
                # were one; planning refuses what needs a concrete type (`__typename`).
                concrete = [cast(GraphQLObjectType, named)]
        else:
            assert isinstance(named, GraphQLObjectType)
            concrete = [named]
        by_type: dict[str, tuple[Field, ...]] = {}
        for object_type in concrete:
            grouped = collect_subfields(
                self.schema, self.fragments, self.variables, self.operation, object_type, details
            ).grouped_field_set
            if grouped or object_type is named:
                by_type[object_type.name] = self._fields(object_type, grouped)
        return Selection(type_name, by_type)


def normalize(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: VariableValues,
    budget: int = 100_000,
) -> NormalizedOperation:
    """Normalize a validated operation; `variables` are the coerced values.

    Raise `RequestError` (QUERY_TOO_COMPLEX) when fragments expand to more than
    `budget` field nodes, before any limit is measured."""
    root_type = schema.get_root_type(operation.operation)
    if root_type is None:
        raise RequestError(f"The schema has no {operation.operation.value} type")
    root = _Collector(schema, document, operation, variables, budget).root(root_type)
    return NormalizedOperation(operation, operation.operation, root)


class _ConditionVariables(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def enter_directive(self, node: DirectiveNode, *_: Any) -> None:
        if node.name.value in (GraphQLSkipDirective.name, GraphQLIncludeDirective.name):
            for arg in node.arguments or ():
                if isinstance(arg.value, VariableNode) and arg.value.name.value not in self.names:
                    self.names.append(arg.value.name.value)


def condition_variables(document: DocumentNode) -> tuple[str, ...]:
    """The variables `@skip`/`@include` read: the normalized form depends on their values."""
    visitor = _ConditionVariables()
    visit(document, visitor)
    return tuple(visitor.names)
