"""The Kubernetes manifests (deploy/kubernetes), checked as far as this machine can:
against the Kubernetes API schemas, and against the stack they describe (ports,
probes, settings, secrets), since no cluster runs here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from veche_stack.stack import GATEWAY, SERVICES

ROOT = Path(__file__).resolve().parents[1]
KUBE = ROOT / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.33.0"


def documents(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((KUBE / name).read_text()) if d]


@pytest.fixture(scope="module")
def kustomization() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((KUBE / "kustomization.yaml").read_text())
    return loaded


@pytest.fixture(scope="module")
def resources(kustomization: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for name in kustomization["resources"] for d in documents(name)]


def of_kind(resources: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in resources if d["kind"] == kind}


def test_every_manifest_is_valid_for_the_kubernetes_api(resources: list[dict[str, Any]]) -> None:
    secrets = documents("secrets.example.yaml")
    for document in [*resources, *secrets]:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    assert len(resources) > 10


def test_every_deployable_is_deployed_on_its_port_with_probes(
    resources: list[dict[str, Any]], kustomization: dict[str, Any]
) -> None:
    deployments = of_kind(resources, "Deployment")
    services = of_kind(resources, "Service")
    budgets = of_kind(resources, "PodDisruptionBudget")
    images = {i["name"] for i in kustomization["images"]}
    assert set(deployments) == {s.name for s in (*SERVICES, GATEWAY)}
    for spec in (*SERVICES, GATEWAY):
        [container] = deployments[spec.name]["spec"]["template"]["spec"]["containers"]
        assert container["image"] in images
        assert container["ports"] == [{"name": "http", "containerPort": spec.port}]
        assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
        assert container["livenessProbe"]["httpGet"]["path"] == "/health"
        assert set(container["resources"]["requests"]) == {"cpu", "memory"}
        assert services[spec.name]["spec"]["ports"][0]["port"] == spec.port
        assert spec.name in budgets
        env = {e["name"]: e for e in container["env"]}
        if spec.mongo_port:  # a service: its own store, the broker
            assert f"{spec.env_prefix}PORT" in env
            assert "secretKeyRef" in env[f"{spec.env_prefix}MONGO_URL"]["valueFrom"]
            assert "secretKeyRef" in env["AMQP_URL"]["valueFrom"]


def test_every_secret_named_is_in_the_example(resources: list[dict[str, Any]]) -> None:
    [example] = documents("secrets.example.yaml")
    for deployment in of_kind(resources, "Deployment").values():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            for variable in container["env"]:
                ref = variable.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == example["metadata"]["name"]
                    assert ref["key"] in example["stringData"], ref


def test_production_settings_and_subgraph_urls(resources: list[dict[str, Any]]) -> None:
    config = of_kind(resources, "ConfigMap")["veche-config"]["data"]
    assert config["VECHE_ENV"] == "production"
    urls = dict(pair.split("=", 1) for pair in config["SUBGRAPHS"].split(","))
    assert urls == {s.name: f"http://{s.name}:{s.port}/graphql" for s in SERVICES}


def test_only_the_gateway_reaches_the_subgraphs(resources: list[dict[str, Any]]) -> None:
    policies = of_kind(resources, "NetworkPolicy")
    assert policies["default-deny"]["spec"] == {
        "podSelector": {},
        "policyTypes": ["Ingress", "Egress"],
    }
    [rule] = policies["subgraphs-from-the-gateway"]["spec"]["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": {"veche/role": "gateway"}}}]
    roles = {
        name: d["spec"]["template"]["metadata"]["labels"]["veche/role"]
        for name, d in of_kind(resources, "Deployment").items()
    }
    assert roles == {
        "users": "subgraph",
        "polls": "subgraph",
        "issues": "subgraph",
        "gateway": "gateway",
    }


def test_every_deployable_scales_and_rolls_without_a_gap(resources: list[dict[str, Any]]) -> None:
    # Several instances of a service are safe (tests/test_two_instances.py): one relay per
    # outbox collection by lease, leased periodic jobs, idempotent consumers.
    autoscalers = of_kind(resources, "HorizontalPodAutoscaler")
    budgets = of_kind(resources, "PodDisruptionBudget")
    assert set(autoscalers) == {s.name for s in (*SERVICES, GATEWAY)}
    for spec in (*SERVICES, GATEWAY):
        assert autoscalers[spec.name]["spec"]["minReplicas"] >= 2
        assert budgets[spec.name]["spec"]["minAvailable"] == 1
    for spec in SERVICES:
        deployment = of_kind(resources, "Deployment")[spec.name]["spec"]
        assert deployment["replicas"] == 2
        assert deployment["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
