"""The LRU, and what the gateway caches: documents, validation results and plans."""

from __future__ import annotations

import pytest

from veche_gateway.cache import LRU
from veche_gateway.errors import RequestError
from veche_gateway.gateway import Gateway, GraphQLRequest, Refusal
from veche_gateway.settings import Settings

CONDITIONAL = 'query Q($s: Boolean!) { user(id: "u1") { name @skip(if: $s) id } }'


def test_lru_evicts_the_least_recently_used() -> None:
    lru: LRU[str, int] = LRU(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1  # a is now the most recent
    lru.put("c", 3)
    assert (lru.get("a"), lru.get("b"), lru.get("c")) == (1, None, 3)
    assert len(lru) == 2


async def test_documents_and_plans_are_cached(subgraph_urls: dict[str, str]) -> None:
    gateway = Gateway(Settings(subgraphs=subgraph_urls, poll_interval_seconds=0))
    await gateway.start()
    try:
        for skip in (True, False, True):
            result = await gateway.execute(GraphQLRequest(CONDITIONAL, variables={"s": skip}), {})
            expected = {"id": "u1"} if skip else {"name": "Anna", "id": "u1"}
            assert result == {"data": {"user": expected}}
        # one parsed+validated document; one plan per value of the @skip variable
        assert (len(gateway._documents), len(gateway._plans)) == (1, 2)

        for _ in range(2):
            with pytest.raises(RequestError, match=r"Cannot query field 'nope' on type 'Query'\."):
                await gateway.execute(GraphQLRequest("{ nope }"), {})
        assert len(gateway._documents) == 2  # the refusal is cached too, as a small marker
        assert isinstance(
            gateway._documents._items[next(reversed(gateway._documents._items))][0], Refusal
        )
    finally:
        await gateway.stop()


def test_lru_is_bounded_in_bytes() -> None:
    lru: LRU[str, str] = LRU(100, max_bytes=10)
    lru.put("a", "A", 4)
    lru.put("b", "B", 4)
    lru.put("c", "C", 4)  # 12 bytes: a, the least recently used, goes
    assert (lru.get("a"), lru.get("b"), lru.get("c"), lru.bytes) == (None, "B", "C", 8)
    lru.put("huge", "H", 11)  # heavier than the whole budget: not kept, nothing evicted
    assert (lru.get("huge"), len(lru), lru.bytes) == (None, 2, 8)
    lru.put("b", "B2", 2)  # replacing an entry replaces its weight
    assert (lru.get("b"), lru.bytes) == ("B2", 6)


async def test_a_document_heavier_than_the_budget_is_not_kept(
    subgraph_urls: dict[str, str],
) -> None:
    # 1 MB: half of it for parsed documents, each weighed at 150 bytes a character
    gateway = Gateway(
        Settings(subgraphs=subgraph_urls, poll_interval_seconds=0, document_cache_bytes=1_000_000)
    )
    await gateway.start()
    try:
        small = '{ user(id: "u1") { name } }'
        large = '{ user(id: "u1") { name } }' + " " * 4000
        for query in (small, large):
            result = await gateway.execute(GraphQLRequest(query), {})
            assert result == {"data": {"user": {"name": "Anna"}}}
        assert len(gateway._documents) == 1
        assert gateway._documents.bytes == len(small) * 150
        assert gateway._documents.bytes <= 500_000
    finally:
        await gateway.stop()
