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
