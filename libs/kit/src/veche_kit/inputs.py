"""Maxima of list and text input, stated in the schema and checked before any resolver.

Every argument and input field whose type holds a list, a `String` or an `ID`
has a maximum: declared with `bounded(items=..., chars=...)` as the argument's
or field's `metadata`, or else the default for its type (`DEFAULT_ITEMS`,
`DEFAULT_CHARS`, `ID_CHARS`). `describe_bounds` writes each maximum into the
description once, when the schema is built, so what the schema says is what is
checked. `oversized_input` measures an operation's arguments (literals and
variables alike) against them in one pass over the document: a 40,000-item list
is refused by its length, before anything de-duplicates or cleans it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    ArgumentNode,
    DocumentNode,
    GraphQLArgument,
    GraphQLError,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    OperationDefinitionNode,
    TypeInfo,
    TypeInfoVisitor,
    Undefined,
    Visitor,
    get_operation_ast,
    value_from_ast_untyped,
    visit,
)

from veche_kit.language import said

MAX_ITEMS = "veche:max_items"
MAX_CHARS = "veche:max_chars"
BOUND = "veche:bound"
DEFAULT_ITEMS = 100
DEFAULT_CHARS = 1000
# Ids are ObjectIds, uuids and reference slugs (at most 63 characters).
ID_CHARS = 64
# The gateway sends one representation per object it resolves here; its cost limit bounds them.
ENTITY_REPRESENTATIONS = 20_000


def bounded(*, items: int | None = None, chars: int | None = None) -> dict[str, int]:
    """Metadata for `strawberry.argument` or `strawberry.field`: at most `items` in a
    list, at most `chars` characters in a text (or in each text of a list)."""
    declared: dict[str, int] = {}
    if items is not None:
        declared[MAX_ITEMS] = items
    if chars is not None:
        declared[MAX_CHARS] = chars
    return declared


@dataclass(frozen=True)
class Bound:
    items: int | None  # None: not a list
    chars: int | None  # None: holds no text


def _named(type_: GraphQLInputType) -> tuple[Any, bool]:
    """The named type inside wrappers, and whether a list is among them."""
    listed = False
    inner: Any = type_
    while isinstance(inner, GraphQLNonNull | GraphQLList):
        listed = listed or isinstance(inner, GraphQLList)
        inner = inner.of_type
    return inner, listed


def _bound(owner: GraphQLArgument | GraphQLInputField, declared: Mapping[str, int]) -> Bound | None:
    named, listed = _named(owner.type)
    text = isinstance(named, GraphQLScalarType) and named.name in ("String", "ID")
    if not listed and not text:
        return None
    items = declared.get(MAX_ITEMS, DEFAULT_ITEMS) if listed else None
    chars = None
    if text:
        chars = declared.get(MAX_CHARS, ID_CHARS if named.name == "ID" else DEFAULT_CHARS)
    return Bound(items, chars)


def _sentence(bound: Bound) -> str:
    if bound.items is not None and bound.chars is not None:
        return f"At most {bound.items} items of at most {bound.chars} characters each."
    if bound.items is not None:
        return f"At most {bound.items} items."
    return f"At most {bound.chars} characters."


def _declared(owner: GraphQLArgument | GraphQLInputField) -> Mapping[str, int]:
    definition = (owner.extensions or {}).get("strawberry-definition")
    metadata = getattr(definition, "metadata", None)
    return metadata if isinstance(metadata, Mapping) else {}


def _attach(owner: GraphQLArgument | GraphQLInputField, declared: Mapping[str, int]) -> None:
    bound = _bound(owner, declared)
    if bound is None:
        return
    owner.extensions = {**(owner.extensions or {}), BOUND: bound}
    sentence = _sentence(bound)
    description = (owner.description or "").rstrip()
    if sentence not in description:
        owner.description = f"{description} {sentence}".strip()


def describe_bounds(schema: GraphQLSchema) -> None:
    """Attaches every argument's and input field's maximum and states it in its description."""
    for name, type_ in schema.type_map.items():
        if name.startswith("__"):
            continue
        if isinstance(type_, GraphQLObjectType | GraphQLInterfaceType):
            for field_name, field in type_.fields.items():
                for arg_name, argument in field.args.items():
                    declared = _declared(argument)
                    if (name, field_name, arg_name) == ("Query", "_entities", "representations"):
                        declared = bounded(items=ENTITY_REPRESENTATIONS)
                    _attach(argument, declared)
        elif isinstance(type_, GraphQLInputObjectType):
            for field in type_.fields.values():
                _attach(field, _declared(field))


def bound_of(owner: GraphQLArgument | GraphQLInputField) -> Bound | None:
    found = (owner.extensions or {}).get(BOUND)
    return found if isinstance(found, Bound) else None


class _Oversized(Exception):
    def __init__(self, where: str, message: str) -> None:
        super().__init__(message)
        self.where = where
        self.message = message


def _too_many(where: str, count: int, limit: int) -> _Oversized:
    return _Oversized(
        where,
        said(
            f"`{where}` may hold at most {limit} items (it has {count}).",
            f"В `{where}` не больше {limit} элементов (сейчас {count}).",
        ),
    )


def _too_long(where: str, length: int, limit: int) -> _Oversized:
    return _Oversized(
        where,
        said(
            f"Keep `{where}` within {limit} characters (it has {length}).",
            f"Сократите `{where}` до {limit} символов (сейчас {length}).",
        ),
    )


def _check(value: Any, type_: Any, bound: Bound | None, where: str) -> None:
    """Raises _Oversized for the first list or text in `value` beyond its maximum.
    Values of the wrong type are left to GraphQL's own coercion to refuse."""
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    if value is None or value is Undefined:
        return
    if isinstance(type_, GraphQLList):
        items = value if isinstance(value, list) else [value]  # a single value is a list of one
        if bound is not None and bound.items is not None and len(items) > bound.items:
            raise _too_many(where, len(items), bound.items)
        inner = Bound(None, bound.chars) if bound is not None else None
        for index, item in enumerate(items):
            _check(item, type_.of_type, inner, f"{where}[{index}]")
        return
    if isinstance(type_, GraphQLInputObjectType):
        if isinstance(value, dict):
            for name, field in type_.fields.items():
                if name in value:
                    path = f"{where}.{name}" if where else name
                    _check(value[name], field.type, bound_of(field), path)
        return
    if (
        isinstance(value, str)
        and bound is not None
        and bound.chars is not None
        and len(value) > bound.chars
    ):
        raise _too_long(where, len(value), bound.chars)


