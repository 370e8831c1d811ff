"""Settings every service shares, read from the environment.

Each service subclasses `ServiceSettings` with its own `env_prefix` (e.g.
`USERS_`), so `USERS_MONGO_URL` points the users service at a real MongoDB.
Settings that the whole deployment shares (`AMQP_URL`, `VECHE_ENV`) are read
without the prefix too.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


class ServiceSettings(BaseSettings):
    """Base settings: where the store and the broker are, how to serve."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    service_name: str = "service"
    environment: Literal["development", "test", "production"] = Field(
        default="development", validation_alias=AliasChoices("VECHE_ENV", "environment")
    )
    host: str = "127.0.0.1"
    port: int = 4001
    mongo_url: str = "mongodb://127.0.0.1:27017/?directConnection=true"
    mongo_db: str = "veche"
    amqp_url: str = Field(
        default=DEFAULT_AMQP_URL, validation_alias=AliasChoices("AMQP_URL", "amqp_url")
    )
    # Prefixes the exchange and queue names, so test runs or deployments can share a broker.
    namespace: str = Field(
        default="", validation_alias=AliasChoices("VECHE_NAMESPACE", "namespace")
    )
    # Where development keys and similar local state are kept.
    data_dir: str = Field(
        default=".data", validation_alias=AliasChoices("VECHE_DATA_DIR", "data_dir")
    )
    # Token verification: the users service's JWKS and the expected issuer.
    jwks_url: str = Field(
        default="http://127.0.0.1:4001/.well-known/jwks.json",
        validation_alias=AliasChoices("VECHE_JWKS_URL", "jwks_url"),
    )
    token_issuer: str = Field(
        default="veche-users", validation_alias=AliasChoices("VECHE_TOKEN_ISSUER", "token_issuer")
    )
    # Proxies whose `X-Forwarded-For` is believed, comma-separated addresses or CIDR blocks:
    # the gateway's. Anyone else's header is ignored when rate limits key on the client.
    trusted_proxies: str = Field(
        default="127.0.0.1,::1",
        validation_alias=AliasChoices("VECHE_TRUSTED_PROXIES", "trusted_proxies"),
    )
    outbox_poll_seconds: float = 0.5
    consumer_prefetch: int = 32
    # Events handled at once, in lanes (veche_kit.lanes): only events whose handler
    # names a lane go side by side; the rest are handled alone, in order.
    consumer_concurrency: int = 8
    consumer_max_attempts: int = 5
    consumer_backoff_seconds: float = 0.2
    log_level: str = Field(default="INFO", validation_alias=AliasChoices("LOG_LEVEL", "log_level"))
    # What one request may ask of a subgraph (veche_kit.limits): far above what the
    # gateway forwards, so only callers that bypass the gateway ever meet them.
    max_body_bytes: int = Field(
        default=2_000_000,
        gt=0,
        validation_alias=AliasChoices("VECHE_SUBGRAPH_MAX_BODY_BYTES", "max_body_bytes"),
    )
    max_tokens: int = Field(
        default=5_000,
        gt=0,
        validation_alias=AliasChoices("VECHE_SUBGRAPH_MAX_TOKENS", "max_tokens"),
    )
    max_depth: int = Field(
        default=24, gt=0, validation_alias=AliasChoices("VECHE_SUBGRAPH_MAX_DEPTH", "max_depth")
    )
    max_aliases: int = Field(
        default=100,
        ge=0,
        validation_alias=AliasChoices("VECHE_SUBGRAPH_MAX_ALIASES", "max_aliases"),
    )

    @model_validator(mode="after")
    def _production_needs_real_endpoints(self) -> ServiceSettings:
        # Refuse development defaults where they would silently point at nothing real.
        if self.environment == "production" and "guest:guest@" in self.amqp_url:
            raise ValueError("AMQP_URL must not use the guest account in production")
        return self
