"""The planning model: what composition learned, in the form planning asks for it.

Built once per supergraph by `compose()`. Planning reads only this (and the
client schema): it never parses a directive's field set nor opens a
subgraph's own schema. Type names are the client's (a subgraph's `RootQuery`
is `Query` here).

The reachability rule lives here, and only here: `resolves()` says whether a
subgraph can return a field as is, `provides_field()` whether it returns a
field set's field with all its sub-selection, `entry_key()` whether one
subgraph can hand an object of a type over to another directly (it returns
every field of one of the other's resolvable keys), `reaches()` whether it
can at all (the key's fields gathered from it and the subgraphs it reaches,
`obtainable()`), and `field_options()` which subgraphs can return a field
for an object that some subgraphs hold. Composition's satisfiability check
(`unsatisfiable()`) and the planner ask these.

Satisfiability is judged as Apollo's composition does: from the root fields
a client can select, walking every field the client schema offers, with the
set of subgraphs that can hold the object at that point (a shared root field
or a shareable field is held by each subgraph that resolves it, an entity
also by every subgraph its holders reach by a key). A field is satisfiable
when at least one subgraph can return it there; a field no path reaches
from a root (a type only one subgraph returns) is not asked about.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    FieldNode,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    NameNode,
    SelectionNode,
    SelectionSetNode,
    get_named_type,
    is_abstract_type,
    is_composite_type,
)

from veche_gateway.subgraph import parse_field_set

FieldTree = Mapping[str, "FieldTree"]


@dataclass(frozen=True)
class FieldSet:
    """A parsed `FieldSet` (`@key`, `@requires`, `@provides`), locations stripped."""

    text: str
    selections: tuple[FieldNode, ...]  # top-level fields, each with its sub-selection
    tree: FieldTree  # field name -> the field names selected under it

    @classmethod
    def parse(cls, text: str) -> FieldSet:
        return cls.of(parse_field_set(text), text)

    @classmethod
    def of(cls, selection_set: SelectionSetNode, text: str) -> FieldSet:
        fields = tuple(_strip(selection_set))
        return cls(text, fields, _tree(fields))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name.value for f in self.selections)


def _strip(selection_set: SelectionSetNode) -> list[FieldNode]:
    """The top-level fields, each with its arguments and sub-selection (inline
    fragments kept, as in `@requires(fields: "data { ... on Doc { size } }")`)."""
    return [_copy(s) for s in selection_set.selections if isinstance(s, FieldNode)]


def _copy(node: FieldNode) -> FieldNode:
    return FieldNode(
        name=node.name,
        alias=None,
        arguments=node.arguments,
        directives=(),
        selection_set=_copy_set(node.selection_set) if node.selection_set else None,
    )


def _copy_set(selection_set: SelectionSetNode) -> SelectionSetNode:
    selections: list[SelectionNode] = []
    if any(isinstance(s, InlineFragmentNode) for s in selection_set.selections):
        # the receiving subgraph learns each abstract value's type from its representation
        selections.append(FieldNode(name=NameNode(value="__typename"), arguments=(), directives=()))
    for s in selection_set.selections:
        if isinstance(s, FieldNode):
            selections.append(_copy(s))
        elif isinstance(s, InlineFragmentNode):
            selections.append(
                InlineFragmentNode(
                    type_condition=s.type_condition,
                    directives=(),
                    selection_set=_copy_set(s.selection_set),
                )
            )
    return SelectionSetNode(selections=tuple(selections))


def tree_of(selection_set: SelectionSetNode) -> FieldTree:
    """Field name -> the names under it, at every depth (fragments' fields included)."""
    return _tree(selection_set.selections)


def _tree(selections: tuple[SelectionNode, ...]) -> dict[str, Any]:
    """Field name -> the names under it; a fragment's fields count as its parent's."""
    tree: dict[str, Any] = {}
    for s in selections:
        if isinstance(s, FieldNode):
            tree[s.name.value] = _tree(s.selection_set.selections) if s.selection_set else {}
        elif isinstance(s, InlineFragmentNode):
            tree.update(_tree(s.selection_set.selections))
    return tree


@dataclass(frozen=True)
class PlanningModel:
    # (type, field) -> subgraphs that resolve it, in settings order
    resolvers: Mapping[tuple[str, str], tuple[str, ...]]
    # (subgraph, type) -> that subgraph's resolvable keys for the entity
    keys: Mapping[tuple[str, str], tuple[FieldSet, ...]]
    # (subgraph, type, field) -> what the field `@requires` / `@provides` there
    requires: Mapping[tuple[str, str, str], FieldSet] = field(default_factory=dict)
    provides: Mapping[tuple[str, str, str], FieldSet] = field(default_factory=dict)
    # (subgraph, abstract type) -> the concrete types that subgraph may return for it
    possible_types: Mapping[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    # (subgraph, type, field) -> that subgraph's own return type where it is a member
    # or implementation of the supergraph's (`book: Book` beside `book: Media`)
    local_types: Mapping[tuple[str, str, str], str] = field(default_factory=dict)
    # (subgraph, interface) where the subgraph has it as `type T @interfaceObject`: its
    # objects there have no concrete type, and it resolves the fields for any of them
    interface_objects: frozenset[tuple[str, str]] = frozenset()
    # (subgraph, concrete type) -> the interface object that subgraph knows it as: the
    # `__typename` of its representations and the type of its fragments there
    entity_types: Mapping[tuple[str, str], str] = field(default_factory=dict)
    # (subgraph, type, field) -> (the field's type there with a composite named type
    # written `T`, its named type): what decides whether two fields may share a key
    field_shapes: Mapping[tuple[str, str, str], tuple[str, str]] = field(default_factory=dict)
    # (source, target, type, subgraphs avoided) -> `reaches`: memoized, asked often
    _reached: dict[tuple[str, str, str, frozenset[str]], bool] = field(
        default_factory=dict, compare=False, repr=False
    )

    def is_interface_object(self, subgraph: str, type_name: str) -> bool:
        return (subgraph, type_name) in self.interface_objects

    def entity_type(self, subgraph: str, type_name: str) -> str:
        """The type's name in `subgraph`: its interface object's there, else its own."""
        return self.entity_types.get((subgraph, type_name), type_name)

    def type_resolvers(self, interface: str) -> tuple[str, ...]:
        """Subgraphs that can say an interface entity's concrete type: those defining
        it as an interface with a resolvable key."""
        return tuple(
            s for (s, t) in self.keys if t == interface and (s, t) not in self.interface_objects
        )

    def field_resolvers(self, type_name: str, field_name: str) -> tuple[str, ...]:
        return self.resolvers.get((type_name, field_name), ())

    def requires_of(self, subgraph: str, type_name: str, field_name: str) -> FieldSet | None:
        return self.requires.get((subgraph, type_name, field_name))

    def provides_of(self, subgraph: str, type_name: str, field_name: str) -> FieldSet | None:
        return self.provides.get((subgraph, type_name, field_name))

    def entity_keys(self, subgraph: str, type_name: str) -> tuple[FieldSet, ...]:
        return self.keys.get((subgraph, type_name), ())

    def possible_types_in(self, subgraph: str, abstract_name: str) -> frozenset[str]:
        return self.possible_types.get((subgraph, abstract_name), frozenset())

    def possible_at(
        self, subgraph: str, type_name: str, field_name: str, abstract_name: str
    ) -> frozenset[str]:
        """The concrete types `subgraph` may return for the field (of abstract type in
        the supergraph): its own return type's possible types."""
        local = self.local_types.get((subgraph, type_name, field_name))
        if local is None:
            return self.possible_types_in(subgraph, abstract_name)
        return self.possible_types.get((subgraph, local), frozenset({local}))

    # --- the reachability rule -------------------------------------------------------

    def resolves(
        self,
        subgraph: str,
        type_name: str,
        field_name: str,
        provided: FieldTree | None = None,
    ) -> bool:
        """`subgraph` returns the field as is: it resolves it (or a `@provides` above
        hands it over) and has no `@requires` to be satisfied first."""
        if provided is not None and field_name in provided:
            return True
        return subgraph in self.field_resolvers(type_name, field_name) and (
            (subgraph, type_name, field_name) not in self.requires
        )

    def provides_field(
        self,
        subgraph: str,
        type_name: str,
        node: FieldNode,
        provided: FieldTree | None = None,
    ) -> bool:
        """`subgraph` returns the field (of a field set) with its whole sub-selection
        itself: `products { id pid }` only where it resolves each product's `pid` too."""
        name = node.name.value
        if not self.resolves(subgraph, type_name, name, provided):
            return False
        if node.selection_set is None:
            return True
        child = self._child_type(subgraph, type_name, name)
        inner = (provided or {}).get(name) or None
        return all(
            self.provides_field(subgraph, on, sub, inner) or self._hidden(on, sub)
            for on, sub in _field_set_fields(child, node.selection_set)
        )

    def entry_key(
        self,
        source: str,
        target: str,
        type_name: str,
        provided: FieldTree | None = None,
    ) -> FieldSet | None:
        """The first resolvable key of `target` whose fields `source` returns itself: how
        an object `source` returned is handed to `target` (`_entities`) directly."""
        for key in self.entity_keys(target, type_name):
            if all(self.provides_field(source, type_name, f, provided) for f in key.selections):
                return key
        return None

    def reaches(
        self,
        source: str,
        target: str,
        type_name: str,
        _avoid: frozenset[str] = frozenset(),
    ) -> bool:
        """`source`'s objects of the type get `target`'s fields: by a key of `target`
        whose fields `source` returns, or has fetched first from other subgraphs it
        reaches (key conversion: `id pid category { id tag }` gathered from `source`
        and a subgraph that gives `pid` by `id`), never from `target` itself."""
        if self.entry_key(source, target, type_name) is not None:
            return True
        memo = (source, target, type_name, _avoid)
        if memo not in self._reached:
            self._reached[memo] = False  # while it is being answered: a cycle reaches nothing
            avoid = _avoid | {target}
            self._reached[memo] = any(
                all(self.obtainable(source, type_name, f, avoid) for f in key.selections)
                for key in self.entity_keys(target, type_name)
            )
        return self._reached[memo]

    def obtainable(
        self,
        source: str,
        type_name: str,
        node: FieldNode,
        avoid: frozenset[str] = frozenset(),
        provided: FieldTree | None = None,
    ) -> bool:
        """A field set's field (a key's, or a required one with no `@requires` of its
        own) can be had for an object `source` holds: from `source`, or from a subgraph
        not in `avoid` that `source` reaches; its sub-selection likewise from there."""
        name = node.name.value
        holders: list[str] = []
        if self.resolves(source, type_name, name, provided):
            holders.append(source)
        else:
            holders += [
                helper
                for helper in self.field_resolvers(type_name, name)
                if helper != source
                and helper not in avoid
                and self.requires_of(helper, type_name, name) is None
                and self.reaches(source, helper, type_name, avoid | {source})
            ]
        if node.selection_set is None:
            return bool(holders)
        inner = (provided or {}).get(name) or None
        return any(
            all(
                self.obtainable(holder, on, sub, avoid, inner if holder == source else None)
                or self._hidden(on, sub)
                for on, sub in _field_set_fields(
                    self._child_type(holder, type_name, name), node.selection_set
                )
            )
            for holder in holders
        )

    def _hidden(self, type_name: str, node: FieldNode) -> bool:
        """A field set's field on a type the client schema hides (`@inaccessible`): no
        one else is known to give it, so it is the field set's subgraph's to answer."""
        return not self.field_resolvers(type_name, node.name.value)

    def _child_type(self, subgraph: str, type_name: str, field_name: str) -> str:
        """The named type of the field in `subgraph` (client names)."""
        local = self.entity_type(subgraph, type_name)
        shape = self.field_shapes.get((subgraph, local, field_name))
        return shape[1] if shape is not None else type_name

    def field_options(
        self,
        holders: frozenset[str],
        type_name: str,
        field_name: str,
        _asking: frozenset[tuple[str, str]] = frozenset(),
    ) -> frozenset[str]:
        """The subgraphs that can return the field for an object any of `holders` holds:
        a holder that resolves it as is, or a resolver reached by a key whose
        `@requires` fields can be had for the object too."""
        asking = _asking | {(type_name, field_name)}  # a @requires cycle is no option
        options: set[str] = set()
        for resolver in self.field_resolvers(type_name, field_name):
            requires = self.requires_of(resolver, type_name, field_name)
            if requires is None and resolver in holders:
                options.add(resolver)
                continue
            if not any(self.reaches(s, resolver, type_name) for s in holders):
                continue
            if requires is None or all(
                (type_name, name) not in asking
                and self.field_options(holders, type_name, name, asking)
                for name in requires.names
            ):
                options.add(resolver)
        return frozenset(options)

    def unsatisfiable(self, schema: GraphQLSchema) -> Unsatisfiable | None:
        """The first field of the client schema a client could select but no plan
        could fetch, walking from each root type; None when every one can be."""
        every = frozenset(s for owners in self.resolvers.values() for s in owners)
        seen: set[tuple[str, frozenset[str]]] = set()

        def walk(
            type_: GraphQLObjectType, holders: frozenset[str], path: tuple[str, ...]
        ) -> Unsatisfiable | None:
            if (type_.name, holders) in seen:
                return None
            seen.add((type_.name, holders))
            for field_name, definition in type_.fields.items():
                options = self.field_options(holders, type_.name, field_name)
                where = (*path, field_name)
                if not options:
                    return Unsatisfiable(type_.name, field_name, where, holders)
                named = get_named_type(definition.type)
                if not is_composite_type(named):
                    continue
                concrete = schema.get_possible_types(named) if is_abstract_type(named) else [named]
                for object_type in concrete:
                    held = frozenset(
                        s
                        for s in options
                        if object_type is named
                        or object_type.name
                        in self.possible_at(s, type_.name, field_name, named.name)
                    )
                    if held:  # else no subgraph returns this type here
                        found = walk(object_type, held, where)  # type: ignore[arg-type]
                        if found is not None:
                            return found
            return None

        for root in (schema.query_type, schema.mutation_type, schema.subscription_type):
            if root is not None:
                found = walk(root, every, (root.name,))
                if found is not None:
                    return found
        return None


def _field_set_fields(
    type_name: str, selection_set: SelectionSetNode
) -> list[tuple[str, FieldNode]]:
    """A field set's fields under a field of the type, each with the type it is on
    (a fragment's own: `data { ... on Doc { size } }`); `__typename` left out."""
    found: list[tuple[str, FieldNode]] = []
    for s in selection_set.selections:
        if isinstance(s, FieldNode):
            if not s.name.value.startswith("__"):
                found.append((type_name, s))
        elif isinstance(s, InlineFragmentNode):
            on = s.type_condition.name.value if s.type_condition else type_name
            found += _field_set_fields(on, s.selection_set)
    return found


@dataclass(frozen=True)
class Unsatisfiable:
    """A field a client can select at `path` that no subgraph holding its parent
    there (`holders`) can return, nor reach a subgraph that does."""

    type_name: str
    field_name: str
    path: tuple[str, ...]
    holders: frozenset[str]
