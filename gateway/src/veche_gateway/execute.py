"""Running a query plan and shaping the client's response.

The executor is one `match` over the plan's node kinds (`plan_tree.py`):
a `Sequence` runs its children in order, a `Parallel` together, a `Fetch`
merges its data at the root, a `Flatten` builds representations from the
objects at its inputs' paths (applying each input's `KeyRename`s) and merges
each `_entities` result back into the objects it stands for. Fetched data is
merged into one raw tree keyed by the client's response keys. The plan's
`Shaper` (`shape.py`) then builds the client's response from that tree: field
order and aliases, `__typename`, abstract types, leaf coercion and the spec's
null propagation. Nulls that a reported subgraph failure already explains do
not get a second "Cannot return null" error. An operation with introspection
is executed by graphql-core against the client schema over the tree instead.

A fetch that fails (subgraph down, timing out, answering 5xx, or its circuit
breaker open) costs only the fields it would have filled: each gets one
`SUBGRAPH_UNAVAILABLE` error at its client path (list indices included), and
the spec's null propagation takes a non-null one up to its nearest nullable
parent. Every fetch goes to one of its subgraph's instances (`instances.py`) and
passes that instance's breaker: refused at once while it is open, its outcome
recorded otherwise.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    GraphQLAbstractType,
    GraphQLResolveInfo,
    GraphQLSchema,
    execute_sync,
)

from veche_gateway.breaker import CircuitOpen
from veche_gateway.errors import INTERNAL, SUBGRAPH_UNAVAILABLE, PlanError
from veche_gateway.instances import InstancePool, first_instance
from veche_gateway.language import said
from veche_gateway.plan_tree import (
    TYPENAME_KEY,
    EntityInput,
    Fetch,
    Flatten,
    Parallel,
    PlanNode,
    PlanPath,
    QueryPlan,
    Sequence,
)
from veche_gateway.shape import Shaper
from veche_gateway.transport import SubgraphUnavailable, Transport

Path = tuple[str | int, ...]
log = logging.getLogger("veche_gateway")


def _resolve_field(source: Any, info: GraphQLResolveInfo[Any], **_: Any) -> Any:
    if isinstance(source, dict):
        return source.get(info.path.key)
    return None


def _resolve_type(value: Any, info: GraphQLResolveInfo[Any], abstract: GraphQLAbstractType) -> Any:
    return value.get(TYPENAME_KEY) if isinstance(value, dict) else None


def merge(target: dict[str, Any], source: Mapping[str, Any]) -> None:
    """Deep-merge one fetch's data into the raw tree."""
    for key, value in source.items():
        present = target.get(key)
        if isinstance(present, dict) and isinstance(value, dict):
            merge(present, value)
        elif isinstance(present, list) and isinstance(value, list) and len(present) == len(value):
            for index, (old, new) in enumerate(zip(present, value, strict=True)):
                if isinstance(old, dict) and isinstance(new, dict):
                    merge(old, new)
                else:
                    present[index] = new
        else:
            target[key] = value


def _objects_at(raw: Any, path: PlanPath) -> list[tuple[dict[str, Any], Path]]:
    """Every object reached by following the plan path, lists flattened.

    At each step the holding object must be of the step's type (objects with
    no `_veche_t`, like the root, hold whatever the plan says).
    """
    found: list[tuple[dict[str, Any], Path]] = []

    def walk(value: Any, rest: PlanPath, at: Path) -> None:
        if isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, rest, (*at, index))
        elif isinstance(value, dict):
            if not rest:
                found.append((value, at))
                return
            key, holder = rest[0]
            if value.get(TYPENAME_KEY, holder) == holder:
                walk(value.get(key), rest[1:], (*at, key))

    walk(raw, path, ())
    return found


