"""Operation limits, input maxima, the cursor codec and the memos, on small schemas."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Annotated, Any

import pytest
import strawberry
from graphql import parse

from veche_kit.abuse import aliased, nested
from veche_kit.cursors import ID_SHAPE, decode_cursor, encode_cursor, position_after
from veche_kit.errors import BadUserInputError
from veche_kit.graphql import FederatedSchema, RequestContext
from veche_kit.inputs import bounded
from veche_kit.limits import (
    CACHED_QUERY_CHARS,
    Accepted,
    DocumentCache,
    OperationLimits,
    TooComplex,
    measure,
)
from veche_kit.memo import BriefCache


@strawberry.input(description="A filter.")
class Filter:
    words: list[str] = strawberry.field(description="Words.", metadata=bounded(items=3, chars=5))
    note: str | None = strawberry.field(default=None, description="A note.")


def _echo(
    tags: Annotated[list[str], strawberry.argument(description="Tags.", metadata=bounded(items=2))],
    filter: Annotated[Filter | None, strawberry.argument(description="Filter.")] = None,
    id: Annotated[strawberry.ID | None, strawberry.argument(description="An id.")] = None,
) -> int:
    return len(tags)


def _deep() -> Deep:
    return Deep()


@strawberry.type(description="Something to nest.")
class Deep:
    echo: int = strawberry.field(resolver=_echo, description="Echo.")
    me: Deep = strawberry.field(resolver=_deep, description="Deeper.")


@strawberry.type
class Query:
    echo: int = strawberry.field(resolver=_echo, description="Echo.")
    me: Deep = strawberry.field(resolver=_deep, description="Something to nest.")


SCHEMA = FederatedSchema(query=Query)


async def _run(query: str, variables: dict[str, Any] | None = None) -> Any:
    return await SCHEMA.execute(query, variable_values=variables)


def test_the_maxima_are_stated_in_the_descriptions() -> None:
    sdl = SCHEMA.as_str()
    assert '"""Tags. At most 2 items of at most 1000 characters each."""' in sdl
    assert '"""Words. At most 3 items of at most 5 characters each."""' in sdl
    assert '"""A note. At most 1000 characters."""' in sdl
    assert '"""An id. At most 64 characters."""' in sdl


@pytest.mark.parametrize(
    ("query", "variables", "field"),
    [
        ('{ echo(tags: ["a", "b", "c"]) }', None, "tags"),
        ("query($t: [String!]!) { echo(tags: $t) }", {"t": ["x"] * 40_000}, "tags"),
        (
            "query($w: [String!]!) { echo(tags: [], filter: {words: $w}) }",
            {"w": ["toolong"]},
            "words[0]",
        ),
        (
            "query($f: Filter) { echo(tags: [], filter: $f) }",
            {"f": {"words": [], "note": "n" * 1001}},
            "note",
        ),
        ('{ me { me { echo(tags: [], id: "' + "i" * 65 + '") } } }', None, "id"),
        (
            'query($t: [String!]! = ["a", "b", "c"]) { echo(tags: $t) }',
            None,
            "tags",
        ),
    ],
)
async def test_inputs_past_their_maximum_are_refused_before_resolving(
    query: str, variables: dict[str, Any] | None, field: str
) -> None:
    started = time.process_time()
    result = await _run(query, variables)
    assert time.process_time() - started < 0.1
    (error,) = result.errors or []
    assert error.extensions == {"code": "BAD_USER_INPUT", "field": field}


async def test_inputs_within_their_maxima_pass() -> None:
    result = await _run('{ echo(tags: ["a", "b"], filter: {words: ["abc"], note: "n"}) }')
    assert result.errors is None
    assert result.data == {"echo": 2}


def test_measure_expands_each_fragment_once() -> None:
    limits = OperationLimits(max_depth=10, max_aliases=100)
    fragments = ["fragment F30 on Query { x: echo(tags: []) }"]
    fragments += [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(30)]
    document = parse("{ ...F0 }\n" + "\n".join(fragments))
    started = time.process_time()
    with pytest.raises(TooComplex, match="aliases"):
        measure(document, limits)  # 2**30 aliases once expanded
    assert time.process_time() - started < 0.1
    measure(parse(aliased("echo(tags: [])", 100)), limits)
    with pytest.raises(TooComplex, match="aliases"):
        measure(parse(aliased("echo(tags: [])", 101)), limits)
    measure(parse(nested(10)), limits)
    with pytest.raises(TooComplex, match="deeper"):
        measure(parse(nested(11)), limits)


def test_measure_survives_fragment_cycles() -> None:
    measure(
        parse("{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }"),
        OperationLimits(),
    )


async def test_parse_failures_and_limits_are_coded() -> None:
    result = await _run("{ echo(")
    assert (result.errors or [])[0].extensions == {"code": "GRAPHQL_PARSE_FAILED"}
    result = await _run("{ nope }")
    assert (result.errors or [])[0].extensions == {"code": "GRAPHQL_VALIDATION_FAILED"}
    result = await _run(nested(30, "me"))
    assert (result.errors or [])[0].extensions == {"code": "QUERY_TOO_COMPLEX"}
    result = await _run("{ " + "__typename " * 6000 + "}")
    assert (result.errors or [])[0].extensions == {"code": "QUERY_TOO_COMPLEX"}


def _raw(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


def test_the_cursor_codec_takes_only_its_own_shapes() -> None:
    assert decode_cursor(encode_cursor(["abc"]), ID_SHAPE) == ["abc"]
    assert decode_cursor(encode_cursor([1.5, "x"]), ID_SHAPE, (float, str)) == [1.5, "x"]
    assert decode_cursor(encode_cursor([0, "x"]), (float, str)) == [0, "x"]
    assert decode_cursor(None, ID_SHAPE) is None
    assert position_after(encode_cursor(["12"])) == 12
    deep = base64.urlsafe_b64encode(b"[" * 5000 + b"]" * 5000).decode()
    junk = [_raw([None]), _raw([True]), _raw(["x", "y"]), _raw([float("inf")]), "***", deep]
    junk += [_raw(["x" * 200]), "\udc00", base64.urlsafe_b64encode(b"[1e999]").decode()]
    for cursor in junk:
        with pytest.raises(BadUserInputError, match="not one this API issued"):
            decode_cursor(cursor, ID_SHAPE)
    for cursor in (_raw(["-1"]), _raw(["1e5"]), _raw(["٣"])):
        with pytest.raises(BadUserInputError):
            position_after(cursor)


async def test_once_runs_concurrent_asks_together() -> None:
    context = RequestContext(request=None, verifier=None)  # type: ignore[arg-type]
    runs = 0

    async def work() -> int:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0.01)
        return 7

    results = await asyncio.gather(*(context.once("k", work) for _ in range(30)))
    assert results == [7] * 30
    assert runs == 1


async def test_brief_cache_keeps_a_value_for_its_seconds() -> None:
    now = [0.0]
    cache: BriefCache[int] = BriefCache(5.0, clock=lambda: now[0])
    runs = 0

    async def work() -> int:
        nonlocal runs
        runs += 1
        return runs

    assert await cache.get(work) == 1
    now[0] = 4.9
    assert await cache.get(work) == 1
    now[0] = 5.1
    assert await cache.get(work) == 2

    async def fails() -> int:
        raise RuntimeError("store down")

    failing: BriefCache[int] = BriefCache(5.0, clock=lambda: 0.0)
    with pytest.raises(RuntimeError):
        await failing.get(fails)
    assert await failing.get(work) == 3  # a failure is not kept


async def test_a_named_operation_that_does_not_parse_is_coded_too() -> None:
    result = await SCHEMA.execute("query Named { echo(", operation_name="Named")
    assert (result.errors or [])[0].extensions == {"code": "GRAPHQL_PARSE_FAILED"}


async def test_the_document_cache_keeps_only_accepted_documents() -> None:
    schema = FederatedSchema(query=Query)
    refused = [
        "{ echo(",  # does not parse
        "{ nope }",  # does not validate
        nested(30, "me"),  # too deep
        "{ " + "__typename " * 6000 + "}",  # too many tokens
    ]
    for query in refused:
        assert (await schema.execute(query)).errors
    assert (len(schema.documents), schema.documents.chars) == (0, 0)  # no weight left
    accepted = "query($t: [String!]!) { echo(tags: $t) }"
    assert (await schema.execute(accepted, variable_values={"t": ["a"]})).data == {"echo": 1}
    assert (len(schema.documents), schema.documents.chars) == (1, len(accepted))


async def test_a_kept_document_still_refuses_oversized_variables() -> None:
    schema = FederatedSchema(query=Query)
    query = "query($t: [String!]!) { echo(tags: $t) }"
    assert (await schema.execute(query, variable_values={"t": ["a"]})).data == {"echo": 1}
    kept = schema.documents.get(OperationLimits(), query)
    assert kept is not None
    assert [site.node.name.value for site in kept.sites] == ["tags"]
    result = await schema.execute(query, variable_values={"t": ["a", "b", "c"]})
    (error,) = result.errors or []
    assert error.extensions == {"code": "BAD_USER_INPUT", "field": "tags"}
    assert (await schema.execute("{ __typename }")).data == {"__typename": "Query"}
    untouched = schema.documents.get(OperationLimits(), "{ __typename }")
    assert untouched is not None
    assert untouched.sites == ()  # nothing to check: a repeated read skips the walk


def test_the_document_cache_is_bounded_in_entries_and_characters() -> None:
    limits = OperationLimits()
    document = parse("{ __typename }")
    by_count = DocumentCache(maxsize=2)
    for query in ("{ a }", "{ b }", "{ c }"):
        by_count.keep(limits, query, Accepted(document, ()))
    assert by_count.get(limits, "{ a }") is None
    assert by_count.get(limits, "{ c }") is not None
    assert (len(by_count), by_count.chars) == (2, 10)
    by_chars = DocumentCache(maxsize=100, max_chars=25)
    for i in range(10):
        by_chars.keep(limits, "{ x" + str(i) + " }", Accepted(document, ()))  # 6 chars each
    assert (len(by_chars), by_chars.chars) == (4, 24)
    assert by_chars.get(limits, "{ x9 }") is not None
    by_chars.keep(limits, "{ " + "y" * CACHED_QUERY_CHARS + " }", Accepted(document, ()))
    assert (len(by_chars), by_chars.chars) == (4, 24)  # too large to keep at all
