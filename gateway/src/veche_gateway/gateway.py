"""The gateway's core: the live supergraph and the request pipeline.

`Gateway.reload()` re-reads every subgraph's SDL and swaps in a new
supergraph only when it composes (a subgraph that cannot be reached keeps its
last known SDL, or is left out until it appears). `Gateway.execute()` runs
one GraphQL request: persisted query lookup, parse (at most `max_tokens`),
the structural limits (`structure.py`, before any work that grows with the
fragments' expansion), validate (all three cached per document, operation and
supergraph version; a refusal as a small `Refusal`), variables, normalize
(cached per document, operation and the values `@skip`/`@include` read),
limits on the normalized form, plan (cached like it) and execution; an
operation of introspection fields only is answered from a cache of results per
supergraph, document and variables. Caches hold only accepted operations and
are bounded in bytes as well as entries; a persisted query is registered only
once accepted. Each request holds the supergraph it started with, so a
swap never disturbs requests in flight. A subgraph's URL may list several
instances (`a|b`, `instances.py`): fetches go round-robin, each through its
instance's circuit breaker (`breaker.py`); `/health` shows the breakers' states.

With `SUPERGRAPH_FILE` the supergraph comes from a file Apollo's composer wrote
instead: `reload()` re-reads it (a change is seen by its hash), extracts the
subgraph SDLs (`supergraph_file.py`) and composes them the same way; a file that
fails to load keeps the last good supergraph, like a live composition failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    VariableDefinitionNode,
    get_operation_ast,
    parse,
    validate,
    visit,
)
from graphql.execution.values import VariableValues, get_variable_values
from graphql.language import Visitor
from graphql.validation.rules import overlapping_fields_can_be_merged as overlapping_fields
from graphql.validation.validate import ValidationAbortedError

from veche_gateway.apq import PersistedQueries, sha256
from veche_gateway.breaker import BreakerState, CircuitBreaker
from veche_gateway.cache import LRU
from veche_gateway.compose import compose
from veche_gateway.errors import (
    BAD_USER_INPUT,
    INTERNAL,
    QUERY_TOO_COMPLEX,
    CompositionError,
    PlanError,
    RequestError,
)
from veche_gateway.execute import Executor
from veche_gateway.instances import InstancePool, first_instance, instance_urls
from veche_gateway.limits import Limits, enforce, measure
from veche_gateway.metrics import GatewayMetrics
from veche_gateway.normalize import (
    INTROSPECTION_FIELDS,
    NormalizedOperation,
    condition_variables,
    normalize,
)
from veche_gateway.plan import RESERVED_PREFIX, build_plan
from veche_gateway.plan_tree import QueryPlan, print_plan
from veche_gateway.settings import Settings
from veche_gateway.shape import Shaper
from veche_gateway.structure import StructureLimits, check_structure
from veche_gateway.subgraph import Subgraph, load_subgraph
from veche_gateway.supergraph import Supergraph
from veche_gateway.supergraph_file import ExtractedSubgraph, extract_subgraphs
from veche_gateway.transport import SubgraphUnavailable, Transport

log = logging.getLogger("veche_gateway")

# What a cached entry is weighed at, per character of its document's text: measured
# with tracemalloc, a parsed document takes 50-170 times its text (tokens and
# locations), its normalized form 20-90 times; a plan is taken to be like the latter.
DOCUMENT_WEIGHT = 150
DERIVED_WEIGHT = 100
# Validation stops after this many errors: a refusal stays small.
MAX_VALIDATION_ERRORS = 20
ROOT_TYPENAME = "__typename"


@dataclass(frozen=True)
class Refusal:
    """A refused document as the cache keeps it: the answer, not the document."""

    message: str
    code: str
    status: int
    errors: tuple[dict[str, Any], ...]
    graphql_level: bool
    ru: str | None = None

    @classmethod
    def of(cls, error: RequestError) -> Refusal:
        return cls(
            error.message,
            error.code,
            error.status,
            tuple(error.errors),
            error.graphql_level,
            error.ru,
        )

    @property
    def weight(self) -> int:
        # repr: any text a message may echo can be measured (JSON could refuse some)
        return len(repr(self.errors)) + 200

    def error(self) -> RequestError:
        return RequestError(
            self.message,
            self.code,
            self.status,
            list(self.errors),
            self.graphql_level,
            ru=self.ru,
        )


@dataclass(frozen=True)
class Prepared:
    """A parsed, validated operation, ready to plan."""

    document: DocumentNode
    operation: OperationDefinitionNode
    condition_variables: tuple[str, ...]  # variables read by @skip/@include


class NotASubscription(RequestError):
    """`plan_subscription` was given a query or mutation (run it with `execute`)."""


@dataclass(frozen=True)
class LiveOperation:
    """A planned subscription: what each of its events needs."""

    plan: QueryPlan
    shaper: Shaper
    variables: dict[str, Any]


@dataclass
class SubgraphStatus:
    url: str
    up: bool = False
    error: str | None = None
    checked_at: float | None = None


@dataclass
class GraphQLRequest:
    query: str | None
    operation_name: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    extensions: dict[str, Any] | None = None


class Gateway:
    def __init__(self, settings: Settings, transport: Transport | None = None) -> None:
        self.settings = settings
        self.metrics = GatewayMetrics()  # served at /metrics
        self.metrics.watch(lambda: self.pools)
        self.transport = transport or Transport(
            settings.fetch_timeout_seconds, settings.max_connections
        )
        # name -> url: SUBGRAPHS, or the supergraph file's graphs (updated when it
        # changes); the executor and the breakers read these same dicts
        self.urls: dict[str, str] = dict(settings.subgraphs)
        self._file_digest: str | None = None  # of the file the live supergraph came from
        self._file_attempted: str | None = None  # of the last file read, good or not
        self.file_loaded_at: float | None = None
        if settings.supergraph_file is not None:
            self.urls = self._peek_file_urls(settings.supergraph_file)
        self.pools = {name: self._pool(name, url) for name, url in self.urls.items()}
        self.executor = Executor(self.transport, self.urls, self.pools)
        self.supergraph: Supergraph | None = None
        self.composed_at: float | None = None
        self.last_composition_error: str | None = None
        self.status = {name: SubgraphStatus(url) for name, url in self.urls.items()}
        self._sdls: dict[str, str] = {}
        self._attempted: dict[str, str] | None = None
        self._reload_lock = asyncio.Lock()
        # Refusals are cached too, as a small marker: a client retrying a bad
        # document costs one lookup, and a refused document takes no memory.
        # The byte budget is shared out: the parsed document takes most.
        budget = settings.document_cache_bytes
        self._documents: LRU[tuple[str, str, str | None], Prepared | Refusal] = LRU(
            settings.document_cache_size, budget // 2
        )
        # Keyed by document, operation and the values @skip/@include read.
        self._normalized: LRU[tuple[Any, ...], NormalizedOperation] = LRU(
            settings.document_cache_size, budget // 4
        )
        self._plans: LRU[tuple[Any, ...], QueryPlan] = LRU(
            settings.document_cache_size, budget // 4
        )
        # Keyed by supergraph, document, operation and variables: the response itself.
        self._introspection: LRU[tuple[Any, ...], dict[str, Any]] = LRU(
            settings.document_cache_size, settings.introspection_cache_bytes
        )
        self.apq = PersistedQueries(settings.apq_cache_size, settings.apq_cache_bytes)
        self.structure = StructureLimits(
            max_depth=settings.max_depth,
            max_aliases=settings.max_aliases,
            max_selections=settings.max_selections,
            max_directives=settings.max_directives,
            max_variables=settings.max_variables,
        )
        self._shapers: LRU[tuple[Any, ...], Shaper] = LRU(settings.document_cache_size, budget // 4)
        self.limits = Limits(
            max_depth=settings.max_depth,
            max_aliases=settings.max_aliases,
            max_fields=settings.max_fields,
            max_cost=settings.max_cost,
            default_list_size=settings.default_list_size,
            introspection=settings.introspection,
        )
        self._poller: asyncio.Task[None] | None = None

    def _pool(self, name: str, url: str) -> InstancePool:
        """The subgraph's instances (`url` may list several), a breaker for each."""
        settings = self.settings

        def breaker(instance: str) -> CircuitBreaker:
            return CircuitBreaker(
                name,
                settings.breaker_failures,
                functools.partial(
                    self.transport.probe, name, instance, settings.breaker_probe_timeout_seconds
                ),
                settings.breaker_probe_interval_seconds,
                instance=None if instance == url else instance,
            )

        return InstancePool(name, url, breaker, self.metrics.fetched)

    # --- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        await self.reload()
        if self.settings.poll_interval_seconds > 0:
            self._poller = asyncio.create_task(self._poll())

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        for pool in self.pools.values():
            await pool.aclose()
        await self.transport.aclose()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.poll_interval_seconds)
            try:
                await self.reload()
            except Exception:  # keep polling whatever happened
                log.exception("schema reload failed")

    # --- live schema -------------------------------------------------------------

    async def reload(self) -> bool:
        """Re-read the subgraphs' SDL (or the supergraph file); return True when a new
        supergraph went live."""
        if self.settings.supergraph_file is not None:
            async with self._reload_lock:
                return await self._reload_file(self.settings.supergraph_file)
        async with self._reload_lock:
            names = list(self.settings.subgraphs)
            results = await asyncio.gather(
                *(self._fetch_sdl(name) for name in names), return_exceptions=True
            )
            sdls = dict(self._sdls)
            for name, result in zip(names, results, strict=True):
                status = self.status[name]
                if isinstance(result, str):
                    sdls[name] = result
                    if not status.up:
                        log.info("subgraph %s is up at %s", name, status.url)
                    status.up, status.error = True, None
                else:
                    if status.up or status.checked_at is None or status.error is None:
                        log.warning("subgraph %s is down: %s", name, result)  # once per outage
                    status.up, status.error = False, str(result)
                status.checked_at = time.time()
            if not sdls or (sdls == self._sdls and self.supergraph is not None):
                # The live supergraph matches the subgraphs (again): nothing is wrong.
                self.last_composition_error, self._attempted = None, None
                return False
            if sdls == self._attempted:
                return False  # the same inputs failed before; the error still stands
            self._attempted = sdls
            error: str | None = None
            try:
                supergraph = self._compose(names, sdls)
            except CompositionError as exc:
                error = str(exc)
                self.last_composition_error = error
                if self.supergraph is not None:
                    log.error("composition refused, keeping the last good supergraph: %s", exc)
                    return False
                # Nothing is live yet: serve the largest set of subgraphs that composes.
                fallback = self._compose_without_one(names, sdls)
                if fallback is None:
                    log.error("composition refused, no supergraph yet: %s", exc)
                    return False
                supergraph, sdls = fallback
                log.error("composition refused; serving without some subgraphs: %s", exc)
            self._sdls = sdls
            self.supergraph = supergraph  # one reference swap: atomic for readers
            self.composed_at = time.time()
            self.last_composition_error = error
            log.info("supergraph %s is live (%s)", supergraph.version, ", ".join(sdls))
            return True

    def _compose(self, names: list[str], sdls: dict[str, str]) -> Supergraph:
        return self._compose_sdls([(n, self.urls[n], sdls[n]) for n in names if n in sdls])

    def _compose_sdls(self, entries: list[tuple[str, str, str]]) -> Supergraph:
        """Compose (name, url, SDL) triples, in tie-breaking order."""
        try:
            subgraphs: list[Subgraph] = [load_subgraph(*entry) for entry in entries]
            return compose(subgraphs)
        except CompositionError:
            raise
        except Exception as exc:  # a schema we did not foresee must not stop the gateway
            log.exception("unexpected failure while composing")
            raise CompositionError(f"Composition failed unexpectedly: {exc!r}") from exc

    def _compose_without_one(
        self, names: list[str], sdls: dict[str, str]
    ) -> tuple[Supergraph, dict[str, str]] | None:
        """Leave one subgraph out (the last listed first) until the rest composes."""
        for left_out in reversed([n for n in names if n in sdls]):
            rest = {n: sdl for n, sdl in sdls.items() if n != left_out}
            if not rest:
                continue
            try:
                return self._compose(names, rest), rest
            except CompositionError:
                continue
        return None

    # --- the supergraph file -------------------------------------------------------

    def _ordered(self, extracted: list[ExtractedSubgraph]) -> list[ExtractedSubgraph]:
        """The file's subgraphs, those SUBGRAPHS names first in its order: Apollo's file
        lists them alphabetically, and the order breaks the planner's ties."""
        rank = {name: i for i, name in enumerate(self.settings.subgraphs)}
        return sorted(extracted, key=lambda e: rank.get(e.name, len(rank)))

    def _peek_file_urls(self, path: Path) -> dict[str, str]:
        """The file's subgraphs at start, for the breakers and pass-through routes; a file
        that does not load yet gives none (the first reload reports why)."""
        try:
            extracted = extract_subgraphs(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, CompositionError):
            return {}
        return {e.name: e.url for e in self._ordered(extracted)}

    async def _reload_file(self, path: Path) -> bool:
        try:
            text = await asyncio.to_thread(path.read_text, encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self._file_refused(f"cannot read the supergraph file {path}: {exc}")
            return False
        # the content's hash, not the mtime: two writes within one mtime tick differ too
        digest = sha256(text)
        if digest == self._file_digest and self.supergraph is not None:
            self.last_composition_error, self._file_attempted = None, None
            return False
        if digest == self._file_attempted:
            return False  # the same file failed before; its error still stands
        self._file_attempted = digest
        try:
            extracted = self._ordered(extract_subgraphs(text))
            supergraph = self._compose_sdls([(e.name, e.url, e.sdl) for e in extracted])
        except CompositionError as exc:
            self._file_refused(f"the supergraph file {path} is refused: {exc}")
            return False
        except Exception as exc:  # a file we did not foresee must not stop the gateway
            log.exception("unexpected failure while reading the supergraph file")
            self._file_refused(f"the supergraph file {path} is refused: {exc!r}")
            return False
        await self._use_urls({e.name: e.url for e in extracted})
        self._file_digest = digest
        self.supergraph = supergraph  # one reference swap: atomic for readers
        self.composed_at = self.file_loaded_at = time.time()
        self.last_composition_error = None
        log.info(
            "supergraph %s is live from %s (%s)",
            supergraph.version,
            path,
            ", ".join(e.name for e in extracted),
        )
        return True

    def _file_refused(self, message: str) -> None:
        if message != self.last_composition_error:  # once per error, not once per poll
            kept = "keeping the last good supergraph" if self.supergraph else "no supergraph yet"
            log.error("%s; %s", message, kept)
        self.last_composition_error = message

    async def _use_urls(self, urls: dict[str, str]) -> None:
        """Point the executor, breakers and statuses at the file's subgraphs."""
        for name, url in urls.items():
            if self.urls.get(name) != url:
                old = self.pools.get(name)
                self.pools[name] = self._pool(name, url)  # its probes know the urls
                if old is not None:
                    await old.aclose()
        # a subgraph the file no longer lists keeps its url and breaker: a request
        # planned on the previous supergraph may still fetch from it
        self.urls.update(urls)
        now = time.time()
        # in the file, so in the supergraph: reachability is the breakers' to say
        self.status = {name: SubgraphStatus(url, True, None, now) for name, url in urls.items()}

    def instance_url(self, name: str) -> str:
        """The URL of the subgraph instance to use next (round-robin, closed breakers
        only; `CircuitOpen` when every one is open)."""
        pool = self.pools.get(name)
        return pool.pick() if pool is not None else first_instance(self.urls[name])

    async def _fetch_sdl(self, name: str) -> str:
        """The subgraph's SDL from the first of its instances that answers (they all
        run the same code); the first failure when none does."""
        failure: SubgraphUnavailable | None = None
        for url in instance_urls(self.settings.subgraphs[name]):
            try:
                return await self.transport.fetch_sdl(name, url, self.settings.sdl_timeout_seconds)
            except SubgraphUnavailable as exc:
                failure = failure or exc
        assert failure is not None  # a url lists at least one instance
        raise failure

    def health(self) -> dict[str, Any]:
        supergraph = self.supergraph
        healthy = (
            all(s.up for s in self.status.values())
            and all(p.state is BreakerState.CLOSED for p in self.pools.values())
            and not self.last_composition_error
        )
        return {
            "status": "starting" if supergraph is None else ("ok" if healthy else "degraded"),
            "supergraph": None
            if supergraph is None
            else {
                "version": supergraph.version,
                "composedAt": _iso(self.composed_at),
                "subgraphs": list(supergraph.subgraphs),
            },
            "subgraphs": {
                name: {
                    "url": s.url,
                    "status": "up" if s.up else "down",
                    "error": s.error,
                    "checkedAt": _iso(s.checked_at),
                    "breaker": self.pools[name].snapshot(),
                }
                for name, s in self.status.items()
            },
            "lastCompositionError": self.last_composition_error,
            "leftOut": self.left_out(),
            **({"supergraphFile": file} if (file := self.file_status()) else {}),
        }

    def file_status(self) -> dict[str, Any] | None:
        """With SUPERGRAPH_FILE: the file, when the live supergraph was read from it, and
        why the last read was refused (None when it was not)."""
        path = self.settings.supergraph_file
        if path is None:
            return None
        return {
            "path": str(path),
            "loadedAt": _iso(self.file_loaded_at),
            "error": self.last_composition_error,
        }

    def left_out(self) -> dict[str, str]:
        """The configured subgraphs the live supergraph lacks, each with why: down, or
        refused by composition (the error that left it out)."""
        supergraph = self.supergraph
        live = set(supergraph.subgraphs) if supergraph is not None else set()
        out: dict[str, str] = {}
        for name, status in self.status.items():
            if name in live:
                continue
            if not status.up:
                out[name] = f"down: {status.error}"
            elif supergraph is not None:
                out[name] = f"does not compose: {self.last_composition_error}"
        return out

    # --- requests ----------------------------------------------------------------

    async def execute(
        self,
        request: GraphQLRequest,
        headers: Mapping[str, str],
        allow_mutations: bool = True,
        with_plan: bool = False,
    ) -> dict[str, Any]:
        """Run one request; raise `RequestError` when it is refused before execution.
        `with_plan` (the caller holds the admin secret): the printed plan comes back
        as `extensions.queryPlan`."""
        supergraph = self.supergraph
        if supergraph is None:
            raise _refused("no supergraph")
        resolved = self.apq.resolve(request.query, request.extensions)
        query = resolved.query
        if not query:
            raise _refused("no query")
        digest = sha256(query)
        weight = len(query) * DERIVED_WEIGHT
        prepared = self._prepare(supergraph, query, digest, request.operation_name)
        operation = prepared.operation
        if operation.operation == OperationType.SUBSCRIPTION:
            raise _refused("subscription")
        if operation.operation == OperationType.MUTATION and not allow_mutations:
            raise _refused("mutation over GET")
        coerced = get_variable_values(
            supergraph.schema, operation.variable_definitions or (), request.variables
        )
        if isinstance(coerced, list):
            raise _graphql_errors(coerced)
        key = (
            supergraph.version,
            digest,
            request.operation_name,
            tuple(coerced.coerced.get(n) for n in prepared.condition_variables),
        )
        normalized = self._normalized.get(key)
        fresh = normalized is None
        if normalized is None:
            normalized = normalize(supergraph.schema, prepared.document, operation, coerced)
        enforce(
            measure(
                supergraph.schema,
                normalized,
                coerced.coerced,
                self.settings.default_list_size,
                supergraph.demand,
            ),
            self.limits,
        )
        if fresh:  # only what the limits accepted is kept
            self._normalized.put(key, normalized, weight)
        if resolved.digest is not None:
            self.apq.register(resolved.digest, query)
        introspection_key: tuple[Any, ...] | None = None
        if _introspection_only(normalized):
            introspection_key = (*key, repr(sorted(request.variables.items())))
            answered = self._introspection.get(introspection_key)
            if answered is not None:
                return dict(answered)  # a shallow copy: the caller may add extensions
        plan = self._plans.get(key)
        if plan is None:
            try:
                plan = build_plan(supergraph, normalized)
            except PlanError as exc:
                log.error("cannot plan %s: %s", request.operation_name, exc)
                return {
                    "errors": [{"message": str(exc), "extensions": {"code": INTERNAL}}],
                    "data": None,
                }
            self._plans.put(key, plan, weight)
        shaper = self._shapers.get(key)
        if shaper is None:
            shaper = Shaper(supergraph.schema, normalized)
            self._shapers.put(key, shaper, weight)
        response = await self.executor.run(
            supergraph.schema,
            plan,
            shaper,
            prepared.document,
            request.operation_name,
            request.variables,
            headers,
        )
        if introspection_key is not None and "errors" not in response:
            self._introspection.put(introspection_key, dict(response), _encoded_size(response))
        if with_plan:
            response.setdefault("extensions", {})["queryPlan"] = print_plan(plan)
        return response

    def plan_subscription(self, request: GraphQLRequest) -> LiveOperation:
        """A subscription, checked as a query is (persisted query, parse, structure,
        validation, variables, depth/alias/cost limits) and planned by the same planner:
        its root fetch goes to the owning subgraph, the rest runs per event. Raises
        `RequestError` when refused, or when the document is not a subscription."""
        supergraph = self._live_supergraph()
        resolved = self.apq.resolve(request.query, request.extensions)
        query = resolved.query
        if not query:
            raise RequestError("The request has no query", BAD_USER_INPUT, graphql_level=False)
        prepared = self._prepare(supergraph, query, sha256(query), request.operation_name)
        if prepared.operation.operation != OperationType.SUBSCRIPTION:
            raise NotASubscription("A query or mutation: it is answered as one response")
        coerced = get_variable_values(
            supergraph.schema, prepared.operation.variable_definitions or (), request.variables
        )
        if isinstance(coerced, list):
            raise _graphql_errors(coerced)
        normalized = self._within_limits(supergraph, prepared, coerced)
        if resolved.digest is not None:
            self.apq.register(resolved.digest, query)
        try:
            plan = build_plan(supergraph, normalized)
        except PlanError as exc:
            raise RequestError(str(exc), INTERNAL) from None
        return LiveOperation(plan, Shaper(supergraph.schema, normalized), request.variables)

    def _within_limits(
        self, supergraph: Supergraph, prepared: Prepared, coerced: VariableValues
    ) -> NormalizedOperation:
        """The operation normalized, refused past the depth, alias, field and cost limits."""
        normalized = normalize(supergraph.schema, prepared.document, prepared.operation, coerced)
        measured = measure(
            supergraph.schema,
            normalized,
            coerced.coerced,
            self.settings.default_list_size,
            supergraph.demand,
        )
        enforce(measured, self.limits)
        return normalized

    def _live_supergraph(self) -> Supergraph:
        supergraph = self.supergraph
        if supergraph is None:
            raise RequestError(
                "The gateway has no supergraph yet: no subgraph could be composed",
                INTERNAL,
                status=503,
                graphql_level=False,
            )
        return supergraph

    def _prepare(
        self, supergraph: Supergraph, query: str, digest: str, operation_name: str | None
    ) -> Prepared:
        key = (supergraph.version, digest, operation_name)
        prepared = self._documents.get(key)
        if prepared is None:
            try:
                prepared = self._parse_and_validate(supergraph, query, operation_name)
            except RequestError as exc:
                # the marker, not the exception: its traceback holds the parsed document
                prepared = Refusal.of(exc)
                self._documents.put(key, prepared, prepared.weight)
            else:
                self._documents.put(key, prepared, len(query) * DOCUMENT_WEIGHT)
        if isinstance(prepared, Refusal):
            raise prepared.error()
        return prepared

    def _parse_and_validate(
        self, supergraph: Supergraph, query: str, operation_name: str | None
    ) -> Prepared:
        """Parse one document, check its structure, then validate it against the client
        schema."""
        length = self.settings.max_query_length
        if len(query) > length:
            raise _too_complex(
                f"the document is {len(query)} characters long, the limit is {length}",
                f"документ длиной {len(query)} символов, предел — {length}",
                status=413,
            )
        limit = self.settings.max_tokens
        try:
            document = parse(query, max_tokens=limit)
        except GraphQLError as exc:
            if exc.message.endswith("tokens. Parsing aborted."):
                raise _too_complex(
                    f"the document has more than {limit} tokens, the limit is {limit}",
                    f"в документе больше {limit} лексем, предел — {limit}",
                ) from None
            raise _graphql_errors([exc]) from None
        check_structure(document, self.structure)
        budget = self.settings.validation_budget
        errors = _validate(supergraph.schema, document, budget)
        if any(_out_of_budget(e) for e in errors):
            raise _too_complex(
                f"validating it takes more than {budget} comparisons of fields selected under"
                " the same name",
                f"для её проверки нужно больше {budget} сравнений полей, выбранных под одним"
                " именем",
            )
        if errors:
            raise _graphql_errors(errors)
        return _prepared(document, operation_name)


# The gateway's own refusals of a request, in English and Russian; the keyword arguments
# of each `RequestError`.
_REFUSALS: dict[str, dict[str, Any]] = {
    "no supergraph": {
        "message": "The gateway has no supergraph yet: no subgraph could be composed",
        "ru": "У шлюза ещё нет суперграфа: ни один подграф не удалось собрать",
        "code": INTERNAL,
        "status": 503,
        "graphql_level": False,
    },
    "no query": {
        "message": "The request has no query",
        "ru": "В запросе нет операции (query)",
        "graphql_level": False,
    },
    "subscription": {
        "message": "Subscriptions are served over WebSocket (graphql-transport-ws) or as an"
        " event stream (POST with Accept: text/event-stream), not as a JSON answer",
        "ru": "Подписки (subscription) работают по WebSocket (graphql-transport-ws) или"
        " потоком событий (POST с Accept: text/event-stream), а не ответом в JSON",
    },
    "mutation over GET": {
        "message": "Mutations are only accepted over POST",
        "ru": "Мутации принимаются только через POST",
        "status": 405,
        "graphql_level": False,
    },
}


def _refused(what: str) -> RequestError:
    return RequestError(**_REFUSALS[what])


def _too_complex(detail: str, ru: str, status: int = 400) -> RequestError:
    return RequestError(
        f"The operation is too complex: {detail}",
        QUERY_TOO_COMPLEX,
        status,
        ru=f"Операция слишком сложна: {ru}",
    )


def _validate(schema: GraphQLSchema, document: DocumentNode, budget: int) -> list[GraphQLError]:
    """graphql-core's specified rules (MaxIntrospectionDepthRule among them), the
    comparisons of fields merged under one response name bounded by `budget`: they
    grow with the square of a field's repeats. The rule reads its budget from its
    module when it starts, as graphql-core documents; the gateway's is set only
    around its own validations (synchronous: no other request runs meanwhile)."""
    saved = overlapping_fields.MAX_COMPLEXITY_BUDGET
    overlapping_fields.MAX_COMPLEXITY_BUDGET = budget
    try:
        return validate(schema, document, max_errors=MAX_VALIDATION_ERRORS)
    finally:
        overlapping_fields.MAX_COMPLEXITY_BUDGET = saved


def _out_of_budget(error: GraphQLError) -> bool:
    # the error-limit abort says "Too many validation errors, ... Validation aborted."
    return isinstance(error, ValidationAbortedError) and error.message == "Validation aborted."


def _prepared(document: DocumentNode, operation_name: str | None) -> Prepared:
    """The operation to run from a valid document."""
    reserved = _reserved_names(document)
    if reserved:
        raise RequestError(
            f"Names starting with {RESERVED_PREFIX} are reserved by the gateway: "
            + ", ".join(reserved),
            ru=f"Имена, начинающиеся с {RESERVED_PREFIX}, зарезервированы шлюзом: "
            + ", ".join(reserved),
        )
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        message = (
            f'Unknown operation named "{operation_name}".'
            if operation_name
            else "Must provide operation name if query contains multiple operations."
        )
        raise RequestError(message)
    return Prepared(
        document=document,
        operation=operation,
        condition_variables=condition_variables(document),
    )


def _introspection_only(normalized: NormalizedOperation) -> bool:
    """The operation selects only introspection (and `__typename`) at its root."""
    fields = [f for fields in normalized.root.by_type.values() for f in fields]
    return bool(fields) and all(
        f.name in INTROSPECTION_FIELDS or f.name == ROOT_TYPENAME for f in fields
    )


def _encoded_size(response: Mapping[str, Any]) -> int:
    return len(repr(response))  # the introspection result: strings, lists and dicts


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat()


def _reserved_names(document: DocumentNode) -> list[str]:
    """Client names that would collide with the planner's internal aliases and variables."""
    found: list[str] = []

    class Finder(Visitor):
        def enter_field(self, node: FieldNode, *_: Any) -> None:
            if node.alias and node.alias.value.startswith(RESERVED_PREFIX):
                found.append(node.alias.value)

        def enter_variable_definition(self, node: VariableDefinitionNode, *_: Any) -> None:
            if node.variable.name.value.startswith(RESERVED_PREFIX):
                found.append("$" + node.variable.name.value)

    visit(document, Finder())
    return found


def _graphql_errors(errors: list[GraphQLError]) -> RequestError:
    formatted = []
    for error in errors:
        entry: dict[str, Any] = dict(error.formatted)
        entry["extensions"] = {**(entry.get("extensions") or {}), "code": BAD_USER_INPUT}
        formatted.append(entry)
    return RequestError(errors[0].message, BAD_USER_INPUT, errors=formatted)
