"""The alert rules and the dashboard in deploy/ ask only for series the services
export: a renamed metric breaks this test, not a city's alerting."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from veche_kit.metrics import ServiceMetrics

ROOT = Path(__file__).resolve().parents[1]
SERIES = re.compile(r"\bveche_[a-z_]+")


def exported() -> set[str]:
    metrics = ServiceMetrics()
    metrics.state.events_applied = 0
    metrics.state.dead_letters = 0
    # A labelled series appears once it has a child: give every one a value.
    metrics.requests.labels("/graphql", "POST", "200").inc()
    metrics.latency.labels("/graphql").observe(0.01)
    metrics.operations.labels("anonymous").inc()
    metrics.errors.labels("INTERNAL").inc()
    metrics.store.labels("find").observe(0.001)
    return {s.name for family in metrics.registry.collect() for s in family.samples}


def expressions() -> list[str]:
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yaml").read_text())
    found = [r["expr"] for group in rules["groups"] for r in group["rules"]]
    dashboard = json.loads((ROOT / "deploy/grafana/veche.json").read_text())
    found += [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    return found


def test_alerts_and_dashboard_use_only_exported_series() -> None:
    names = exported()
    asked = {name for expr in expressions() for name in SERIES.findall(expr)}
    assert asked, "no series found in the rules"
    assert asked <= names, f"not exported: {sorted(asked - names)}"


def test_every_alert_says_what_to_look_at() -> None:
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yaml").read_text())
    for rule in (r for group in rules["groups"] for r in group["rules"]):
        assert rule["alert"].startswith("Veche")
        assert rule["labels"]["severity"] in {"page", "ticket"}
        assert rule["annotations"]["summary"]
