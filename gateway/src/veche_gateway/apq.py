"""Automatic persisted queries (Apollo's APQ protocol, version 1).

A client first sends only `extensions.persistedQuery.sha256Hash`; an unknown
hash gets `PERSISTED_QUERY_NOT_FOUND`, and the client then sends the query
with the hash. The gateway registers it (`register`) only once the document
parsed, validated and passed the limits: any text whose hash matches must
not take memory. The store is bounded in entries and in bytes of text.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from veche_gateway.cache import LRU
from veche_gateway.errors import BAD_USER_INPUT, PERSISTED_QUERY_NOT_FOUND, RequestError


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Resolved:
    query: str | None
    digest: str | None  # the hash to register once the query is accepted; None: nothing to do


class PersistedQueries:
    def __init__(self, size: int, max_bytes: int | None = None) -> None:
        self._queries: LRU[str, str] = LRU(size, max_bytes)

    @property
    def bytes(self) -> int:
        return self._queries.bytes

    def __len__(self) -> int:
        return len(self._queries)

    def resolve(self, query: str | None, extensions: dict[str, Any] | None) -> Resolved:
        """The query text to run, looked up when only its hash was sent."""
        persisted = (extensions or {}).get("persistedQuery")
        if persisted is None:
            return Resolved(query, None)
        if not isinstance(persisted, dict) or persisted.get("version") != 1:
            raise RequestError(
                "Unsupported persisted query version",
                BAD_USER_INPUT,
                ru="Эта версия сохранённых запросов (persisted query) не поддерживается",
            )
        digest = persisted.get("sha256Hash")
        if not isinstance(digest, str):
            raise RequestError(
                "persistedQuery.sha256Hash must be a string",
                BAD_USER_INPUT,
                ru="persistedQuery.sha256Hash должен быть строкой",
            )
        if query is None:
            known = self._queries.get(digest)
            if known is None:
                # Status 200: clients treat this as "send me the query", not a failure. The
                # message stays as is in every language: older clients match on it.
                raise RequestError("PersistedQueryNotFound", PERSISTED_QUERY_NOT_FOUND, status=200)
            return Resolved(known, None)
        if sha256(query) != digest:
            raise RequestError(
                "provided sha does not match query",
                BAD_USER_INPUT,
                graphql_level=False,
                ru="переданный sha не соответствует запросу",
            )
        return Resolved(query, digest)

    def register(self, digest: str, query: str) -> None:
        """Keep an accepted query under its hash."""
        self._queries.put(digest, query, len(query))
