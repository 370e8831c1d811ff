"""`ServiceSettings`: read from the environment, with and without the service's prefix."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from veche_kit.settings import DEFAULT_AMQP_URL, ServiceSettings


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_", extra="ignore", populate_by_name=True)

    service_name: str = "demo"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("VECHE_ENV", "AMQP_URL", "VECHE_NAMESPACE", "LOG_LEVEL", "DEMO_PORT"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_point_at_the_local_development_stack() -> None:
    settings = DemoSettings()
    assert settings.environment == "development"
    assert settings.amqp_url == DEFAULT_AMQP_URL
    assert (settings.host, settings.port) == ("127.0.0.1", 4001)
    assert settings.namespace == ""
    assert settings.max_body_bytes == 2_000_000


def test_prefixed_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_PORT", "4100")
    monkeypatch.setenv("DEMO_MONGO_URL", "mongodb://db:27017/")
    monkeypatch.setenv("DEMO_OUTBOX_POLL_SECONDS", "0.05")
    settings = DemoSettings()
    assert settings.port == 4100
    assert settings.mongo_url == "mongodb://db:27017/"
    assert settings.outbox_poll_seconds == 0.05


def test_shared_settings_are_read_without_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VECHE_ENV", "test")
    monkeypatch.setenv("AMQP_URL", "amqp://u:p@broker:5672/")
    monkeypatch.setenv("VECHE_NAMESPACE", "run1.")
    monkeypatch.setenv("VECHE_SUBGRAPH_MAX_DEPTH", "7")
    settings = DemoSettings()
    assert settings.environment == "test"
    assert settings.amqp_url == "amqp://u:p@broker:5672/"
    assert settings.namespace == "run1."
    assert settings.max_depth == 7


def test_a_value_of_the_wrong_kind_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_PORT", "four thousand")
    with pytest.raises(ValidationError, match="port"):
        DemoSettings()


def test_an_unknown_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VECHE_ENV", "staging")
    with pytest.raises(ValidationError, match="VECHE_ENV"):
        DemoSettings()


@pytest.mark.parametrize("name", ["VECHE_SUBGRAPH_MAX_BODY_BYTES", "VECHE_SUBGRAPH_MAX_TOKENS"])
def test_limits_must_be_positive(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(name, "0")
    with pytest.raises(ValidationError):
        DemoSettings()


def test_no_aliases_at_all_is_a_valid_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VECHE_SUBGRAPH_MAX_ALIASES", "0")
    assert DemoSettings().max_aliases == 0


def test_production_refuses_the_guest_broker_account(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VECHE_ENV", "production")
    with pytest.raises(ValidationError, match="guest"):
        DemoSettings()
    monkeypatch.setenv("AMQP_URL", "amqps://veche:secret@broker/")
    assert DemoSettings().environment == "production"
