"""Attacks on the gateway over its HTTP interface: each is refused before the work.

Every refusal carries its code and costs well under 100 ms of CPU (measured
around the whole request in this process, client included: a generous bound,
where the same documents unrefused cost seconds); a normal request sent in
parallel is answered meanwhile; refused documents leave no weight in the caches.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from graphql import get_introspection_query

from veche_gateway.gateway import Gateway, Prepared, Refusal
from veche_kit.abuse import cpu_allowance

CPU_BOUND = 0.1  # seconds of CPU a refusal may cost at most (scaled to the machine)

NORMAL = '{ user(id: "u1") { name } }'
NORMAL_ANSWER = {"data": {"user": {"name": "Anna"}}}

# 21 fragments, each spreading the next twice: 2^20 names once expanded
EXPLOSION = (
    '{ user(id: "u1") { ...F0 } }\n'
    + "".join(f"fragment F{i} on User {{ ...F{i + 1} ...F{i + 1} }}\n" for i in range(20))
    + "fragment F20 on User { name }\n"
)

CYCLE = """
{ user(id: "u1") { ...A } }
fragment A on User { name ...B }
fragment B on User { id ...A }
"""

INTROSPECTION_ALIASES = (
    "{ " + " ".join(f"s{i}: __schema {{ types {{ name }} }}" for i in range(200)) + " }"
)

# The sizes: each is past the length (100,000) or token (4,000) limit already.
TEN_THOUSAND_ALIASES = (
    '{ user(id: "u1") { ' + " ".join(f"a{i}: name" for i in range(10_000)) + " } }"
)
TEN_THOUSAND_REPEATS = '{ user(id: "u1") { ' + "name " * 10_000 + "} }"
FIVE_THOUSAND_VARIABLES = (
    "query Q(" + ", ".join(f"$v{i}: Int" for i in range(5000)) + ') { user(id: "u1") { name } }'
)
THREE_THOUSAND_INCLUDES = (
    'query Q($yes: Boolean!) { user(id: "u1") { '
    + " ".join(f"...F{i} @include(if: $yes)" for i in range(3000))
    + " } }\n"
    + "".join(f"fragment F{i} on User {{ name }}\n" for i in range(3000))
)

# Smaller ones, under the token limit: the structural pass and validation's budget.
THOUSAND_ALIASES = '{ user(id: "u1") { ' + " ".join(f"a{i}: name" for i in range(1000)) + " } }"
MANY_VARIABLES = (
    "query Q(" + ", ".join(f"$v{i}: Int" for i in range(150)) + ') { user(id: "u1") { name } }'
)
MANY_INCLUDES = (
    'query Q($yes: Boolean!) { user(id: "u1") { '
    + " ".join("... on User @include(if: $yes) { name }" for _ in range(250))
    + " } }"
)
# the same field 600 times, each with a sub-selection: validation compares every pair
REPEATED_SUBSELECTIONS = '{ user(id: "u1") { ' + "polls { id } " * 600 + "} }"
DEEP_INTROSPECTION = "{ __schema { types { " + "ofType { " * 80 + "name" + " }" * 82 + " }"
DEEP_VALUE = '{ user(id: "u1") { name } search(text: ' + "[" * 1500 + "]" * 1500 + ") { id } }"

LONG_STRING = '{ user(id: "' + "x" * 200_000 + '") { name } }'

ATTACKS = {
    "a 200,000-character string": (
        LONG_STRING,
        "characters long, the limit is 100000",
    ),
    "fragment explosion": (
        EXPLOSION,
        f"its number of field selections is {2**20 + 1}, the limit is 2000",
    ),
    "200 aliased __schema": (
        INTROSPECTION_ALIASES,
        "its number of aliases is 200, the limit is 10",
    ),
    "10,000 aliases": (TEN_THOUSAND_ALIASES, "characters long, the limit is 100000"),
    "10,000 repeats of a field": (TEN_THOUSAND_REPEATS, "the document has more than 4000 tokens"),
    "5,000 variables": (FIVE_THOUSAND_VARIABLES, "the document has more than 4000 tokens"),
    "3,000 @include fragments": (THREE_THOUSAND_INCLUDES, "characters long, the limit is 100000"),
    "1,000 aliases": (THOUSAND_ALIASES, "its number of aliases is 1000, the limit is 10"),
    "150 variables": (MANY_VARIABLES, "it declares 150 variables, the limit is 100"),
    "250 @include": (MANY_INCLUDES, "its number of directives is 250, the limit is 100"),
    "600 repeated sub-selections": (
        REPEATED_SUBSELECTIONS,
        "validating it takes more than 10000 comparisons",
    ),
    "introspection nested 80 deep": (DEEP_INTROSPECTION, "nested more than 64 levels deep"),
}


def _gateway(served: Any) -> Gateway:
    gateway: Gateway = served.server.config.app.state.gateway
    return gateway


async def _timed(
    client: httpx.AsyncClient, payload: dict[str, Any], **kwargs: Any
) -> tuple[httpx.Response, float]:
    # a full collection now, so the bound measures this request's work and not a
    # collection of the test session's heap that earlier allocations brought due
    gc.collect()
    started = time.process_time()
    response = await client.post("/graphql", json=payload, **kwargs)
    return response, time.process_time() - started


async def _normal_answer_meanwhile(
    client: httpx.AsyncClient, attack: Awaitable[tuple[httpx.Response, float]]
) -> tuple[httpx.Response, float]:
    """Run the attack with a normal request beside it: the normal one is answered, in
    well under the second an unrefused attack would hold every request for."""

    async def normal() -> float:
        started = time.perf_counter()
        response = await client.post("/graphql", json={"query": NORMAL})
        assert response.json() == NORMAL_ANSWER
        return time.perf_counter() - started

    refused, waited = await asyncio.gather(attack, normal())
    assert waited < 1.0, f"a normal request waited {waited:.2f} s"
    return refused


@pytest.mark.parametrize("name", list(ATTACKS))
async def test_each_attack_is_refused_before_the_work(client: httpx.AsyncClient, name: str) -> None:
    query, detail = ATTACKS[name]
    # a variant of the document never sent before: no cached refusal answers it
    query += f"\n# {name} {time.time_ns()}"
    response, cpu = await _normal_answer_meanwhile(
        client, _timed(client, {"query": query, "variables": {"yes": True}})
    )
    assert response.status_code == 200
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert error["message"].startswith("The operation is too complex: ")
    assert detail in error["message"]
    print(f"{name}: refused in {cpu * 1000:.1f} ms of CPU")  # shown with pytest -s
    assert cpu < cpu_allowance(CPU_BOUND), f"{name} cost {cpu * 1000:.0f} ms of CPU"


async def test_one_more_level_of_explosion_costs_nothing_more(
    client: httpx.AsyncClient,
) -> None:
    # each level doubled the cost before; measured with memoized fragments it does not
    deeper = EXPLOSION.replace("{ ...F0 }", "{ ...E }") + "fragment E on User { ...F0 ...F0 }"
    response, cpu = await _normal_answer_meanwhile(client, _timed(client, {"query": deeper}))
    (error,) = response.json()["errors"]
    assert error["message"].endswith(f"field selections is {2**21 + 1}, the limit is 2000")
    assert cpu < cpu_allowance(CPU_BOUND)


async def test_a_fragment_spread_within_itself_is_refused(client: httpx.AsyncClient) -> None:
    response, cpu = await _timed(client, {"query": CYCLE})
    assert response.json() == {
        "errors": [
            {
                "message": 'Cannot spread fragment "A" within itself.',
                "extensions": {"code": "BAD_USER_INPUT"},
            }
        ]
    }
    assert cpu < cpu_allowance(CPU_BOUND)


async def test_values_nested_past_the_parser_are_bad_input(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json={"query": DEEP_VALUE})
    assert response.status_code == 200
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "nested too deeply" in error["message"]


async def test_the_introspection_result_is_computed_once_per_supergraph(
    gateway: Any, client: httpx.AsyncClient
) -> None:
    cache = _gateway(gateway)._introspection
    query = get_introspection_query(descriptions=True) + "\n# once"
    before = len(cache)
    first = await client.post("/graphql", json={"query": query})
    assert len(cache) == before + 1
    held = cache.bytes
    again = await client.post("/graphql", json={"query": query})
    assert again.json() == first.json()
    assert "errors" not in first.json()
    assert (len(cache), cache.bytes) == (before + 1, held)  # answered from the cache
    typed = await client.post(
        "/graphql",
        json={
            "query": "query T($n: String!) { __type(name: $n) { name } }",
            "variables": {"n": "User"},
        },
    )
    assert typed.json() == {"data": {"__type": {"name": "User"}}}
    other = await client.post(
        "/graphql",
        json={
            "query": "query T($n: String!) { __type(name: $n) { name } }",
            "variables": {"n": "Poll"},
        },
    )
    assert other.json() == {"data": {"__type": {"name": "Poll"}}}  # keyed by the variables too


async def test_a_response_past_the_size_cap_is_refused(
    subgraph_urls: dict[str, str], start_gateway: Callable[..., Awaitable[Any]]
) -> None:
    served = await start_gateway(subgraph_urls, max_response_bytes=20_000)
    english = {"Accept-Language": "en"}  # the message asserted is the English one
    async with httpx.AsyncClient(base_url=served.url, headers=english) as http:
        big = await http.post("/graphql", json={"query": get_introspection_query()})
        small = await http.post("/graphql", json={"query": NORMAL})
    assert big.status_code == 200
    body = big.json()
    assert body["data"] is None
    (error,) = body["errors"]
    assert error["extensions"] == {"code": "RESPONSE_TOO_LARGE"}
    assert error["message"].endswith(
        "bytes, the limit is 20000: select fewer fields or fewer items"
    )
    assert len(big.content) < 1000
    assert small.json() == NORMAL_ANSWER


async def test_refused_documents_leave_no_weight_in_the_caches(
    gateway: Any, client: httpx.AsyncClient
) -> None:
    """1,000 distinct 10 KB documents, refused by the structural pass or by validation:
    the document cache keeps a marker of each, never a parsed document."""
    live = _gateway(gateway)
    documents = live._documents
    before_bytes, before_apq = documents.bytes, len(live.apq)
    padding = "x" * 10_000
    started = time.process_time()
    for i in range(1000):
        if i % 2:
            aliases = " ".join(f"a{j}: name" for j in range(11))
            query = f'{{ user(id: "{i}{padding}") {{ {aliases} }} }}'
        else:
            query = f'{{ nope(id: "{i}{padding}") }}'
        digest = hashlib.sha256(query.encode()).hexdigest()
        extensions = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
        response = await client.post("/graphql", json={"query": query, "extensions": extensions})
        assert response.json()["errors"][0]["extensions"]["code"] in (
            "QUERY_TOO_COMPLEX",
            "BAD_USER_INPUT",
        )
    cpu = time.process_time() - started
    grown = documents.bytes - before_bytes
    print(f"1,000 refused documents: {grown} bytes of cache, {cpu:.2f} s of CPU")
    assert grown < 1000 * 1000, f"refusals weigh {grown} bytes"  # under 1 KB each
    for value, weight in documents._items.values():
        if isinstance(value, Refusal):
            assert weight < 1000
        else:
            assert isinstance(value, Prepared)
            assert value.document.loc is not None
            assert len(value.document.loc.source.body) < 10_000  # no padded document kept
    assert len(live.apq) == before_apq  # no refused text was persisted
    assert cpu / 1000 < cpu_allowance(CPU_BOUND)


async def test_apq_stores_only_documents_that_pass(client: httpx.AsyncClient) -> None:
    async def register(text: str) -> dict[str, Any]:
        digest = hashlib.sha256(text.encode()).hexdigest()
        extensions = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
        await client.post("/graphql", json={"query": text, "extensions": extensions})
        lookup = await client.post("/graphql", json={"extensions": extensions})
        body: dict[str, Any] = lookup.json()
        return body

    not_found = {
        "errors": [
            {
                "message": "PersistedQueryNotFound",
                "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
            }
        ]
    }
    assert await register("not GraphQL at all " + "y" * 10_000) == not_found
    assert await register(THOUSAND_ALIASES) == not_found
    accepted = '{ user(id: "u1") { name id } }'
    assert await register(accepted) == {"data": {"user": {"name": "Anna", "id": "u1"}}}
