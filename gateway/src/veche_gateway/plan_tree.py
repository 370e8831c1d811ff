"""The query plan: a tree of typed nodes, and its printed form.

```
QueryPlan ── node: PlanNode
PlanNode = Sequence   children run one after another
         | Parallel   children run together
         | Fetch      one request to a subgraph; its data merges at the response root
         | Flatten    one `_entities` request for the objects found at its inputs' paths
```

A `Fetch` carries everything the executor needs as data: the subgraph, the
document, the client variables it forwards, and the response keys it fills.
A `Flatten` batches the places in the response that need fields from one
subgraph at one point of the plan into one request, one `_entities` field
per place (Apollo's planner would send one fetch per path); each
`EntityInput` says where its objects are, which variable carries their
representations, and how to build one from an object (`KeyRename`: the
input rewrite from the planner's alias to the key field's name).

Every object the plan fetches carries its concrete type under
`TYPENAME_KEY`: the one naming contract between planner and executor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

from graphql import OperationType

from veche_gateway.model import FieldTree

TYPENAME_KEY = "_veche_t"

# Where objects sit in the response: (response key, concrete type of the object
# holding it) per step. The types keep apart objects that share response keys
# under different types (`... on A { x: f } ... on B { x: g }`).
PlanPath = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class KeyRename:
    """Input rewrite: a representation's `name` is the object's value under `alias`;
    with a `shape` (a `@requires` with a sub-selection), only the fields it names,
    each object's type given as `__typename`."""

    alias: str
    name: str
    shape: FieldTree | None = None


@dataclass(frozen=True)
class EntityInput:
    """One `_entities` field of a `Flatten`'s fetch: the objects it completes."""

    alias: str  # the `_entities` field's alias in the document
    variable: str  # the variable holding its representations
    path: PlanPath
    # concrete type -> how to build a representation from an object of that type
    representations: Mapping[str, tuple[KeyRename, ...]]
    # concrete type -> the client response keys it fills in each object: the fields a
    # failure leaves null (the planner's own aliases left out)
    fills: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # concrete type -> the `__typename` its representations carry where the subgraph
    # knows it by another name (an `@interfaceObject`): the input's value setter
    typenames: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ResponseRename:
    """Output rewrite: in the fetch's data, objects at `path` (response keys from its
    root, lists flattened) hold under `alias` what the client knows as `key` (two
    fragments' same-named fields of different types cannot share a key there)."""

    path: tuple[str, ...]
    alias: str
    key: str


@dataclass(frozen=True)
class Fetch:
    subgraph: str
    document: str
    variable_usages: tuple[str, ...]  # client variables forwarded to the subgraph
    response_keys: tuple[str, ...] = ()  # root fields it fills (root fetches)
    renames: tuple[ResponseRename, ...] = ()


@dataclass(frozen=True)
class Flatten:
    inputs: tuple[EntityInput, ...]
    fetch: Fetch


@dataclass(frozen=True)
class Sequence:
    nodes: tuple[PlanNode, ...]


@dataclass(frozen=True)
class Parallel:
    nodes: tuple[PlanNode, ...]


PlanNode: TypeAlias = Sequence | Parallel | Fetch | Flatten


@dataclass(frozen=True)
class QueryPlan:
    operation: OperationType
    node: PlanNode | None  # None: nothing to fetch (only `__typename` or introspection)


def sequence(nodes: list[PlanNode]) -> PlanNode | None:
    """A `Sequence` of the nodes, without the wrapper for one and None for none."""
    return None if not nodes else nodes[0] if len(nodes) == 1 else Sequence(tuple(nodes))


def parallel(nodes: list[PlanNode]) -> PlanNode | None:
    return None if not nodes else nodes[0] if len(nodes) == 1 else Parallel(tuple(nodes))


# --- printing -----------------------------------------------------------------------


def print_plan(plan: QueryPlan) -> str:
    """The plan as indented text: for snapshot tests and `extensions.queryPlan`."""
    lines = ["QueryPlan {"]
    if plan.node is not None:
        _print(plan.node, 1, lines)
    lines.append("}")
    return "\n".join(lines)


def _print(node: PlanNode, depth: int, lines: list[str]) -> None:
    pad = "  " * depth
    match node:
        case Sequence(nodes) | Parallel(nodes):
            lines.append(f"{pad}{type(node).__name__} {{")
            for child in nodes:
                _print(child, depth + 1, lines)
            lines.append(pad + "}")
        case Fetch():
            _print_fetch(node, depth, lines)
        case Flatten(inputs, fetch):
            lines.append(f"{pad}Flatten {{")
            for entity in inputs:
                renames = "; ".join(
                    f"{type_name}{_as(entity, type_name)} {{ {' '.join(_rename(r) for r in spec)} }}"
                    for type_name, spec in entity.representations.items()
                )
                where = print_path(entity.path)
                lines.append(f"{pad}  {entity.alias} at {where} <- ${entity.variable}: {renames}")
            _print_fetch(fetch, depth + 1, lines)
            lines.append(pad + "}")


def _print_fetch(fetch: Fetch, depth: int, lines: list[str]) -> None:
    pad = "  " * depth
    lines.append(f'{pad}Fetch(service: "{fetch.subgraph}") {{')
    lines.append(f"{pad}  {fetch.document}")
    for rename in fetch.renames:
        lines.append(f"{pad}  rename {'.'.join(rename.path)}.{rename.alias} -> {rename.key}")
    lines.append(pad + "}")


def _as(entity: EntityInput, type_name: str) -> str:
    sent = entity.typenames.get(type_name)
    return f" as {sent}" if sent else ""


def _rename(rename: KeyRename) -> str:
    text = rename.name if rename.alias == rename.name else f"{rename.name}: {rename.alias}"
    return text + (" " + _print_shape(rename.shape) if rename.shape else "")


def _print_shape(shape: FieldTree) -> str:
    return (
        "{ " + " ".join(k + (" " + _print_shape(v) if v else "") for k, v in shape.items()) + " }"
    )


def print_path(path: PlanPath) -> str:
    """`Query.feed > Poll.author`: each step as the holding type and the response key."""
    return " > ".join(f"{holder}.{key}" for key, holder in path)