@dataclass
class _Run:
    raw: dict[str, Any] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    covered: list[Path] = field(default_factory=list)  # where reported failures left nulls
    # Objects a failed entity fetch was to complete (by id), with its failure: a later
    # fetch that needed key fields from it there reports the same failure.
    incomplete: dict[int, SubgraphUnavailable] = field(default_factory=dict)

    def unavailable(self, exc: SubgraphUnavailable, nulled: Iterable[Path]) -> None:
        """One error per client field the failed fetch leaves null, at its path."""
        for path in nulled:
            self.errors.append(
                {
                    "message": said(str(exc), f"Сервис «{exc.subgraph}» недоступен ({exc.reason})"),
                    "path": list(path),
                    "extensions": {"code": SUBGRAPH_UNAVAILABLE, "serviceName": exc.subgraph},
                }
            )
            self.covered.append(path)

    def subgraph_error(
        self, subgraph: str, error: Any, path: Path | None, fallback: list[Path]
    ) -> None:
        if not isinstance(error, dict):
            error = {"message": str(error)}
        out: dict[str, Any] = {"message": str(error.get("message", "Subgraph error"))}
        if path is not None:
            out["path"] = list(path)
            self.covered.append(path)
        else:
            self.covered.extend(fallback)
        extensions = dict(error.get("extensions") or {})
        extensions.setdefault("code", INTERNAL)  # the public contract: every error has a code
        extensions.setdefault("serviceName", subgraph)
        out["extensions"] = extensions
        self.errors.append(out)


class Executor:
    def __init__(
        self,
        transport: Transport,
        urls: Mapping[str, str],
        pools: Mapping[str, InstancePool] | None = None,
    ) -> None:
        self.transport = transport
        self.urls = urls
        self.pools = pools or {}

    async def run(
        self,
        schema: GraphQLSchema,
        plan: QueryPlan,
        shaper: Shaper,
        document: DocumentNode,
        operation_name: str | None,
        variables: Mapping[str, Any],
        headers: Mapping[str, str],
    ) -> dict[str, Any]:
        run = _Run()
        if plan.node is not None:
            await self._node(run, plan.node, variables, headers)
        if shaper.needs_executor:
            return self._execute(run, schema, document, operation_name, variables)
        return _shaped(run, shaper)

    async def run_event(
        self,
        plan: QueryPlan,
        shaper: Shaper,
        body: Mapping[str, Any],
        variables: Mapping[str, Any],
        headers: Mapping[str, str],
    ) -> dict[str, Any]:
        """One event of a subscription: `body` is what the owning subgraph sent for the
        plan's root fetch; the rest of the plan (other subgraphs' fields) runs as a
        query's does, and the response is shaped the same way."""
        root, rest = subscription_root(plan)
        run = _Run()
        _absorb_root(run, root, body)
        for node in rest:
            await self._node(run, node, variables, headers)
        return _shaped(run, shaper)

    async def _node(
        self,
        run: _Run,
        node: PlanNode,
        variables: Mapping[str, Any],
        headers: Mapping[str, str],
    ) -> None:
        match node:
            case Sequence(nodes):
                for child in nodes:
                    await self._node(run, child, variables, headers)
            case Parallel(nodes):
                await asyncio.gather(*(self._node(run, c, variables, headers) for c in nodes))
            case Fetch():
                await self._root(run, node, variables, headers)
            case Flatten():
                await self._entities(run, node, variables, headers)

    async def _post(
        self,
        subgraph: str,
        query: str,
        names: tuple[str, ...],
        variables: Mapping[str, Any],
        extra: Mapping[str, Any],
        headers: Mapping[str, str],
    ) -> dict[str, Any]:
        sent = {n: variables[n] for n in names if n in variables}
        sent.update(extra)
        payload: dict[str, Any] = {"query": query}
        if sent:
            payload["variables"] = sent
        pool = self.pools.get(subgraph)
        if pool is None:
            url = first_instance(self.urls[subgraph])
            return await self.transport.post(subgraph, url, payload, headers)
        mutation = query.lstrip().startswith("mutation")  # never sent twice
        return await pool.post(self.transport, payload, headers, mutation=mutation)

    async def _root(
        self,
        run: _Run,
        fetch: Fetch,
        variables: Mapping[str, Any],
        headers: Mapping[str, str],
    ) -> None:
        keys: list[Path] = [(k,) for k in fetch.response_keys]
        try:
            body = await self._post(
                fetch.subgraph, fetch.document, fetch.variable_usages, variables, {}, headers
            )
        except SubgraphUnavailable as exc:
            _log_unavailable(headers, exc)
            run.unavailable(exc, keys)
            return
        _absorb_root(run, fetch, body)

    async def _entities(
        self,
        run: _Run,
        flatten: Flatten,
        variables: Mapping[str, Any],
        headers: Mapping[str, str],
    ) -> None:
        fetch = flatten.fetch
        extra: dict[str, Any] = {}
        owners: list[list[list[tuple[dict[str, Any], Path]]]] = []
        for entity in flatten.inputs:
            representations, objects, keyless = _representations(run.raw, entity)
            extra[entity.variable] = representations
            owners.append(objects)
            for obj, path, type_name in keyless:
                cause = run.incomplete.get(id(obj))
                if cause is not None:  # the helper fetch that had the key fields failed
                    run.unavailable(cause, _under(path, entity.fills.get(type_name, ())))
        targets = [target for objects in owners for found in objects for target in found]
        every = [p for _, p in targets]
        if not every:
            return
        try:
            body = await self._post(
                fetch.subgraph, fetch.document, fetch.variable_usages, variables, extra, headers
            )
        except SubgraphUnavailable as exc:
            _log_unavailable(headers, exc)
            run.unavailable(exc, _nulled(flatten.inputs, owners))
            for obj, _ in targets:
                run.incomplete[id(obj)] = exc
            return
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        if data:
            _rename(data, fetch)
        for entity, objects in zip(flatten.inputs, owners, strict=True):
            results = data.get(entity.alias) if data else None
            if not isinstance(results, list):
                continue
            for result, found in zip(results, objects, strict=False):
                if isinstance(result, dict):
                    for target, _ in found:
                        merge(target, result)
        aliases = {e.alias: objects for e, objects in zip(flatten.inputs, owners, strict=True)}
        for error in body.get("errors") or ():
            raw_path = error.get("path") if isinstance(error, dict) else None
            if (
                isinstance(raw_path, list)
                and len(raw_path) >= 2
                and raw_path[0] in aliases
                and isinstance(raw_path[1], int)
                and 0 <= raw_path[1] < len(aliases[raw_path[0]])
            ):
                # a representation stands for every object that shares it: each is nulled
                for _, at in aliases[raw_path[0]][raw_path[1]]:
                    run.subgraph_error(fetch.subgraph, error, at + tuple(raw_path[2:]), every)
            else:
                run.subgraph_error(fetch.subgraph, error, None, every)

    def _execute(
        self,
        run: _Run,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation_name: str | None,
        variables: Mapping[str, Any],
    ) -> dict[str, Any]:
        """Introspection: graphql-core's executor over the client schema and the raw tree."""
        result = execute_sync(
            schema,
            document,
            root_value=run.raw,
            variable_values=dict(variables),
            operation_name=operation_name,
            field_resolver=_resolve_field,
            type_resolver=_resolve_type,
        )
        errors = list(run.errors)
        for error in result.errors or ():
            path = tuple(error.path or ())
            if error.message.startswith("Cannot return null") and any(
                _related(path, c) for c in run.covered
            ):
                continue
            formatted: dict[str, Any] = dict(error.formatted)
            formatted["extensions"] = {"code": INTERNAL, **(formatted.get("extensions") or {})}
            errors.append(formatted)
        response: dict[str, Any] = {}
        if errors:
            response["errors"] = errors
        response["data"] = result.data
        return response


