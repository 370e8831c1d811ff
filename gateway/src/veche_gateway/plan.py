"""Query planning: a normalized operation -> a plan tree (`plan_tree.py`).

A query's root fields are grouped per owning subgraph, all root fetches in
parallel. A mutation's fields are split into runs of consecutive fields on
one subgraph, run strictly in order, each followed by its own entity fetches.
A field that the subgraph holding its parent cannot return goes through
`_entities` on a subgraph that resolves it: at each depth, one request per
subgraph, holding one `_entities` field per place in the response that
needs fields from it (a `Flatten`), all subgraphs in parallel.

The subgraph documents keep the client's response keys, so the merged raw
data has the client's shape; whatever the planner adds for itself (the
`__typename` used to dispatch abstract types, key and `@requires` fields for
representations) goes under reserved aliases (`_veche_t`, `_veche_k_<field>`)
that cannot clash with the client's. Every question about subgraphs goes to
the planning model (`model.py`); `@skip`/`@include` were decided by the
normalizer, so a plan is cached like its normalized operation.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from graphql import (
    ArgumentNode,
    FieldNode,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    NamedTypeNode,
    NameNode,
    OperationType,
    SelectionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    is_abstract_type,
    print_ast,
    strip_ignored_characters,
    visit,
)
from graphql.language import Visitor

from veche_gateway.errors import PlanError
from veche_gateway.model import FieldTree, PlanningModel, tree_of
from veche_gateway.normalize import Field, NormalizedOperation, Selection
from veche_gateway.plan_tree import (
    TYPENAME_KEY,
    EntityInput,
    Fetch,
    Flatten,
    KeyRename,
    PlanNode,
    PlanPath,
    QueryPlan,
    ResponseRename,
    parallel,
    sequence,
)
from veche_gateway.supergraph import Supergraph

RESERVED_PREFIX = "_veche_"  # clients may not use it for aliases or variables
REP_PREFIX = RESERVED_PREFIX + "k_"
REPS_VARIABLE = RESERVED_PREFIX + "reps"


def _name(value: str) -> NameNode:
    return NameNode(value=value)


def _field(
    name: str,
    alias: str | None = None,
    arguments: Iterable[Any] = (),
    selections: list[SelectionNode] | None = None,
) -> FieldNode:
    return FieldNode(
        alias=_name(alias) if alias and alias != name else None,
        name=_name(name),
        arguments=tuple(arguments),
        directives=(),
        selection_set=SelectionSetNode(selections=tuple(selections))
        if selections is not None
        else None,
    )


def _typename() -> FieldNode:
    return _field("__typename", TYPENAME_KEY)


def _fragment(type_name: str, selections: list[SelectionNode]) -> InlineFragmentNode:
    return InlineFragmentNode(
        type_condition=NamedTypeNode(name=_name(type_name)),
        directives=(),
        selection_set=SelectionSetNode(selections=tuple(selections)),
    )


def _unique(fields: Iterable[FieldNode]) -> list[FieldNode]:
    seen: dict[str, FieldNode] = {}
    for f in fields:
        seen.setdefault(f.name.value, f)
    return list(seen.values())


class _VariableNames(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def enter_variable(self, node: VariableNode, *_: Any) -> None:
        if node.name.value not in self.names:
            self.names.append(node.name.value)


def _variables_in(selections: Iterable[SelectionNode]) -> list[str]:
    visitor = _VariableNames()
    for selection in selections:
        visit(selection, visitor)
    return visitor.names


@dataclass
class _Group:
    subgraph: str
    path: PlanPath
    representations: dict[str, list[KeyRename]] = field(default_factory=dict)
    selections: dict[str, list[SelectionNode]] = field(default_factory=dict)


@dataclass
class _RootRun:
    subgraph: str
    groups: dict[tuple[int, str, PlanPath], _Group]
    selections: list[SelectionNode] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)


class _Planner:
    def __init__(self, supergraph: Supergraph, operation: NormalizedOperation) -> None:
        self.model: PlanningModel = supergraph.model
        self.schema = supergraph.schema
        self.normalized = operation
        self.operation = operation.operation
        self.groups: dict[tuple[int, str, PlanPath], _Group] = {}
        self.landed = 0  # the depth of the entity group `_enter` last put a field in
        # client path -> the subgraphs that may hold the object there (root: any)
        self.holders: dict[PlanPath, frozenset[str]] = {
            (): frozenset(s for owners in self.model.resolvers.values() for s in owners)
        }

    # --- planning ----------------------------------------------------------------

    def plan(self) -> QueryPlan:
        root = self.normalized.root
        mutation = self.normalized.kind == OperationType.MUTATION
        runs: list[_RootRun] = []
        shared: dict[tuple[int, str, PlanPath], _Group] = {}
        for root_field in root.fields(root.type_name):
            if root_field.name.startswith("__"):  # __typename, __schema, __type: answered here
                continue
            resolvers = self.model.field_resolvers(root.type_name, root_field.name)
            if not resolvers:
                raise PlanError(f'No subgraph resolves "{root.type_name}.{root_field.name}"')
            used = [run.subgraph for run in runs]
            # a subgraph already fetched from first, then settings order
            ordered = sorted(resolvers, key=lambda s: s not in used)
            # a query's entity fetches are shared by all its root fetches; a mutation
            # field's follow it, before the next mutation field runs
            self.groups = {} if mutation else shared
            for subgraph, part in self._root_parts(root.type_name, root_field, ordered):
                target = (
                    (runs[-1] if runs and runs[-1].subgraph == subgraph else None)
                    if mutation
                    else next((run for run in runs if run.subgraph == subgraph), None)
                )
                if target is None:
                    target = _RootRun(subgraph, groups={} if mutation else shared)
                    runs.append(target)
                target.selections.append(part)
                target.keys.append(root_field.key)
            if mutation:
                runs[-1].groups.update(self.groups)  # distinct paths: no key collides
        if mutation:
            # each mutation's entity fetches see its data before the next mutation runs
            nodes: list[PlanNode] = []
            for run in runs:
                nodes.append(self._root_fetch(run.subgraph, run.selections, run.keys))
                nodes.extend(self._steps(run.groups))
            return QueryPlan(self.normalized.kind, sequence(nodes))
        roots: list[PlanNode] = [self._root_fetch(r.subgraph, r.selections, r.keys) for r in runs]
        first = parallel(roots)
        node = sequence([first, *self._steps(shared)]) if first is not None else None
        return QueryPlan(self.normalized.kind, node)

    def field_in(
        self,
        subgraph: str,
        parent: str,
        client_field: Field,
        path: PlanPath,
        depth: int,
        provided: FieldTree | None,
    ) -> FieldNode:
        """The client's field as fetched from `subgraph`, with its sub-selection planned."""
        selections: list[SelectionNode] | None = None
        if client_field.selection is not None:
            local = self.model.entity_type(subgraph, parent)
            provides = self.model.provides_of(subgraph, local, client_field.name)
            child_provided = (
                provides.tree
                if provides is not None
                else (provided or {}).get(client_field.name) or None
            )
            child_path = (*path, (client_field.key, parent))
            abstract = client_field.selection.type_name
            known = self.model.possible_at(subgraph, local, client_field.name, abstract)
            # The subgraphs that may hold the object here: below the root, an abstract
            # value that more than one of them returns gets only the types all of them
            # can return (as Apollo plans it: the answer does not depend on which one
            # the plan asks).
            holders = self.model.field_options(
                self.holders.get(path, frozenset({subgraph})), parent, client_field.name
            )
            self.holders[child_path] = holders or frozenset({subgraph})
            shared = [
                s
                for s in holders
                if s != subgraph and (s, parent, client_field.name) not in self.model.local_types
            ]
            if path and (subgraph, local, client_field.name) not in self.model.local_types:
                for other in shared:
                    known = known & self.model.possible_at(
                        other, parent, client_field.name, abstract
                    )
            selections = self.selection_for(
                subgraph, client_field.selection, child_path, depth, child_provided, known
            )
        return _field(
            client_field.name, client_field.key, client_field.node.arguments or (), selections
        )

    def selection_for(
        self,
        subgraph: str,
        selection: Selection,
        path: PlanPath,
        depth: int,
        provided: FieldTree | None,
        known: frozenset[str],
    ) -> list[SelectionNode]:
        """`known`: the concrete types the subgraph may return here (abstract types)."""
        if self.model.is_interface_object(subgraph, selection.type_name):
            return self._interface_object(subgraph, selection, path, depth, provided)
        selections: list[SelectionNode] = [_typename()]
        if list(selection.by_type) == [selection.type_name]:  # an object type
            fields = selection.fields(selection.type_name)
            selections += self.object_selections(
                subgraph, selection.type_name, fields, path, depth, provided
            )
            return selections
        # Abstract: one fragment per concrete type the subgraph can return.
        for concrete, fields in selection.by_type.items():
            if concrete not in known:
                continue
            inner = self.object_selections(subgraph, concrete, fields, path, depth, provided)
            if inner:
                selections.append(_fragment(concrete, inner))
        return selections

    def _interface_object(
        self,
        subgraph: str,
        selection: Selection,
        path: PlanPath,
        depth: int,
        provided: FieldTree | None,
    ) -> list[SelectionNode]:
        """An interface's objects from a subgraph that has it as `@interfaceObject`:
        their concrete type is unknown there. The subgraph gives the interface's fields
        it resolves; a subgraph defining the interface (with a key) says each object's
        concrete type and gives the fields it resolves for it, in one `_entities` call;
        a field every type selects alike that another interface object resolves comes
        from there as is. What neither gives follows once the type is known."""
        interface = selection.type_name
        selections: list[SelectionNode] = [_typename()]
        direct: dict[str, Field] = {}
        rest: dict[str, list[Field]] = {}
        for concrete, fields in selection.by_type.items():
            rest[concrete] = []
            for client_field in fields:
                if client_field.name == "__typename":
                    continue
                if self.model.resolves(subgraph, interface, client_field.name, provided) and (
                    direct.get(client_field.key, client_field) == client_field
                ):
                    direct[client_field.key] = client_field
                else:
                    rest[concrete].append(client_field)
        for client_field in direct.values():
            selections.append(
                self.field_in(subgraph, interface, client_field, path, depth, provided)
            )
        # fields selected alike on every concrete type, as on the interface itself
        every = list(rest.values())
        uniform = [f for f in every[0] if all(f in fields for fields in every[1:])] if every else []
        for client_field in uniform:
            for other in self.model.field_resolvers(interface, client_field.name):
                if other == subgraph or not self.model.is_interface_object(other, interface):
                    continue
                if not self.model.resolves(other, interface, client_field.name):
                    continue
                entity_key = self.model.entry_key(subgraph, other, interface, provided)
                if entity_key is None:
                    continue
                group = self._group(depth + 1, other, path)
                selections += self._represent(group, interface, entity_key.selections)
                group.selections.setdefault(interface, []).append(
                    self.field_in(other, interface, client_field, path, depth + 1, None)
                )
                for remaining in rest.values():
                    remaining.remove(client_field)
                break
        if list(selection.by_type) == [interface]:
            # No object type implements it in the supergraph: there is no concrete type
            # to learn, and nothing but the interface's own fields to give.
            left = [f for fields in rest.values() for f in fields]
            if left or any(f.name == "__typename" for f in selection.fields(interface)):
                name = left[0].name if left else "__typename"
                raise PlanError(
                    f'Cannot plan "{interface}.{name}" from subgraph "{subgraph}": it has '
                    f'"{interface}" as an @interfaceObject, no object type implements '
                    f'"{interface}" in the supergraph, and '
                    + (
                        f"no other subgraph can give {name} for its objects"
                        if left
                        else "so its objects have no type to name"
                    )
                )
            return _unique_selections(selections)
        for resolver in self.model.type_resolvers(interface):
            entity_key = self.model.entry_key(subgraph, resolver, interface, provided)
            if entity_key is None:
                continue
            group = self._group(depth + 1, resolver, path)
            selections += self._represent(group, interface, entity_key.selections)
            inner = self.selection_for(
                resolver,
                Selection(interface, {t: tuple(fields) for t, fields in rest.items()}),
                path,
                depth + 1,
                None,
                self.model.possible_types_in(resolver, interface),
            )
            group.selections.setdefault(interface, []).extend(inner[1:])  # typename: added
            self.landed = max(self.landed, depth + 1)
            return _unique_selections(selections)
        raise PlanError(
            f'Cannot plan "{interface}" from subgraph "{subgraph}": it has "{interface}" as an '
            "@interfaceObject, and no subgraph that defines the interface has a resolvable "
            f"@key on it whose fields {subgraph} can provide, to tell each object's type"
        )

    def object_selections(
        self,
        subgraph: str,
        type_name: str,
        fields: Iterable[Field],
        path: PlanPath,
        depth: int,
        provided: FieldTree | None,
    ) -> list[SelectionNode]:
        selections: list[SelectionNode] = []
        internal: dict[str, SelectionNode] = {}
        for client_field in fields:
            if client_field.name == "__typename":
                continue
            # A field with @requires needs its requirements in a representation, so it
            # always goes through `_entities`, even in the subgraph that resolves it.
            if self.model.resolves(subgraph, type_name, client_field.name, provided):
                local, rest = self._split(subgraph, type_name, client_field, path, depth, provided)
                selections.append(local)
                if rest is not None:  # what this subgraph cannot give, through `_entities`
                    for selection in self._remote(
                        subgraph, type_name, rest, path, depth, provided, exclude=subgraph
                    ):
                        internal[print_ast(selection)] = selection
            else:
                for selection in self._remote(
                    subgraph, type_name, client_field, path, depth, provided
                ):
                    internal[print_ast(selection)] = selection
        return selections + list(internal.values())

    def _remote(
        self,
        subgraph: str,
        type_name: str,
        client_field: Field,
        path: PlanPath,
        depth: int,
        provided: FieldTree | None,
        exclude: str | None = None,
    ) -> list[SelectionNode]:
        """Fetch a field through `_entities`; return what the parent selection must add.

        The target subgraph needs the fields of one of its keys, plus the field's
        `@requires` fields, in each representation. Each comes from the parent
        subgraph when it resolves it, else from one helper subgraph that the
        parent can reach by a key (one hop: key conversion, or requirements owned
        elsewhere); the target's fetch then runs a step later.
        """
        name = client_field.name
        resolvers = self.model.field_resolvers(type_name, name)
        # Prefer a subgraph that already has a group here, so fields share a fetch.
        ordered = sorted(
            (s for s in resolvers if s != exclude),
            key=lambda s: (depth + 1, s, path) not in self.groups,
        )
        entries: list[tuple[str, list[FieldNode]]] = []
        for target in ordered:
            requires = self.model.requires_of(target, type_name, name)
            extra = requires.selections if requires is not None else ()
            for entity_key in self.model.entity_keys(target, type_name):
                needed = _unique((*entity_key.selections, *extra))
                if all(
                    self.model.obtainable(subgraph, type_name, n, frozenset({target}), provided)
                    or self._chained(subgraph, type_name, n, target)
                    for n in needed
                ):
                    entries.append((target, needed))
        if not entries:
            raise PlanError(
                f'Cannot plan "{type_name}.{name}" from subgraph "{subgraph}": it is resolved '
                f"by {', '.join(resolvers) or 'no subgraph'}, and none of them has a resolvable "
                f"@key on {type_name} whose fields {subgraph} can provide"
            )
        failure: PlanError | None = None
        for target, needed in entries:
            saved = self._save()
            try:
                return self._enter(
                    subgraph, type_name, client_field, path, depth, provided, target, needed
                )
            except PlanError as exc:  # its sub-selection cannot be had there: next one
                self._restore(saved)
                failure = exc
        assert failure is not None
        if client_field.selection is None or len(entries) < 2:
            raise failure
        # No one subgraph gives all of it: each part of its selection from the first
        # that can (a shareable field that subgraphs complete between them).
        parts: dict[int, list[tuple[str, Field]]] = {}
        for unit in _units(client_field):
            for index, (target, needed) in enumerate(entries):
                saved = self._save()
                try:
                    self._enter(
                        subgraph,
                        type_name,
                        _only(client_field, unit),
                        path,
                        depth,
                        provided,
                        target,
                        needed,
                    )
                except PlanError:
                    continue
                finally:
                    self._restore(saved)
                parts.setdefault(index, []).extend(unit)
                break
            else:
                raise failure
        added: list[SelectionNode] = []
        landed = 0
        for index, chosen in parts.items():
            target, needed = entries[index]
            added += self._enter(
                subgraph,
                type_name,
                _only(client_field, chosen),
                path,
                depth,
                provided,
                target,
                needed,
            )
            landed = max(landed, self.landed)
        self.landed = landed
        return added

    def _enter(
        self,
        subgraph: str,
        type_name: str,
        client_field: Field,
        path: PlanPath,
        depth: int,
        provided: FieldTree | None,
        target: str,
        needed: list[FieldNode],
    ) -> list[SelectionNode]:
        """Plan `client_field` in `target` through `_entities`, its representations made
        of `needed` (key and `@requires` fields)."""
        added: list[SelectionNode] = []
        ready = depth
        for selection in needed:
            name = selection.name.value
            raw = _field(
                name,
                _rep_alias(selection),
                selection.arguments or (),  # `@requires(fields: "price(currency: \"USD\")")`
                _copy(selection.selection_set),
            )
            if self.model.provides_field(subgraph, type_name, selection, provided):
                added.append(raw)  # the parent gives it whole
                continue
            assert raw.alias is not None
            planned = self._as_field(type_name, selection, raw.alias.value)
            if self.model.resolves(subgraph, type_name, name, provided):
                # the parent gives the field, other subgraphs part of its sub-selection
                # (`products { id pid }`, each product's `pid` from another subgraph)
                self.landed = 0
                added.append(self.field_in(subgraph, type_name, planned, path, depth, provided))
                ready = max(ready, self.landed)
                continue
            source = self._source_of(subgraph, type_name, name, provided, target)
            if source is None or not self.model.provides_field(source, type_name, selection):
                # a `@requires` chain, or a field only a subgraph reached through others
                # gives: fetched on its own first
                self.landed = 0
                added += self._remote(subgraph, type_name, planned, path, depth, provided)
                ready = max(ready, self.landed)
                continue
            helper_key = self.model.entry_key(subgraph, source, type_name, provided)
            assert helper_key is not None
            helper = self._group(depth + 1, source, path)
            added += self._represent(helper, type_name, helper_key.selections)
            helper.selections.setdefault(type_name, []).append(raw)
            ready = max(ready, depth + 1)
        self.landed = max(self.landed, ready + 1)
        entries = [
            KeyRename(
                _rep_alias(selection),
                selection.name.value,
                tree_of(selection.selection_set) if selection.selection_set else None,
            )
            for selection in needed
        ]
        # A representation holds one value per field: a `@requires` of the same field
        # with other arguments (`price(currency: "EUR")`) needs a fetch of its own.
        variant = 0
        while True:
            group = self._group(ready + 1, target, path, variant)
            spec = group.representations.setdefault(type_name, [])
            taken = {(e.name, e.alias) for e in spec}
            if not any(e.name == n and e.alias != a for e in entries for n, a in taken):
                break
            variant += 1
        for entry in entries:
            if entry not in spec:
                spec.append(entry)
        entity_field = self.field_in(target, type_name, client_field, path, ready + 1, None)
        group.selections.setdefault(type_name, []).append(entity_field)
        return added

    def _root_parts(
        self, root: str, root_field: Field, ordered: list[str]
    ) -> list[tuple[str, FieldNode]]:
        """The root field as fetched: whole from the subgraph that can plan all of it
        with the fewest entity fetches after it, then the fewest fields asked of them
        (the first in `ordered` on a tie), else
        split, each part of its selection from the first subgraph that can (a shared
        root field: each subgraph adds its own fields to the same object)."""
        failure: PlanError | None = None
        best: tuple[tuple[int, int], str] | None = None
        for subgraph in ordered:
            saved = self._save()
            try:
                self.field_in(subgraph, root, root_field, (), 0, None)
            except PlanError as exc:
                failure = exc
                continue
            finally:
                cost = (len(self.groups) - len(saved), self._entity_fields() - _fields_in(saved))
                self._restore(saved)
            if best is None or cost < best[0]:
                best = (cost, subgraph)
            if cost == (0, 0):
                break  # nothing to beat
        if best is not None:
            _, subgraph = best
            return [(subgraph, self.field_in(subgraph, root, root_field, (), 0, None))]
        assert failure is not None
        if root_field.selection is None or len(ordered) < 2:
            raise failure
        parts: dict[str, list[tuple[str, Field]]] = {}
        for unit in _units(root_field):
            for subgraph in ordered:
                saved = self._save()
                try:
                    self.field_in(subgraph, root, _only(root_field, unit), (), 0, None)
                except PlanError:
                    continue
                finally:
                    self._restore(saved)
                parts.setdefault(subgraph, []).extend(unit)
                break
            else:
                raise failure
        return [
            (subgraph, self.field_in(subgraph, root, _only(root_field, chosen), (), 0, None))
            for subgraph, chosen in parts.items()
        ]

    def _split(
        self,
        subgraph: str,
        type_name: str,
        client_field: Field,
        path: PlanPath,
        depth: int,
        provided: FieldTree | None,
    ) -> tuple[FieldNode, Field | None]:
        """The field as `subgraph` can give it, and the part of its selection it cannot
        (None when it gives all): that part comes from another subgraph resolving the
        same (shareable) field, through the nearest entity above it."""
        if client_field.selection is None:  # a leaf: nothing to split
            return self.field_in(subgraph, type_name, client_field, path, depth, provided), None
        saved = self._save()
        try:
            return self.field_in(subgraph, type_name, client_field, path, depth, provided), None
        except PlanError:
            self._restore(saved)
        local: list[tuple[str, Field]] = []
        rest: list[tuple[str, Field]] = []
        for unit in _units(client_field):
            saved = self._save()
            try:
                self.field_in(subgraph, type_name, _only(client_field, unit), path, depth, provided)
                local.extend(unit)
            except PlanError:
                rest.extend(unit)
            finally:
                self._restore(saved)
        planned = self.field_in(
            subgraph, type_name, _only(client_field, local), path, depth, provided
        )
        return planned, _only(client_field, rest)

    def _entity_fields(self) -> int:
        return _fields_in(self.groups)

    def _save(self) -> dict[tuple[int, str, PlanPath], _Group]:
        return {
            k: _Group(
                g.subgraph,
                g.path,
                {t: list(v) for t, v in g.representations.items()},
                {t: list(v) for t, v in g.selections.items()},
            )
            for k, g in self.groups.items()
        }

    def _restore(self, saved: dict[tuple[int, str, PlanPath], _Group]) -> None:
        # in place: the dict is shared with the root run being planned
        self.groups.clear()
        self.groups.update(saved)

    def _group(self, depth: int, subgraph: str, path: PlanPath, variant: int = 0) -> _Group:
        """The entity group at this depth and path; a `variant` past 0 is another one
        there (representations that cannot be merged)."""
        key = path if not variant else (*path, ("", f"#{variant}"))
        return self.groups.setdefault((depth, subgraph, key), _Group(subgraph, path))

    def _represent(
        self, group: _Group, type_name: str, fields: Iterable[FieldNode]
    ) -> list[SelectionNode]:
        """Register key fields for a group's representations; return the parent's additions."""
        spec = group.representations.setdefault(type_name, [])
        added: list[SelectionNode] = []
        for selection in fields:
            entry = KeyRename(REP_PREFIX + selection.name.value, selection.name.value)
            if entry not in spec:
                spec.append(entry)
            added.append(
                _field(
                    selection.name.value,
                    entry.alias,
                    selection.arguments or (),
                    _copy(selection.selection_set),
                )
            )
        return added

    def _chained(self, subgraph: str, type_name: str, node: FieldNode, target: str) -> bool:
        """A representation field that must be fetched on its own first: one another
        subgraph returns only once its own `@requires` is met (`canAfford` needs
        `isExpensive`, which needs `price`), or one whose sub-selection sits behind
        another entity (`author { yearsOfExperience }`)."""
        options = self.model.field_options(frozenset({subgraph}), type_name, node.name.value)
        return any(
            option != target
            or (node.selection_set is not None and not self._requires(option, type_name, node))
            for option in options
        )

    def _requires(self, subgraph: str, type_name: str, node: FieldNode) -> bool:
        return self.model.requires_of(subgraph, type_name, node.name.value) is not None

    def _as_field(self, parent: str, node: FieldNode, key: str) -> Field:
        """A field set's field in the normalized form, to be planned like a client's."""
        selection = None
        parent_type = self.schema.type_map.get(parent)
        definition = getattr(parent_type, "fields", {}).get(node.name.value)
        if node.selection_set is not None:
            if definition is None:
                raise PlanError(f'"{parent}.{node.name.value}" is not in the supergraph')
            named = get_named_type(definition.type)
            concrete = self.schema.get_possible_types(named) if is_abstract_type(named) else [named]
            by_type: dict[str, tuple[Field, ...]] = {}
            for object_type in concrete:
                fields = [
                    self._as_field(object_type.name, f, f.name.value)
                    for f in _fields_for(node.selection_set, object_type, self.schema)
                    if not f.name.value.startswith("__")
                ]
                if fields or object_type is named:
                    by_type[object_type.name] = tuple(fields)
            selection = Selection(named.name, by_type)
        return Field(key, node.name.value, node, selection)

    def _source_of(
        self,
        subgraph: str,
        type_name: str,
        name: str,
        provided: FieldTree | None,
        target: str,
    ) -> str | None:
        """Where a representation field comes from: the parent, or one helper subgraph."""
        if self.model.resolves(subgraph, type_name, name, provided):
            return subgraph
        for helper in self.model.field_resolvers(type_name, name):
            if helper in (subgraph, target):
                continue
            if self.model.requires_of(helper, type_name, name) is not None:
                continue
            if self.model.entry_key(subgraph, helper, type_name, provided) is not None:
                return helper
        return None

    # --- documents ---------------------------------------------------------------

    def _definitions(self, names: Iterable[str]) -> list[str]:
        wanted = set(names)
        return [
            print_ast(d)
            for d in self.operation.variable_definitions or ()
            if d.variable.name.value in wanted
        ]

    def _operation_name(self, suffix: str) -> str:
        """`<client operation>__<subgraph>`: shows in subgraph logs where a fetch came from."""
        base = self.operation.name.value if self.operation.name else "anonymous"
        # subgraph names come from settings and may hold characters a Name may not
        return f"{base}__{re.sub(r'[^_0-9A-Za-z]', '_', suffix)}"

    def _root_fetch(self, subgraph: str, selections: list[SelectionNode], keys: list[str]) -> Fetch:
        renames: list[ResponseRename] = []
        root_type = self.normalized.root.type_name
        selections = _Dealias(self.model, subgraph, renames).selections(root_type, selections, ())
        names = _variables_in(selections)
        definitions = self._definitions(names)
        header = self.operation.operation.value + " " + self._operation_name(subgraph)
        if definitions:
            header += "(" + ", ".join(definitions) + ")"
        body = " ".join(print_ast(s) for s in selections)
        document = strip_ignored_characters(f"{header} {{ {body} }}")
        return Fetch(subgraph, document, tuple(names), tuple(keys), tuple(renames))

    def _steps(self, groups: dict[tuple[int, str, PlanPath], _Group]) -> list[PlanNode]:
        """One node per depth: that depth's entity fetches, all subgraphs in parallel."""
        by_depth: dict[int, dict[str, list[_Group]]] = {}
        for (depth, subgraph, _), group in groups.items():
            by_depth.setdefault(depth, {}).setdefault(subgraph, []).append(group)
        steps: list[PlanNode] = []
        for depth in sorted(by_depth):
            fetches: list[PlanNode] = [
                self._flatten(depth, subgraph, found) for subgraph, found in by_depth[depth].items()
            ]
            step = parallel(fetches)
            assert step is not None
            steps.append(step)
        return steps

    def _flatten(self, depth: int, subgraph: str, groups: list[_Group]) -> Flatten:
        fields: list[SelectionNode] = []
        inputs: list[EntityInput] = []
        definitions: list[str] = []
        for index, group in enumerate(groups):
            alias = f"e{index}"
            reps = f"{REPS_VARIABLE}{index}"
            definitions.append(f"${reps}: [_Any!]!")
            fragments: list[SelectionNode] = []
            for type_name, selections in group.selections.items():
                local = self.model.entity_type(subgraph, type_name)
                # a field set's field planned for two fetches' representations is asked once
                if self.model.is_interface_object(subgraph, local):
                    # its `__typename` there is the interface's, not the object's type
                    fragments.append(_fragment(local, _unique_selections(list(selections))))
                else:
                    fragments.append(
                        _fragment(local, _unique_selections([_typename(), *selections]))
                    )
            fields.append(
                FieldNode(
                    alias=_name(alias),
                    name=_name("_entities"),
                    arguments=(_argument("representations", reps),),
                    directives=(),
                    # implementations sent as one interface object share its fragment
                    selection_set=SelectionSetNode(selections=tuple(_unique_selections(fragments))),
                )
            )
            inputs.append(
                EntityInput(
                    alias,
                    reps,
                    group.path,
                    {t: tuple(spec) for t, spec in group.representations.items()},
                    typenames={
                        t: self.model.entity_type(subgraph, t)
                        for t in group.representations
                        if self.model.entity_type(subgraph, t) != t
                    },
                    # under a planner's alias (a `@requires` fetched first) no client field
                    # is filled, so a failure there names no client path of its own
                    fills={}
                    if any(key.startswith(RESERVED_PREFIX) for key, _ in group.path)
                    else {t: _client_keys(sel) for t, sel in group.selections.items()},
                )
            )
        renames: list[ResponseRename] = []
        fields = _Dealias(self.model, subgraph, renames).selections(None, fields, ())
        names = [n for n in _variables_in(fields) if not n.startswith(REPS_VARIABLE)]
        definitions += self._definitions(names)
        header = f"query {self._operation_name(f'{subgraph}_{depth}')}({', '.join(definitions)})"
        body = " ".join(print_ast(s) for s in fields)
        document = strip_ignored_characters(f"{header} {{ {body} }}")
        return Flatten(
            tuple(inputs), Fetch(subgraph, document, tuple(names), renames=tuple(renames))
        )


