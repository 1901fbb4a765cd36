"""The processes of `make run` (services, relays, gateway) started as real subprocesses
on the test run's vhost and PostgreSQL databases, so tests can kill and restart them."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from bersinar.config import ROOT, SERVICES
from tests.support.infra import free_port

BIN = Path(sys.executable).parent
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: if the test process is killed outright, the kernel
    sends SIGTERM to its services too, so no system outlives its test run."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


RELAYS = tuple(f"relay-{s}" for s in SERVICES)


class System:
    def __init__(
        self,
        amqp_uri: str,
        database_urls: dict[str, str],
        encryption_keys: str,
        hmac_key: str,
        log_dir: Path,
        admin_key: str = "bsk_e2e-admin-key",
        extra_env: dict[str, str] | None = None,
    ):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.admin_key = admin_key
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "AMQP_URI": amqp_uri,
            "BERSINAR_ADMIN_KEY": admin_key,
            "RUJUKAN_ENCRYPTION_KEYS": encryption_keys,
            "RUJUKAN_NIK_HMAC_KEY": hmac_key,
            "GATEWAY_ADDRESS": f"127.0.0.1:{self.port}",
            "EVENT_RETRY_DELAYS": "[0.2, 0.4, 0.8]",
            # the tests and the benchmark post hundreds of requests with one key; rate
            # limits are tested on their own (tests/integration/test_gateway_limits.py)
            "GATEWAY_RATE_LIMIT_PER_MINUTE": "0",
            "PYTHONUNBUFFERED": "1",
            # the processes run this checkout's code even where the virtual environment's
            # editable install points at another (a benchmark of a second checkout)
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        for component, url in database_urls.items():
            self.env[f"{component.upper()}_DATABASE_URL"] = url
            self.env[f"{component.upper()}_METRICS_PORT"] = "0"
            self.env[f"{component.upper()}_RELAY_METRICS_PORT"] = "0"
        # notifikasi: an SMTP port a test may serve, staff addresses, quick retries, metrics
        self.smtp_port = free_port()
        self.notifikasi_metrics_port = free_port()
        self.env.update(
            NOTIFIKASI_SMTP_PORT=str(self.smtp_port),
            NOTIFIKASI_OFFICER_EMAILS="petugas@bnnp-bengkulu.test",
            NOTIFIKASI_ADMIN_EMAILS="admin@bnnp-bengkulu.test",
            NOTIFIKASI_DELIVERY_POLL_INTERVAL="0.2",
            NOTIFIKASI_DELIVERY_RETRY_BASE="0.3",
            NOTIFIKASI_DELIVERY_MAX_ATTEMPTS="3",
            NOTIFIKASI_WEBHOOK_RETRY_BASE="0.3",
            NOTIFIKASI_WEBHOOK_MAX_ATTEMPTS="4",
            NOTIFIKASI_METRICS_PORT=str(self.notifikasi_metrics_port),
        )
        self.env.update(extra_env or {})
        self.processes: dict[str, subprocess.Popen] = {}

    def command(self, name: str) -> list[str]:
        if name.startswith("relay-"):
            return [str(BIN / "bersinar"), "relay", name.removeprefix("relay-")]
        return [str(BIN / "bersinar"), "serve", name]

    def start(self, name: str) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the process
        process = subprocess.Popen(
            self.command(name),
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self.processes[name] = process
        return process

    def command_line(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """A `bersinar` command on this system's broker and databases; its output is
        text, and a failure raises ``CalledProcessError`` with it."""
        return subprocess.run(
            [str(BIN / "bersinar"), *args],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def declare_queues(self) -> None:
        """What `make run` does before starting anything (`bersinar queues`)."""
        self.command_line("queues")

    def seed(self) -> None:
        """The partners of DESIGN.md, as `make run` seeds them (`bersinar seed`)."""
        self.command_line("seed")

    def start_all(self, names=None) -> None:
        if names is None:
            self.declare_queues()
        for name in names or (*SERVICES, "gateway", *RELAYS):
            self.start(name)
        self.wait_healthy()

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes.pop(name)
        process.send_signal(sig)
        process.wait(timeout=30)

    def terminate_all(self) -> None:
        processes = list(self.processes.values())
        self.processes.clear()
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()  # a nameko stop can hang after load: do not wait forever
                process.wait(timeout=10)

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                response = requests.get(f"{self.base_url}/health", timeout=3)
                if response.status_code == 200:
                    return
                last = response.text
            except requests.RequestException as exc:
                last = repr(exc)
            time.sleep(0.3)
        raise TimeoutError(f"system not healthy in {timeout}s: {last}")

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.admin_key}"}

    def get(self, path: str, key: str | None = None, **kwargs) -> requests.Response:
        return requests.get(self.base_url + path, headers=self.headers(key), timeout=10, **kwargs)

    def session_patch(self, path: str, body=None, key: str | None = None) -> requests.Response:
        return requests.patch(
            self.base_url + path, json=body, headers=self.headers(key), timeout=10
        )

    def post(self, path: str, body=None, key: str | None = None, **kwargs) -> requests.Response:
        return requests.post(
            self.base_url + path, json=body, headers=self.headers(key), timeout=10, **kwargs
        )
