"""deploy/k8s: every manifest validated (strictly: no unknown field) against the
Kubernetes schemas bundled by kubernetes-validate, and what the issue asks of them:
probes on /health, configuration and secrets by reference, every consumer scaled
horizontally, Prometheus finding the pods like the compose configuration does."""

from __future__ import annotations

import copy
import re

import kubernetes_validate
import pytest
import yaml

from bersinar.config import COMPONENTS, ROOT, SERVICES
from tests.unit.test_ops_prometheus import promtool

K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.30.0"
CONSUMERS = (*SERVICES, "gateway")
RELAYS = tuple(f"relay-{s}" for s in SERVICES)


def manifests() -> list[dict]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return docs


def of_kind(kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in manifests() if doc["kind"] == kind}


def container(deployment: dict) -> dict:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


@pytest.mark.parametrize("doc", manifests(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_the_manifest_is_valid_for_kubernetes(doc):
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_validation_refuses_a_mistake():
    deployment = copy.deepcopy(of_kind("Deployment")["rujukan"])
    container(deployment)["readinesProbe"] = container(deployment).pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_every_process_has_a_deployment_probed_on_health():
    deployments = of_kind("Deployment")
    assert set(deployments) == {*CONSUMERS, *RELAYS}
    for service in SERVICES:
        config = (ROOT / "services" / service / "config.yaml").read_text()
        port = int(re.search(r"\nMETRICS_PORT: \$\{\w+:(\d+)\}", config).group(1))
        relay_port = int(re.search(r"RELAY_METRICS_PORT: \$\{\w+:(\d+)\}", config).group(1))
        for name, expected in ((service, port), (f"relay-{service}", relay_port)):
            spec = container(deployments[name])
            assert spec["ports"] == [{"name": "metrics", "containerPort": expected}], name
            # ready from its own consumers and database; alive while the port answers
            ready = "/ready" if name == service else "/health"
            assert spec["readinessProbe"]["httpGet"] == {"path": ready, "port": "metrics"}, name
            assert spec["livenessProbe"]["httpGet"] == {"path": "/health", "port": "metrics"}, name
            annotations = deployments[name]["spec"]["template"]["metadata"]["annotations"]
            assert annotations["prometheus.io/port"] == str(expected), name
    gateway = container(deployments["gateway"])
    config = (ROOT / "gateway" / "config.yaml").read_text()
    port = int(re.search(r"\nMETRICS_PORT: \$\{GATEWAY_METRICS_PORT:(\d+)\}", config).group(1))
    assert gateway["ports"] == [
        {"name": "http", "containerPort": 8000},
        {"name": "metrics", "containerPort": port},
    ]
    annotations = deployments["gateway"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port)
    # the Service exposes the API only: metrics are scraped from the pod
    (service,) = [s for s in of_kind("Service").values() if s["metadata"]["name"] == "gateway"]
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]
    # ready when this pod reaches the broker and its database (/ready), whatever the
    # services behind it do; alive while its metrics listener answers, which busy
    # request workers do not hold up: neither probe can take every gateway down at once
    assert gateway["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert gateway["livenessProbe"]["httpGet"] == {"path": "/metrics", "port": "metrics"}


def test_configuration_and_secrets_only_by_reference():
    config = of_kind("ConfigMap")["bersinar-config"]
    assert config["data"]["METRICS_ADDRESS"] == "0.0.0.0"
    secret_like = re.compile(r"KEY|KEYS|URI|URL|PASSWORD|TOKEN")
    assert not [k for k in config["data"] if secret_like.search(k)]
    assert not of_kind("Secret"), "secrets are created by the operator, never committed"
    workloads = [*of_kind("Deployment").values(), *of_kind("Job").values()]
    for workload in workloads:
        spec = container(workload)
        assert spec["envFrom"] == [{"configMapRef": {"name": "bersinar-config"}}]
        for variable in spec["env"]:
            assert "value" not in variable, (workload["metadata"]["name"], variable)
            assert variable["valueFrom"]["secretKeyRef"]["name"] == "bersinar-secrets"
        assert spec["securityContext"]["runAsNonRoot"] is True
    example = (K8S / "secrets.example.env").read_text()
    keys = {line.split("=")[0] for line in example.splitlines() if "=" in line and line[0] != "#"}
    referenced = {
        v["valueFrom"]["secretKeyRef"]["key"] for w in workloads for v in container(w)["env"]
    }
    assert referenced == keys


def test_rujukan_alone_gets_the_client_data_keys():
    for name, deployment in of_kind("Deployment").items():
        names = {v["name"] for v in container(deployment)["env"]}
        has_keys = {"RUJUKAN_ENCRYPTION_KEYS", "RUJUKAN_NIK_HMAC_KEY"} <= names
        assert has_keys == (name == "rujukan"), name


def test_each_secret_goes_to_the_process_that_uses_it():
    workloads = {**of_kind("Deployment"), **of_kind("Job")}
    holders = {}
    for name, workload in workloads.items():
        for variable in container(workload)["env"]:
            holders.setdefault(variable["name"], set()).add(name)
    assert holders["BERSINAR_ADMIN_KEY"] == {"gateway"}
    assert holders["BERSINAR_CONSOLE_ADMIN_PASSWORD"] == {"bersinar-migrate"}
    for name, workload in of_kind("Deployment").items():
        urls = {v["name"] for v in container(workload)["env"] if v["name"].endswith("_URL")}
        assert urls == {f"{name.removeprefix('relay-').upper()}_DATABASE_URL"}, name


def test_the_migrate_job_runs_the_start_up_steps_of_make_run():
    """`bersinar setup` as supervisord runs it for `make run` (databases, migrations,
    queues, seed, first console admin), without waiting for the services it precedes;
    with the broker's address (without it the queues step failed and nothing was
    seeded) and a writable var/ for its log."""
    job = of_kind("Job")["bersinar-migrate"]
    spec = container(job)
    assert spec["command"] == ["bersinar", "setup", "--health-timeout", "0"]
    names = {v["name"] for v in spec["env"]}
    assert {"AMQP_URI", *(f"{c.upper()}_DATABASE_URL" for c in COMPONENTS)} <= names
    mounts = {m["mountPath"] for m in spec["volumeMounts"]}
    assert "/app/var" in mounts and spec["securityContext"]["readOnlyRootFilesystem"]


def test_prometheus_may_discover_the_pods_and_nothing_more():
    (account,) = of_kind("ServiceAccount")
    (role,) = of_kind("Role").values()
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}
    ]
    (binding,) = of_kind("RoleBinding").values()
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account, "namespace": "bersinar"}
    ]
    config = yaml.safe_load(of_kind("ConfigMap")["prometheus-bersinar"]["data"]["prometheus.yml"])
    (pods,) = [job for job in config["scrape_configs"] if "kubernetes_sd_configs" in job]
    assert pods["kubernetes_sd_configs"][0]["namespaces"]["names"] == ["bersinar"]


