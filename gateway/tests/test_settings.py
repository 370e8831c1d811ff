"""Settings from the environment."""

from __future__ import annotations

import pytest

from veche_gateway.settings import Settings


def test_subgraphs_and_origins_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SUBGRAPHS", "users=http://u:1/graphql, polls=http://p:2/graphql")
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example,https://b.example")
    monkeypatch.setenv("PORT", "4100")
    monkeypatch.setenv("FETCH_TIMEOUT_SECONDS", "2.5")
    settings = Settings()
    assert settings.subgraphs == {"users": "http://u:1/graphql", "polls": "http://p:2/graphql"}
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert (settings.port, settings.fetch_timeout_seconds) == (4100, 2.5)


def test_breaker_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = Settings()
    assert (
        defaults.breaker_failures,
        defaults.breaker_probe_interval_seconds,
        defaults.breaker_probe_timeout_seconds,
    ) == (3, 1.0, 2.0)
    monkeypatch.setenv("BREAKER_FAILURES", "5")
    monkeypatch.setenv("BREAKER_PROBE_INTERVAL_SECONDS", "0.5")
    monkeypatch.setenv("BREAKER_PROBE_TIMEOUT_SECONDS", "1.5")
    settings = Settings()
    assert (
        settings.breaker_failures,
        settings.breaker_probe_interval_seconds,
        settings.breaker_probe_timeout_seconds,
    ) == (5, 0.5, 1.5)
    monkeypatch.setenv("BREAKER_PROBE_INTERVAL_SECONDS", "0")
    with pytest.raises(ValueError, match="breaker_probe_interval_seconds"):
        Settings()


def test_defaults_match_the_local_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SUBGRAPHS", "PORT", "CORS_ORIGINS"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.port == 4000
    assert settings.subgraphs == {
        "users": "http://127.0.0.1:4001/graphql",
        "polls": "http://127.0.0.1:4002/graphql",
        "issues": "http://127.0.0.1:4003/graphql",
    }


def test_a_malformed_subgraph_list_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUBGRAPHS", "users")
    with pytest.raises(ValueError, match="SUBGRAPHS entry 'users' is not of the form name=url"):
        Settings()
