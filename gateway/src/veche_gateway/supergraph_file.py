"""A supergraph SDL file (Apollo's `rover supergraph compose` / GraphOS output) back
into the subgraph SDLs it was composed from.

Done the way Apollo's federation-internals `extractSubgraphsFromSupergraph` does it:
each `join__Graph` value's `@join__graph(name:, url:)` is a subgraph (a url may list
several instances, `http://a|http://b`: the gateway splits it, `instances.py`); a type goes to
every graph of its `@join__type`s (with their `@key`s, `resolvable: false`,
`extension: true` as `extend type`, `isInterfaceObject` as `@interfaceObject`); a
field to every graph of its `@join__field`s (with `requires`, `provides`,
`external`, `usedOverridden` as `@external`, `type:` as that graph's type), or to
every graph of its type when it has none; `@join__implements`,
`@join__unionMember` and `@join__enumValue` likewise (join v0.2 has the last two
missing: then every member and value the graph can hold). An object field
resolved by several graphs is `@shareable` in each. `@override(from:)` is already
settled by the composer (the overridden graph no longer has the field), so it is
not written back. `@inaccessible`, `@tag`, `@listSize`, `@cost`, `@deprecated`,
`@specifiedBy` and `@oneOf` are kept on every copy.

The gateway then composes the extracted SDLs with `compose()`, as it composes
live ones: one composition path. Anything the file says that the extraction
cannot carry (another spec for execution or security, `@join__directive`,
`@context` arguments, progressive `@override(label:)`, a custom directive) is
refused with `SupergraphFileError`, never dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    BooleanValueNode,
    ConstArgumentNode,
    ConstDirectiveNode,
    ConstValueNode,
    DefinitionNode,
    DirectiveDefinitionNode,
    DocumentNode,
    EnumTypeDefinitionNode,
    EnumValueDefinitionNode,
    FieldDefinitionNode,
    GraphQLError,
    InputObjectTypeDefinitionNode,
    InputValueDefinitionNode,
    InterfaceTypeDefinitionNode,
    NamedTypeNode,
    NameNode,
    ObjectTypeDefinitionNode,
    ObjectTypeExtensionNode,
    OperationType,
    OperationTypeDefinitionNode,
    ScalarTypeDefinitionNode,
    SchemaDefinitionNode,
    StringValueNode,
    TypeDefinitionNode,
    TypeNode,
    UnionTypeDefinitionNode,
    parse,
    parse_type,
    print_ast,
    value_from_ast_untyped,
)

from veche_gateway.errors import CompositionError

JOIN_VERSIONS = ("v0.2", "v0.3", "v0.4", "v0.5")
# specs whose directives the extraction carries (each under its canonical name)
KEPT_SPECS = {"inaccessible": ("v0.1", "v0.2"), "tag": ("v0.1", "v0.2", "v0.3"), "cost": ("v0.1",)}
# directives of GraphQL itself, kept as written
BUILT_IN = frozenset({"deprecated", "specifiedBy", "oneOf"})
FEDERATION_LINK = (
    'extend schema @link(url: "https://specs.apollo.dev/federation/v2.9", import: ['
    '"@key", "@requires", "@provides", "@external", "@shareable", "@inaccessible", '
    '"@tag", "@interfaceObject", "@listSize", "@cost"])\n\n'
)
_SPEC_URL = re.compile(r"^https?://specs\.apollo\.dev/(?P<name>[a-z_]+)/(?P<version>v\d+\.\d+)/?$")
_ROOTS = {
    OperationType.QUERY: "Query",
    OperationType.MUTATION: "Mutation",
    OperationType.SUBSCRIPTION: "Subscription",  # served by ws.py and sse.py
}


class SupergraphFileError(CompositionError):
    """The supergraph file cannot be read into subgraphs; the message says why."""


@dataclass(frozen=True)
class ExtractedSubgraph:
    name: str
    url: str
    sdl: str


@dataclass
class _Names:
    """Directive and type names as the file spells them (`@link(as:, import:)`)."""

    join: str = "join"  # the join spec's prefix
    # name in the file -> (spec, canonical name) for the specs the extraction keeps
    kept: dict[str, str] = field(default_factory=dict)
    prefixes: set[str] = field(default_factory=lambda: {"link", "join"})

    def join_directive(self, name: str) -> str | None:
        prefix = self.join + "__"
        return name.removeprefix(prefix) if name.startswith(prefix) else None


def extract_subgraphs(text: str) -> list[ExtractedSubgraph]:
    """The subgraphs a supergraph SDL was composed from, in its `join__Graph` order."""
    try:
        document = parse(text)
    except GraphQLError as exc:
        raise SupergraphFileError(f"the supergraph does not parse: {exc.message}") from exc
    names = _read_links(document)
    graphs = _read_graphs(document, names)
    roots = _read_roots(document)
    types = [d for d in document.definitions if isinstance(d, TypeDefinitionNode)]
    for definition in document.definitions:
        if not isinstance(
            definition, TypeDefinitionNode | SchemaDefinitionNode | DirectiveDefinitionNode
        ):
            kind = type(definition).__name__.removesuffix("Node")
            raise SupergraphFileError(f"a supergraph holds no {kind}; this file has one")
    per_graph: dict[str, list[DefinitionNode]] = {enum: [] for enum in graphs}
    extraction = _Extraction(names, list(graphs), {t.name.value: t for t in types})
    for type_node in types:
        if _is_spec_type(type_node.name.value, names):
            continue
        for enum, node in extraction.type_copies(type_node):
            per_graph[enum].append(node)
    extracted = []
    for enum, (name, url) in graphs.items():
        definitions = per_graph[enum]
        present = {d.name.value for d in definitions if isinstance(d, TypeDefinitionNode)}
        schema = _schema_definition(roots, present)
        body = print_ast(DocumentNode(definitions=tuple(schema + definitions)))
        extracted.append(ExtractedSubgraph(name, url, FEDERATION_LINK + body + "\n"))
    return extracted


def _read_links(document: DocumentNode) -> _Names:
    names = _Names()
    schemas = [d for d in document.definitions if isinstance(d, SchemaDefinitionNode)]
    if len(schemas) != 1:
        raise SupergraphFileError("a supergraph has exactly one schema definition")
    join_seen = False
    for directive in schemas[0].directives or ():
        if directive.name.value != "link":
            raise SupergraphFileError(
                f'directive "@{directive.name.value}" on the schema cannot be represented'
            )
        args = _arguments(directive)
        url = str(args.get("url", ""))
        match = _SPEC_URL.match(url)
        if match is None:
            raise SupergraphFileError(f'@link(url: "{url}") is not a spec the gateway knows')
        spec, version = match["name"], match["version"]
        prefix = str(args.get("as") or spec)
        if spec == "link":
            names.prefixes.add(prefix)
            continue
        if spec == "join":
            if version not in JOIN_VERSIONS:
                raise SupergraphFileError(
                    f"join {version} is not supported (v0.2 to v0.5 are): "
                    + ("a Federation 1 supergraph" if version == "v0.1" else url)
                )
            names.join, join_seen = prefix, True
            names.prefixes.add(prefix)
            continue
        if spec not in KEPT_SPECS or version not in KEPT_SPECS[spec]:
            # an execution or security feature the gateway lacks would change answers
            purpose = args.get("for")
            raise SupergraphFileError(
                f'@link(url: "{url}"'
                + (f", for: {purpose}" if purpose else "")
                + ") is a feature the gateway does not implement"
            )
        names.prefixes.add(prefix)
        names.kept[prefix] = spec  # `@cost` for the cost spec, `@tag` for tag, ...
        for item in args.get("import") or ():
            if isinstance(item, str):
                names.kept[item.lstrip("@")] = item.lstrip("@")
            elif isinstance(item, dict):
                original = str(item.get("name", "")).lstrip("@")
                names.kept[str(item.get("as", original)).lstrip("@")] = original
    if not join_seen:
        raise SupergraphFileError("no @link to the join spec: this is not a supergraph")
    # `@cost__listSize` and the like: a spec's directives under its prefix
    for prefix, spec in list(names.kept.items()):
        if spec in KEPT_SPECS and prefix == spec:
            for canonical in ("listSize", "cost", "tag", "inaccessible"):
                names.kept.setdefault(f"{prefix}__{canonical}", canonical)
    return names


def _read_graphs(document: DocumentNode, names: _Names) -> dict[str, tuple[str, str]]:
    """`join__Graph` value -> (subgraph name, url)."""
    enum_name = f"{names.join}__Graph"
    for definition in document.definitions:
        if isinstance(definition, EnumTypeDefinitionNode) and definition.name.value == enum_name:
            graphs: dict[str, tuple[str, str]] = {}
            for value in definition.values or ():
                found = [
                    _arguments(d)
                    for d in value.directives or ()
                    if names.join_directive(d.name.value) == "graph"
                ]
                if len(found) != 1:
                    raise SupergraphFileError(
                        f"{enum_name}.{value.name.value} needs one @{names.join}__graph(name:, url:)"
                    )
                graphs[value.name.value] = (str(found[0]["name"]), str(found[0]["url"]))
            if not graphs:
                break
            return graphs
    raise SupergraphFileError(f"the supergraph has no {enum_name} values: no subgraphs")


def _read_roots(document: DocumentNode) -> dict[OperationType, str]:
    for definition in document.definitions:
        if isinstance(definition, SchemaDefinitionNode):
            return {o.operation: o.type.name.value for o in definition.operation_types}
    return dict(_ROOTS)


def _schema_definition(roots: dict[OperationType, str], present: set[str]) -> list[DefinitionNode]:
    """A `schema { }` block only for roots not named as GraphQL's defaults."""
    if all(_ROOTS.get(op) == name for op, name in roots.items()):
        return []
    operations = tuple(
        OperationTypeDefinitionNode(operation=op, type=_named(name))
        for op, name in roots.items()
        if name in present
    )
    return [SchemaDefinitionNode(operation_types=operations, directives=())] if operations else []