class _Dealias:
    """Keeps a subgraph document valid where fragments on different types select one
    response key with different types there (`id: ID!` on one, `id: ID` on another):
    each later such field goes under an alias of its own, renamed back in the fetch's
    data (`ResponseRename`)."""

    def __init__(self, model: PlanningModel, subgraph: str, renames: list[ResponseRename]):
        self.model = model
        self.subgraph = subgraph
        self.renames = renames

    def selections(
        self, parent: str | None, selections: Iterable[SelectionNode], path: tuple[str, ...]
    ) -> list[SelectionNode]:
        seen: dict[str, tuple[str, str] | None] = {}
        return [self._one(parent, s, path, seen, False) for s in selections]

    def _one(
        self,
        parent: str | None,
        node: SelectionNode,
        path: tuple[str, ...],
        seen: dict[str, tuple[str, str] | None],
        in_fragment: bool,
    ) -> SelectionNode:
        if isinstance(node, InlineFragmentNode):
            on = node.type_condition.name.value if node.type_condition else parent
            inner = [self._one(on, s, path, seen, True) for s in node.selection_set.selections]
            return InlineFragmentNode(
                type_condition=node.type_condition,
                directives=node.directives,
                selection_set=SelectionSetNode(selections=tuple(inner)),
            )
        assert isinstance(node, FieldNode)
        key = (node.alias or node.name).value
        shape = (
            self.model.field_shapes.get((self.subgraph, parent, node.name.value))
            if parent is not None
            else None
        )
        if key in seen and in_fragment and shape is not None and seen[key] is not None:
            first = seen[key]
            assert first is not None
            if first[0] != shape[0] or ("T" not in shape[0] and first[1] != shape[1]):
                alias = f"{RESERVED_PREFIX}m_{parent}_{key}"
                self.renames.append(ResponseRename(path, alias, key))
                key, node = alias, _aliased(node, alias)
        seen.setdefault(key, shape)
        if node.selection_set is None:
            return node
        child = shape[1] if shape is not None else None
        inner = self.selections(child, node.selection_set.selections, (*path, key))
        return FieldNode(
            alias=node.alias,
            name=node.name,
            arguments=node.arguments,
            directives=node.directives,
            selection_set=SelectionSetNode(selections=tuple(inner)),
        )


