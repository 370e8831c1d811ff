"""Composition: many Federation v2 subgraph schemas -> one supergraph.

Follows Federation's merge rules where they matter to clients:
- object and interface fields are unioned; a field resolved by more than one
  subgraph must be `@shareable` there (key fields are shareable), unless
  `@override(from:)` hands it over;
- a shared field's types must agree up to nullability (outputs take the
  nullable side, arguments the non-null side); arguments are intersected;
- unions are unioned; input objects are intersected (a required input field
  missing from one subgraph is an error); enums are unioned when used only as
  outputs, intersected when used only as inputs, and must match when used as
  both;
- `@inaccessible` elements and the federation plumbing (`_service`,
  `_entities`, `_Any`, `_Entity`, `_Service`, `link__*`, directives) are kept
  out of the client schema; descriptions and deprecations are kept.

Each error names the subgraphs, type and field at fault.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from typing import Any, cast

from graphql import (
    FieldNode,
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLEnumValue,
    GraphQLError,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLType,
    GraphQLUnionType,
    Undefined,
    get_named_type,
    is_abstract_type,
    is_composite_type,
    is_specified_scalar_type,
    print_schema,
    validate_schema,
)

from veche_gateway.demand import read_demand
from veche_gateway.errors import CompositionError
from veche_gateway.model import FieldSet, PlanningModel, Unsatisfiable
from veche_gateway.subgraph import (
    FEDERATION_QUERY_FIELDS,
    Subgraph,
    is_federation_type,
    parse_field_set,
)
from veche_gateway.supergraph import Supergraph

ROOT_NAMES = ("Query", "Mutation", "Subscription")


def _quote(names: Sequence[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


def _root_renames(subgraph: Subgraph) -> dict[str, str]:
    schema = subgraph.schema
    roots = (schema.query_type, schema.mutation_type, schema.subscription_type)
    return {t.name: name for t, name in zip(roots, ROOT_NAMES, strict=True) if t is not None}


def _client_type_names(subgraph: Subgraph) -> dict[str, GraphQLNamedType]:
    """The subgraph's types under their supergraph names, plumbing left out."""
    renames = _root_renames(subgraph)
    found: dict[str, GraphQLNamedType] = {}
    for name, named in subgraph.schema.type_map.items():
        if name.startswith("__") or is_specified_scalar_type(named) or is_federation_type(name):
            continue
        found[renames.get(name, name)] = named
    return found


def _shape(type_: GraphQLType) -> str:
    """The type's list/named structure, ignoring nullability."""
    if isinstance(type_, GraphQLNonNull):
        return _shape(type_.of_type)
    if isinstance(type_, GraphQLList):
        return f"[{_shape(type_.of_type)}]"
    return str(type_)