def _is_spec_type(name: str, names: _Names) -> bool:
    return any(name.startswith(prefix + "__") for prefix in names.prefixes)


class _Extraction:
    def __init__(
        self, names: _Names, graphs: list[str], types: dict[str, TypeDefinitionNode]
    ) -> None:
        self.names = names
        self.graphs = graphs
        self.types = types
        self.membership = {name: self._graphs_of(node) for name, node in types.items()}

    def _join(self, node: Any, directive: str) -> list[dict[str, Any]]:
        found = [
            _arguments(d)
            for d in getattr(node, "directives", None) or ()
            if self.names.join_directive(d.name.value) == directive
        ]
        for args in found:
            graph = args.get("graph")
            # only @join__field may go without a graph (a field of the supergraph only)
            if (graph is None and directive != "field") or (
                graph is not None and graph not in self.graphs
            ):
                name = getattr(node, "name", None)
                raise SupergraphFileError(
                    f"@{self.names.join}__{directive} on"
                    f' "{name.value if name else "?"}" names no graph of {self.names.join}__Graph'
                    f" (graph: {graph})"
                )
        return found

    def _graphs_of(self, node: TypeDefinitionNode) -> list[str]:
        applied = self._join(node, "type")
        if not applied:
            return list(self.graphs)  # no @join__type: in every graph
        listed = {str(a["graph"]) for a in applied}
        return [g for g in self.graphs if g in listed]

    def _kept(self, node: Any, where: str) -> tuple[ConstDirectiveNode, ...]:
        """The node's directives a subgraph keeps; anything unknown is refused."""
        kept: list[ConstDirectiveNode] = []
        for directive in getattr(node, "directives", None) or ():
            name = directive.name.value
            join = self.names.join_directive(name)
            if join in ("type", "field", "implements", "unionMember", "enumValue", "graph"):
                continue
            if name in BUILT_IN:
                kept.append(directive)
            elif name in self.names.kept:
                canonical = self.names.kept[name]
                kept.append(
                    ConstDirectiveNode(
                        name=NameNode(value=canonical), arguments=directive.arguments
                    )
                )
            else:
                raise SupergraphFileError(f'directive "@{name}" on {where} cannot be represented')
        return tuple(kept)

    def type_copies(self, node: TypeDefinitionNode) -> Iterable[tuple[str, DefinitionNode]]:
        name = node.name.value
        where = f'type "{name}"'
        base = self._kept(node, where)
        joins = self._join(node, "type")
        for graph in self.membership[name]:
            mine = [a for a in joins if str(a["graph"]) == graph]
            keys = tuple(
                _directive("key", fields=str(a["key"]), resolvable=False)
                if a.get("resolvable") is False
                else _directive("key", fields=str(a["key"]))
                for a in mine
                if a.get("key") is not None
            )
            extension = any(a.get("extension") is True for a in mine)
            interface_object = any(a.get("isInterfaceObject") is True for a in mine)
            directives = keys + base
            yield graph, self._copy(node, graph, directives, extension, interface_object)

    def _copy(
        self,
        node: TypeDefinitionNode,
        graph: str,
        directives: tuple[ConstDirectiveNode, ...],
        extension: bool,
        interface_object: bool,
    ) -> DefinitionNode:
        name = node.name.value
        description = node.description
        if isinstance(node, ObjectTypeDefinitionNode | InterfaceTypeDefinitionNode):
            fields = self._fields(node, graph, shareable=isinstance(node, ObjectTypeDefinitionNode))
            if interface_object:
                # an interface everywhere else, an object type in this graph
                marker = (ConstDirectiveNode(name=NameNode(value="interfaceObject"), arguments=()),)
                return ObjectTypeDefinitionNode(
                    name=node.name,
                    description=description,
                    interfaces=(),
                    directives=directives + marker,
                    fields=fields,
                )
            interfaces = self._implements(node, graph)
            if isinstance(node, InterfaceTypeDefinitionNode):
                return InterfaceTypeDefinitionNode(
                    name=node.name,
                    description=description,
                    interfaces=interfaces,
                    directives=directives,
                    fields=fields,
                )
            if extension:
                return ObjectTypeExtensionNode(
                    name=node.name, interfaces=interfaces, directives=directives, fields=fields
                )
            return ObjectTypeDefinitionNode(
                name=node.name,
                description=description,
                interfaces=interfaces,
                directives=directives,
                fields=fields,
            )
        if isinstance(node, InputObjectTypeDefinitionNode):
            return InputObjectTypeDefinitionNode(
                name=node.name,
                description=description,
                directives=directives,
                fields=self._input_fields(node, graph),
            )
        if isinstance(node, UnionTypeDefinitionNode):
            members = self._join(node, "unionMember")
            if members:
                listed = {str(m["member"]) for m in members if str(m["graph"]) == graph}
                types = tuple(t for t in node.types or () if t.name.value in listed)
            else:  # join v0.2: every member the graph has
                types = tuple(t for t in node.types or () if self._in(t.name.value, graph))
            return UnionTypeDefinitionNode(
                name=node.name, description=description, directives=directives, types=types
            )
        if isinstance(node, EnumTypeDefinitionNode):
            values = []
            for value in node.values or ():
                listed = {str(a["graph"]) for a in self._join(value, "enumValue")}
                if listed and graph not in listed:
                    continue
                values.append(
                    EnumValueDefinitionNode(
                        name=value.name,
                        description=value.description,
                        directives=self._kept(value, f'enum value "{name}.{value.name.value}"'),
                    )
                )
            return EnumTypeDefinitionNode(
                name=node.name, description=description, directives=directives, values=tuple(values)
            )
        if isinstance(node, ScalarTypeDefinitionNode):
            return ScalarTypeDefinitionNode(
                name=node.name, description=description, directives=directives
            )
        raise SupergraphFileError(f'type "{name}": a {type(node).__name__} cannot be represented')

    def _in(self, type_name: str, graph: str) -> bool:
        return graph in self.membership.get(type_name, ())

    def _implements(self, node: Any, graph: str) -> tuple[NamedTypeNode, ...]:
        applied = self._join(node, "implements")
        if applied:
            listed = {str(a["interface"]) for a in applied if str(a["graph"]) == graph}
            return tuple(i for i in node.interfaces or () if i.name.value in listed)
        return tuple(i for i in node.interfaces or () if self._in(i.name.value, graph))

    def _field_graphs(self, node: Any, owner: str, where: str) -> dict[str, dict[str, Any]]:
        """graph -> its `@join__field` arguments ({} when the field has none)."""
        applied = self._join(node, "field")
        if not applied:
            return {g: {} for g in self.membership[owner]}
        found: dict[str, dict[str, Any]] = {}
        for args in applied:
            if args.get("contextArguments"):
                raise SupergraphFileError(f"{where}: @fromContext arguments are not supported")
            if args.get("overrideLabel") is not None:
                raise SupergraphFileError(
                    f"{where}: progressive @override(label:) is not supported"
                )
            if args.get("graph") is None:
                continue  # in the supergraph only (e.g. through an @interfaceObject)
            found[str(args["graph"])] = args
        return found

    def _fields(
        self,
        node: ObjectTypeDefinitionNode | InterfaceTypeDefinitionNode,
        graph: str,
        shareable: bool,
    ) -> tuple[FieldDefinitionNode, ...]:
        owner = node.name.value
        fields = []
        for field_node in node.fields or ():
            where = f'field "{owner}.{field_node.name.value}"'
            resolvers = self._field_graphs(field_node, owner, where)
            if graph not in resolvers:
                continue
            args = resolvers[graph]
            directives = list(self._kept(field_node, where))
            if args.get("requires") is not None:
                directives.append(_directive("requires", fields=str(args["requires"])))
            if args.get("provides") is not None:
                directives.append(_directive("provides", fields=str(args["provides"])))
            external = args.get("external") is True or args.get("usedOverridden") is True
            if external:
                directives.append(_directive("external"))
            owning = [
                a
                for a in resolvers.values()
                if not a.get("external") and not a.get("usedOverridden")
            ]
            if shareable and not external and len(owning) > 1:
                directives.append(_directive("shareable"))
            fields.append(
                FieldDefinitionNode(
                    name=field_node.name,
                    description=field_node.description,
                    arguments=self._arguments(field_node.arguments or (), where),
                    type=_field_type(field_node.type, args, where),
                    directives=tuple(directives),
                )
            )
        return tuple(fields)

    def _arguments(
        self, arguments: Sequence[InputValueDefinitionNode], where: str
    ) -> tuple[InputValueDefinitionNode, ...]:
        return tuple(
            InputValueDefinitionNode(
                name=a.name,
                description=a.description,
                type=a.type,
                default_value=a.default_value,
                directives=self._kept(a, f"{where} argument {a.name.value}"),
            )
            for a in arguments
        )

    def _input_fields(
        self, node: InputObjectTypeDefinitionNode, graph: str
    ) -> tuple[InputValueDefinitionNode, ...]:
        owner = node.name.value
        fields = []
        for field_node in node.fields or ():
            where = f'input field "{owner}.{field_node.name.value}"'
            resolvers = self._field_graphs(field_node, owner, where)
            if graph not in resolvers:
                continue
            fields.append(
                InputValueDefinitionNode(
                    name=field_node.name,
                    description=field_node.description,
                    type=_field_type(field_node.type, resolvers[graph], where),
                    default_value=field_node.default_value,
                    directives=self._kept(field_node, where),
                )
            )
        return tuple(fields)


def _field_type(default: TypeNode, args: dict[str, Any], where: str) -> TypeNode:
    text = args.get("type")
    if text is None:
        return default
    try:
        return parse_type(str(text))
    except GraphQLError as exc:
        raise SupergraphFileError(f'{where}: @join__field(type: "{text}") does not parse') from exc


def _named(name: str) -> NamedTypeNode:
    return NamedTypeNode(name=NameNode(value=name))


def _directive(name: str, **args: str | bool) -> ConstDirectiveNode:
    nodes = []
    for key, value in args.items():
        node: ConstValueNode = (
            BooleanValueNode(value=value)
            if isinstance(value, bool)
            else StringValueNode(value=value)
        )
        nodes.append(ConstArgumentNode(name=NameNode(value=key), value=node))
    return ConstDirectiveNode(name=NameNode(value=name), arguments=tuple(nodes))


def _arguments(directive: ConstDirectiveNode) -> dict[str, Any]:
    # an enum value (`graph: USERS`) reads as its name
    return {a.name.value: value_from_ast_untyped(a.value) for a in directive.arguments or ()}
