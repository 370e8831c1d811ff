"""Query planning: one client operation -> subgraph fetches.

The plan is a sequence of stages. A query has one: a root fetch per owning
subgraph, all in parallel. A mutation has one per run of consecutive fields
on the same subgraph, strictly in order. After its root fetches, a stage runs
its entity steps: at each depth, one `_entities` request per subgraph,
holding one aliased `_entities` field per place in the response where objects
need fields from that subgraph, all subgraphs in parallel.

The subgraph documents keep the client's response keys, so the merged raw
data has the client's shape; whatever the planner adds for itself (the
`__typename` used to dispatch abstract types, key and `@requires` fields for
representations) goes under reserved aliases (`_veche_t`, `_veche_k_<field>`) that
cannot clash with the client's. `@skip`/`@include` are evaluated while
planning, so a plan is cached per document, operation and the values of the
variables those directives read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    ArgumentNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLIncludeDirective,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSkipDirective,
    InlineFragmentNode,
    NamedTypeNode,
    NameNode,
    OperationDefinitionNode,
    OperationType,
    SelectionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    is_abstract_type,
    is_composite_type,
    print_ast,
    strip_ignored_characters,
    visit,
)
from graphql.execution.values import VariableValues, get_directive_values
from graphql.language import Visitor

from veche_gateway.errors import PlanError
from veche_gateway.subgraph import parse_field_set
from veche_gateway.supergraph import Supergraph

RESERVED_PREFIX = "_veche_"  # clients may not use it for aliases or variables
TYPENAME_ALIAS = RESERVED_PREFIX + "t"
REP_PREFIX = RESERVED_PREFIX + "k_"
REPS_VARIABLE = RESERVED_PREFIX + "reps"


@dataclass(frozen=True)
class RootFetch:
    subgraph: str
    document: str
    variables: tuple[str, ...]
    response_keys: tuple[str, ...]


# Where objects sit in the response: (response key, concrete type of the object
# holding it) per step. The types keep apart objects that share response keys
# under different types (`... on A { x: f } ... on B { x: g }`), so their
# entity selections never clash.
PlanPath = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class EntityGroup:
    """Objects found at `path` that get fields from a subgraph."""

    alias: str
    path: PlanPath
    # concrete type -> [(alias in the parent object, field name in the representation)]
    representations: Mapping[str, tuple[tuple[str, str], ...]]
    # concrete type -> the client's response keys this fetch fills in each object: the
    # fields a failure of the fetch leaves null (the planner's own aliases left out)
    fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class EntityFetch:
    subgraph: str
    document: str
    variables: tuple[str, ...]
    groups: tuple[EntityGroup, ...]


@dataclass(frozen=True)
class Stage:
    """Root fetches (run together), then their entity steps, one depth at a time."""

    roots: tuple[RootFetch, ...]
    steps: tuple[tuple[EntityFetch, ...], ...]


@dataclass(frozen=True)
class QueryPlan:
    """A query has one stage; a mutation one per run of fields on one subgraph, in order,
    so each mutation's entity fetches see the data before the next mutation runs."""

    operation: OperationType
    stages: tuple[Stage, ...]


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
    return _field("__typename", TYPENAME_ALIAS)


def _fragment(type_name: str, selections: list[SelectionNode]) -> InlineFragmentNode:
    return InlineFragmentNode(
        type_condition=NamedTypeNode(name=_name(type_name)),
        directives=(),
        selection_set=SelectionSetNode(selections=tuple(selections)),
    )


def _strip(selection_set: SelectionSetNode | None) -> list[SelectionNode] | None:
    """A field set from a directive, as plain selections without locations."""
    if selection_set is None:
        return None
    return [
        _field(s.name.value, None, (), _strip(s.selection_set))
        for s in selection_set.selections
        if isinstance(s, FieldNode)
    ]


def _top_fields(selection_set: SelectionSetNode) -> list[FieldNode]:
    return [s for s in selection_set.selections if isinstance(s, FieldNode)]


