"""The LRU, and what the gateway caches: documents, validation results and plans."""

from __future__ import annotations

import pytest

from veche_gateway.cache import LRU
from veche_gateway.errors import RequestError
from veche_gateway.gateway import Gateway, GraphQLRequest
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
        assert len(gateway._documents) == 2  # the refusal is cached too
    finally:
        await gateway.stop()