def _aliased(node: FieldNode, alias: str) -> FieldNode:
    return FieldNode(
        alias=_name(alias),
        name=node.name,
        arguments=node.arguments,
        directives=node.directives,
        selection_set=node.selection_set,
    )


def _rep_alias(selection: FieldNode) -> str:
    """The planner's alias for a representation field; one with arguments is told apart
    by them (`price(currency: "USD")` beside `price(currency: "EUR")`)."""
    alias = REP_PREFIX + selection.name.value
    if not selection.arguments:
        return alias
    printed = ",".join(print_ast(a) for a in selection.arguments)
    return f"{alias}_{hashlib.sha256(printed.encode()).hexdigest()[:6]}"


def _unique_selections(selections: list[SelectionNode]) -> list[SelectionNode]:
    return list({print_ast(s): s for s in selections}.values())


def _fields_in(groups: dict[tuple[int, str, PlanPath], _Group]) -> int:
    """How many fields entity fetches ask for, at every depth: a plan's cost after its
    fetch count (a list fetched whole again elsewhere costs its every field)."""
    return sum(_count(s) for g in groups.values() for v in g.selections.values() for s in v)


def _count(selection: SelectionNode) -> int:
    inner: SelectionSetNode | None = getattr(selection, "selection_set", None)
    below = sum(_count(s) for s in inner.selections) if inner is not None else 0
    return below + isinstance(selection, FieldNode)


