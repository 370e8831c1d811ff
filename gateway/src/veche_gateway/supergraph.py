"""The composed supergraph: the client schema plus query-planning metadata.

`schema` is what clients see (validation, introspection, /schema.graphql).
The metadata answers the planner's questions: which subgraphs resolve a
field, which keys a subgraph accepts for an entity, what a field
`@requires` or `@provides` there, and which concrete types a subgraph can
return for an abstract type.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from graphql import GraphQLObjectType, GraphQLSchema, is_abstract_type

from veche_gateway.subgraph import FieldFacts, Key, Subgraph


@dataclass
class Supergraph:
    schema: GraphQLSchema
    sdl: str
    version: str
    subgraphs: dict[str, Subgraph]
    # (client type, field) -> subgraphs that resolve it, in settings order
    resolvers: dict[tuple[str, str], list[str]]
    # subgraph -> {its root type name: client root type name}
    root_renames: dict[str, dict[str, str]] = field(default_factory=dict)

    def local_type(self, subgraph: str, type_name: str) -> str:
        for local, client in self.root_renames.get(subgraph, {}).items():
            if client == type_name:
                return local
        return type_name

    def field_resolvers(self, type_name: str, field_name: str) -> list[str]:
        return self.resolvers.get((type_name, field_name), [])

    def facts(self, subgraph: str, type_name: str, field_name: str) -> FieldFacts:
        return self.subgraphs[subgraph].facts(self.local_type(subgraph, type_name), field_name)

    def keys(self, subgraph: str, type_name: str) -> list[Key]:
        return self.subgraphs[subgraph].keys.get(type_name, [])

    def has_field(self, subgraph: str, type_name: str, field_name: str) -> bool:
        local = self.subgraphs[subgraph].schema.type_map.get(self.local_type(subgraph, type_name))
        return isinstance(local, GraphQLObjectType) and field_name in local.fields

    def possible_types_in(self, subgraph: str, abstract_name: str) -> set[str]:
        """Concrete types `subgraph` may return where it declares `abstract_name`."""
        schema = self.subgraphs[subgraph].schema
        abstract = schema.type_map.get(abstract_name)
        if abstract is None or not is_abstract_type(abstract):
            return set()
        return {t.name for t in schema.get_possible_types(abstract)}
