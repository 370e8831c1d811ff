"""In-process subgraphs for tests of federation features (like httpx's MockTransport).

A `LocalSubgraph` is a Federation v2 subgraph made of its SDL and plain data:
graphql-core executes it in the test process, with the federation plumbing
(`_service`, `_entities`, `_Any`, `_Entity`, the directives) added to the SDL.
`LocalTransport` hands the gateway's requests to these subgraphs instead of
HTTP, and records every document each one receives.

Data: `root` holds the root fields' values; `entities` the objects per type,
found for a representation by the fields of the subgraph's keys they share.
A value may be a function of the object (`lambda obj, **args: ...`): the
object is the stored one merged with its representation, so a `@requires`
field reads what the gateway sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    build_schema,
    get_operation_ast,
    graphql,
    parse,
)
from graphql.execution.values import get_variable_values

from veche_gateway.gateway import Gateway
from veche_gateway.normalize import normalize
from veche_gateway.plan import build_plan
from veche_gateway.plan_tree import print_plan
from veche_gateway.settings import Settings
from veche_gateway.subgraph import Subgraph, load_subgraph
from veche_gateway.transport import Transport

_PLUMBING = """
scalar _Any
scalar FieldSet
scalar link__Import
type _Service { sdl: String! }
directive @link(url: String!, as: String, import: [link__Import], for: String) repeatable on SCHEMA
directive @key(fields: FieldSet!, resolvable: Boolean = true) repeatable on OBJECT | INTERFACE
directive @requires(fields: FieldSet!) on FIELD_DEFINITION
directive @provides(fields: FieldSet!) on FIELD_DEFINITION
directive @external on OBJECT | FIELD_DEFINITION
directive @shareable repeatable on OBJECT | FIELD_DEFINITION
directive @inaccessible on FIELD_DEFINITION | OBJECT | INTERFACE | UNION | ARGUMENT_DEFINITION | SCALAR | ENUM | ENUM_VALUE | INPUT_OBJECT | INPUT_FIELD_DEFINITION
directive @override(from: String!, label: String) on FIELD_DEFINITION
directive @interfaceObject on OBJECT
directive @extends on OBJECT | INTERFACE
directive @tag(name: String!) repeatable on FIELD_DEFINITION | OBJECT | INTERFACE | UNION | ARGUMENT_DEFINITION | SCALAR | ENUM | ENUM_VALUE | INPUT_OBJECT | INPUT_FIELD_DEFINITION
"""


@dataclass
class LocalSubgraph:
    name: str
    sdl: str
    root: Mapping[str, Any] = field(default_factory=dict)
    entities: Mapping[str, list[dict[str, Any]]] = field(default_factory=dict)
    received: list[str] = field(default_factory=list)
    schema: GraphQLSchema = field(init=False)
    _facts: Subgraph = field(init=False)

    def __post_init__(self) -> None:
        self._facts = load_subgraph(self.name, f"local://{self.name}", self.sdl)
        types = self._facts.schema.type_map
        # `_Entity` holds object types only: an interface entity's objects are its
        # implementations (found under the interface's name in `entities`)
        keyed = sorted(
            {n for n in self._facts.keys if isinstance(types.get(n), GraphQLObjectType)}
            | {
                t.name
                for n in self._facts.keys
                if isinstance(types.get(n), GraphQLInterfaceType)
                for t in self._facts.schema.get_possible_types(types[n])  # type: ignore[arg-type]
            }
        )
        extra = _PLUMBING
        if keyed:
            extra += f"union _Entity = {' | '.join(keyed)}\n"
            extra += "extend type Query { _entities(representations: [_Any!]!): [_Entity]! }\n"
        if not re.search(r"\btype\s+Query\b", self.sdl):
            extra += "type Query { _service: _Service! }\n"
        else:
            extra += "extend type Query { _service: _Service! }\n"
        self.schema = build_schema(self.sdl + extra, assume_valid_sdl=True)

    def find(self, representation: Mapping[str, Any]) -> dict[str, Any] | None:
        """The stored object a representation stands for, merged with it."""
        type_name = representation["__typename"]
        for obj in self.entities.get(type_name, []):
            for key in self._facts.keys.get(type_name, []):
                names = [s.name.value for s in key.selection.selections]  # type: ignore[attr-defined]
                if all(n in representation and obj.get(n) == representation[n] for n in names):
                    # a stored `__typename` names an interface entity's concrete type
                    return {**obj, **representation, "__typename": obj.get("__typename", type_name)}
        return None

    async def execute(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        self.received.append(str(payload["query"]))
        root = {
            **self.root,
            "_service": {"sdl": self.sdl},
            "_entities": lambda _info, representations: [self.find(r) for r in representations],
        }
        result = await graphql(
            self.schema,
            str(payload["query"]),
            root_value=root,
            variable_values=payload.get("variables"),
            field_resolver=_resolve,
        )
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = [e.formatted for e in result.errors]
        return body


def _resolve(source: Any, info: GraphQLResolveInfo[Any], **args: Any) -> Any:
    value = source.get(info.field_name) if isinstance(source, Mapping) else None
    if callable(value):
        return value(source if info.parent_type.name not in _ROOTS else info, **args)
    return value


_ROOTS = frozenset({"Query", "Mutation"})


class LocalTransport(Transport):
    """The gateway's transport, answered by `LocalSubgraph`s (urls `local://<name>`)."""

    def __init__(self, *subgraphs: LocalSubgraph) -> None:
        super().__init__(timeout=5)
        self.subgraphs: dict[str, LocalSubgraph] = {s.name: s for s in subgraphs}

    @property
    def urls(self) -> dict[str, str]:
        return {name: f"local://{name}" for name in self.subgraphs}

    async def post(
        self,
        subgraph: str,
        url: str,
        payload: Mapping[str, Any],
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        return await self.subgraphs[subgraph].execute(payload)


async def local_gateway(*subgraphs: LocalSubgraph, refused: bool = False) -> Gateway:
    """A started gateway over the subgraphs, composed from their SDL; unless `refused`,
    every subgraph must compose (no subgraph silently left out)."""
    transport = LocalTransport(*subgraphs)
    gateway = Gateway(
        Settings(subgraphs=transport.urls, poll_interval_seconds=0), transport=transport
    )
    await gateway.start()
    if not refused and gateway.last_composition_error is not None:
        await gateway.stop()
        raise AssertionError(gateway.last_composition_error)
    return gateway


def plan_text(gateway: Gateway, query: str, variables: Mapping[str, Any] | None = None) -> str:
    """The printed plan the gateway makes for the query."""
    supergraph = gateway.supergraph
    assert supergraph is not None, gateway.last_composition_error
    document = parse(query)
    operation = get_operation_ast(document, None)
    assert operation is not None
    values = get_variable_values(
        supergraph.schema, operation.variable_definitions or (), dict(variables or {})
    )
    assert not isinstance(values, list), values
    normalized = normalize(supergraph.schema, document, operation, values)
    return print_plan(build_plan(supergraph, normalized))
