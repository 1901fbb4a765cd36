"""docker-compose.yml, checked without a Docker engine: `docker-compose config` (Debian's
docker-compose, installed by `make ops-tools`: Docker's own `docker compose` plugin is not
installable here), the compose specification's JSON schema (vendored by
check-jsonschema) and the properties Bersinar needs of it."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from bersinar.config import COMPONENTS, ROOT, SERVICES
from tests.unit.test_ops_prometheus import job_targets

COMPOSE = ROOT / "docker-compose.yml"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
APPS = (*SERVICES, *(f"relay-{s}" for s in SERVICES), "gateway")


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def schema_check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


KEYS = ("BERSINAR_ADMIN_KEY", "RUJUKAN_ENCRYPTION_KEYS", "RUJUKAN_NIK_HMAC_KEY")


def compose_config(env_file: Path, path: Path = COMPOSE) -> subprocess.CompletedProcess:
    """`docker-compose config` with the keys of ``env_file`` alone (none from this
    process's environment)."""
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose is missing: `make ops-tools` installs it"
    env = {k: v for k, v in os.environ.items() if k not in KEYS}
    return subprocess.run(
        [binary, "--project-directory", str(ROOT), "-f", str(path),
         "--env-file", str(env_file), "config"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip


def test_docker_compose_config_resolves_the_file_with_the_keys_file(tmp_path):
    """What `docker compose --env-file var/secrets.env up` reads: valid, each key in the
    one service that uses it; without the keys compose refuses, saying what to do."""
    keys = dict(zip(KEYS, ("bsk_test", "k1:test", "h1:test"), strict=True))
    env_file = tmp_path / "secrets.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in keys.items()))
    resolved = compose_config(env_file)
    assert resolved.returncode == 0, resolved.stderr
    services = yaml.safe_load(resolved.stdout)["services"]
    for name, service in services.items():
        env = service.get("environment") or {}
        owner = {"gateway": {KEYS[0]}, "rujukan": set(KEYS[1:])}
        assert set(keys) & set(env) == owner.get(name, set()), name
        for key in owner.get(name, ()):
            assert env[key] == keys[key], (name, key)
    empty = tmp_path / "empty.env"
    empty.write_text("")
    missing = compose_config(empty)
    assert missing.returncode != 0 and "make secrets" in missing.stderr


def test_docker_compose_config_refuses_a_broken_file(tmp_path):
    broken = tmp_path / "docker-compose.yml"
    data = compose()
    data["services"]["gateway"]["healthcheck"]["retries"] = "many"
    broken.write_text(yaml.safe_dump(data))
    env_file = tmp_path / "secrets.env"
    env_file.write_text("".join(f"{k}=x\n" for k in KEYS))
    assert compose_config(env_file).returncode == 0
    assert compose_config(env_file, broken).returncode != 0


def test_the_compose_file_follows_the_compose_specification():
    checked = schema_check(COMPOSE)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_schema_check_refuses_a_broken_file(tmp_path):
    broken = tmp_path / "docker-compose.yml"
    data = compose()
    data["services"]["gateway"]["healthcheck"]["retries"] = "many"
    data["servics"] = {}
    broken.write_text(yaml.safe_dump(data))
    assert schema_check(broken).returncode != 0


def test_every_process_runs_with_a_restart_policy_and_a_health_check():
    services = compose()["services"]
    assert set(services) >= {
        "rabbitmq", "postgres", "migrate", "prometheus", "grafana", *APPS,
    }  # fmt: skip
    for name, service in services.items():
        if name == "migrate":
            assert service["restart"] == "no"  # one-shot
            continue
        assert service["restart"] in ("unless-stopped", "always", "on-failure"), name
        test = service["healthcheck"]["test"]
        assert test[0] == "CMD" and len(test) > 1, name


def test_the_applications_share_one_image_built_from_the_dockerfile():
    services = compose()["services"]
    assert services["migrate"]["build"]["dockerfile"] == "deploy/Dockerfile"
    assert (ROOT / "deploy" / "Dockerfile").exists()
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (\S+) ", dockerfile, flags=re.M):
        assert (ROOT / source).exists(), source
    for name in APPS:
        service = services[name]
        assert service["image"] == services["migrate"]["image"], name
        kind = "relay" if name.startswith("relay-") else "serve"
        assert service["command"] == ["bersinar", kind, name.removeprefix("relay-")], name
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert service["depends_on"]["rabbitmq"]["condition"] == "service_healthy"


def test_each_component_has_its_own_database_created_by_the_init_script():
    created = set(
        re.findall(r"CREATE DATABASE (\w+);", (ROOT / "deploy/postgres-init.sql").read_text())
    )
    services = compose()["services"]
    used = {}
    for service in services.values():
        for key, value in (service.get("environment") or {}).items():
            if key.endswith("_DATABASE_URL"):
                used.setdefault(key, set()).add(urlsplit(value).path.lstrip("/"))
    assert set(used) == {f"{c.upper()}_DATABASE_URL" for c in COMPONENTS}
    databases = {key: values.pop() for key, values in used.items() if len(values) == 1}
    assert len(databases) == len(COMPONENTS), "a component pointed at two databases"
    assert len(set(databases.values())) == len(COMPONENTS), "two components share a database"
    assert set(databases.values()) <= created
    for name in APPS:
        env = services[name]["environment"]
        component = name.removeprefix("relay-")
        assert f"{component.upper()}_DATABASE_URL" in env, name


def test_each_process_gets_only_the_keys_it_uses():
    """No process reads the whole var/secrets.env: each key is handed, from the env file
    compose is started with, to the one process that uses it; a missing key stops
    compose before anything starts."""
    services = compose()["services"]
    assert not [name for name, s in services.items() if "env_file" in s]
    keys = {
        "RUJUKAN_ENCRYPTION_KEYS": "rujukan",
        "RUJUKAN_NIK_HMAC_KEY": "rujukan",
        "BERSINAR_ADMIN_KEY": "gateway",
    }
    for key, owner in keys.items():
        holders = [n for n, s in services.items() if key in (s.get("environment") or {})]
        assert holders == [owner], key
        assert re.fullmatch(r"\$\{" + key + r":\?[^}]+\}", services[owner]["environment"][key])
    assert "--env-file var/secrets.env" in COMPOSE.read_text()


def test_the_migrate_service_runs_the_start_up_steps_of_make_run():
    """`bersinar setup`, as `make run` runs it (databases, migrations, queues, seed, the
    console's first admin), with the broker's address, writing the first admin's
    password to a volume of its own; the services start once it has finished."""
    services = compose()["services"]
    migrate = services["migrate"]
    assert migrate["command"] == ["bersinar", "setup", "--health-timeout", "0"]
    assert migrate["environment"]["AMQP_URI"] == services["gateway"]["environment"]["AMQP_URI"]
    assert "bersinar-var:/app/var" in migrate["volumes"]
    assert "bersinar-var" in compose()["volumes"]
    assert "RUN mkdir -p /app/var" in (ROOT / "deploy" / "Dockerfile").read_text()


def test_each_process_is_healthy_on_its_own_readiness_not_the_whole_system():
    services = compose()["services"]
    test = " ".join(services["gateway"]["healthcheck"]["test"])
    assert "127.0.0.1:8000/ready" in test and "/health" not in test
    for name in SERVICES:
        assert "/ready'" in " ".join(services[name]["healthcheck"]["test"]), name


def test_rabbitmq_gives_the_services_a_vhost_of_quorum_queues_and_its_metrics():
    services = compose()["services"]
    mounts = services["rabbitmq"]["volumes"]
    definitions = json.loads((ROOT / "deploy/rabbitmq/definitions.json").read_text())
    plugins = (ROOT / "deploy/rabbitmq/enabled_plugins").read_text()
    config = (ROOT / "deploy/rabbitmq/rabbitmq.conf").read_text()
    assert "rabbitmq_prometheus" in plugins and "rabbitmq_management" in plugins
    assert "load_definitions = /etc/rabbitmq/definitions.json" in config
    assert "./deploy/rabbitmq/definitions.json:/etc/rabbitmq/definitions.json:ro" in mounts
    assert "./deploy/rabbitmq/enabled_plugins:/etc/rabbitmq/enabled_plugins:ro" in mounts

    uris = {services[name]["environment"]["AMQP_URI"] for name in APPS}
    (uri,) = uris
    amqp = urlsplit(uri)
    vhost = amqp.path.lstrip("/")
    (vhost_definition,) = [v for v in definitions["vhosts"] if v["name"] == vhost]
    assert vhost_definition["default_queue_type"] == "quorum"
    assert vhost_definition["metadata"]["default_queue_type"] == "quorum"
    (user,) = [u for u in definitions["users"] if u["name"] == amqp.username]
    digest = base64.b64decode(user["password_hash"])
    salt = digest[:4]
    assert digest[4:] == hashlib.sha256(salt + amqp.password.encode()).digest()
    assert {"user": amqp.username, "vhost": vhost, "configure": ".*", "write": ".*",
            "read": ".*"} in definitions["permissions"]  # fmt: skip


def test_prometheus_scrapes_each_container_on_its_metrics_port():
    services = compose()["services"]
    scrape = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    mounts = services["prometheus"]["volumes"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in mounts
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
    for job in scrape["scrape_configs"]:
        for target in job_targets(job)[0]:
            host, port = target.split(":")
            if host == "localhost":
                continue
            assert host in services, target
            healthcheck = " ".join(services[host]["healthcheck"]["test"])
            if host in APPS:
                # the health check reads the very port Prometheus scrapes
                assert f"127.0.0.1:{port}/" in healthcheck, target
                assert services[host]["environment"]["METRICS_ADDRESS"] == "0.0.0.0"


@pytest.mark.parametrize("name", ["prometheus", "grafana"])
def test_monitoring_keeps_its_data_in_volumes(name):
    data = compose()
    volumes = [v.split(":")[0] for v in data["services"][name]["volumes"]]
    assert f"{name}-data" in volumes and f"{name}-data" in data["volumes"]
