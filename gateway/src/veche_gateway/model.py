"""The planning model: what composition learned, in the form planning asks for it.

Built once per supergraph by `compose()`. Planning reads only this (and the
client schema): it never parses a directive's field set nor opens a
subgraph's own schema. Type names are the client's (a subgraph's `RootQuery`
is `Query` here).

The reachability rule lives here, and only here: `resolves()` says whether a
subgraph can return a field as is, `entry_key()` whether one subgraph can
hand an object of a type over to another (it resolves every field of one of
the other's resolvable keys). Composition's satisfiability check and the
planner both ask these two questions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import FieldNode, SelectionSetNode

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
    # Only fields: a fragment inside a field set is refused at composition.
    return [
        FieldNode(
            name=s.name,
            alias=None,
            arguments=(),
            directives=(),
            selection_set=SelectionSetNode(selections=tuple(_strip(s.selection_set)))
            if s.selection_set
            else None,
        )
        for s in selection_set.selections
        if isinstance(s, FieldNode)
    ]


def _tree(fields: tuple[FieldNode, ...]) -> dict[str, Any]:
    return {
        f.name.value: _tree(tuple(f.selection_set.selections))  # type: ignore[arg-type]
        if f.selection_set
        else {}
        for f in fields
    }


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

    def entry_key(
        self,
        source: str,
        target: str,
        type_name: str,
        provided: FieldTree | None = None,
    ) -> FieldSet | None:
        """The first resolvable key of `target` whose fields `source` resolves: how an
        object `source` returned is handed to `target` (`_entities`)."""
        for key in self.entity_keys(target, type_name):
            if all(self.resolves(source, type_name, name, provided) for name in key.names):
                return key
        return None

    def reaches(self, source: str, target: str, type_name: str) -> bool:
        """`source`'s objects of the type get `target`'s fields: directly by a key, or
        through one helper subgraph that `source` reaches and that reaches `target`."""
        if source == target or self.entry_key(source, target, type_name) is not None:
            return True
        helpers = {s for (s, t) in self.keys if t == type_name} | {
            s for (t, _), owners in self.resolvers.items() if t == type_name for s in owners
        }
        return any(
            self.entry_key(source, helper, type_name) is not None
            and self.entry_key(helper, target, type_name) is not None
            for helper in sorted(helpers - {source, target})
        )
