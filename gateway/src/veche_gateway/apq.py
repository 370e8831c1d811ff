"""Automatic persisted queries (Apollo's APQ protocol, version 1).

A client first sends only `extensions.persistedQuery.sha256Hash`; an unknown
hash gets `PERSISTED_QUERY_NOT_FOUND`, and the client then sends the query
with the hash, which registers it once the hash is checked.
"""

from __future__ import annotations

import hashlib
from typing import Any

from veche_gateway.cache import LRU
from veche_gateway.errors import BAD_USER_INPUT, PERSISTED_QUERY_NOT_FOUND, RequestError


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class PersistedQueries:
    def __init__(self, size: int) -> None:
        self._queries: LRU[str, str] = LRU(size)

    def resolve(self, query: str | None, extensions: dict[str, Any] | None) -> str | None:
        """The query text to run, after registering or looking up a persisted one."""
        persisted = (extensions or {}).get("persistedQuery")
        if persisted is None:
            return query
        if not isinstance(persisted, dict) or persisted.get("version") != 1:
            raise RequestError("Unsupported persisted query version", BAD_USER_INPUT)
        digest = persisted.get("sha256Hash")
        if not isinstance(digest, str):
            raise RequestError("persistedQuery.sha256Hash must be a string", BAD_USER_INPUT)
        if query is None:
            known = self._queries.get(digest)
            if known is None:
                # Status 200: clients treat this as "send me the query", not a failure.
                raise RequestError("PersistedQueryNotFound", PERSISTED_QUERY_NOT_FOUND, status=200)
            return known
        if sha256(query) != digest:
            raise RequestError(
                "provided sha does not match query", BAD_USER_INPUT, graphql_level=False
            )
        self._queries.put(digest, query)
        return query
