"""Polls service settings (environment variables prefixed `POLLS_`)."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from veche_kit.settings import ServiceSettings


class PollsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="POLLS_", extra="ignore", populate_by_name=True)

    service_name: str = "polls"
    port: int = 4002
    mongo_url: str = "mongodb://127.0.0.1:27102/?directConnection=true"
    mongo_db: str = "veche_polls"
    # How often polls past their end time are closed by the scheduler (reads close them too).
    close_check_seconds: float = 1.0
    # Ballots folded into the counters per transaction, and how long the folder idles.
    fold_batch_size: int = 500
    fold_idle_seconds: float = 0.5
    # castVote reads the poll and the voter's projection through a cache per process
    # (`PollStore.recent_poll`/`recent_voter`): a change made by another instance
    # reaches this one's votes within this many seconds (this instance's own writes
    # and the events it applies at once). A poll's end time is still exact: it is
    # checked against the clock. 0 turns the cache off.
    vote_cache_seconds: float = 1.0
    vote_cache_size: int = 10_000
    # Subscription.pollResults: at most one update per poll this often, whatever the vote rate.
    live_interval_ms: int = Field(default=500, ge=10)
    # Demo polls, created once the demo admin's `user.registered` event arrives.
    demo_data: bool = False
    # PEM of the Ed25519 key that signs polls' tree heads (published at
    # /.well-known/jwks.json); required in production, generated in development.
    audit_key: str | None = None
    # District and age-group subtotals are published in signed heads only for groups
    # of at least this many ballots.
    audit_min_group: int = 10

    @model_validator(mode="after")
    def _production_needs_an_audit_key(self) -> PollsSettings:
        if self.environment == "production" and not self.audit_key:
            raise ValueError(
                "POLLS_AUDIT_KEY (an Ed25519 private key in PEM) is required in production"
            )
        return self