def _applies(
    fragment: InlineFragmentNode, concrete: GraphQLObjectType, schema: GraphQLSchema
) -> bool:
    if fragment.type_condition is None:
        return True
    condition = schema.type_map.get(fragment.type_condition.name.value)
    if condition is concrete:
        return True
    return is_abstract_type(condition) and schema.is_sub_type(condition, concrete)


def _fields_for(
    selection_set: SelectionSetNode, concrete: GraphQLObjectType, schema: GraphQLSchema
) -> list[FieldNode]:
    """A field set's fields that apply to a concrete type: its fragments on the type, or
    on an interface or union it belongs to, included (`... on Bar { bar }` for a Baz)."""
    found: list[FieldNode] = []
    for s in selection_set.selections:
        if isinstance(s, FieldNode):
            found.append(s)
        elif isinstance(s, InlineFragmentNode) and _applies(s, concrete, schema):
            found.extend(_fields_for(s.selection_set, concrete, schema))
    return found


def _units(client_field: Field) -> list[list[tuple[str, Field]]]:
    """The field's sub-selection as the parts a split may send to different subgraphs,
    each a list of (concrete type, field) pairs. A field selected on an abstract type
    itself (`node { id }`, one node collected for every concrete type) is one part:
    a subgraph gives it for every type or not at all, as Apollo plans it; only type
    conditions (`... on Account { id }`) let the types go their own ways."""
    assert client_field.selection is not None
    units: dict[int, list[tuple[str, Field]]] = {}
    for concrete, fields in client_field.selection.by_type.items():
        for child in fields:
            units.setdefault(id(child.node), []).append((concrete, child))
    return list(units.values())


