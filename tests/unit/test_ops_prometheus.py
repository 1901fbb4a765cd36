"""deploy/prometheus: the scrape configs and the alert rules, checked by promtool (the
Prometheus distribution's own checker), the rules' unit tests run, and every metric an
alert or the Grafana dashboard names is one the code defines.

The helpers here are used by tests/e2e/test_ops_prometheus.py as well, which checks the
same names against what the running processes really expose."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from bersinar.config import ROOT

PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "bersinar.json"
OPERATIONS = ROOT / "docs" / "operations.md"

COMPONENTS = ("gateway", "mitra", "rujukan", "laporan", "notifikasi")
RELAYS = ("relay-mitra", "relay-rujukan", "relay-laporan", "relay-notifikasi")

# The rabbitmq_prometheus plugin's names that alerts and dashboard use (per-object
# endpoint, labels vhost and queue). The e2e test finds them on the real plugin.
RABBITMQ_METRICS = {"rabbitmq_queue_messages", "rabbitmq_queue_consumers"}
# Series Prometheus makes itself for every target.
PROMETHEUS_SERIES = {"up"}

PROMQL_WORDS = {
    "and", "or", "unless", "bool", "by", "without", "on", "ignoring", "group_left",
    "group_right", "offset", "inf", "nan",
}  # fmt: skip
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def promtool(*args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: `make ops-tools` installs Prometheus"
    return subprocess.run(
        [binary, *args], capture_output=True, text=True, timeout=120, cwd=PROMETHEUS
    )


def load_yaml(path: Path):
    return yaml.safe_load(path.read_text())


def alert_rules() -> list[dict]:
    return [rule for group in load_yaml(PROMETHEUS / "alerts.yml")["groups"]
            for rule in group["rules"]]  # fmt: skip


def dashboard_expressions() -> list[str]:
    """Every PromQL expression of the dashboard, Grafana's variables filled in."""
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            expressions.append(expr.replace("$service", ".*"))
    return expressions


def promql_metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers that are not functions,
    keywords, label names (inside braces or by/on/without lists) or durations."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\boffset\s+\d+[smhdwy]", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in PROMQL_WORDS:
            continue
        names.add(name)
    return names


def registry_metric_names() -> set[str]:
    """Every sample name the code can expose: the shared metrics and each service's and
    the gateway's own, as registered when their modules are imported, and the process
    collectors of prometheus_client."""
    from prometheus_client import REGISTRY

    import gateway.service  # noqa: F401
    import services.laporan.service  # noqa: F401
    import services.mitra.service  # noqa: F401
    import services.notifikasi.service  # noqa: F401
    import services.rujukan.service  # noqa: F401

    return set(REGISTRY._names_to_collectors)


def exposition_metric_names(text: str) -> set[str]:
    """Sample names a /metrics text can carry, from its TYPE lines (present even for a
    labelled metric that has no sample yet) and its samples."""
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "summary": ("_sum", "_count"),
        "gauge": ("",),
        "untyped": ("",),
        "info": ("_info",),
    }
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            base = name.removesuffix("_total") if kind == "counter" else name
            names.update(base + suffix for suffix in suffixes.get(kind, ("",)))
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def referenced_metric_names() -> dict[str, set[str]]:
    """Metric names by where they are referenced."""
    names: dict[str, set[str]] = {}
    for rule in alert_rules():
        names.setdefault(f"alert {rule['alert']}", set()).update(promql_metric_names(rule["expr"]))
    for expr in dashboard_expressions():
        names.setdefault("dashboard", set()).update(promql_metric_names(expr))
    return names


def scrape_jobs(config: dict) -> dict[str, dict]:
    return {job["job_name"]: job for job in config["scrape_configs"]}


def job_targets(job: dict) -> tuple[list[str], dict[str, str]]:
    """A job's ``host:port`` targets and the labels it gives them, whether listed
    (static_configs) or found by DNS (dns_sd_configs, labels set by relabelling)."""
    if "dns_sd_configs" in job:
        (dns,) = job["dns_sd_configs"]
        labels = {
            rule["target_label"]: rule["replacement"]
            for rule in job.get("relabel_configs", [])
            if set(rule) == {"target_label", "replacement"}
        }
        return [f"{name}:{dns['port']}" for name in dns["names"]], labels
    (static,) = job["static_configs"]
    return static["targets"], static.get("labels", {})


