"""Issues service settings (environment variables prefixed `ISSUES_`)."""

from __future__ import annotations

from pydantic import Field
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
    # A RESOLVED issue the reporter neither confirms nor reopens closes after this many days.
    auto_close_days: int = Field(default=14, ge=1)
    # Supports an initiative needs for official review; per category where configured
    # (ISSUES_SUPPORT_THRESHOLDS='{"yards": 150}').
    support_threshold: int = Field(default=100, ge=1)
    support_thresholds: dict[str, int] = Field(default_factory=dict)
    # How often the sweep closes waiting issues, repairs counters, reloads holidays.
    sweep_seconds: float = Field(default=60.0, gt=0)
    # The Open311 jurisdiction_id this city answers to (a request naming another is refused).
    open311_jurisdiction: str = "veche.local"

    def threshold_for(self, category: str) -> int:
        return self.support_thresholds.get(category, self.support_threshold)