class _Composer:
    def __init__(self, subgraphs: Sequence[Subgraph]) -> None:
        self.subgraphs = list(subgraphs)
        self.views = {sg.name: _client_type_names(sg) for sg in subgraphs}
        self.renames = {sg.name: _root_renames(sg) for sg in subgraphs}
        self.types: dict[str, GraphQLNamedType] = {}
        self.resolvers: dict[tuple[str, str], list[str]] = {}
        self.hidden: set[str] = set()  # @inaccessible anywhere hides it everywhere
        # (subgraph, type, field) -> the subgraph's own return type, where it names a
        # member of the supergraph's union or interface instead
        self.local_types: dict[tuple[str, str, str], str] = {}
        self._builders: dict[str, Callable[[], dict[str, Any]]] = {}
        self._built: dict[str, dict[str, Any]] = {}
        for sg in subgraphs:
            self.hidden |= sg.inaccessible

    # --- helpers -----------------------------------------------------------------

    def defining(self, type_name: str) -> list[tuple[Subgraph, GraphQLNamedType]]:
        return [
            (sg, self.views[sg.name][type_name])
            for sg in self.subgraphs
            if type_name in self.views[sg.name]
        ]

    def is_interface_object(self, subgraph: Subgraph, type_name: str) -> bool:
        """`type T @interfaceObject` in the subgraph: there T stands for the interface."""
        return type_name in subgraph.interface_objects

    def _is_interface(self, name: str) -> bool:
        return any(isinstance(t, GraphQLInterfaceType) for _, t in self.defining(name))

    def interface_object_defs(self, name: str) -> list[tuple[Subgraph, GraphQLNamedType]]:
        """The `@interfaceObject` definitions of the interfaces the object type
        implements somewhere: their fields are the object's too, resolved there."""
        found: list[tuple[Subgraph, GraphQLNamedType]] = []
        interfaces: list[str] = []
        for _, t in self.defining(name):
            if isinstance(t, GraphQLObjectType):
                interfaces.extend(i.name for i in t.interfaces if i.name not in interfaces)
        for interface in interfaces:
            found.extend(
                (sg, t)
                for sg, t in self.defining(interface)
                if self.is_interface_object(sg, interface)
            )
        return found

    def implementations(self, interface: str) -> list[str]:
        """The object types implementing the interface in some subgraph."""
        found: list[str] = []
        for sg in self.subgraphs:
            for name, t in self.views[sg.name].items():
                if (
                    isinstance(t, GraphQLObjectType)
                    and not self.is_interface_object(sg, name)
                    and any(i.name == interface for i in t.interfaces)
                    and name not in found
                ):
                    found.append(name)
        return found

    def local_name(self, subgraph: Subgraph, type_name: str) -> str:
        for local, client in self.renames[subgraph.name].items():
            if client == type_name:
                return local
        return type_name

    def ref(self, type_: GraphQLType) -> Any:
        """The same type shape, pointing at the supergraph's named types."""
        if isinstance(type_, GraphQLNonNull):
            return GraphQLNonNull(self.ref(type_.of_type))
        if isinstance(type_, GraphQLList):
            return GraphQLList(self.ref(type_.of_type))
        if is_specified_scalar_type(cast(GraphQLNamedType, type_)):
            return type_  # build_ast_schema uses graphql-core's own instances
        name = cast(GraphQLNamedType, type_).name
        for renames in self.renames.values():
            name = renames.get(name, name)
        return self.types[name]

    # --- the merge ---------------------------------------------------------------

    def compose(self) -> Supergraph:
        for sg in self.subgraphs:
            for directive, where in sg.unsupported:
                raise CompositionError(
                    f"[{sg.name}] {directive} on {where} is not supported by this gateway: "
                    "it would be ignored, changing what clients get; remove it from the "
                    "subgraph or compose without it"
                )
        names: list[str] = []
        for sg in self.subgraphs:
            names.extend(n for n in self.views[sg.name] if n not in names)
        for name in names:
            kinds = {
                type(t).__name__
                for sg, t in self.defining(name)
                if not (self.is_interface_object(sg, name) and self._is_interface(name))
            }
            if len(kinds) > 1:
                detail = "; ".join(
                    f"{type(t).__name__.removeprefix('GraphQL').removesuffix('Type')} "
                    f'in subgraph "{sg.name}"'
                    for sg, t in self.defining(name)
                )
                raise CompositionError(f'Type "{name}" has mismatched kinds: {detail}')
        self._check_field_sets()
        visible = [n for n in names if n not in self.hidden]
        for name in visible:
            self.types[name] = self._named(name)
        # Build fields now, outside graphql-core's thunks, so errors stay ours.
        for name in visible:
            self._build_members(name)
        model = self._model()
        query = self.types.get("Query")
        if not isinstance(query, GraphQLObjectType) or not query.fields:
            raise CompositionError("No subgraph defines a visible Query field")
        mutation = self.types.get("Mutation")
        subscription = self.types.get("Subscription")
        schema = GraphQLSchema(
            query=query,
            mutation=mutation if isinstance(mutation, GraphQLObjectType) else None,
            subscription=subscription if isinstance(subscription, GraphQLObjectType) else None,
            # roots first, then every type in subgraph order: a stable, readable SDL
            types=[self.types[n] for n in ROOT_NAMES if n in self.types]
            + [t for n, t in self.types.items() if n not in ROOT_NAMES],
        )
        problems = validate_schema(schema)
        if problems:
            raise CompositionError(
                "The composed schema is invalid: " + "; ".join(p.message for p in problems)
            )
        self._check_satisfiability(model, schema)
        sdl = print_schema(schema)
        digest = hashlib.sha256()
        for sg in sorted(self.subgraphs, key=lambda s: s.name):
            digest.update(f"{sg.name}\0{sg.url}\0{sg.sdl}\0".encode())
        return Supergraph(
            schema=schema,
            sdl=sdl,
            version=digest.hexdigest()[:16],
            subgraphs={sg.name: sg for sg in self.subgraphs},
            model=model,
            root_renames={sg.name: self.renames[sg.name] for sg in self.subgraphs},
            demand=read_demand(self.subgraphs, self.renames),
        )

    def _model(self) -> PlanningModel:
        """Everything planning needs, parsed once, under client type names."""
        keys: dict[tuple[str, str], tuple[FieldSet, ...]] = {}
        requires: dict[tuple[str, str, str], FieldSet] = {}
        provides: dict[tuple[str, str, str], FieldSet] = {}
        possible: dict[tuple[str, str], frozenset[str]] = {}
        for sg in self.subgraphs:
            renames = self.renames[sg.name]
            for type_name, found in sg.keys.items():
                resolvable = tuple(
                    FieldSet.of(k.selection, k.fields) for k in found if k.resolvable
                )
                if resolvable:
                    keys[(sg.name, renames.get(type_name, type_name))] = resolvable
            for (type_name, field_name), facts in sg.fields.items():
                where = (sg.name, renames.get(type_name, type_name), field_name)
                if facts.requires:
                    requires[where] = FieldSet.parse(facts.requires)
                if facts.provides:
                    provides[where] = FieldSet.parse(facts.provides)
            for name, named in sg.schema.type_map.items():
                if is_abstract_type(named) and not name.startswith("__"):
                    concrete = sg.schema.get_possible_types(named)
                    possible[(sg.name, name)] = frozenset(t.name for t in concrete)
        shapes: dict[tuple[str, str, str], tuple[str, str]] = {}
        for sg in self.subgraphs:
            renames = self.renames[sg.name]
            for name, named in sg.schema.type_map.items():
                if isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
                    for field_name, definition in named.fields.items():
                        inner = get_named_type(definition.type)
                        shown = "T" if is_composite_type(inner) else inner.name
                        shapes[(sg.name, renames.get(name, name), field_name)] = (
                            re.sub(r"\w+", shown, str(definition.type)),
                            renames.get(inner.name, inner.name),
                        )
        interface_objects: set[tuple[str, str]] = set()
        entity_types: dict[tuple[str, str], str] = {}
        for sg in self.subgraphs:
            for interface in sorted(sg.interface_objects):
                if interface in self.hidden or not self._is_interface(interface):
                    continue
                interface_objects.add((sg.name, interface))
                # here any implementation may stand behind an object of the interface,
                # and each is sent to this subgraph as the interface, with its keys
                implementations = self.implementations(interface)
                possible[(sg.name, interface)] = frozenset(implementations)
                for implementation in implementations:
                    entity_types[(sg.name, implementation)] = interface
                    if (sg.name, interface) in keys:
                        keys.setdefault((sg.name, implementation), keys[(sg.name, interface)])
                    for (owner, on, field_name), field_set in list(requires.items()):
                        if owner == sg.name and on == interface:
                            requires.setdefault((owner, implementation, field_name), field_set)
                    for (owner, on, field_name), field_set in list(provides.items()):
                        if owner == sg.name and on == interface:
                            provides.setdefault((owner, implementation, field_name), field_set)
        return PlanningModel(
            resolvers={k: tuple(v) for k, v in self.resolvers.items()},
            keys=keys,
            requires=requires,
            provides=provides,
            possible_types=possible,
            local_types=dict(self.local_types),
            interface_objects=frozenset(interface_objects),
            entity_types=entity_types,
            field_shapes=shapes,
        )

    def _named(self, name: str) -> GraphQLNamedType:
        defs = self.defining(name)
        first = next((t for _, t in defs if isinstance(t, GraphQLInterfaceType)), defs[0][1])
        description = next((t.description for _, t in defs if t.description), None)
        if isinstance(first, GraphQLObjectType):
            own = defs + self.interface_object_defs(name)
            self._object_resolvers(name, own)
            return GraphQLObjectType(
                name,
                fields=self._thunk(self._fields, name, own),
                interfaces=lambda: self._interfaces(defs),
                description=description,
            )
        if isinstance(first, GraphQLInterfaceType):
            self._interface_resolvers(name, defs)
            return GraphQLInterfaceType(
                name,
                fields=self._thunk(self._fields, name, defs),
                interfaces=lambda: self._interfaces(defs),
                description=description,
            )
        if isinstance(first, GraphQLUnionType):
            return GraphQLUnionType(
                name, types=lambda: self._members(defs), description=description
            )
        if isinstance(first, GraphQLEnumType):
            return GraphQLEnumType(name, self._enum_values(name, defs), description=description)
        if isinstance(first, GraphQLInputObjectType):
            return GraphQLInputObjectType(
                name,
                fields=self._thunk(self._input_fields, name, defs),
                description=description,
                is_one_of=any(cast(GraphQLInputObjectType, t).is_one_of for _, t in defs),
            )
        assert isinstance(first, GraphQLScalarType)
        specified_by = next((t.specified_by_url for _, t in defs if t.specified_by_url), None)  # type: ignore[attr-defined]
        return GraphQLScalarType(name, description=description, specified_by_url=specified_by)

    def _thunk(
        self,
        build: Callable[[str, list[tuple[Subgraph, GraphQLNamedType]]], dict[str, Any]],
        name: str,
        defs: list[tuple[Subgraph, GraphQLNamedType]],
    ) -> Callable[[], dict[str, Any]]:
        self._builders[name] = lambda: build(name, defs)
        return lambda: self._built[name]

    def _build_members(self, name: str) -> None:
        if name in self._builders:
            self._built[name] = self._builders[name]()

    def _interfaces(
        self, defs: list[tuple[Subgraph, GraphQLNamedType]]
    ) -> list[GraphQLInterfaceType]:
        found: dict[str, GraphQLInterfaceType] = {}
        for _, t in defs:
            for interface in cast(GraphQLObjectType, t).interfaces:
                if interface.name not in self.hidden:
                    found[interface.name] = cast(GraphQLInterfaceType, self.types[interface.name])
        return list(found.values())

    def _members(self, defs: list[tuple[Subgraph, GraphQLNamedType]]) -> list[GraphQLObjectType]:
        found: dict[str, GraphQLObjectType] = {}
        for _, t in defs:
            for member in cast(GraphQLUnionType, t).types:
                if member.name not in self.hidden:
                    found[member.name] = cast(GraphQLObjectType, self.types[member.name])
        return list(found.values())

    def _interface_resolvers(
        self, name: str, defs: list[tuple[Subgraph, GraphQLNamedType]]
    ) -> None:
        """Who resolves each field of an interface for an object of it whose concrete
        type is not known: the subgraphs that define it, as interface or object."""
        for sg, t in defs:
            for field_name in cast(GraphQLInterfaceType, t).fields:
                facts = sg.facts(t.name, field_name)
                if facts.external and not sg.owns_external_key(t.name, field_name):
                    continue
                owners = self.resolvers.setdefault((name, field_name), [])
                if sg.name not in owners:
                    owners.append(sg.name)

    def _object_resolvers(self, name: str, defs: list[tuple[Subgraph, GraphQLNamedType]]) -> None:
        """Record who resolves each field and enforce `@shareable`/`@override`."""
        field_names: list[str] = []
        for _, t in defs:
            field_names.extend(f for f in cast(GraphQLObjectType, t).fields if f not in field_names)
        for field_name in field_names:
            if name == "Query" and field_name in FEDERATION_QUERY_FIELDS:
                continue
            defined = []
            own_names: dict[str, str] = {}
            for sg, t in defs:
                if field_name in cast(GraphQLObjectType, t).fields and sg.name not in own_names:
                    defined.append(sg)
                    own_names[sg.name] = t.name

            def local(sg: Subgraph, own_names: dict[str, str] = own_names) -> str:
                return own_names[sg.name]

            overridden = {
                sg.facts(local(sg), field_name).override_from
                for sg in defined
                if sg.facts(local(sg), field_name).override_from
            }
            resolving = [
                sg
                for sg in defined
                if sg.name not in overridden
                and (
                    not sg.facts(local(sg), field_name).external
                    or sg.owns_external_key(local(sg), field_name)
                )
            ]
            if not resolving:
                raise CompositionError(
                    f'Field "{name}.{field_name}" is marked @external in every subgraph '
                    f"that defines it ({_quote([sg.name for sg in defined])}): "
                    "no subgraph resolves it"
                )
            owners = [
                sg for sg in resolving if not sg.facts(local(sg), field_name).external
            ] or resolving
            if len(owners) > 1:
                unshared = [
                    sg.name
                    for sg in owners
                    if not (
                        sg.fed1
                        or sg.facts(local(sg), field_name).shareable
                        or local(sg) in sg.shareable_types
                        or sg.in_key(local(sg), field_name)
                    )
                ]
                if unshared:
                    raise CompositionError(
                        f'Non-shareable field "{name}.{field_name}" is resolved from multiple '
                        f"subgraphs: it is resolved from subgraphs "
                        f"{_quote([sg.name for sg in owners])} and defined as non-shareable "
                        f"in subgraph(s) {_quote(unshared)}"
                    )
            self.resolvers[(name, field_name)] = [sg.name for sg in resolving]

    def _fields(
        self, name: str, defs: list[tuple[Subgraph, GraphQLNamedType]]
    ) -> dict[str, GraphQLField]:
        per_field: dict[str, list[tuple[Subgraph, GraphQLField]]] = {}
        for sg, t in defs:
            for field_name, f in cast(GraphQLObjectType, t).fields.items():
                if name == "Query" and field_name in FEDERATION_QUERY_FIELDS:
                    continue
                per_field.setdefault(field_name, []).append((sg, f))
        merged: dict[str, GraphQLField] = {}
        for field_name, found in per_field.items():
            if f"{name}.{field_name}" in self.hidden:
                continue
            where = f'"{name}.{field_name}"'
            for sg, f in found:
                hidden_type = get_named_type(f.type).name
                if hidden_type in self.hidden:
                    raise CompositionError(
                        f"Field {where} is visible but its type "
                        f'"{hidden_type}" is @inaccessible (subgraph "{sg.name}")'
                    )
            type_ = self._output_type(where, found, (name, field_name))
            merged[field_name] = GraphQLField(
                type_,
                args=self._arguments(name, field_name, found),
                description=next((f.description for _, f in found if f.description), None),
                deprecation_reason=next(
                    (f.deprecation_reason for _, f in found if f.deprecation_reason), None
                ),
            )
        return merged

    def _output_type(
        self,
        where: str,
        found: list[tuple[Subgraph, GraphQLField]],
        owner: tuple[str, str],
    ) -> Any:
        """The merged output type: one shape up to nullability, nullable wherever one
        subgraph has it nullable; where subgraphs name different types, the one that
        contains all the others (a union or interface and its members, as Apollo
        merges them), each other subgraph's own type kept for planning."""
        names = {self._client_name(get_named_type(f.type).name) for _, f in found}
        general = next(iter(names)) if len(names) == 1 else self._supertype(names)
        if general is None or len({_renamed(f.type, "T") for _, f in found}) > 1:
            detail = "; ".join(f'"{f.type}" in subgraph "{sg.name}"' for sg, f in found)
            raise CompositionError(
                f"Type of field {where} is incompatible across subgraphs: {detail}"
            )
        ordered = sorted(found, key=lambda e: get_named_type(e[1].type).name != general)
        merged: GraphQLType = ordered[0][1].type
        for sg, f in ordered[1:]:
            merged = _looser(merged, f.type)
            local = self._client_name(get_named_type(f.type).name)
            if local != general:
                self.local_types[(sg.name, *owner)] = local
        return self.ref(merged)

    def _client_name(self, name: str) -> str:
        for renames in self.renames.values():
            name = renames.get(name, name)
        return name

    def _supertype(self, names: set[str]) -> str | None:
        """The one of `names` every other is a member or implementation of, if any."""
        for candidate in names:
            if all(n == candidate or self._is_subtype(n, candidate) for n in names):
                return candidate
        return None

    def _is_subtype(self, name: str, abstract: str) -> bool:
        for _, t in self.defining(abstract):
            if isinstance(t, GraphQLUnionType) and any(m.name == name for m in t.types):
                return True
        for _, t in self.defining(name):
            if isinstance(t, GraphQLObjectType | GraphQLInterfaceType) and any(
                i.name == abstract for i in t.interfaces
            ):
                return True
        return False

    def _arguments(
        self, type_name: str, field_name: str, found: list[tuple[Subgraph, GraphQLField]]
    ) -> dict[str, GraphQLArgument]:
        args: dict[str, GraphQLArgument] = {}
        for arg_name, arg in found[0][1].args.items():
            everywhere = [(sg, f.args.get(arg_name)) for sg, f in found]
            where = f'"{type_name}.{field_name}({arg_name}:)"'
            missing = [sg.name for sg, a in everywhere if a is None]
            if missing:
                required = [
                    sg.name
                    for sg, a in everywhere
                    if a is not None and isinstance(a.type, GraphQLNonNull) and not _has_default(a)
                ]
                if required:
                    raise CompositionError(
                        f"Argument {where} is required in subgraph(s) {_quote(required)} "
                        f"but missing in subgraph(s) {_quote(missing)}"
                    )
                continue
            if f"{type_name}.{field_name}({arg_name}:)" in self.hidden:
                continue
            present = [(sg, a) for sg, a in everywhere if a is not None]
            if len({_shape(a.type) for _, a in present}) > 1:
                detail = "; ".join(f'"{a.type}" in subgraph "{sg.name}"' for sg, a in present)
                raise CompositionError(f"Type of argument {where} is incompatible: {detail}")
            merged_type: GraphQLType = present[0][1].type
            for _, a in present[1:]:
                merged_type = _stricter(merged_type, a.type)
            args[arg_name] = GraphQLArgument(
                self.ref(merged_type),
                default_value=arg.default_value,
                default=arg.default,
                description=next((a.description for _, a in present if a.description), None),
                deprecation_reason=arg.deprecation_reason,
            )
        return args

    def _input_fields(
        self, name: str, defs: list[tuple[Subgraph, GraphQLNamedType]]
    ) -> dict[str, GraphQLInputField]:
        fields: dict[str, GraphQLInputField] = {}
        for field_name, first in cast(GraphQLInputObjectType, defs[0][1]).fields.items():
            present = [
                (sg, cast(GraphQLInputObjectType, t).fields.get(field_name)) for sg, t in defs
            ]
            missing = [sg.name for sg, f in present if f is None]
            if missing:
                required = [
                    sg.name
                    for sg, f in present
                    if f is not None and isinstance(f.type, GraphQLNonNull) and not _has_default(f)
                ]
                if required:
                    raise CompositionError(
                        f'Input field "{name}.{field_name}" is required in subgraph(s) '
                        f"{_quote(required)} but missing in subgraph(s) {_quote(missing)}"
                    )
                continue
            if f"{name}.{field_name}" in self.hidden:
                continue
            merged_type: GraphQLType = first.type
            for sg, f in present:
                assert f is not None
                if _shape(f.type) != _shape(first.type):
                    raise CompositionError(
                        f'Type of input field "{name}.{field_name}" is incompatible: '
                        f'"{first.type}" in subgraph "{defs[0][0].name}"; '
                        f'"{f.type}" in subgraph "{sg.name}"'
                    )
                merged_type = _stricter(merged_type, f.type)
            fields[field_name] = GraphQLInputField(
                self.ref(merged_type),
                default_value=first.default_value,
                default=first.default,
                description=next((f.description for _, f in present if f and f.description), None),
                deprecation_reason=first.deprecation_reason,
            )
        return fields

    def _enum_values(
        self, name: str, defs: list[tuple[Subgraph, GraphQLNamedType]]
    ) -> dict[str, GraphQLEnumValue]:
        as_input, as_output = self._enum_usage(name)
        value_sets = [set(cast(GraphQLEnumType, t).values) for _, t in defs]
        union: list[str] = []
        for _, t in defs:
            union.extend(v for v in cast(GraphQLEnumType, t).values if v not in union)
        # A value @inaccessible somewhere is in no client's reach: it need not be everywhere.
        visible = [{v for v in values if f"{name}.{v}" not in self.hidden} for values in value_sets]
        if as_input and as_output and any(s != visible[0] for s in visible):
            detail = "; ".join(
                f'{sorted(cast(GraphQLEnumType, t).values)} in subgraph "{sg.name}"'
                for sg, t in defs
            )
            raise CompositionError(
                f'Enum type "{name}" is used as both input and output type and its values '
                f"are inconsistent across subgraphs: {detail}"
            )
        if as_input and not as_output:
            union = [v for v in union if all(v in s for s in value_sets)]
        values: dict[str, GraphQLEnumValue] = {}
        for value in union:
            if f"{name}.{value}" in self.hidden:
                continue
            sources = [
                cast(GraphQLEnumType, t).values[value]
                for _, t in defs
                if value in cast(GraphQLEnumType, t).values
            ]
            values[value] = GraphQLEnumValue(
                value,
                description=next((v.description for v in sources if v.description), None),
                deprecation_reason=next(
                    (v.deprecation_reason for v in sources if v.deprecation_reason), None
                ),
            )
        return values

    def _enum_usage(self, name: str) -> tuple[bool, bool]:
        as_input = as_output = False
        for sg in self.subgraphs:
            for t in sg.schema.type_map.values():
                if isinstance(t, GraphQLObjectType | GraphQLInterfaceType):
                    for f in t.fields.values():
                        as_output |= get_named_type(f.type).name == name
                        as_input |= any(
                            get_named_type(a.type).name == name for a in f.args.values()
                        )
                elif isinstance(t, GraphQLInputObjectType):
                    as_input |= any(get_named_type(f.type).name == name for f in t.fields.values())
        return as_input, as_output

    # --- checks ------------------------------------------------------------------

    def _check_satisfiability(self, model: PlanningModel, schema: GraphQLSchema) -> None:
        """Every field a client can reach from a root can be fetched (`model.py`)."""
        found = model.unsatisfiable(schema)
        if found is None:
            return
        holders = sorted(found.holders)
        resolvers = model.field_resolvers(found.type_name, found.field_name)
        raise CompositionError(
            f'Field "{found.type_name}.{found.field_name}" cannot be resolved at '
            f'"{".".join(found.path)}" from subgraph(s) {_quote(holders)}: it is resolved only '
            f"by subgraph(s) {_quote(resolvers)}, and none of them has a resolvable @key on "
            f'type "{found.type_name}" whose fields subgraph(s) {_quote(holders)} can provide'
            + (" (with the fields its @requires needs)" if self._requires_any(model, found) else "")
        )

    @staticmethod
    def _requires_any(model: PlanningModel, found: Unsatisfiable) -> bool:
        return any(
            model.requires_of(s, found.type_name, found.field_name) is not None
            for s in model.field_resolvers(found.type_name, found.field_name)
        )

    def _check_field_sets(self) -> None:
        """@key, @requires and @provides must name fields that exist where they point."""
        for sg in self.subgraphs:
            for type_name, keys in sg.keys.items():
                for key in keys:
                    missing = _unknown_field(sg.schema.type_map.get(type_name), key.selection)
                    if missing:
                        raise CompositionError(
                            f'[{sg.name}] @key(fields: "{key.fields}") on type "{type_name}" '
                            f'selects "{missing}", which the type does not have'
                        )
            for (type_name, field_name), facts in sg.fields.items():
                for directive, text in (("requires", facts.requires), ("provides", facts.provides)):
                    if not text:
                        continue
                    try:
                        selection = parse_field_set(text)
                    except GraphQLError as exc:
                        raise CompositionError(
                            f'[{sg.name}] @{directive}(fields: "{text}") on field '
                            f'"{type_name}.{field_name}" does not parse: {exc.message}'
                        ) from exc
                    owner = sg.schema.type_map.get(type_name)
                    if directive == "provides" and isinstance(owner, GraphQLObjectType):
                        field = owner.fields.get(field_name)
                        owner = get_named_type(field.type) if field else None
                    missing = _unknown_field(owner, selection)
                    if missing:
                        where = "its type" if directive == "provides" else f'type "{type_name}"'
                        raise CompositionError(
                            f'[{sg.name}] @{directive}(fields: "{text}") on field '
                            f'"{type_name}.{field_name}" selects "{missing}", which {where} '
                            "does not have"
                        )