# --- tests -------------------------------------------------------------------------------


def test_metric_name_extraction_sees_through_promql():
    expr = (
        'sum by (service, le) (rate(bersinar_rpc_duration_seconds_bucket{service=~"a|b"}[5m]))'
        " / on (service) group_left max without (instance) (bersinar_outbox_backlog offset 1h)"
        ' or vector(0) > bool 1 unless absent(up{job="x"})'
    )
    assert promql_metric_names(expr) == {
        "bersinar_rpc_duration_seconds_bucket",
        "bersinar_outbox_backlog",
        "up",
    }


def test_exposition_names_cover_labelled_metrics_without_samples():
    text = (
        "# HELP bersinar_events_parked_total Events parked\n"
        "# TYPE bersinar_events_parked_total counter\n"
        "# TYPE bersinar_rpc_duration_seconds histogram\n"
        'bersinar_rpc_duration_seconds_bucket{le="0.1"} 1.0\n'
        "# TYPE process_open_fds gauge\n"
        "process_open_fds 12.0\n"
    )
    names = exposition_metric_names(text)
    assert {"bersinar_events_parked_total", "bersinar_rpc_duration_seconds_count",
            "bersinar_rpc_duration_seconds_bucket", "process_open_fds"} <= names  # fmt: skip
    assert "bersinar_events_parked" not in names


