"""docker-compose.yml agrees with the stack runner (no Docker engine here, so
the file is checked: it parses, ports and settings match `make run`'s
defaults, every Dockerfile it names exists, dependencies wait for health)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from veche_stack.stack import GATEWAY, SERVICES

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def _installed_specs() -> list[Any]:
    """Deployables that exist in the repository (a service joins compose when it lands)."""
    return [
        s
        for s in (*SERVICES, GATEWAY)
        if (
            ROOT / ("gateway" if s is GATEWAY else f"services/{s.name}") / "pyproject.toml"
        ).exists()
    ]


def test_every_deployable_is_composed_with_its_default_port(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for spec in _installed_specs():
        assert spec.name in services, f"{spec.name} is missing from docker-compose.yml"
        service = services[spec.name]
        assert f"{spec.port}:{spec.port}" in service["ports"]
        env = service.get("environment", {})
        if spec is GATEWAY:
            assert str(env["PORT"]) == str(spec.port)
            for sub in SERVICES:
                if sub.name in services:
                    assert f"{sub.name}=http://{sub.name}:{sub.port}/graphql" in env["SUBGRAPHS"]
        else:
            assert str(env[f"{spec.env_prefix}PORT"]) == str(spec.port)
            assert env[f"{spec.env_prefix}MONGO_URL"].startswith(
                f"mongodb://mongo-{spec.name}:27017/"
            )
            assert "replicaSet=rs0" in env[f"{spec.env_prefix}MONGO_URL"]
            assert env["AMQP_URL"].startswith("amqp://")
            assert env["VECHE_JWKS_URL"] == "http://users:4001/.well-known/jwks.json"


def test_every_dockerfile_exists(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        build = service.get("build")
        if build is None:
            continue
        dockerfile = ROOT / build.get("context", ".") / build["dockerfile"]
        assert dockerfile.is_file(), f"{name}: {dockerfile} does not exist"
        text = dockerfile.read_text()
        assert "HEALTHCHECK" in text, f"{name}: Dockerfile lacks a healthcheck"
        assert "CMD" in text, f"{name}: Dockerfile lacks a command"


def test_stores_are_replica_sets_and_dependencies_wait_for_health(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        if name.startswith("mongo-"):
            assert "--replSet" in service["command"]
            assert "rs.initiate" in " ".join(service["healthcheck"]["test"])
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in services
            assert condition == {"condition": "service_healthy"}
            assert "healthcheck" in services[dependency] or "build" in services[dependency]


def test_the_broker_boots_with_the_generated_topology(compose: dict[str, Any]) -> None:
    mounts = compose["services"]["rabbitmq"]["volumes"]
    assert "./deploy/rabbitmq/definitions.json:/etc/rabbitmq/definitions.json:ro" in mounts
    conf = next(m for m in mounts if m.startswith("./deploy/rabbitmq/rabbitmq.conf:"))
    assert (
        "load_definitions = /etc/rabbitmq/definitions.json"
        in (ROOT / conf.split(":")[0]).read_text()
    )
    for service in ("users", "polls", "issues"):
        assert (
            compose["services"][service]["environment"]["AMQP_URL"]
            == "amqp://veche:veche@rabbitmq:5672/"
        )


def test_the_platform_restarts_every_process(compose: dict[str, Any]) -> None:
    # In production, restarts belong to the platform, not to `make run`'s supervisor.
    for name, service in compose["services"].items():
        assert service.get("restart") == "unless-stopped", f"{name} is not restarted on a crash"