def test_every_consumer_scales_horizontally():
    autoscalers = of_kind("HorizontalPodAutoscaler")
    deployments = of_kind("Deployment")
    for name in CONSUMERS:
        spec = autoscalers[name]["spec"]
        target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert spec["scaleTargetRef"] == target
        assert 2 <= spec["minReplicas"] < spec["maxReplicas"]
        assert container(deployments[name])["resources"]["requests"]["cpu"]
    for name in RELAYS:  # one leader publishes; the second replica is the failover
        assert deployments[name]["spec"]["replicas"] == 2
        assert name not in autoscalers
    budgets = of_kind("PodDisruptionBudget")
    assert set(budgets) == set(deployments)


def test_the_cluster_prometheus_config_is_valid_and_labels_like_compose(tmp_path):
    config = yaml.safe_load(of_kind("ConfigMap")["prometheus-bersinar"]["data"]["prometheus.yml"])
    config["rule_files"] = [str(ROOT / "deploy" / "prometheus" / "alerts.yml")]
    (pods,) = [job for job in config["scrape_configs"] if job["job_name"] == "bersinar"]
    assert pods["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": ["bersinar"]}}]
    real = tmp_path / "prometheus.yml"
    real.write_text(yaml.safe_dump(config))
    checked = promtool("check", "config", str(real))
    said = checked.stdout + checked.stderr
    if checked.returncode != 0:
        # Debian's promtool is built without Kubernetes discovery (docs/operations.md):
        # the one thing it may refuse is that field. The rest of the job (its
        # relabelling) is checked with the discovery swapped for a static target.
        assert "field kubernetes_sd_configs not found" in said, said
        assert said.count("not found") == 1, said
        checkable = copy.deepcopy(config)
        for job in checkable["scrape_configs"]:
            if job.pop("kubernetes_sd_configs", None):
                job["static_configs"] = [{"targets": ["10.0.0.1:9101"]}]
        swapped = tmp_path / "prometheus-static.yml"
        swapped.write_text(yaml.safe_dump(checkable))
        checked = promtool("check", "config", str(swapped))
        assert checked.returncode == 0, checked.stdout + checked.stderr
    targets = {r.get("target_label") for r in pods["relabel_configs"]}
    assert {"job", "component", "app", "__address__"} <= targets
    for deployment in of_kind("Deployment").values():
        template = deployment["spec"]["template"]["metadata"]
        assert template["annotations"]["prometheus.io/scrape"] == "true"
        assert template["labels"]["app.kubernetes.io/name"] == "bersinar"
