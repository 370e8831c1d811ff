"""Issues service settings (environment variables prefixed `ISSUES_`)."""

from __future__ import annotations

from datetime import time
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from veche_kit.settings import ServiceSettings


class IssuesSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ISSUES_", extra="ignore", populate_by_name=True)

    service_name: str = "issues"
    port: int = 4003
    mongo_url: str = "mongodb://127.0.0.1:27103/?directConnection=true"
    mongo_db: str = "veche_issues"
    # Seeds categories, districts and public holidays into an empty store.
    demo_data: bool = False
    # Working days a department has to act on an accepted issue.
    response_working_days: int = Field(default=8, ge=1, le=60)
    # The city's offset from UTC (Kaluga: +3, no daylight saving); days are counted locally.
    city_utc_offset_hours: int = Field(default=3, ge=-12, le=14)
    # When the city's working day ends, local time (an hour earlier on a SHORTENED day); a
    # deadline started later counts from the next working day (`veche_issues.calendar`).
    working_day_ends_at: time = time(18, 0)
    # A RESOLVED issue the reporter neither confirms nor reopens closes after this many days.
    auto_close_days: int = Field(default=14, ge=1)
    # Supports an initiative needs for official review; per category where configured
    # (ISSUES_SUPPORT_THRESHOLDS='{"yards": 150}').
    support_threshold: int = Field(default=100, ge=1)
    support_thresholds: dict[str, int] = Field(default_factory=dict)
    # Whether supporting an initiative needs a phone-verified account (throwaway accounts
    # must not push one to review); per category where configured
    # (ISSUES_VERIFIED_SUPPORTS_BY_CATEGORY='{"yards": false}').
    verified_supports: bool = True
    verified_supports_by_category: dict[str, bool] = Field(default_factory=dict)
    # How often the sweep closes waiting issues, repairs counters, reloads holidays.
    sweep_seconds: float = Field(default=60.0, gt=0)
    # Subscription.issueUpdated: at most one update per issue this often.
    live_interval_ms: int = Field(default=500, ge=10)
    # The Open311 jurisdiction_id this city answers to (a request naming another is refused).
    open311_jurisdiction: str = "veche.local"
    # Reports one Open311 partner key may file per hour (RATE_LIMITED beyond, as 429).
    open311_reports_per_partner_hour: int = Field(default=600, ge=1)
    # Photo uploads (uploads.py). The public origin that serves /photos/... (the gateway's,
    # which passes them to this service); photo URLs are built on it when a report is filed.
    photo_base_url: str = "http://127.0.0.1:4000"
    # Where photo copies are kept: GridFS in this service's own MongoDB, or an S3-compatible
    # bucket (s3_blobs.py; path-style URLs, SigV4), which needs the four s3_* settings.
    photo_store: Literal["gridfs", "s3"] = "gridfs"
    s3_endpoint: str | None = None  # e.g. https://storage.yandexcloud.net, http://minio:9000
    s3_bucket: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key: str | None = None
    s3_secret_key: SecretStr | None = None
    # The largest upload accepted, in bytes (413 beyond), and its largest image in pixels.
    upload_max_bytes: int = Field(default=15 * 1024 * 1024, ge=1024)
    upload_max_pixels: int = Field(default=50_000_000, ge=10_000)
    # Uploads one person may make per hour (RATE_LIMITED beyond, as 429).
    uploads_per_user_hour: int = Field(default=60, ge=1)
    # An upload not attached to a report within this time is swept.
    upload_keep_hours: float = Field(default=24.0, gt=0)
    # How long departmentStats is reused before it is computed again (0: every request).
    stats_cache_seconds: float = Field(default=5.0, ge=0)

    # A file of word-filter patterns replacing the built-in list of мат (veche_kit.wordfilter);
    # one setting for every service.
    word_filter_file: str | None = Field(
        default=None,
        validation_alias=AliasChoices("VECHE_WORD_FILTER_FILE", "ISSUES_WORD_FILTER_FILE"),
    )

    @model_validator(mode="after")
    def _photo_settings(self) -> IssuesSettings:
        host = urlsplit(self.photo_base_url).hostname or ""
        if self.environment == "production" and host in ("", "localhost", "127.0.0.1", "::1"):
            raise ValueError(
                "ISSUES_PHOTO_BASE_URL must be the city's public origin in production "
                f"(photo URLs are built on it), not {self.photo_base_url!r}"
            )
        if self.photo_store == "s3":
            wanted = ("s3_endpoint", "s3_bucket", "s3_access_key", "s3_secret_key")
            missing = [f"ISSUES_{name.upper()}" for name in wanted if not getattr(self, name)]
            if missing:
                raise ValueError(f"ISSUES_PHOTO_STORE=s3 needs {', '.join(missing)}")
        return self

    def threshold_for(self, category: str) -> int:
        return self.support_thresholds.get(category, self.support_threshold)

    def verified_supports_for(self, category: str) -> bool:
        return self.verified_supports_by_category.get(category, self.verified_supports)
