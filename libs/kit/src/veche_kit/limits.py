"""Limits a subgraph puts on an operation before it does the work the operation asks.

Only the gateway should reach a subgraph, but in a city's network other
workloads can: each subgraph bounds what it parses and runs by itself.

- the parser stops after `max_tokens` tokens (graphql-core's `max_tokens`);
- `max_depth` (fields nested in fields) and `max_aliases` are measured on
  the parsed document before validation, each fragment measured once however
  often it is spread, and refused with QUERY_TOO_COMPLEX;
- every list and text argument is checked against its maximum (`inputs`)
  before any resolver runs;
- a document that passed all of this is kept (`DocumentCache`), so a repeated
  operation is neither parsed nor validated again.

The defaults are far above what the gateway forwards (its own limits are
stricter), so they only ever refuse callers that bypass it. Parse and
validation failures get GRAPHQL_PARSE_FAILED and GRAPHQL_VALIDATION_FAILED,
as Apollo's servers name them.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    SelectionSetNode,
    parse,
)
from graphql import ExecutionResult as GraphQLExecutionResult
from strawberry.extensions import SchemaExtension

from veche_kit.inputs import InputSite, input_sites, oversized_input
from veche_kit.language import said

QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
# graphql-core's wording when `max_tokens`, or its own bound on nesting, stops the parser.
PARSER_LIMIT_MESSAGES = ("Document contains more than", "Document is nested too deeply")
# Documents larger than this are not kept, and all kept weigh at most CACHE_CHARS:
# the cache is bounded in bytes too.
CACHED_QUERY_CHARS = 20_000
CACHE_CHARS = 1_000_000


@dataclass(frozen=True)
class OperationLimits:
    """What one request may ask of a subgraph (settings: `VECHE_SUBGRAPH_*`)."""

    max_tokens: int = 5_000
    max_depth: int = 24
    max_aliases: int = 100
    max_body_bytes: int = 2_000_000


class TooComplex(Exception):
    pass


@dataclass
class _Measure:
    depth: int = 0
    aliases: int = 0


def _nested_too_deeply() -> str:
    return said("The operation is nested too deeply.", "Операция вложена слишком глубоко.")


def _too_deep(levels: int) -> str:
    return said(
        f"The operation nests fields deeper than {levels} levels.",
        f"В операции поля вложены глубже {levels} уровней.",
    )


def _too_many_aliases(aliases: int) -> str:
    return said(
        f"The operation uses more than {aliases} aliases.",
        f"В операции больше {aliases} псевдонимов (aliases).",
    )


def measure(document: DocumentNode, limits: OperationLimits) -> None:
    """Raises TooComplex when an operation of `document` nests fields deeper than
    `max_depth` or uses more than `max_aliases` aliases, fragments expanded.
    Each fragment is measured once (memoized), so spreading fragments into each
    other costs nothing to measure; a fragment cycle counts as empty (validation
    refuses it)."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    memo: dict[str, _Measure] = {}
    visiting: set[str] = set()

    def of_fragment(name: str, level: int) -> _Measure:
        if name in memo:
            return memo[name]
        definition = fragments.get(name)
        if definition is None or name in visiting:
            return _Measure()
        visiting.add(name)
        found = of_selections(definition.selection_set, level)
        visiting.discard(name)
        memo[name] = found
        return found

    def of_selections(selections: SelectionSetNode, level: int) -> _Measure:
        # `level` only stops the descent early; a fragment's depth is relative to where it starts.
        if level > limits.max_depth:
            raise TooComplex(_too_deep(limits.max_depth))
        total = _Measure()
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                inner = (
                    of_selections(selection.selection_set, level + 1)
                    if selection.selection_set
                    else _Measure()
                )
                total.depth = max(total.depth, inner.depth + 1)
                total.aliases += inner.aliases + (1 if selection.alias else 0)
            elif isinstance(selection, InlineFragmentNode):
                inner = of_selections(selection.selection_set, level)
                total.depth = max(total.depth, inner.depth)
                total.aliases += inner.aliases
            elif isinstance(selection, FragmentSpreadNode):
                inner = of_fragment(selection.name.value, level)
                total.depth = max(total.depth, inner.depth)
                total.aliases += inner.aliases
            if total.aliases > limits.max_aliases:
                raise TooComplex(_too_many_aliases(limits.max_aliases))
        return total

    aliases = 0
    for definition in document.definitions:
        if isinstance(definition, FragmentDefinitionNode):
            continue
        found = of_selections(definition.selection_set, 1)  # type: ignore[attr-defined]
        if found.depth > limits.max_depth:
            raise TooComplex(_too_deep(limits.max_depth))
        aliases += found.aliases
        if aliases > limits.max_aliases:
            raise TooComplex(_too_many_aliases(limits.max_aliases))


@dataclass(frozen=True)
class Accepted:
    """A document that parsed, fit the limits and validated, with its input sites."""

    document: DocumentNode
    sites: tuple[InputSite, ...]


