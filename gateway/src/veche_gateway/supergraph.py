"""The composed supergraph: the client schema plus the planning model.

`schema` is what clients see (validation, introspection, /schema.graphql);
`model` answers every question the planner asks (`model.py`); `subgraphs`
keeps each subgraph's own schema for composition's checks and `/health`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from graphql import GraphQLSchema

from veche_gateway.demand import DemandControl
from veche_gateway.model import PlanningModel
from veche_gateway.subgraph import Key, Subgraph


@dataclass
class Supergraph:
    schema: GraphQLSchema
    sdl: str
    version: str
    subgraphs: dict[str, Subgraph]
    model: PlanningModel
    # subgraph -> {its root type name: client root type name}
    root_renames: dict[str, dict[str, str]] = field(default_factory=dict)
    # @listSize/@cost of the subgraphs, for the cost limit
    demand: DemandControl = field(default_factory=DemandControl)

    def local_type(self, subgraph: str, type_name: str) -> str:
        for local, client in self.root_renames.get(subgraph, {}).items():
            if client == type_name:
                return local
        return type_name

    def field_resolvers(self, type_name: str, field_name: str) -> list[str]:
        return list(self.model.field_resolvers(type_name, field_name))

    def keys(self, subgraph: str, type_name: str) -> list[Key]:
        """Every key the subgraph declares for the entity, resolvable or not."""
        return self.subgraphs[subgraph].keys.get(type_name, [])