def _variable_values(
    operation: OperationDefinitionNode, variables: Mapping[str, Any] | None
) -> dict[str, Any]:
    values = dict(variables or {})
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        if name not in values and definition.default_value is not None:
            values[name] = value_from_ast_untyped(definition.default_value)
    return values


@dataclass(frozen=True)
class InputSite:
    """One argument of a document whose value has a maximum to check."""

    argument: GraphQLArgument
    node: ArgumentNode
    bound: Bound | None
    inside: bool  # an input object: paths leave out the argument's name


def input_sites(schema: GraphQLSchema, document: DocumentNode) -> tuple[InputSite, ...]:
    """The arguments of `document` (every definition, fragments too) that `oversized_input`
    checks: found by one visit with type information, which costs more than the checks,
    so a document kept for reuse keeps its sites too."""
    type_info = TypeInfo(schema)
    sites: list[InputSite] = []

    class Arguments(Visitor):
        def enter_argument(self, node: ArgumentNode, *_: Any) -> None:
            argument = type_info.get_argument()
            if argument is None:
                return
            bound = bound_of(argument)
            inside = isinstance(_named(argument.type)[0], GraphQLInputObjectType)
            if bound is not None or inside:
                sites.append(InputSite(argument, node, bound, inside))

    visit(document, TypeInfoVisitor(type_info, Arguments()))
    return tuple(sites)


def oversized_input(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    sites: tuple[InputSite, ...] | None = None,
) -> GraphQLError | None:
    """A BAD_USER_INPUT error naming the first argument beyond its maximum, or None.
    `sites` are `input_sites(schema, document)` when the caller kept them."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return None
    if sites is None:
        sites = input_sites(schema, document)
    if not sites:
        return None
    values = _variable_values(operation, variables)
    try:
        for site in sites:
            value = value_from_ast_untyped(site.node.value, values)
            # Paths inside an input object leave out the argument, as the services' own
            # refusals do (`questions[0].text` of `input`).
            _check(
                value, site.argument.type, site.bound, "" if site.inside else site.node.name.value
            )
    except _Oversized as refused:
        return GraphQLError(
            refused.message, extensions={"code": "BAD_USER_INPUT", "field": refused.where}
        )
    return None
