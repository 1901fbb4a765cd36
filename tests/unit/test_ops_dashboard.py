"""deploy/grafana: the provisioned dashboard has a row per concern, every query parses
as PromQL (promtool) and names only metrics the code defines; the provisioning points
Grafana at the dashboard folder and at the datasource the panels use."""

from __future__ import annotations

import json

import yaml

from bersinar.config import ROOT
from tests.unit.test_ops_prometheus import (
    DASHBOARD,
    PROMETHEUS_SERIES,
    RABBITMQ_METRICS,
    dashboard_expressions,
    promql_metric_names,
    promtool,
    registry_metric_names,
)

GRAFANA = ROOT / "deploy" / "grafana"


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def test_a_row_per_concern_each_with_panels():
    panels = dashboard()["panels"]
    rows, current = {}, None
    for panel in panels:
        if panel["type"] == "row":
            current = panel["title"]
            rows[current] = 0
        else:
            assert current, f"panel {panel['title']} before the first row"
            rows[current] += 1
    titles = " | ".join(rows).lower()
    for concern in ("referrals", "reports and deadlines", "reliability of messaging", "red"):
        assert concern in titles, f"no row for {concern}: {list(rows)}"
    assert all(count >= 3 for count in rows.values()), rows


def test_every_panel_queries_the_provisioned_prometheus():
    sources = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    (source,) = sources["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    ids = [panel["id"] for panel in dashboard()["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard()["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]


def test_the_dashboard_provider_loads_the_dashboard_folder():
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/bersinar.yml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro" in mounts


def test_every_query_is_valid_promql(tmp_path):
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": expr}
                    for i, expr in enumerate(dashboard_expressions())
                ],
            }
        ]
    }
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules))
    checked = promtool("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_check_catches_an_unknown_metric():
    known = registry_metric_names() | RABBITMQ_METRICS | PROMETHEUS_SERIES
    assert promql_metric_names("sum(rate(bersinar_no_such_thing_total[5m]))") - known


def test_the_dashboard_names_only_metrics_the_code_defines():
    known = registry_metric_names() | RABBITMQ_METRICS | PROMETHEUS_SERIES
    names = set().union(*(promql_metric_names(expr) for expr in dashboard_expressions()))
    assert len(names) > 20
    assert names - known == set()