def subscription_root(plan: QueryPlan) -> tuple[Fetch, tuple[PlanNode, ...]]:
    """A subscription's plan: its root fetch (one field of one subgraph), then the rest."""
    node = plan.node
    if isinstance(node, Fetch):
        return node, ()
    if isinstance(node, Sequence) and node.nodes and isinstance(node.nodes[0], Fetch):
        return node.nodes[0], node.nodes[1:]
    raise PlanError("A subscription must select one field of one subgraph at its root")


def _absorb_root(run: _Run, fetch: Fetch, body: Mapping[str, Any]) -> None:
    """A root fetch's answer merged into the raw tree, its errors at their paths."""
    keys: list[Path] = [(k,) for k in fetch.response_keys]
    data = body.get("data")
    if isinstance(data, dict):
        _rename(data, fetch)
        merge(run.raw, data)
    elif body.get("errors"):
        # The subgraph propagated a non-null root field's error to `data: null`:
        # its errors explain every field of this fetch, which need no error of ours.
        run.covered.extend(keys)
    for error in body.get("errors") or ():
        path = error.get("path") if isinstance(error, dict) else None
        run.subgraph_error(
            fetch.subgraph, error, tuple(path) if isinstance(path, list) else None, keys
        )


def _shaped(run: _Run, shaper: Shaper) -> dict[str, Any]:
    """The client's response from the raw tree: shaped, every error coded."""
    data, shaped = shaper.shape(run.raw, run.covered)
    errors = run.errors
    for error in shaped:
        error["extensions"] = {"code": INTERNAL, **(error.get("extensions") or {})}
        errors.append(error)
    response: dict[str, Any] = {}
    if errors:
        response["errors"] = errors
    response["data"] = data
    return response


