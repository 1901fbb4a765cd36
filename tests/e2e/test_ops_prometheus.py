"""A real Prometheus (the distribution's binary) scraping the real processes of
`make run`: the four services, the four relays and the gateway, started by `bersinar
run` on a folder and a vhost of this module's own, each with its metrics port. Prometheus
runs with deploy/prometheus/prometheus.local.yml (its ports replaced by this run's) and
the alert rules of deploy/prometheus/alerts.yml.

RabbitMQ's rabbitmq_prometheus plugin (port 15692; .ci/run enables it) is scraped when it
answers on this machine: then its target must be up and every RPC and event handler queue
of this run must have a consumer. Where the plugin cannot be enabled, the job is left out
of the test's configuration and the rest still holds."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import time

import pytest
import requests
import yaml

from bersinar.config import SERVICES
from harness import infra
from harness.system import System
from tests.e2e.conftest import wait_for_partner_model
from tests.support.fixtures import TEST_HMAC_KEY
from tests.unit.test_ops_prometheus import (
    PROMETHEUS,
    PROMETHEUS_SERIES,
    dashboard_expressions,
    exposition_metric_names,
    referenced_metric_names,
)

RABBITMQ_PLUGIN = ("127.0.0.1", 15692)
PLUGIN_URL = "http://127.0.0.1:15692"
WAIT = 120  # seconds: several test suites share two cores


def rabbitmq_plugin_answers() -> bool:
    try:
        with socket.create_connection(RABBITMQ_PLUGIN, timeout=2):
            pass
        return requests.get(f"{PLUGIN_URL}/metrics", timeout=10).ok
    except (OSError, requests.RequestException):
        return False


def wait_for(check, what: str, timeout: float = WAIT, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
            last = result
        except (requests.RequestException, KeyError, ValueError) as exc:
            last = repr(exc)
        time.sleep(interval)
    raise TimeoutError(f"{what}: not within {timeout}s (last: {last})")


@pytest.fixture(scope="module")
def ops_system(test_run_id, encryption_keys, var_dirs):
    vhost = f"bersinar-ops-{test_run_id}"
    with infra.own_vhost(vhost) as amqp_uri:
        yield from _running_system(amqp_uri, vhost, encryption_keys, var_dirs)


def _running_system(amqp_uri, vhost, encryption_keys, var_dirs):
    """`bersinar run` with a metrics port per process. The timers keep their default
    intervals (minutes): the gauges they feed must be right from the start."""
    ports = {}
    for service in SERVICES:
        ports[service] = infra.free_port()
        ports[f"relay-{service}"] = infra.free_port()
    env = {"RUJUKAN_RESPONSE_DEADLINE_CHECK_SECONDS": "1", "METRICS_ADDRESS": "127.0.0.1"}
    for service in SERVICES:
        env[f"{service.upper()}_METRICS_PORT"] = str(ports[service])
        env[f"{service.upper()}_RELAY_METRICS_PORT"] = str(ports[f"relay-{service}"])
    system = System(
        amqp_uri, encryption_keys, TEST_HMAC_KEY, var_dirs("ops"),
        extra_env=env,
    )  # fmt: skip
    try:
        system.start_all(timeout=WAIT)  # patient: other suites share the two cores
        wait_for_partner_model(system, timeout=WAIT)
        ports["gateway"] = system.gateway_metrics_port
        system.metrics_ports = ports
        system.vhost = vhost
        yield system
    finally:
        system.terminate_all()


@pytest.fixture(scope="module")
def prometheus(ops_system, tmp_path_factory):
    binary = shutil.which("prometheus")
    assert binary, "prometheus is missing: `make ops-tools` installs it"
    workdir = tmp_path_factory.mktemp("prometheus")
    config = yaml.safe_load((PROMETHEUS / "prometheus.local.yml").read_text())
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    config["rule_files"] = [str(PROMETHEUS / "alerts.yml")]
    with_rabbitmq = rabbitmq_plugin_answers()
    jobs = []
    for job in config["scrape_configs"]:
        name = job["job_name"]
        if name == "prometheus" or (name == "rabbitmq" and not with_rabbitmq):
            continue
        if name != "rabbitmq":
            port = ops_system.metrics_ports[name]
            job["static_configs"][0]["targets"] = [f"127.0.0.1:{port}"]
        jobs.append(job)
    config["scrape_configs"] = jobs
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = infra.free_port()
    log = open(workdir / "prometheus.log", "wb")  # noqa: SIM115 - owned by the process
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: requests.get(f"{base}/-/ready", timeout=2).ok, "prometheus ready")
        yield {
            "url": base,
            "jobs": {job["job_name"] for job in jobs},
            "rabbitmq": with_rabbitmq,
            "log": workdir / "prometheus.log",
        }
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def query(prometheus, expr: str) -> list[dict]:
    reply = requests.get(f"{prometheus['url']}/api/v1/query", params={"query": expr}, timeout=10)
    body = reply.json()
    assert body["status"] == "success", (expr, body)
    return body["data"]["result"]


def scalar(prometheus, expr: str) -> float:
    result = query(prometheus, expr)
    return float(result[0]["value"][1]) if result else 0.0


def all_targets_up(prometheus):
    targets = requests.get(f"{prometheus['url']}/api/v1/targets", timeout=10).json()
    active = targets["data"]["activeTargets"]
    health = {target["labels"]["job"]: target["health"] for target in active}
    if set(health) == prometheus["jobs"] and set(health.values()) == {"up"}:
        return active
    return None


def test_every_target_is_up(prometheus):
    active = wait_for(lambda: all_targets_up(prometheus), "every target up")
    jobs = {target["labels"]["job"] for target in active}
    expected = {"gateway", *SERVICES, *(f"relay-{s}" for s in SERVICES)}
    assert jobs - {"rabbitmq"} == expected
    assert ("rabbitmq" in jobs) == prometheus["rabbitmq"]
    for target in active:
        if target["labels"]["job"] != "rabbitmq":
            assert target["labels"]["app"] == "bersinar"
            assert target["labels"]["component"] == target["labels"]["job"]
    # Prometheus's own view agrees: up is 1 for every Bersinar process
    assert scalar(prometheus, 'count(up{app="bersinar"} == 1)') == len(expected)


def test_a_posted_referral_raises_its_counter_in_prometheus(ops_system, prometheus):
    wait_for(lambda: all_targets_up(prometheus), "every target up")
    requested = 'sum(bersinar_referrals_total{status="requested"}) or vector(0)'
    created = 'sum(bersinar_http_requests_total{route="/api/v1/referrals", method="POST", status="201"}) or vector(0)'  # noqa: E501
    before = scalar(prometheus, requested)
    before_http = scalar(prometheus, created)
    reply = ops_system.post(
        "/api/v1/referrals",
        {
            "client": {"nik": "1771050501900001", "name": "Budi Santoso",
                       "birth_date": "1990-01-05", "sex": "M"},
            "source": "TAT",
            "service_type": "outpatient",
            "partner_id": "yayasan-pesona",
            "consent": {"given": True},
        },
    )  # fmt: skip
    assert reply.status_code == 201, reply.text
    after = wait_for(
        lambda: (value := scalar(prometheus, requested)) > before and value,
        "bersinar_referrals_total{status=requested} rising in Prometheus",
    )
    assert after == before + 1
    assert wait_for(lambda: scalar(prometheus, created) > before_http, "the 201 counted")
    # the event went through the outbox and its relay
    published = (
        'sum(bersinar_outbox_published_total{service="rujukan", event_type="referral_requested"})'
    )
    assert wait_for(
        lambda: scalar(prometheus, published) >= 1, "referral_requested published by its relay"
    )


def test_the_alert_rules_load_and_evaluate_on_real_series(prometheus):
    def evaluated():
        groups = requests.get(f"{prometheus['url']}/api/v1/rules", timeout=10).json()
        rules = [rule for group in groups["data"]["groups"] for rule in group["rules"]]
        if rules and all(rule["health"] == "ok" for rule in rules):
            return rules
        return None

    rules = wait_for(evaluated, "every alert rule evaluated without error")
    names = {rule["name"] for rule in rules}
    assert "BersinarTargetDown" in names and "BersinarReportsOverdue" in names
    wait_for(lambda: all_targets_up(prometheus), "every target up")
    assert query(prometheus, 'up{app="bersinar"} == 0') == []


def test_alerts_and_dashboard_name_only_metrics_the_processes_expose(ops_system, prometheus):
    wait_for(lambda: all_targets_up(prometheus), "every target up")
    exposed = set(PROMETHEUS_SERIES)
    for component, port in ops_system.metrics_ports.items():
        reply = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        assert reply.ok, component
        exposed |= exposition_metric_names(reply.text)
    if prometheus["rabbitmq"]:
        plugin = f"{PLUGIN_URL}/metrics/per-object"
        exposed |= exposition_metric_names(requests.get(plugin, timeout=30).text)
    else:
        exposed |= {"rabbitmq_queue_messages", "rabbitmq_queue_consumers"}
    for where, names in referenced_metric_names().items():
        assert names - exposed == set(), f"{where} names metrics no process exposes"
    # and every dashboard query runs on the real Prometheus
    for expr in dashboard_expressions():
        query(prometheus, expr)


def test_each_service_tells_its_own_readiness_on_its_metrics_port(ops_system):
    """The readiness probe of compose and Kubernetes: each service and the gateway
    answer /ready on their metrics port from their own broker consumers and database."""
    for component in ("gateway", *SERVICES):
        port = ops_system.metrics_ports[component]
        reply = requests.get(f"http://127.0.0.1:{port}/ready", timeout=10)
        assert (reply.status_code, reply.json()) == (200, {"status": "ok"}), component


def test_the_processes_follow_the_naming_conventions(ops_system, prometheus):
    """No ``_created`` series beside the counters and histograms, every duration in
    seconds, and no family exported by two kinds of process under two names."""
    wait_for(lambda: all_targets_up(prometheus), "every target up")
    families: dict[str, set[str]] = {}
    for component, port in ops_system.metrics_ports.items():
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        samples = [line.split("{")[0].split()[0] for line in text.splitlines() if line[:1] != "#"]
        assert not [s for s in samples if s.endswith("_created")], component
        for line in text.splitlines():
            if line.startswith("# HELP bersinar_"):
                name, help_text = line.split(maxsplit=3)[2:]
                families.setdefault(help_text, set()).add(name)
    assert all(len(names) == 1 for names in families.values()), families
    units = re.compile(r"_(days|hours|minutes|milliseconds|ms)(_|$)")
    assert not [name for names in families.values() for name in names if units.search(name)]


def test_rabbitmq_shows_every_queue_of_the_run_consumed(ops_system, prometheus):
    """With the plugin: every RPC and event handler queue of this run's vhost has a
    consumer and no parking queue holds a message. Without it: nothing to scrape."""
    if not prometheus["rabbitmq"]:
        assert "rabbitmq" not in prometheus["jobs"]
        return
    vhost = ops_system.vhost
    consumed = f'rabbitmq_queue_consumers{{vhost="{vhost}", queue=~"rpc-.+|evt-.+", queue!~".+\\\\.parked|.+\\\\.retry\\\\.[0-9]+ms"}}'  # noqa: E501
    queues = wait_for(
        lambda: (
            {r["metric"]["queue"] for r in query(prometheus, consumed)}
            >= {f"rpc-{s}" for s in SERVICES}
            and query(prometheus, consumed)
        ),
        "this run's queues in Prometheus",
    )
    assert any(q["metric"]["queue"].startswith("evt-") for q in queues)
    wait_for(lambda: query(prometheus, f"{consumed} == 0") == [], "a consumer on every queue")
    parked = f'sum(rabbitmq_queue_messages{{vhost="{vhost}", queue=~".+\\\\.parked"}}) or vector(0)'
    assert scalar(prometheus, parked) == 0


def test_gauges_fed_by_timers_are_right_after_a_restart(ops_system, prometheus):
    """mitra's and laporan's checks run when the process starts, not a timer interval
    (five minutes here) later: after a restart the nearest PKS end is the seeded
    agreements' (2028-05-29) at once, never the 0 that fired BersinarAgreementExpiringSoon
    after every restart, and the report gauges are filled."""
    from datetime import date

    from bersinar.codes import LOCAL_TZ
    from bersinar.envelope import utcnow

    wait_for(lambda: all_targets_up(prometheus), "every target up")
    expected = (date(2028, 5, 29) - utcnow().astimezone(LOCAL_TZ).date()).days
    nearest = "bersinar_agreement_nearest_expiry_seconds / 86400"
    reports = "sum(bersinar_reports)"

    def nearest_days():
        return [float(series["value"][1]) for series in query(prometheus, nearest)]

    for name in ("mitra", "laporan"):
        started = scalar(prometheus, f'process_start_time_seconds{{job="{name}"}}')
        ops_system.wait_restarted(name, ops_system.kill(name))
        wait_for(
            lambda n=name, s=started: (
                scalar(prometheus, f'process_start_time_seconds{{job="{n}"}}') > s
            ),
            f"{name} scraped again after its restart",
        )
        # well within the five-minute interval: only a check at start explains it
        if name == "mitra":
            wait_for(lambda: nearest_days() == [expected], f"{nearest} = {expected}", timeout=60)
        else:
            wait_for(lambda: scalar(prometheus, reports) > 0, "report gauges", timeout=60)
    assert query(prometheus, 'ALERTS{alertname="BersinarAgreementExpiringSoon"}') == []