class DocumentCache:
    """Documents that parsed, fit the limits and validated, by the limits they met and
    their text (LRU; a document accepted under looser limits is not reused under
    stricter ones). Bounded in entries and in the characters of the texts kept (a
    parsed document weighs in proportion to its text); a text over
    `CACHED_QUERY_CHARS` is never kept."""

    def __init__(self, maxsize: int = 256, max_chars: int = CACHE_CHARS) -> None:
        self.maxsize = maxsize
        self.max_chars = max_chars
        self.chars = 0  # the characters of the texts kept
        self._documents: OrderedDict[tuple[OperationLimits, str], Accepted] = OrderedDict()

    def get(self, limits: OperationLimits, query: str) -> Accepted | None:
        accepted = self._documents.get((limits, query))
        if accepted is not None:
            self._documents.move_to_end((limits, query))
        return accepted

    def keep(self, limits: OperationLimits, query: str, accepted: Accepted) -> None:
        key = (limits, query)
        if len(query) > CACHED_QUERY_CHARS or self.maxsize <= 0 or key in self._documents:
            return
        self._documents[key] = accepted
        self.chars += len(query)
        while len(self._documents) > self.maxsize or self.chars > self.max_chars:
            (_, dropped), _ = self._documents.popitem(last=False)
            self.chars -= len(dropped)

    def __len__(self) -> int:
        return len(self._documents)


_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,127}")


def _stand_in(operation_name: str | None) -> DocumentNode:
    """What Strawberry holds while on_validate reports the parse error of the real text:
    an operation of the requested name, so Strawberry finds the operation it expects."""
    if operation_name and _NAME.fullmatch(operation_name):
        return parse(f"query {operation_name} {{ __typename }}")
    return parse("query { __typename }")


def _with_code(error: GraphQLError, code: str) -> GraphQLError:
    if not (error.extensions or {}).get("code"):
        error.extensions = {**(error.extensions or {}), "code": code}
    return error


def too_complex(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": QUERY_TOO_COMPLEX})


class OperationGuard(SchemaExtension):
    """Applies `OperationLimits` (from the request's context, or the defaults) and the
    schema's `DocumentCache` around Strawberry's parse, validate and execute steps."""

    def _limits(self) -> OperationLimits:
        limits = getattr(self.execution_context.context, "limits", None)
        return limits if isinstance(limits, OperationLimits) else OperationLimits()

    def _cache(self) -> DocumentCache | None:
        cache = getattr(self.execution_context.schema, "documents", None)
        return cache if isinstance(cache, DocumentCache) else None

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        self._known = False
        self._sites: tuple[InputSite, ...] | None = None  # known once validated
        self._refused: GraphQLError | None = None
        limits = self._limits()
        context.parse_options["max_tokens"] = limits.max_tokens
        cache = self._cache()
        query = context.query
        if query and context.graphql_document is None:
            known = cache.get(limits, query) if cache is not None else None
            if known is not None:
                context.graphql_document = known.document
                self._sites = known.sites
                self._known = True
            else:
                try:
                    context.graphql_document = parse(query, max_tokens=limits.max_tokens)
                except GraphQLError as error:
                    self._refused = _with_code(error, parse_error_code(error))
                except RecursionError:
                    self._refused = too_complex(_nested_too_deeply())
                if self._refused is not None:
                    # Strawberry would parse the text again to find the same error (twice
                    # the cost of a refusal); it gets a stand-in, and on_validate the error.
                    context.graphql_document = _stand_in(context.operation_name)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        refused = getattr(self, "_refused", None)
        if refused is not None:
            context.pre_execution_errors = [refused]
            yield
            return
        if getattr(self, "_known", False):
            context.pre_execution_errors = []  # validated when it was first kept
            yield
            return
        document = context.graphql_document
        if document is not None:
            try:
                measure(document, self._limits())
            except TooComplex as refused:
                context.pre_execution_errors = [too_complex(str(refused))]
            except RecursionError:
                context.pre_execution_errors = [too_complex(_nested_too_deeply())]
        yield
        errors = context.pre_execution_errors
        if errors:
            context.pre_execution_errors = [
                _with_code(e, GRAPHQL_VALIDATION_FAILED) for e in errors
            ]
        elif document is not None and context.query:
            self._sites = input_sites(context.schema._schema, document)
            cache = self._cache()
            if cache is not None:
                cache.keep(self._limits(), context.query, Accepted(document, self._sites))

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.result is None:
            refused = oversized_input(
                context.schema._schema,
                document,
                context.operation_name,
                context.variables,
                getattr(self, "_sites", None),
            )
            if refused is not None:
                context.result = GraphQLExecutionResult(data=None, errors=[refused])
        yield


def parse_error_code(error: GraphQLError) -> str:
    """The code of an error the parser raised: its limits are limits like the others."""
    limited = any(message in error.message for message in PARSER_LIMIT_MESSAGES)
    return QUERY_TOO_COMPLEX if limited else GRAPHQL_PARSE_FAILED