def _rename(data: dict[str, Any], fetch: Fetch) -> None:
    """Apply the fetch's output rewrites: each alias back to the client's key, deepest
    first (a nested alias's path holds its parent's alias)."""
    for rename in reversed(fetch.renames):
        for obj in _dicts_at(data, rename.path):
            if rename.alias in obj:
                obj[rename.key] = obj.pop(rename.alias)


def _dicts_at(value: Any, path: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    if isinstance(value, list):
        for item in value:
            yield from _dicts_at(item, path)
    elif isinstance(value, dict):
        if not path:
            yield value
        else:
            yield from _dicts_at(value.get(path[0]), path[1:])


def _log_unavailable(headers: Mapping[str, str], exc: SubgraphUnavailable) -> None:
    # an open breaker was logged once when it opened, not once per refused fetch
    level = logging.DEBUG if isinstance(exc, CircuitOpen) else logging.WARNING
    log.log(level, "request %s: %s", headers.get("X-Request-Id"), exc)


def _under(path: Path, keys: Iterable[str]) -> list[Path]:
    return [(*path, key) for key in keys]


def _nulled(
    inputs: tuple[EntityInput, ...], owners: list[list[list[tuple[dict[str, Any], Path]]]]
) -> Iterator[Path]:
    """The client paths an entity fetch would have filled: its fields on every object."""
    for entity, objects in zip(inputs, owners, strict=True):
        for found in objects:
            for obj, path in found:
                type_name = obj.get(TYPENAME_KEY)
                if isinstance(type_name, str):
                    yield from _under(path, entity.fills.get(type_name, ()))


def _related(a: Path, b: Path) -> bool:
    shorter = min(len(a), len(b))
    return a[:shorter] == b[:shorter]


def _project(value: Any, shape: Mapping[str, Any]) -> Any:
    """A fetched value cut to a `@requires` selection, its objects' types as `__typename`."""
    if isinstance(value, list):
        return [_project(item, shape) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    if TYPENAME_KEY in value:
        out["__typename"] = value[TYPENAME_KEY]
    for key, sub in shape.items():
        if key in value:
            out[key] = _project(value[key], sub) if sub else value[key]
    return out


def _representations(
    raw: dict[str, Any], entity: EntityInput
) -> tuple[
    list[dict[str, Any]],
    list[list[tuple[dict[str, Any], Path]]],
    list[tuple[dict[str, Any], Path, str]],
]:
    """Deduplicated representations and, for each, the objects it stands for; then the
    objects left without their key fields (with their types): nothing to ask for them."""
    index: dict[str, int] = {}
    representations: list[dict[str, Any]] = []
    objects: list[list[tuple[dict[str, Any], Path]]] = []
    keyless: list[tuple[dict[str, Any], Path, str]] = []
    for obj, path in _objects_at(raw, entity.path):
        type_name = obj.get(TYPENAME_KEY)
        if not isinstance(type_name, str) or type_name not in entity.representations:
            continue
        spec = entity.representations[type_name]
        if any(rename.alias not in obj for rename in spec):
            keyless.append((obj, path, type_name))  # a fetch before this one failed here
            continue
        representation: dict[str, Any] = {"__typename": entity.typenames.get(type_name, type_name)}
        for rename in spec:  # the input rewrite, as the plan gives it
            value = obj[rename.alias]
            representation[rename.name] = _project(value, rename.shape) if rename.shape else value
        fingerprint = json.dumps(representation, sort_keys=True)
        if fingerprint not in index:
            index[fingerprint] = len(representations)
            representations.append(representation)
            objects.append([])
        objects[index[fingerprint]].append((obj, path))
    return representations, objects, keyless
