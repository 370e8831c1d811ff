"""Shaping the client's response from the merged subgraph data, without an executor.

A `Shaper` is compiled once per normalized operation (and cached beside its
plan): for every selection, per concrete type, the client's fields in the
client's order with their response keys, each field's output type unwrapped
into the steps completion takes (non-null, list, leaf, object, abstract).
Shaping a response is then one walk over the merged raw tree (keyed by the
client's response keys, objects typed by `TYPENAME_KEY`) that does what
GraphQL's CompleteValue does, as graphql-core's executor does it:

- `__typename` is the concrete type's name; planner-only keys never show;
- an abstract type's concrete type is the object's `TYPENAME_KEY`, checked
  to be an object type of the schema and a possible type, or a field error;
- leaves go through the type's output coercion (Int, Float, Boolean, enum
  values, ...): a value it refuses is a field error;
- a null (or an error) in a non-null position makes its nearest nullable
  parent null; each such error is reported once, at the path where it arose,
  with its location in the client's document, and siblings completed after it
  inside the nulled parent are not looked at (the executor stops there too).

Nulls that a reported subgraph failure already explains (`covered` paths) get
no "Cannot return null" error of their own: the failure was reported.
Introspection (`__schema`, `__type`) is answered by graphql-core from the
client schema (`needs_executor`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    FieldNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    GraphQLString,
    is_abstract_type,
    is_leaf_type,
    is_object_type,
)
from graphql.pyutils import inspect

from veche_gateway.normalize import INTROSPECTION_FIELDS, NormalizedOperation, Selection
from veche_gateway.plan_tree import TYPENAME_KEY

Path = tuple[str | int, ...]

# Kinds of completion steps
_LEAF, _OBJECT, _ABSTRACT, _LIST, _NON_NULL = range(5)
_MAX_INT = 2**31 - 1


@dataclass(eq=False)
class _Step:
    """One level of a field's output type."""

    kind: int
    type_name: str = ""
    inner: _Step | None = None  # _LIST and _NON_NULL
    leaf: GraphQLLeafType | None = None
    fast: type | None = None  # a Python type its output coercion passes through untouched
    fields: dict[str, tuple[_Field, ...]] = field(default_factory=dict)  # per concrete type


@dataclass(eq=False)
class _Field:
    key: str
    parent: str  # the concrete type holding it: for error messages
    name: str
    node: FieldNode
    step: _Step
    typename: bool = False
    non_null: bool = field(init=False)
    base: _Step = field(init=False)  # the step under an outer non-null

    def __post_init__(self) -> None:
        self.non_null = self.step.kind == _NON_NULL
        self.base = self.step.inner if self.step.inner and self.non_null else self.step


class _Propagate(Exception):
    """A field error on its way up to the nearest nullable position.

    `error` is None when the null it stands for was already reported."""

    def __init__(self, error: dict[str, Any] | None) -> None:
        self.error = error


