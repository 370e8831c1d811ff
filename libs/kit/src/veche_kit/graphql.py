"""Strawberry glue every subgraph shares: error codes, the caller, connections.

- `ErrorCodes` turns a `DomainError` into a GraphQL error with
  `extensions.code` and its message in the request's language (`said`); a malformed document or a wrong variable
  type becomes BAD_USER_INPUT; anything unexpected is logged with its request
  id and shown to the client only as INTERNAL.
- `RequestContext` verifies the caller's token once per request and keeps
  one batching loader per key.
- `Connection[T]` is the Relay-style list every paginated field returns;
  `PageFirst` and `PageAfter` are its arguments; cursors are `veche_kit.cursors`'.
- `public_enum` publishes a domain enum with a description per value.
- `FederatedSchema` adds `OperationGuard` (`veche_kit.limits`): limits on the
  operation and on list and text inputs, checked before any resolver.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Annotated, Any, ClassVar, Generic, TypeVar

import strawberry
from graphql import (
    GraphQLEnumType,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLSyntaxError,
    is_specified_scalar_type,
)
from starlette.requests import Request
from strawberry.dataloader import DataLoader
from strawberry.extensions import SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.federation.schema import FederationAny
from strawberry.federation.schema_directives import ListSize
from strawberry.types import ExecutionContext
from strawberry.types.info import Info
from strawberry.types.unset import UNSET

from veche_kit.auth import Principal, TokenVerifier, bearer_token
from veche_kit.cursors import (
    ID_SHAPE,
    MAX_CURSOR_CHARS,
    decode_cursor,
    encode_cursor,
    id_after,
    position_after,
)
from veche_kit.errors import BadUserInputError, DomainError, UnauthenticatedError
from veche_kit.inputs import bounded, describe_bounds
from veche_kit.language import said
from veche_kit.limits import (
    QUERY_TOO_COMPLEX,
    DocumentCache,
    OperationGuard,
    OperationLimits,
    parse_error_code,
)
from veche_kit.logs import request_id_var

log = logging.getLogger(__name__)

__all__ = [
    "ID_SHAPE",
    "decode_cursor",
    "encode_cursor",
    "id_after",
    "position_after",
]

T = TypeVar("T")
K = TypeVar("K")
MAX_PAGE = 100
DEFAULT_PAGE = 20


def _coded(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    if isinstance(original, DomainError):
        message = said(original.message, original.ru)
        extensions = {"code": original.code, **original.extensions}
    elif isinstance(error, GraphQLSyntaxError):
        message, extensions = error.message, {"code": parse_error_code(error)}
    elif isinstance(original, RecursionError):
        message = said(
            "The operation or its input is nested too deeply.",
            "Операция или её входные данные вложены слишком глубоко.",
        )
        extensions = {"code": QUERY_TOO_COMPLEX}
    elif original is None or isinstance(original, GraphQLError):
        # Validation errors come coded (OperationGuard); the rest is variable coercion:
        # the input is wrong.
        extensions = dict(error.extensions or {})
        extensions.setdefault("code", "BAD_USER_INPUT")
        message = error.message
    else:
        request_id = request_id_var.get()
        log.error("unexpected error", exc_info=original, extra={"path": error.path})
        message = said(
            f"Something went wrong on our side (request id {request_id}); it has been logged.",
            f"Сбой на нашей стороне (id запроса {request_id}); он записан в журнал.",
        )
        extensions = {"code": "INTERNAL", "requestId": request_id}
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )


coded = _coded  # for streams that skip the extension (`veche_kit.live_ws`)


class ErrorCodes(SchemaExtension):
    """Gives every error a stable `extensions.code` and a message a person can act on."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = [_coded(error) for error in result.errors]


_STEPS = ("on_operation", "on_parse", "on_validate", "on_execute")