def test_promtool_accepts_the_scrape_configs_and_their_rules():
    for name in ("prometheus.yml", "prometheus.local.yml"):
        checked = promtool("check", "config", name)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    checked = promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_alert_rules_pass_their_unit_tests():
    tested = promtool("test", "rules", "alerts_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout + tested.stderr


def test_every_alert_is_tested_firing_and_quiet():
    tests = load_yaml(PROMETHEUS / "alerts_test.yml")["tests"]
    firing, quiet = set(), set()
    for case in tests:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = {rule["alert"] for rule in alert_rules()}
    assert alerts - firing == set(), "alerts never seen firing in alerts_test.yml"
    assert alerts - quiet == set(), "alerts never seen quiet in alerts_test.yml"
    assert (firing | quiet) - alerts == set(), "tests of alerts that do not exist"


def test_the_issue_asks_for_these_alerts():
    alerts = {rule["alert"] for rule in alert_rules()}
    assert {
        "BersinarTargetDown",  # a service down
        "BersinarQueueWithoutConsumer",
        "BersinarMessagesParked",  # parked messages > 0 (RabbitMQ's count)
        "BersinarOutboxBacklogGrowing",
        "BersinarOutboxStale",  # oldest row older than a minute
        "BersinarHttp5xxRatioHigh",
        "BersinarHttpLatencyHigh",  # p95
        "BersinarReferralResponsesOverdue",
        "BersinarReportsOverdue",
        "BersinarAgreementExpiringSoon",  # within 30 days
    } <= alerts


def test_every_alert_has_severity_summary_and_a_runbook_section():
    anchors = {
        re.sub(r"[^a-z0-9 _-]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in OPERATIONS.read_text().splitlines()
        if line.startswith("#")
    }
    for rule in alert_rules():
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        runbook = rule["annotations"]["runbook"]
        assert runbook == f"docs/operations.md#{rule['alert'].lower()}", rule["alert"]
        assert rule["alert"].lower() in anchors, f"no section {rule['alert']} in operations.md"


def test_scrape_configs_cover_every_process_and_rabbitmq_on_the_documented_ports():
    gateway = (ROOT / "gateway" / "config.yaml").read_text()
    ports = {
        "gateway": int(
            re.search(r"METRICS_PORT: \$\{GATEWAY_METRICS_PORT:(\d+)\}", gateway).group(1)
        )
    }
    assert ports["gateway"] != 8000  # never the API's port
    for service in COMPONENTS[1:]:
        config = (ROOT / "services" / service / "config.yaml").read_text()
        ports[service] = int(re.search(r"METRICS_PORT: \$\{\w+:(\d+)\}", config).group(1))
        ports[f"relay-{service}"] = int(
            re.search(r"RELAY_METRICS_PORT: \$\{\w+:(\d+)\}", config).group(1)
        )
    hosts = {}
    for name, host in (("prometheus.yml", None), ("prometheus.local.yml", "127.0.0.1")):
        jobs = scrape_jobs(load_yaml(PROMETHEUS / name))
        assert set(jobs) >= {*COMPONENTS, *RELAYS, "rabbitmq"}, name
        for component in (*COMPONENTS, *RELAYS):
            (target,), labels = job_targets(jobs[component])
            assert labels == {"app": "bersinar", "component": component}, name
            assert target == f"{host or component}:{ports[component]}", name
        rabbit = jobs["rabbitmq"]
        assert rabbit["metrics_path"] == "/metrics/per-object"
        assert rabbit["static_configs"][0]["targets"][0].endswith(":15692")
        hosts[name] = rabbit["static_configs"][0]["targets"][0]
    assert hosts == {"prometheus.yml": "rabbitmq:15692", "prometheus.local.yml": "127.0.0.1:15692"}


def test_compose_finds_every_replica_by_dns():
    """`docker compose up --scale rujukan=3`: a static target would be one address of
    the three; DNS discovery asks compose's resolver for all of them, again and again."""
    jobs = scrape_jobs(load_yaml(PROMETHEUS / "prometheus.yml"))
    for component in (*COMPONENTS, *RELAYS):
        (dns,) = jobs[component]["dns_sd_configs"]
        assert dns["type"] == "A" and dns["names"] == [component], component
        assert "static_configs" not in jobs[component], component


def test_the_configs_name_files_that_exist():
    for name in ("prometheus.yml", "prometheus.local.yml"):
        text = (PROMETHEUS / name).read_text()
        for path in re.findall(r"deploy/[\w./-]+\.ya?ml", text):
            assert (ROOT / path).exists(), (name, path)


def test_alerts_and_dashboard_name_only_metrics_the_code_defines():
    known = registry_metric_names() | RABBITMQ_METRICS | PROMETHEUS_SERIES
    for where, names in referenced_metric_names().items():
        assert names, where
        assert names - known == set(), f"{where} names metrics nobody exposes"


def test_no_label_of_the_code_carries_client_identity():
    from prometheus_client import REGISTRY

    registry_metric_names()
    forbidden = re.compile(r"nik|name|nama|phone|telepon|birth|client|pseudonym|email")
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            assert not [label for label in sample.labels if forbidden.search(label)], sample
    for collector in set(REGISTRY._names_to_collectors.values()):
        for label in getattr(collector, "_labelnames", ()):
            assert not forbidden.search(label), (collector, label)


def test_the_metrics_listener_answers_readiness_from_the_process_checks():
    """``/ready`` on a metrics port: 200 while the process's own checks find nothing,
    503 with their reasons otherwise; every other path is the metrics text."""
    from bersinar.metrics import metrics_app

    def get(app, path):
        answer = {}
        body = b"".join(
            app(
                {"PATH_INFO": path, "REQUEST_METHOD": "GET", "QUERY_STRING": ""},
                lambda status, headers: answer.update(status=status, headers=dict(headers)),
            )
        )
        return answer["status"], body.decode()

    reasons: dict[str, str] = {}
    app = metrics_app(lambda: reasons)
    assert get(app, "/ready") == ("200 OK", '{"status": "ok"}')
    reasons["broker:rpc"] = "disconnected"
    status, body = get(app, "/ready")
    assert status.startswith("503") and json.loads(body)["reasons"] == reasons
    assert "process_cpu_seconds_total" in get(app, "/metrics")[1]

    def broken():
        raise RuntimeError("a check that fails")

    assert get(metrics_app(broken), "/ready")[0].startswith("503")


def test_a_container_is_ready_when_every_extension_that_can_tell_says_so():
    from types import SimpleNamespace

    from bersinar.metrics import container_readiness

    class Told:
        def __init__(self, problems):
            self.problems = problems

        def readiness(self):
            return self.problems

    consumer, database = Told({}), Told({})
    container = SimpleNamespace(extensions=[consumer, object(), database])
    ready = container_readiness(container)
    assert ready() == {}
    consumer.problems = {"broker:rpc": "disconnected"}
    database.problems = {"database": "OperationalError"}
    assert ready() == {"broker:rpc": "disconnected", "database": "OperationalError"}
