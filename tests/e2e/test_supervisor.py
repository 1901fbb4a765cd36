"""`make run`'s process supervisor: a service killed with SIGKILL is started again, and
Ctrl-C (SIGINT) stops every process it started."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
import requests

from bersinar.config import ROOT
from tests.support import infra
from tests.support.fixtures import TEST_HMAC_KEY
from tests.support.system import BIN, System

CONFIG = str(ROOT / "deploy" / "supervisord.conf")


def supervisorctl(env, *args):
    result = subprocess.run(
        [str(BIN / "supervisorctl"), "-c", CONFIG, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return result.stdout.strip()


def pids(env):
    found = {}
    for line in supervisorctl(env, "status").splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[1] == "RUNNING" and parts[2] == "pid":
            found[parts[0]] = int(parts[3].rstrip(","))
    return found


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def supervised(test_run_id, encryption_keys, tmp_path):
    vhost = f"bersinar-sup-{test_run_id}"
    infra.create_vhost(vhost)
    urls = infra.create_databases(f"bs_{test_run_id}")
    system = System(
        infra.amqp_uri_for(vhost),
        urls,
        encryption_keys,
        TEST_HMAC_KEY,
        tmp_path / "log",
        extra_env={"BERSINAR_VAR": str(tmp_path)},
    )
    supervisor = subprocess.Popen(
        [str(BIN / "supervisord"), "-c", CONFIG],
        env=system.env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield system, supervisor
    finally:
        if supervisor.poll() is None:
            supervisor.send_signal(signal.SIGTERM)
            supervisor.wait(timeout=60)
        infra.drop_databases(urls)
        infra.delete_vhost(vhost)


def test_supervisor_restarts_a_killed_service_and_ctrl_c_stops_all(supervised):
    system, supervisor = supervised
    system.wait_healthy(timeout=90)
    before = pids(system.env)
    assert set(before) == {
        "mitra",
        "rujukan",
        "laporan",
        "notifikasi",
        "gateway",
        "relay-mitra",
        "relay-rujukan",
        "relay-laporan",
        "relay-notifikasi",
    }

    killed_at = time.monotonic()
    os.kill(before["notifikasi"], signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = pids(system.env)
        if now.get("notifikasi") not in (None, before["notifikasi"]):
            break
        time.sleep(0.3)
    system.wait_healthy(timeout=60)
    restarted = pids(system.env)["notifikasi"]
    print(
        f"\n[supervisor] notifikasi {before['notifikasi']} killed, running again as "
        f"{restarted} in {time.monotonic() - killed_at:.1f}s"
    )
    assert restarted != before["notifikasi"]

    children = pids(system.env)
    supervisor.send_signal(signal.SIGINT)  # what Ctrl-C sends
    supervisor.wait(timeout=90)
    survivors = [name for name, pid in children.items() if alive(pid)]
    assert survivors == []
    with pytest.raises(requests.ConnectionError):
        requests.get(system.base_url + "/health", timeout=2)