def _unknown_field(type_: Any, selection: Any, prefix: str = "") -> str | None:
    """The first field of `selection` that `type_` lacks, as a dotted path."""
    for node in selection.selections:
        if not isinstance(node, FieldNode):
            continue
        fields = getattr(type_, "fields", None) or {}
        name = node.name.value
        if name not in fields:
            return prefix + name
        if node.selection_set is not None:
            missing = _unknown_field(
                get_named_type(fields[name].type), node.selection_set, f"{prefix}{name}."
            )
            if missing:
                return missing
    return None


def _renamed(type_: GraphQLType, name: str) -> str:
    """The type's lists around `name`: its shape whatever its named type and nullability."""
    if isinstance(type_, GraphQLNonNull):
        return _renamed(type_.of_type, name)
    if isinstance(type_, GraphQLList):
        return f"[{_renamed(type_.of_type, name)}]"
    return name


def _has_default(value: GraphQLArgument | GraphQLInputField) -> bool:
    return value.default_value is not Undefined or value.default is not None


def _looser(a: GraphQLType, b: GraphQLType) -> GraphQLType:
    """Merge two output types of one shape: nullable wherever either is."""
    a_null, b_null = not isinstance(a, GraphQLNonNull), not isinstance(b, GraphQLNonNull)
    inner_a = a.of_type if isinstance(a, GraphQLNonNull) else a
    inner_b = b.of_type if isinstance(b, GraphQLNonNull) else b
    if isinstance(inner_a, GraphQLList) and isinstance(inner_b, GraphQLList):
        inner: GraphQLType = GraphQLList(_looser(inner_a.of_type, inner_b.of_type))
    else:
        inner = inner_a
    return inner if a_null or b_null else GraphQLNonNull(inner)  # type: ignore[type-var]


def _stricter(a: GraphQLType, b: GraphQLType) -> GraphQLType:
    """Merge two input types of one shape: non-null wherever either is."""
    a_nn, b_nn = isinstance(a, GraphQLNonNull), isinstance(b, GraphQLNonNull)
    inner_a = a.of_type if isinstance(a, GraphQLNonNull) else a
    inner_b = b.of_type if isinstance(b, GraphQLNonNull) else b
    if isinstance(inner_a, GraphQLList) and isinstance(inner_b, GraphQLList):
        inner: GraphQLType = GraphQLList(_stricter(inner_a.of_type, inner_b.of_type))
    else:
        inner = inner_a
    return GraphQLNonNull(inner) if a_nn or b_nn else inner  # type: ignore[type-var]


def compose(subgraphs: Sequence[Subgraph]) -> Supergraph:
    """Compose the subgraphs, or raise `CompositionError`."""
    if not subgraphs:
        raise CompositionError("No subgraph is available to compose")
    composer = _Composer(subgraphs)
    try:
        return composer.compose()
    except CompositionError:
        raise
    except Exception as exc:  # a thunk failing inside graphql-core
        raise CompositionError(f"Composition failed: {exc}") from exc