class _Hooks:
    """One step's generator hooks (`on_parse`, ...), entered as Strawberry's context
    managers enter them, without building an exit stack and a context manager per hook
    per request (a third of a cached `{ __typename }`). On an exception each hook is
    closed at its `yield` (the code after it does not run) and the exception goes on."""

    __slots__ = ("_hooks", "_running")

    def __init__(self, hooks: list[Callable[[], Iterator[None]]]) -> None:
        self._hooks = hooks
        self._running: list[Iterator[None]] = []

    def __enter__(self) -> None:
        for hook in self._hooks:
            generator = hook()
            next(generator)
            self._running.append(generator)

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        running, self._running = self._running, []
        for generator in reversed(running):
            if exc is not None:
                generator.close()  # type: ignore[attr-defined]
                continue
            try:
                next(generator)
            except StopIteration:
                continue
            raise RuntimeError(f"{generator} yielded more than once")

    async def __aenter__(self) -> None:
        self.__enter__()

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        self.__exit__(exc_type, exc, tb)


def _generator_hooks(extension_type: type) -> dict[str, bool]:
    """For each step: whether the type's hook is a generator (None-hooks count as one)."""
    plain: dict[str, bool] = {}
    for step in _STEPS:
        hook = getattr(extension_type, step)
        plain[step] = hook is getattr(SchemaExtension, step) or inspect.isgeneratorfunction(hook)
    return plain


class _HookRunner(SchemaExtensionsRunner):
    """Strawberry's runner, with `_Hooks` for every step whose hooks are all generators
    (ours are); any other kind of hook gets Strawberry's own context manager."""

    _kinds: ClassVar[dict[type, dict[str, bool]]] = {}

    def _step(self, step: str, fallback: Callable[[], Any]) -> Any:
        hooks: list[Callable[[], Iterator[None]]] = []
        for extension in self.extensions:
            kind = type(extension)
            if kind not in self._kinds:
                self._kinds[kind] = _generator_hooks(kind)
            if not self._kinds[kind][step]:
                return fallback()
            if getattr(kind, step) is not getattr(SchemaExtension, step):
                hooks.append(getattr(extension, step))
        return _Hooks(hooks)

    def operation(self) -> Any:
        return self._step("on_operation", super().operation)

    def parsing(self) -> Any:
        return self._step("on_parse", super().parsing)

    def validation(self) -> Any:
        return self._step("on_validate", super().validation)

    def executing(self) -> Any:
        return self._step("on_execute", super().executing)


class FederatedSchema(strawberry.federation.Schema):
    """A Federation v2 subgraph schema whose errors carry codes, whose operations are
    held to `OperationLimits` and whose list and text inputs to their stated maxima
    (`veche_kit.inputs`). `cached_documents` repeated operations skip parsing and
    validation."""

    def __init__(self, *, cached_documents: int = 256, **kwargs: Any) -> None:
        kwargs.setdefault("extensions", [])
        kwargs["extensions"] = [ErrorCodes, OperationGuard, *kwargs["extensions"]]
        super().__init__(**kwargs)
        self.documents = DocumentCache(cached_documents)
        describe_bounds(self._schema)

    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> SchemaExtensionsRunner:
        return _HookRunner(execution_context=execution_context, extensions=extensions)

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        # ErrorCodes has already logged what was unexpected; refusals are not errors of ours.
        return None

    def entities_resolver(
        self, info: Info, representations: list[FederationAny]
    ) -> list[FederationAny]:
        # Only a gateway calls `_entities`, but anyone who reaches a subgraph can:
        # a representation that names no entity of ours is the caller's mistake.
        entities = {
            name
            for name, type_ in self.schema_converter.type_map.items()
            if hasattr(getattr(type_.definition, "origin", None), "resolve_reference")
        }
        for index, representation in enumerate(representations):
            fields = representation if isinstance(representation, dict) else {}
            name = fields.get("__typename")
            if name not in entities:
                raise BadUserInputError(
                    f"representations[{index}] must be an object whose __typename is one of "
                    f"this subgraph's entities: {', '.join(sorted(entities))}",
                    field="representations",
                    ru=(
                        f"representations[{index}] должен быть объектом, чей __typename — одна из сущностей "
                        f"этого подграфа: {', '.join(sorted(entities))}"
                    ),
                )
        return super().entities_resolver(info, representations)


