"""Gateway settings, read from the environment (pydantic-settings).

`SUBGRAPHS` lists the subgraphs as `name=url` pairs separated by commas, in the
order used to break ties (e.g. which subgraph answers a `@shareable` field). A url
may list several instances of the subgraph, `http://a/graphql|http://b/graphql`,
used in turn with a circuit breaker each (`instances.py`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_SUBGRAPHS = (
    "users=http://127.0.0.1:4001/graphql,"
    "polls=http://127.0.0.1:4002/graphql,"
    "issues=http://127.0.0.1:4003/graphql"
)


def _parse_pairs(raw: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, url = item.partition("=")
        if not sep or not name.strip() or not url.strip():
            raise ValueError(f"SUBGRAPHS entry {item!r} is not of the form name=url")
        pairs[name.strip()] = url.strip()
    return pairs


class Settings(BaseSettings):
    """Everything the gateway can be told from outside."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    subgraphs: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=lambda: _parse_pairs(DEFAULT_SUBGRAPHS)
    )
    host: str = "0.0.0.0"
    port: int = 4000

    # Subgraph HTTP
    fetch_timeout_seconds: float = 10.0
    sdl_timeout_seconds: float = 5.0
    max_connections: int = 100

    # Circuit breaker per subgraph (breaker.py): open after this many failed fetches in a
    # row (0: never), then probe every interval, each probe waiting at most its timeout
    breaker_failures: int = Field(default=3, ge=0)
    breaker_probe_interval_seconds: float = Field(default=1.0, gt=0)
    breaker_probe_timeout_seconds: float = Field(default=2.0, gt=0)

    # A supergraph SDL file composed by Apollo's composer (`rover supergraph compose`):
    # set, the subgraphs and their urls come from it (SUBGRAPHS only orders the names it
    # lists, for ties), and it is re-read on the poll cadence instead of `_service { sdl }`
    supergraph_file: Path | None = None

    # Live schema updates
    poll_interval_seconds: float = 10.0
    admin_secret: str = ""  # empty: POST /admin/reload is refused

    # Caches, bounded in entries and in bytes. A document's entries (parsed: half of
    # document_cache_bytes; normalized, planned: a quarter each) are weighed by the
    # size of its text (gateway.py's DOCUMENT_WEIGHT); a refused document keeps
    # only a small marker.
    document_cache_size: int = 1000
    document_cache_bytes: int = Field(default=100_000_000, ge=0)
    apq_cache_size: int = 10000
    apq_cache_bytes: int = Field(default=16_000_000, ge=0)  # of query text
    introspection_cache_bytes: int = Field(default=16_000_000, ge=0)  # of encoded results

    # Limits on the normalized operation (limits.py)
    max_depth: int = 15
    max_aliases: int = 30
    max_fields: int = 500
    max_cost: int = 50000
    default_list_size: int = 20
    # Limits checked on the document before validation (structure.py): its length
    # (the lexer reads some 7 MB/s, so 100,000 characters cost some 15 ms), its tokens
    max_query_length: int = Field(default=100_000, ge=1)
    max_tokens: int = Field(default=4000, ge=1)  # the parser stops past this many
    max_selections: int = Field(default=2000, ge=1)  # fields, fragments expanded, not merged
    max_directives: int = Field(default=100, ge=0)  # fragments expanded
    max_variables: int = Field(default=100, ge=0)  # declared by one operation
    # Comparisons validation may make of fields merged under one name (a field
    # repeated n times costs n^2): about 2 us each, so 10,000 is some 20 ms; the
    # queries of GraphiQL and of Veche's clients spend under 100
    validation_budget: int = Field(default=10_000, ge=1)
    # Request and response sizes
    max_body_bytes: int = 1_000_000
    max_response_bytes: int = Field(default=10_000_000, ge=1)
    introspection: bool = True

    # GraphiQL for browsers on GET /graphql; its files as gateway/graphiql/build.sh writes them
    graphiql: bool = True
    graphiql_dir: Path | None = None  # None: the package's static/graphiql

    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # The subgraph that serves Open311 GeoReport v2 at /open311/v2 (passthrough.py);
    # empty, or a name not in SUBGRAPHS: no Open311 route
    open311_subgraph: str = "issues"
    # The subgraph that takes photo uploads at /uploads and serves /photos/... (photos.py);
    # empty, or a name not in SUBGRAPHS: no such routes. Bodies past the cap are cut (413).
    photos_subgraph: str = "issues"
    max_upload_bytes: int = Field(default=20 * 1024 * 1024, ge=1)

    # Subscriptions (ws.py, sse.py): at most this many per WebSocket, this many open
    # WebSockets and event streams per client address; a socket that sends no
    # connection_init this long after opening is closed (4408).
    max_subscriptions_per_connection: int = Field(default=20, ge=1)
    max_live_connections_per_client: int = Field(default=50, ge=1)
    connection_init_timeout_seconds: float = Field(default=10.0, gt=0)
    # Root fields whose identical subscriptions (same token too) share one upstream
    # subscription (shared.py): each event the whole state. Empty: none shared.
    shared_subscription_fields: str = "pollResults,issueUpdated"

    @field_validator("subgraphs", mode="before")
    @classmethod
    def _subgraphs(cls, value: object) -> object:
        return _parse_pairs(value) if isinstance(value, str) else value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [o.strip() for o in value.split(",") if o.strip()]
        return value
