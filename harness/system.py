"""A whole Bersinar system started the way `make run` starts it: `bersinar run`, which
runs supervisord with deploy/supervisord.conf (the embedded PostgreSQL, `bersinar
setup`, the services, relays and gateway), on a folder of its own (``BERSINAR_VAR``)
and a vhost of its own, so tests can kill, stop and restart its processes by PID."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from bersinar import pg
from bersinar.config import COMPONENTS, ROOT, SERVICES
from harness.infra import free_port

BIN = Path(sys.executable).parent
_PR_SET_PDEATHSIG = 1

RELAYS = tuple(f"relay-{s}" for s in SERVICES)
PROGRAMS = (*SERVICES, "gateway", *RELAYS)
# supervisorctl's names: programs of a [group:...] are named group:program
_QUALIFIED = {
    **{service: f"services:{service}" for service in SERVICES},
    **{relay: f"relays:{relay}" for relay in RELAYS},
}


def _die_with_parent() -> None:
    """Runs in the child before exec: if the test process is killed outright, the kernel
    sends SIGTERM to supervisord, which stops everything it started."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class System:
    """``database_urls`` None: the default set-up, the embedded PostgreSQL under
    ``var_dir/pg``; otherwise the servers those URLs name (as with
    ``<SERVICE>_DATABASE_URL``)."""

    def __init__(
        self,
        amqp_uri: str,
        encryption_keys: str,
        hmac_key: str,
        var_dir: Path,
        *,
        database_urls: dict[str, str] | None = None,
        admin_key: str = "bsk_e2e-admin-key",
        extra_env: dict[str, str] | None = None,
    ):
        self.var_dir = Path(var_dir)
        self.var_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir = self.var_dir / "log"
        self.embedded = database_urls is None
        self.urls = database_urls or {
            component: pg.url(self.var_dir / "pg", pg.database_name(component))
            for component in COMPONENTS
        }
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.admin_key = admin_key
        self.amqp_uri = amqp_uri
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL")},
            "BERSINAR_VAR": str(self.var_dir),
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
        if database_urls is not None:
            for component, url in database_urls.items():
                self.env[f"{component.upper()}_DATABASE_URL"] = url
        for component in SERVICES:
            self.env[f"{component.upper()}_METRICS_PORT"] = "0"
            self.env[f"{component.upper()}_RELAY_METRICS_PORT"] = "0"
        # the gateway's /metrics, on a port of its own as in production
        self.gateway_metrics_port = free_port()
        self.env["GATEWAY_METRICS_PORT"] = str(self.gateway_metrics_port)
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
            # webhooks: the tests' receivers, plain http on this machine, and nothing
            # else (an address the fuzzer makes up is refused, never posted to)
            NOTIFIKASI_WEBHOOK_ALLOW_HOSTS="127.0.0.1",
            NOTIFIKASI_WEBHOOK_ALLOWED_ONLY="true",
        )
        self.env.update(extra_env or {})
        self.supervisor: subprocess.Popen | None = None
        self._output = None

    # -- the whole system ----------------------------------------------------------------

    @property
    def supervisor_conf(self) -> Path:
        """The configuration `bersinar run` gave supervisord for this folder."""
        return self.var_dir / "supervisord.conf"

    def start_all(self, timeout: float = 180.0) -> None:
        """`bersinar run`, as `make run` runs it; returns once /health answers ok."""
        self._output = open(self.var_dir / "run.log", "ab")  # noqa: SIM115 - owned by the run
        self.supervisor = subprocess.Popen(
            [str(BIN / "bersinar"), "run"],
            cwd=ROOT,
            env=self.env,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self.wait_healthy(timeout=timeout)
        self.wait_setup_done(timeout=timeout)

    def run_output(self) -> str:
        """What `bersinar run` printed: supervisord's log and the setup's output."""
        path = self.var_dir / "run.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_setup_done(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.status().get("setup", "")
            if state.startswith("EXITED"):
                if "setup: done" not in self.run_output():
                    raise RuntimeError(f"bersinar setup failed:\n{self.run_output()[-3000:]}")
                return
            time.sleep(0.2)
        raise TimeoutError(f"bersinar setup did not finish in {timeout}s")

    def terminate_all(self, timeout: float = 150.0) -> int:
        """Ctrl-C: SIGINT to supervisord, which stops everything in order. Returns its
        exit status; a supervisord that hangs is killed with its whole session."""
        supervisor, self.supervisor = self.supervisor, None
        if supervisor is None:
            return 0
        if supervisor.poll() is None:
            supervisor.send_signal(signal.SIGINT)
        try:
            return supervisor.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(supervisor.pid, signal.SIGKILL)  # a session this object started
            return supervisor.wait(timeout=30)
        finally:
            if self._output is not None:
                self._output.close()

    # -- one process -----------------------------------------------------------------

    def supervisorctl(self, *args: str, timeout: float = 60) -> str:
        done = subprocess.run(
            [str(BIN / "supervisorctl"), "-c", str(self.supervisor_conf), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return done.stdout

    def status(self) -> dict[str, str]:
        """Each program's state line, by its short name (``mitra``, ``relay-mitra``)."""
        states = {}
        for line in self.supervisorctl("status").splitlines():
            parts = line.split(None, 1)
            if len(parts) == 2:
                states[parts[0].split(":", 1)[-1]] = parts[1].strip()
        return states

    def pids(self) -> dict[str, int]:
        """The PID of every running program."""
        found = {}
        for name, state in self.status().items():
            words = state.replace(",", "").split()
            if len(words) >= 3 and words[0] == "RUNNING" and words[1] == "pid":
                found[name] = int(words[2])
        return found

    def pid(self, name: str) -> int:
        return self.pids()[name]

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int:
        """Send ``sig`` to one program by its PID (supervisord starts a killed program
        again); returns the PID."""
        pid = self.pid(name)
        os.kill(pid, sig)
        return pid

    def wait_restarted(self, name: str, old_pid: int, timeout: float = 60.0) -> int:
        """Until supervisord runs ``name`` again under a new PID; returns it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = self.pids().get(name)
            if pid not in (None, old_pid):
                return pid
            time.sleep(0.2)
        raise TimeoutError(f"{name} not running again within {timeout}s: {self.status()}")

    def stop(self, name: str) -> None:
        """`supervisorctl stop`: SIGTERM (SIGINT for postgres), then it stays down."""
        self.supervisorctl("stop", _QUALIFIED.get(name, name), timeout=120)

    def start(self, name: str) -> None:
        self.supervisorctl("start", _QUALIFIED.get(name, name), timeout=120)

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

    # -- HTTP -----------------------------------------------------------------------

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.supervisor is not None and self.supervisor.poll() is not None:
                raise RuntimeError(
                    f"bersinar run ended ({self.supervisor.returncode}):\n"
                    f"{self.run_output()[-3000:]}"
                )
            try:
                response = requests.get(f"{self.base_url}/health", timeout=3)
                if response.status_code == 200:
                    return
                last = response.text
            except requests.RequestException as exc:
                last = repr(exc)
            time.sleep(0.3)
        raise TimeoutError(f"system not healthy in {timeout}s: {last}")

    def new_key(self, role: str, partner_id: str | None = None, label: str = "uji") -> str:
        """A fresh API key of ``role`` (and partner), made by the admin through the API."""
        body = {"role": role, "label": f"{label} {role}"}
        if partner_id:
            body["partner_id"] = partner_id
        answer = self.post("/api/v1/api-keys", body)
        assert answer.status_code == 201, answer.text
        return answer.json()["key"]

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