@dataclass
class RequestContext:
    """Per-request state: the HTTP request, the verified caller, loaders."""

    request: Request
    verifier: TokenVerifier
    loaders: dict[str, Any] = field(default_factory=dict)
    limits: OperationLimits = field(default_factory=OperationLimits)
    memo: dict[Hashable, asyncio.Future[Any]] = field(default_factory=dict)
    # A websocket's `connection_init` payload (Strawberry sets it); its `Authorization`
    # stands in for the header a browser cannot put on a websocket.
    connection_params: dict[str, Any] | None = None
    _principal: Principal | None = None
    _resolved: bool = False

    async def principal(self) -> Principal | None:
        """The caller, or None when no token was sent; UNAUTHENTICATED for a bad token."""
        if not self._resolved:
            token = bearer_token(self._authorization())
            self._principal = await self.verifier.verify(token) if token else None
            self._resolved = True
        return self._principal

    def _authorization(self) -> str | None:
        given = self.request.headers.get("authorization")
        if given is None and self.connection_params is not None:
            param = self.connection_params.get("Authorization")
            given = param if isinstance(param, str) else None
        return given

    async def recheck(self) -> None:
        """Verify the caller's token again (a subscription lives longer than a request):
        UNAUTHENTICATED once it has expired, or the user signed out or changed role."""
        if self._resolved and self._principal is not None:
            self._resolved = False
            await self.principal()

    def renew(self) -> None:
        """Forget what was loaded: a subscription's next update reads the store again
        (its context lives as long as its socket)."""
        self.loaders.clear()
        self.memo.clear()

    async def require_user(self) -> Principal:
        principal = await self.principal()
        if principal is None:
            raise UnauthenticatedError(
                "Sign in first: send 'Authorization: Bearer <access token>'.",
                ru="Сначала войдите: отправьте 'Authorization: Bearer <access token>'.",
            )
        return principal

    async def once(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        """`compute()` run once per request for `key` (e.g. a field and its arguments):
        aliases of one field share its result instead of repeating the work."""
        if key not in self.memo:
            self.memo[key] = asyncio.ensure_future(compute())
        result: T = await asyncio.shield(self.memo[key])
        return result

    def loader(
        self, key: str, load_fn: Callable[[list[K]], Awaitable[Sequence[T]]]
    ) -> DataLoader[K, T]:
        """One batching loader per `key` per request; `load_fn` makes it on first use."""
        if key not in self.loaders:
            self.loaders[key] = DataLoader(load_fn=load_fn)
        loader: DataLoader[K, T] = self.loaders[key]
        return loader


# ─────────────────────────── connections ───────────────────────────


@strawberry.federation.type(
    shareable=True, description="Where a page of a list ends and whether more follows."
)
class PageInfo:
    has_next_page: bool = strawberry.field(description="True when another page follows this one.")
    end_cursor: str | None = strawberry.field(
        description="Pass as `after` to get the next page; null on an empty page."
    )


@strawberry.type(description="One item of a list with its cursor.")
class Edge(Generic[T]):
    cursor: str = strawberry.field(description="Opaque position of this item; pass as `after`.")
    node: T = strawberry.field(description="The item.")


@strawberry.type(description="A page of a list, newest or best first as the field says.")
class Connection(Generic[T]):
    edges: list[Edge[T]] = strawberry.field(description="The items of this page, in order.")
    page_info: PageInfo = strawberry.field(description="Whether more items follow.")
    total_count: int = strawberry.field(description="How many items the whole list has.")


PageFirst = Annotated[
    int | None,
    strawberry.argument(description=f"Page size, 1–{MAX_PAGE} (default {DEFAULT_PAGE})."),
]
PageAfter = Annotated[
    str | None,
    strawberry.argument(
        description="`endCursor` of the previous page.",
        metadata=bounded(chars=MAX_CURSOR_CHARS),
    ),
]


def page_size(first: int | None) -> int:
    """`first` checked against the page limit."""
    if first is None:
        return DEFAULT_PAGE
    if not 1 <= first <= MAX_PAGE:
        raise BadUserInputError(
            f"`first` must be between 1 and {MAX_PAGE}.",
            field="first",
            ru=f"`first` должно быть от 1 до {MAX_PAGE}.",
        )
    return first


def connection(nodes: list[T], cursors: list[str], *, has_next: bool, total: int) -> Connection[T]:
    """Builds a page from nodes and their cursors."""
    edges = [Edge(cursor=c, node=n) for n, c in zip(nodes, cursors, strict=True)]
    return Connection(
        edges=edges,
        page_info=PageInfo(has_next_page=has_next, end_cursor=cursors[-1] if cursors else None),
        total_count=total,
    )


def id_connection(
    nodes: list[T], documents: Sequence[Mapping[str, Any]], *, has_next: bool, total: int
) -> Connection[T]:
    """A page of an `_id`-ordered list: each node's cursor is its document's id."""
    cursors = [encode_cursor([d["_id"]]) for d in documents]
    return connection(nodes, cursors, has_next=has_next, total=total)


E = TypeVar("E", bound=Enum)


def public_enum(
    enum: type[E], *, name: str, description: str, values: Mapping[str, str]
) -> type[E]:
    """Publishes a domain enum in the schema as it is, with a description for every value.

    The domain keeps plain `StrEnum`s and no GraphQL; the schema uses the same
    class, so no resolver converts between two copies of one enum.
    """
    if set(values) != set(enum.__members__):
        raise TypeError(
            f"{name}: describe exactly {sorted(enum.__members__)}, got {sorted(values)}"
        )
    strawberry.enum(enum, name=name, description=description)
    for value in enum.__strawberry_definition__.values:  # type: ignore[attr-defined]
        value.description = values[value.name]
    return enum


# ─────────────────────────── the schema as the manual ───────────────────────────

# The root types of every subgraph say the same, so the supergraph does whichever it keeps.
QUERY_DESCRIPTION = (
    "What a client can read. Root fields are nullable: a service that is down or a "
    "FORBIDDEN costs that field only (null, with an error at its path), never the rest of "
    "the answer. Lists are Relay connections (`first` up to 100, `after` a cursor)."
)
MUTATION_DESCRIPTION = (
    "What a client can change. Each mutation says who may call it; refusals carry a stable "
    "`extensions.code` (BAD_USER_INPUT with `extensions.field`, UNAUTHENTICATED, FORBIDDEN, "
    "NOT_FOUND, CONFLICT, RATE_LIMITED...) and a message a person can act on."
)


def undescribed(schema: GraphQLSchema) -> list[str]:
    """Every public type, field, argument, input field and enum value of `schema` that has
    no description (federation plumbing and the built-in scalars aside)."""
    missing: list[str] = []
    for name, named in schema.type_map.items():
        if name.startswith(("_", "link__")) or is_specified_scalar_type(named):
            continue
        if not named.description:
            missing.append(name)
        if isinstance(named, GraphQLObjectType | GraphQLInterfaceType | GraphQLInputObjectType):
            for field_name, field in named.fields.items():
                if field_name.startswith("_"):
                    continue
                if not field.description:
                    missing.append(f"{name}.{field_name}")
                args = getattr(field, "args", {})
                missing += [
                    f"{name}.{field_name}({a})" for a, d in args.items() if not d.description
                ]
        if isinstance(named, GraphQLEnumType):
            missing += [f"{name}.{v}" for v, d in named.values.items() if not d.description]
    return missing


def at_most(size: int, *, sliced_by: str | None = None) -> list[object]:
    """The `@listSize` of a list field that holds at most `size` items (or, `sliced_by`
    an argument, as many as that argument asks and `size` without it): what the
    gateway's cost limit counts for the list (Federation's demand control)."""
    return [
        ListSize(
            assumed_size=size,
            slicing_arguments=[sliced_by] if sliced_by else UNSET,
            sized_fields=UNSET,
            require_one_slicing_argument=False,
        )
    ]