def _unique(fields: list[FieldNode]) -> list[FieldNode]:
    seen: dict[str, FieldNode] = {}
    for f in fields:
        seen.setdefault(f.name.value, f)
    return list(seen.values())


def _field_set_tree(selection_set: SelectionSetNode) -> dict[str, Any]:
    return {
        s.name.value: _field_set_tree(s.selection_set) if s.selection_set else {}
        for s in selection_set.selections
        if isinstance(s, FieldNode)
    }


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
    representations: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    selections: dict[str, list[SelectionNode]] = field(default_factory=dict)


@dataclass
class _RootRun:
    subgraph: str
    groups: dict[tuple[int, str, PlanPath], _Group]
    selections: list[SelectionNode] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)


class _Planner:
    def __init__(
        self,
        supergraph: Supergraph,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: VariableValues,
    ) -> None:
        self.supergraph = supergraph
        self.schema = supergraph.schema
        self.operation = operation
        self.variables = variables
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.groups: dict[tuple[int, str, PlanPath], _Group] = {}

    # --- client selections -------------------------------------------------------

    def _included(self, node: SelectionNode) -> bool:
        skip = get_directive_values(GraphQLSkipDirective, node, self.variables)
        if skip and skip.get("if") is True:
            return False
        include = get_directive_values(GraphQLIncludeDirective, node, self.variables)
        return not (include and include.get("if") is False)

    def _applies(self, condition: NamedTypeNode | None, type_: GraphQLObjectType) -> bool:
        if condition is None or condition.name.value == type_.name:
            return True
        conditional = self.schema.get_type(condition.name.value)
        return (
            conditional is not None
            and is_abstract_type(conditional)
            and self.schema.is_sub_type(conditional, type_)
        )

    def collect(
        self, type_: GraphQLObjectType, selection_sets: Iterable[SelectionSetNode]
    ) -> dict[str, list[FieldNode]]:
        """The fields selected on a concrete type, grouped by response key."""
        fields: dict[str, list[FieldNode]] = {}

        def walk(selection_set: SelectionSetNode) -> None:
            for selection in selection_set.selections:
                if not self._included(selection):
                    continue
                if isinstance(selection, FieldNode):
                    key = selection.alias.value if selection.alias else selection.name.value
                    fields.setdefault(key, []).append(selection)
                elif isinstance(selection, InlineFragmentNode):
                    if self._applies(selection.type_condition, type_):
                        walk(selection.selection_set)
                elif isinstance(selection, FragmentSpreadNode):
                    fragment = self.fragments[selection.name.value]
                    if self._applies(fragment.type_condition, type_):
                        walk(fragment.selection_set)

        for selection_set in selection_sets:
            walk(selection_set)
        return fields

    # --- planning ----------------------------------------------------------------

    def plan(self) -> QueryPlan:
        root_type = self.schema.get_root_type(self.operation.operation)
        if root_type is None:
            raise PlanError(f"The schema has no {self.operation.operation.value} type")
        mutation = self.operation.operation == OperationType.MUTATION
        fields = self.collect(root_type, [self.operation.selection_set])
        runs: list[_RootRun] = []
        shared: dict[tuple[int, str, PlanPath], _Group] = {}
        for key, nodes in fields.items():
            name = nodes[0].name.value
            if name.startswith("__"):  # __typename, __schema, __type: answered here
                continue
            resolvers = self.supergraph.field_resolvers(root_type.name, name)
            if not resolvers:
                raise PlanError(f'No subgraph resolves "{root_type.name}.{name}"')
            used = [run.subgraph for run in runs]
            subgraph = next((s for s in resolvers if s in used), resolvers[0])
            target = (
                (runs[-1] if runs and runs[-1].subgraph == subgraph else None)
                if mutation
                else next((run for run in runs if run.subgraph == subgraph), None)
            )
            if target is None:
                target = _RootRun(subgraph, groups={} if mutation else shared)
                runs.append(target)
            self.groups = target.groups
            target.selections.append(self.field_in(subgraph, root_type, key, nodes, (), 0, None))
            target.keys.append(key)
        if mutation:
            stages = tuple(
                Stage((self._root_fetch(r.subgraph, r.selections, r.keys),), self._steps(r.groups))
                for r in runs
            )
        else:
            roots = tuple(self._root_fetch(r.subgraph, r.selections, r.keys) for r in runs)
            stages = (Stage(roots, self._steps(shared)),) if roots else ()
        return QueryPlan(self.operation.operation, stages)

    def field_in(
        self,
        subgraph: str,
        parent: GraphQLObjectType,
        key: str,
        nodes: list[FieldNode],
        path: PlanPath,
        depth: int,
        provided: dict[str, Any] | None,
    ) -> FieldNode:
        """The client's field as fetched from `subgraph`, with its sub-selection planned."""
        name = nodes[0].name.value
        definition = parent.fields[name]
        return_type = get_named_type(definition.type)
        selections: list[SelectionNode] | None = None
        if is_composite_type(return_type):
            provides = self.supergraph.facts(subgraph, parent.name, name).provides
            child_provided = (
                _field_set_tree(parse_field_set(provides))
                if provides
                else (provided or {}).get(name) or None
            )
            selections = self.selection_for(
                subgraph,
                return_type,
                [n.selection_set for n in nodes if n.selection_set],
                (*path, (key, parent.name)),
                depth,
                child_provided,
            )
        return _field(name, key, nodes[0].arguments or (), selections)

    def selection_for(
        self,
        subgraph: str,
        type_: GraphQLNamedType,
        selection_sets: list[SelectionSetNode],
        path: PlanPath,
        depth: int,
        provided: dict[str, Any] | None,
    ) -> list[SelectionNode]:
        selections: list[SelectionNode] = [_typename()]
        if isinstance(type_, GraphQLObjectType):
            fields = self.collect(type_, selection_sets)
            selections += self.object_selections(subgraph, type_, fields, path, depth, provided)
            return selections
        # Abstract: one fragment per concrete type the subgraph can return.
        known = self.supergraph.possible_types_in(subgraph, type_.name)
        for concrete in self.schema.get_possible_types(type_):  # type: ignore[arg-type]
            if concrete.name not in known:
                continue
            fields = self.collect(concrete, selection_sets)
            inner = self.object_selections(subgraph, concrete, fields, path, depth, provided)
            if inner:
                selections.append(_fragment(concrete.name, inner))
        return selections

    def object_selections(
        self,
        subgraph: str,
        type_: GraphQLObjectType,
        fields: dict[str, list[FieldNode]],
        path: PlanPath,
        depth: int,
        provided: dict[str, Any] | None,
    ) -> list[SelectionNode]:
        selections: list[SelectionNode] = []
        internal: dict[str, SelectionNode] = {}
        for key, nodes in fields.items():
            name = nodes[0].name.value
            if name == "__typename":
                continue
            if self._local(subgraph, type_.name, name, provided):
                selections.append(self.field_in(subgraph, type_, key, nodes, path, depth, provided))
            else:
                for selection in self._remote(subgraph, type_, key, nodes, path, depth, provided):
                    internal[print_ast(selection)] = selection
        return selections + list(internal.values())

    def _local(
        self, subgraph: str, type_name: str, name: str, provided: dict[str, Any] | None
    ) -> bool:
        # A field with @requires needs its requirements in a representation, so it
        # always goes through `_entities`, even in the subgraph that resolves it.
        return self._resolves(subgraph, type_name, name, provided)

    def _remote(
        self,
        subgraph: str,
        type_: GraphQLObjectType,
        key: str,
        nodes: list[FieldNode],
        path: PlanPath,
        depth: int,
        provided: dict[str, Any] | None,
    ) -> list[SelectionNode]:
        """Fetch a field through `_entities`; return what the parent selection must add.

        The target subgraph needs the fields of one of its keys, plus the field's
        `@requires` fields, in each representation. Each comes from the parent
        subgraph when it resolves it, else from one helper subgraph that the
        parent can reach by a key (one hop: key conversion, or requirements owned
        elsewhere); the target's fetch then runs a step later.
        """
        name = nodes[0].name.value
        resolvers = self.supergraph.field_resolvers(type_.name, name)
        # Prefer a subgraph that already has a group here, so fields share a fetch.
        ordered = sorted(resolvers, key=lambda s: (depth + 1, s, path) not in self.groups)
        choice: tuple[str, list[FieldNode]] | None = None
        for target in ordered:
            requires = self.supergraph.facts(target, type_.name, name).requires
            extra = _top_fields(parse_field_set(requires)) if requires else []
            for entity_key in self.supergraph.keys(target, type_.name):
                if not entity_key.resolvable:
                    continue
                needed = _unique(_top_fields(entity_key.selection) + extra)
                if all(
                    self._source_of(subgraph, type_.name, n.name.value, provided, target)
                    is not None
                    for n in needed
                ):
                    choice = (target, needed)
                    break
            if choice is not None:
                break
        if choice is None:
            raise PlanError(
                f'Cannot plan "{type_.name}.{name}" from subgraph "{subgraph}": it is resolved '
                f"by {', '.join(resolvers) or 'no subgraph'}, and none of them has a resolvable "
                f"@key on {type_.name} whose fields {subgraph} can provide"
            )
        target, needed = choice
        added: list[SelectionNode] = []
        ready = depth
        for selection in needed:
            source = self._source_of(subgraph, type_.name, selection.name.value, provided, target)
            raw = _field(
                selection.name.value,
                REP_PREFIX + selection.name.value,
                (),
                _strip(selection.selection_set),
            )
            if source == subgraph:
                added.append(raw)
                continue
            assert source is not None
            helper_key = self._usable_key(subgraph, source, type_.name, provided)
            assert helper_key is not None
            helper = self._group(depth + 1, source, path)
            added += self._represent(helper, type_.name, helper_key)
            helper.selections.setdefault(type_.name, []).append(raw)
            ready = depth + 1
        group = self._group(ready + 1, target, path)
        spec = group.representations.setdefault(type_.name, [])
        for selection in needed:
            entry = (REP_PREFIX + selection.name.value, selection.name.value)
            if entry not in spec:
                spec.append(entry)
        entity_field = self.field_in(target, type_, key, nodes, path, ready + 1, None)
        group.selections.setdefault(type_.name, []).append(entity_field)
        return added

    def _group(self, depth: int, subgraph: str, path: PlanPath) -> _Group:
        return self.groups.setdefault((depth, subgraph, path), _Group(subgraph, path))

    def _represent(
        self, group: _Group, type_name: str, fields: list[FieldNode]
    ) -> list[SelectionNode]:
        """Register key fields for a group's representations; return the parent's additions."""
        spec = group.representations.setdefault(type_name, [])
        added: list[SelectionNode] = []
        for selection in fields:
            alias = REP_PREFIX + selection.name.value
            if (alias, selection.name.value) not in spec:
                spec.append((alias, selection.name.value))
            added.append(_field(selection.name.value, alias, (), _strip(selection.selection_set)))
        return added

    def _resolves(
        self, subgraph: str, type_name: str, name: str, provided: dict[str, Any] | None
    ) -> bool:
        """`subgraph` can return the field as is (no `@requires` to satisfy first)."""
        if provided is not None and name in provided:
            return True
        return (
            subgraph in self.supergraph.field_resolvers(type_name, name)
            and not self.supergraph.facts(subgraph, type_name, name).requires
        )

    def _usable_key(
        self, subgraph: str, target: str, type_name: str, provided: dict[str, Any] | None
    ) -> list[FieldNode] | None:
        for entity_key in self.supergraph.keys(target, type_name):
            fields = _top_fields(entity_key.selection)
            if entity_key.resolvable and all(
                self._resolves(subgraph, type_name, f.name.value, provided) for f in fields
            ):
                return fields
        return None

    def _source_of(
        self,
        subgraph: str,
        type_name: str,
        name: str,
        provided: dict[str, Any] | None,
        target: str,
    ) -> str | None:
        """Where a representation field comes from: the parent, or one helper subgraph."""
        if self._resolves(subgraph, type_name, name, provided):
            return subgraph
        for helper in self.supergraph.field_resolvers(type_name, name):
            if helper in (subgraph, target):
                continue
            if self.supergraph.facts(helper, type_name, name).requires:
                continue
            if self._usable_key(subgraph, helper, type_name, provided) is not None:
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

    def _root_fetch(
        self, subgraph: str, selections: list[SelectionNode], keys: list[str]
    ) -> RootFetch:
        names = _variables_in(selections)
        definitions = self._definitions(names)
        header = self.operation.operation.value + " " + self._operation_name(subgraph)
        if definitions:
            header += "(" + ", ".join(definitions) + ")"
        body = " ".join(print_ast(s) for s in selections)
        document = strip_ignored_characters(f"{header} {{ {body} }}")
        return RootFetch(subgraph, document, tuple(names), tuple(keys))

    def _steps(
        self, groups: dict[tuple[int, str, PlanPath], _Group]
    ) -> tuple[tuple[EntityFetch, ...], ...]:
        by_depth: dict[int, dict[str, list[_Group]]] = {}
        for (depth, subgraph, _), group in groups.items():
            by_depth.setdefault(depth, {}).setdefault(subgraph, []).append(group)
        steps = []
        for depth in sorted(by_depth):
            fetches = []
            for subgraph, found in by_depth[depth].items():
                fetches.append(self._entity_fetch(depth, subgraph, found))
            steps.append(tuple(fetches))
        return tuple(steps)

    def _entity_fetch(self, depth: int, subgraph: str, groups: list[_Group]) -> EntityFetch:
        fields: list[SelectionNode] = []
        planned: list[EntityGroup] = []
        definitions: list[str] = []
        for index, group in enumerate(groups):
            alias = f"e{index}"
            reps = f"{REPS_VARIABLE}{index}"
            definitions.append(f"${reps}: [_Any!]!")
            fragments: list[SelectionNode] = [
                _fragment(type_name, [_typename(), *selections])
                for type_name, selections in group.selections.items()
            ]
            fields.append(
                FieldNode(
                    alias=_name(alias),
                    name=_name("_entities"),
                    arguments=(_argument("representations", reps),),
                    directives=(),
                    selection_set=SelectionSetNode(selections=tuple(fragments)),
                )
            )
            planned.append(
                EntityGroup(
                    alias,
                    group.path,
                    {t: tuple(spec) for t, spec in group.representations.items()},
                    {t: _client_keys(selections) for t, selections in group.selections.items()},
                )
            )
        names = [n for n in _variables_in(fields) if not n.startswith(REPS_VARIABLE)]
        definitions += self._definitions(names)
        header = f"query {self._operation_name(f'{subgraph}_{depth}')}({', '.join(definitions)})"
        body = " ".join(print_ast(s) for s in fields)
        document = strip_ignored_characters(f"{header} {{ {body} }}")
        return EntityFetch(subgraph, document, tuple(names), tuple(planned))


def _client_keys(selections: Iterable[SelectionNode]) -> tuple[str, ...]:
    keys = (
        (s.alias or s.name).value
        for s in selections
        if isinstance(s, FieldNode) and not (s.alias or s.name).value.startswith(RESERVED_PREFIX)
    )
    return tuple(dict.fromkeys(keys))


def _argument(name: str, variable: str) -> ArgumentNode:
    return ArgumentNode(name=_name(name), value=VariableNode(name=_name(variable)))


def build_plan(
    supergraph: Supergraph,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: VariableValues,
) -> QueryPlan:
    """Plan a validated operation; `variables` are the coerced values (for @skip/@include)."""
    return _Planner(supergraph, document, operation, variables).plan()