class Shaper:
    """The response shape of one normalized operation."""

    def __init__(self, schema: GraphQLSchema, normalized: NormalizedOperation) -> None:
        self.schema = schema
        root_type = schema.get_root_type(normalized.kind)
        assert root_type is not None  # normalize() refused operations without one
        self.root_name = root_type.name
        self.needs_executor = any(
            f.name in INTROSPECTION_FIELDS for f in normalized.root.fields(root_type.name)
        )
        self.root = self._fields(root_type, normalized.root)

    # --- compiling ------------------------------------------------------------------

    def _fields(
        self, parent: GraphQLObjectType | GraphQLInterfaceType, selection: Selection
    ) -> tuple[_Field, ...]:
        fields: list[_Field] = []
        for f in selection.fields(parent.name):
            if f.name == "__typename":
                step = _Step(_NON_NULL, inner=self._leaf(GraphQLString))
                fields.append(_Field(f.key, parent.name, f.name, f.node, step, typename=True))
                continue
            definition = parent.fields.get(f.name)
            if definition is None:  # introspection: answered by the executor
                continue
            fields.append(
                _Field(f.key, parent.name, f.name, f.node, self._step(definition.type, f.selection))
            )
        return tuple(fields)

    def _step(self, output: GraphQLOutputType, selection: Selection | None) -> _Step:
        if isinstance(output, GraphQLNonNull):
            return _Step(_NON_NULL, inner=self._step(output.of_type, selection))
        if isinstance(output, GraphQLList):
            return _Step(_LIST, inner=self._step(output.of_type, selection))
        if is_leaf_type(output):
            return self._leaf(output)
        kind = _ABSTRACT if is_abstract_type(output) else _OBJECT
        step = _Step(kind, type_name=output.name)
        if selection is not None:
            for concrete in selection.by_type:
                object_type = self.schema.type_map[concrete]
                # an interface no object implements holds its own fields (normalize.py)
                assert isinstance(object_type, GraphQLObjectType | GraphQLInterfaceType)
                step.fields[concrete] = self._fields(object_type, selection)
        return step

    @staticmethod
    def _leaf(leaf: GraphQLLeafType) -> _Step:
        # these built-in scalars output a value of their own Python type unchanged (Int
        # within 32 bits)
        fast = {"String": str, "ID": str, "Boolean": bool, "Float": float, "Int": int}
        return _Step(_LEAF, type_name=leaf.name, leaf=leaf, fast=fast.get(leaf.name))

    # --- shaping --------------------------------------------------------------------

    def shape(
        self, raw: Mapping[str, Any], covered: Iterable[Path] = ()
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The response's `data` and the field errors shaping found (as the spec formats
        them, without extensions)."""
        run = _Shaping(self, tuple(covered))
        try:
            data = run.object(self.root, raw, self.root_name, ())
        except _Propagate as exc:
            run.record(exc)
            data = None
        return data, run.errors


class _Shaping:
    """One response being shaped."""

    def __init__(self, shaper: Shaper, covered: tuple[Path, ...]) -> None:
        self.schema = shaper.schema
        self.covered = covered
        self.errors: list[dict[str, Any]] = []

    def record(self, exc: _Propagate) -> None:
        if exc.error is not None:
            self.errors.append(exc.error)

    def object(
        self, fields: tuple[_Field, ...], value: Mapping[str, Any], concrete: str, path: Path
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields:
            if f.typename:
                out[f.key] = concrete
                continue
            raw = value.get(f.key)
            # the commonest cases first: a leaf value its type outputs unchanged
            base = f.base
            if _unchanged(base.fast, raw):
                out[f.key] = raw
                continue
            if f.non_null:
                out[f.key] = self.complete(f.step, raw, f, (*path, f.key))
                continue
            if raw is None:
                out[f.key] = None
                continue
            try:
                out[f.key] = self.complete(f.step, raw, f, (*path, f.key))
            except _Propagate as exc:  # a nullable field: the error stops here
                self.record(exc)
                out[f.key] = None
        return out

    def complete(self, step: _Step, value: Any, f: _Field, path: Path) -> Any:
        kind = step.kind
        if kind == _NON_NULL:
            inner = step.inner
            assert inner is not None
            completed = self.complete(inner, value, f, path)
            if completed is None:
                raise self.null(f, path)
            return completed
        if value is None:
            return None
        if kind == _LEAF:
            if _unchanged(step.fast, value):
                return value
            return self.leaf(step, value, f, path)
        if kind == _LIST:
            if not isinstance(value, list):
                raise self.error(
                    f"Expected Iterable, but did not find one for field '{f.parent}.{f.name}'.",
                    f,
                    path,
                )
            item = step.inner
            assert item is not None
            items: list[Any] = []
            for index, entry in enumerate(value):
                at = (*path, index)
                if item.kind == _NON_NULL:
                    items.append(self.complete(item, entry, f, at))
                    continue
                try:
                    items.append(self.complete(item, entry, f, at))
                except _Propagate as exc:  # a nullable item: the error stops here
                    self.record(exc)
                    items.append(None)
            return items
        if not isinstance(value, dict):
            value = {}  # an object's fields are all null then, as the executor sees it
        if kind == _OBJECT:
            return self.object(step.fields.get(step.type_name, ()), value, step.type_name, path)
        concrete = self.runtime_type(step, value, f, path)
        return self.object(step.fields.get(concrete, ()), value, concrete, path)

    def runtime_type(self, step: _Step, value: Mapping[str, Any], f: _Field, path: Path) -> str:
        name = value.get(TYPENAME_KEY)
        abstract = step.type_name
        if name is None:
            message = (
                f"Abstract type '{abstract}' must resolve to an Object type at runtime"
                f" for field '{f.parent}.{f.name}'. Either the '{abstract}' type should provide"
                " a 'resolve_type' function or each possible type should provide"
                " an 'is_type_of' function."
            )
            raise self.error(message, f, path)
        if not isinstance(name, str):
            message = (
                f"Abstract type '{abstract}' must resolve to an Object type at runtime"
                f" for field '{f.parent}.{f.name}' with value {inspect(value)},"
                f" received '{inspect(name)}', which is not a valid Object type name."
            )
            raise self.error(message, f, path)
        if name in step.fields:  # a possible type the client selected fields of
            return name
        runtime = self.schema.type_map.get(name)
        if runtime is None:
            message = (
                f"Abstract type '{abstract}' was resolved to a type"
                f" '{name}' that does not exist inside the schema."
            )
            raise self.error(message, f, path)
        if not is_object_type(runtime):
            message = f"Abstract type '{abstract}' was resolved to a non-object type '{name}'."
            raise self.error(message, f, path)
        abstract_type = self.schema.type_map[abstract]
        assert is_abstract_type(abstract_type)
        if not self.schema.is_sub_type(abstract_type, runtime):
            message = f"Runtime Object type '{name}' is not a possible type for '{abstract}'."
            raise self.error(message, f, path)
        return name

    def leaf(self, step: _Step, value: Any, f: _Field, path: Path) -> Any:
        assert step.leaf is not None
        try:
            coerced = step.leaf.coerce_output_value(value)
        except Exception as exc:  # the type refuses the value: a field error
            message = exc.message if isinstance(exc, GraphQLError) else str(exc)
            raise self.error(message, f, path, exc) from None
        if coerced is None:
            message = (
                f"Expected `{inspect(step.leaf)}.coerce_output_value({inspect(value)})`"
                f" to return non-nullable value, returned: {inspect(coerced)}"
            )
            raise self.error(message, f, path)
        return coerced

    def null(self, f: _Field, path: Path) -> _Propagate:
        if any(_related(path, c) for c in self.covered):
            return _Propagate(None)  # the subgraph failure that left it null is reported
        return self.error(
            f"Cannot return null for non-nullable field {f.parent}.{f.name}.", f, path
        )

    @staticmethod
    def error(message: str, f: _Field, path: Path, original: Exception | None = None) -> _Propagate:
        located = GraphQLError(message, [f.node], path=list(path), original_error=original)
        return _Propagate(dict(located.formatted))


def _unchanged(fast: type | None, value: Any) -> bool:
    """The value is one its scalar type outputs as it is (an Int within 32 bits)."""
    if fast is int:
        return type(value) is int and -_MAX_INT - 1 <= value <= _MAX_INT
    return fast is not None and type(value) is fast


def _related(a: Path, b: Path) -> bool:
    shorter = min(len(a), len(b))
    return a[:shorter] == b[:shorter]
