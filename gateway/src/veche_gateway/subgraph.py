"""One subgraph's schema as the gateway sees it.

Parses the SDL a Federation subgraph returns from `_service { sdl }` into a
graphql-core schema plus the federation facts composition and planning need:
keys per entity, and per field `@external`, `@shareable`, `@requires`,
`@provides`, `@override` and `@inaccessible`. Directive names are normalised
through the `@link(import:)` list, so `@federation__key` and renamed imports
read the same as `@key`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DefinitionNode,
    DirectiveNode,
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    Node,
    SchemaDefinitionNode,
    SchemaExtensionNode,
    SelectionSetNode,
    TypeDefinitionNode,
    TypeExtensionNode,
    build_ast_schema,
    get_named_type,
    parse,
    value_from_ast_untyped,
)
from graphql.language import (
    EnumTypeDefinitionNode,
    EnumTypeExtensionNode,
    InputObjectTypeDefinitionNode,
    InputObjectTypeExtensionNode,
    InterfaceTypeDefinitionNode,
    InterfaceTypeExtensionNode,
    ObjectTypeDefinitionNode,
    ObjectTypeExtensionNode,
    OperationDefinitionNode,
    ScalarTypeDefinitionNode,
    ScalarTypeExtensionNode,
    UnionTypeDefinitionNode,
    UnionTypeExtensionNode,
)

from veche_gateway.errors import CompositionError

FEDERATION_SPEC = "specs.apollo.dev/federation/"

# Types and fields that only exist for the gateway<->subgraph protocol.
FEDERATION_TYPES = frozenset(
    {"_Service", "_Entity", "_Any", "_FieldSet", "FieldSet", "link__Import", "link__Purpose"}
)
FEDERATION_PREFIXES = ("federation__", "link__", "join__")
FEDERATION_QUERY_FIELDS = frozenset({"_service", "_entities"})
# Federation directives the gateway does not implement: ignoring one would change what
# clients get (or, for the authorization ones, who may get it).
UNSUPPORTED_DIRECTIVES = frozenset(
    {"context", "fromContext", "composeDirective", "authenticated", "requiresScopes", "policy"}
)

_EXTENSION_TO_DEFINITION: dict[type[Node], type[Node]] = {
    ObjectTypeExtensionNode: ObjectTypeDefinitionNode,
    InterfaceTypeExtensionNode: InterfaceTypeDefinitionNode,
    UnionTypeExtensionNode: UnionTypeDefinitionNode,
    EnumTypeExtensionNode: EnumTypeDefinitionNode,
    InputObjectTypeExtensionNode: InputObjectTypeDefinitionNode,
    ScalarTypeExtensionNode: ScalarTypeDefinitionNode,
}


def is_federation_type(name: str) -> bool:
    return name in FEDERATION_TYPES or name.startswith(FEDERATION_PREFIXES)


def parse_field_set(text: str) -> SelectionSetNode:
    """Parse a `FieldSet` string such as `"id org { id }"` into a selection set."""
    operation = parse("{" + text + "}", no_location=True).definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    return operation.selection_set


@dataclass(frozen=True)
class Key:
    fields: str
    selection: SelectionSetNode
    resolvable: bool


@dataclass
class FieldFacts:
    """Federation directives found on one field of one subgraph."""

    external: bool = False
    shareable: bool = False
    inaccessible: bool = False
    requires: str | None = None
    provides: str | None = None
    override_from: str | None = None


@dataclass
class Subgraph:
    name: str
    url: str
    sdl: str
    schema: GraphQLSchema
    fed1: bool
    keys: dict[str, list[Key]] = field(default_factory=dict)
    shareable_types: set[str] = field(default_factory=set)
    external_types: set[str] = field(default_factory=set)
    interface_objects: set[str] = field(default_factory=set)  # `type T @interfaceObject`
    # types with a `@key` on an `extend type` or with `@extends`: their `@external` key
    # fields are the subgraph's own (Federation's "fake" externals, given in every
    # representation); on a type the subgraph defines, `@external` means it cannot
    # return the field, key or not
    extension_types: set[str] = field(default_factory=set)
    # federation directives used here that the gateway does not implement, each with
    # where it sits: composition refuses them rather than ignore them
    unsupported: list[tuple[str, str]] = field(default_factory=list)
    inaccessible: set[str] = field(default_factory=set)  # "Type", "Type.field", "Enum.VALUE"
    fields: dict[tuple[str, str], FieldFacts] = field(default_factory=dict)

    def facts(self, type_name: str, field_name: str) -> FieldFacts:
        return self.fields.get((type_name, field_name)) or FieldFacts()

    def in_key(self, type_name: str, field_name: str) -> bool:
        """The field is selected by one of the subgraph's keys, at any depth (`id` in
        `@key(fields: "id")`, or `one` of `CompositeId` in `@key(fields: "ref { one }")`):
        such fields are shareable, as Federation says."""
        return (type_name, field_name) in self._key_fields()

    def _key_fields(self) -> set[tuple[str, str]]:
        found: set[tuple[str, str]] = set()

        def walk(type_name: str, selection: SelectionSetNode) -> None:
            owner = self.schema.type_map.get(type_name)
            for node in selection.selections:
                name = node.name.value  # type: ignore[attr-defined]
                found.add((type_name, name))
                sub = getattr(node, "selection_set", None)
                definition = getattr(owner, "fields", {}).get(name)
                if sub is not None and definition is not None:
                    walk(get_named_type(definition.type).name, sub)

        for type_name, keys in self.keys.items():
            for key in keys:
                walk(type_name, key.selection)
        return found

    def owns_external_key(self, type_name: str, field_name: str) -> bool:
        """An `@external` field the subgraph resolves all the same: a key field of a
        type extension."""
        return type_name in self.extension_types and field_name in self.key_field_names(type_name)

    def key_field_names(self, type_name: str) -> set[str]:
        names: set[str] = set()
        for key in self.keys.get(type_name, []):
            for selection in key.selection.selections:
                names.add(selection.name.value)  # type: ignore[attr-defined]
        return names


class _Directives:
    """Maps directive names as written in the SDL to their federation names."""

    def __init__(self, document: DocumentNode) -> None:
        self.renames: dict[str, str] = {}
        self.linked = False
        for definition in document.definitions:
            if isinstance(definition, SchemaDefinitionNode | SchemaExtensionNode):
                for directive in definition.directives or ():
                    if directive.name.value == "link":
                        self._read_link(_arguments(directive))

    def _read_link(self, args: dict[str, Any]) -> None:
        if FEDERATION_SPEC not in str(args.get("url", "")):
            return
        self.linked = True
        for item in args.get("import") or []:
            if isinstance(item, str):
                self.renames[item.lstrip("@")] = item.lstrip("@")
            elif isinstance(item, dict) and "name" in item:
                name = str(item["name"]).lstrip("@")
                self.renames[str(item.get("as", item["name"])).lstrip("@")] = name

    def read(self, node: Node) -> list[tuple[str, dict[str, Any]]]:
        found = []
        for directive in getattr(node, "directives", None) or ():
            found.append((self.canonical(directive.name.value), _arguments(directive)))
        return found

    def canonical(self, name: str) -> str:
        if name in self.renames:
            return self.renames[name]
        if name.startswith("federation__"):
            return name.removeprefix("federation__")
        return name


def _arguments(directive: DirectiveNode) -> dict[str, Any]:
    return {arg.name.value: value_from_ast_untyped(arg.value) for arg in directive.arguments or ()}


def _definitions(document: DocumentNode) -> list[DefinitionNode]:
    """Type definitions and extensions only; an extension without a base becomes one.

    Directive definitions are dropped: the gateway knows the federation
    directives itself, and their argument types (`FieldSet`, `link__Import`)
    are often left undefined by subgraph libraries.
    """
    defined = {
        d.name.value
        for d in document.definitions
        if isinstance(d, TypeDefinitionNode) and not isinstance(d, TypeExtensionNode)
    }
    kept: list[DefinitionNode] = []
    for definition in document.definitions:
        if isinstance(definition, TypeExtensionNode) and definition.name.value not in defined:
            target = _EXTENSION_TO_DEFINITION[type(definition)]
            kwargs = {k: getattr(definition, k, None) for k in target.keys if k != "loc"}
            kwargs["description"] = None
            kept.append(target(**kwargs))  # type: ignore[arg-type]
            defined.add(definition.name.value)
        elif isinstance(
            definition,
            TypeDefinitionNode | TypeExtensionNode | SchemaDefinitionNode,
        ):
            kept.append(definition)
    return kept


def load_subgraph(name: str, url: str, sdl: str) -> Subgraph:
    """Build a `Subgraph` from SDL, or raise `CompositionError` naming it."""
    try:
        document = parse(sdl)
    except GraphQLError as exc:
        raise CompositionError(f"[{name}] the SDL does not parse: {exc.message}") from exc
    directives = _Directives(document)
    definitions = _definitions(document)
    try:
        schema = build_ast_schema(
            DocumentNode(definitions=tuple(definitions)), assume_valid_sdl=True
        )
    except Exception as exc:
        raise CompositionError(f"[{name}] the SDL does not build a schema: {exc}") from exc
    subgraph = Subgraph(name=name, url=url, sdl=sdl, schema=schema, fed1=not directives.linked)
    for schema_node in document.definitions:
        if isinstance(schema_node, SchemaDefinitionNode | SchemaExtensionNode):
            _unsupported(subgraph, directives, schema_node, "the schema")
    for extension in document.definitions:
        if isinstance(extension, TypeExtensionNode) and any(
            d == "key" for d, _ in directives.read(extension)
        ):
            subgraph.extension_types.add(extension.name.value)
    for definition in definitions:
        if not isinstance(definition, TypeDefinitionNode | TypeExtensionNode):
            continue
        _read_type(subgraph, directives, definition)
    return subgraph


def _unsupported(subgraph: Subgraph, directives: _Directives, node: Node, where: str) -> None:
    for directive, args in directives.read(node):
        if directive in UNSUPPORTED_DIRECTIVES:
            subgraph.unsupported.append((f"@{directive}", where))
        elif directive == "override" and args.get("label") is not None:
            # progressive override: a share of traffic per label, which the planner lacks
            subgraph.unsupported.append(("@override(label:)", where))


def _read_type(subgraph: Subgraph, directives: _Directives, node: Node) -> None:
    type_name: str = node.name.value  # type: ignore[attr-defined]
    _unsupported(subgraph, directives, node, f'type "{type_name}"')
    for directive, args in directives.read(node):
        if directive == "key":
            fields = str(args.get("fields", ""))
            try:
                selection = parse_field_set(fields)
            except GraphQLError as exc:
                raise CompositionError(
                    f'[{subgraph.name}] @key(fields: "{fields}") on type "{type_name}" '
                    f"does not parse: {exc.message}"
                ) from exc
            key = Key(fields, selection, resolvable=args.get("resolvable", True) is not False)
            subgraph.keys.setdefault(type_name, []).append(key)
        elif directive == "shareable":
            subgraph.shareable_types.add(type_name)
        elif directive == "external":
            subgraph.external_types.add(type_name)
        elif directive == "interfaceObject":
            subgraph.interface_objects.add(type_name)
        elif directive == "extends":
            subgraph.extension_types.add(type_name)
        elif directive == "inaccessible":
            subgraph.inaccessible.add(type_name)
    for value in getattr(node, "values", None) or ():
        if any(d == "inaccessible" for d, _ in directives.read(value)):
            subgraph.inaccessible.add(f"{type_name}.{value.name.value}")
    for field_node in getattr(node, "fields", None) or ():
        field_name = field_node.name.value
        facts = subgraph.fields.setdefault((type_name, field_name), FieldFacts())
        _unsupported(subgraph, directives, field_node, f'field "{type_name}.{field_name}"')
        for directive, args in directives.read(field_node):
            if directive == "external":
                facts.external = True
            elif directive == "shareable":
                facts.shareable = True
            elif directive == "inaccessible":
                facts.inaccessible = True
                subgraph.inaccessible.add(f"{type_name}.{field_name}")
            elif directive == "requires":
                facts.requires = str(args.get("fields", ""))
            elif directive == "provides":
                facts.provides = str(args.get("fields", ""))
            elif directive == "override":
                facts.override_from = str(args.get("from", ""))
        if type_name in subgraph.external_types:
            facts.external = True
        for arg in getattr(field_node, "arguments", None) or ():
            where = f'argument "{type_name}.{field_name}({arg.name.value}:)"'
            _unsupported(subgraph, directives, arg, where)
            if any(d == "inaccessible" for d, _ in directives.read(arg)):
                subgraph.inaccessible.add(f"{type_name}.{field_name}({arg.name.value}:)")