def _only(client_field: Field, chosen: list[tuple[str, Field]]) -> Field:
    """The field with only the chosen part of its sub-selection."""
    assert client_field.selection is not None
    by_type: dict[str, tuple[Field, ...]] = {}
    for concrete, child in chosen:
        by_type[concrete] = (*by_type.get(concrete, ()), child)
    if client_field.selection.type_name in client_field.selection.by_type:  # an object type
        by_type.setdefault(client_field.selection.type_name, ())
    return replace(client_field, selection=Selection(client_field.selection.type_name, by_type))


def _copy(selection_set: SelectionSetNode | None) -> list[SelectionNode] | None:
    return list(selection_set.selections) if selection_set is not None else None


def _client_keys(selections: Iterable[SelectionNode]) -> tuple[str, ...]:
    keys = (
        (s.alias or s.name).value
        for s in selections
        if isinstance(s, FieldNode) and not (s.alias or s.name).value.startswith(RESERVED_PREFIX)
    )
    return tuple(dict.fromkeys(keys))


def _argument(name: str, variable: str) -> ArgumentNode:
    return ArgumentNode(name=_name(name), value=VariableNode(name=_name(variable)))


def build_plan(supergraph: Supergraph, operation: NormalizedOperation) -> QueryPlan:
    """Plan a normalized operation."""
    return _Planner(supergraph, operation).plan()
