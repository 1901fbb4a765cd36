"""A RabbitMQ node of the fault suite's own, in a temporary folder, on free ports: the
suite stops and restarts it, never the machine's shared broker. It is stopped by its own
command or PID, and its folder removed. (The database is the system's own embedded
PostgreSQL, under the same folder.)

The node runs as the ``rabbitmq`` user (as root, the Debian ``rabbitmq-server`` wrapper
switches to it); ``HOME`` is the node's folder, so the node and ``rabbitmqctl`` share an
Erlang cookie of their own. The node reads a config and an enabled-plugins file of its
own, not /etc/rabbitmq (whose listener is the shared port).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psutil

from harness.infra import free_port

RABBITMQ_SCRIPTS = Path("/usr/lib/rabbitmq/bin")


def _as_user(user: str) -> list[str]:
    """Run as ``user`` when we are root; as ourselves otherwise."""
    return ["runuser", "-u", user, "--"] if os.geteuid() == 0 else []


def _own(path: Path, user: str) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam(user)
        for root, dirs, files in os.walk(path):
            for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
                os.chown(name, entry.pw_uid, entry.pw_gid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class PrivateRabbit:
    """``rabbitmq-server -detached`` with a node name, ports and folders of its own."""

    def __init__(self, run_id: str, base: Path):
        self.dir = base / "rabbitmq"
        self.dir.mkdir(parents=True)
        self.node = f"bersinar-chaos-{run_id}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.vhost = "chaos"
        self.pid: int | None = None
        (self.dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
            "loopback_users.guest = true\n"
            # a 2-core machine under load: do not block publishers on a disk/memory alarm
            "disk_free_limit.absolute = 50MB\n"
            "vm_memory_high_watermark.relative = 0.8\n"
        )
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq-env.conf").write_text("")
        _own(self.dir, "rabbitmq")

    @property
    def env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.dir),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(self.dir / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_PID_FILE": str(self.dir / "rabbitmq.pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def _run(self, script: str, *args: str, timeout: float = 120) -> str:
        done = subprocess.run(
            [
                *_as_user("rabbitmq"),
                "env",
                *(f"{k}={v}" for k, v in self.env.items()),
                str(RABBITMQ_SCRIPTS / script),
                *args,
            ],
            cwd=self.dir,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{script} {' '.join(args)}: {done.stderr or done.stdout}")
        return done.stdout

    def ctl(self, *args: str, timeout: float = 120) -> str:
        return self._run("rabbitmqctl", "-q", "-n", self.node, *args, timeout=timeout)

    def start(self) -> None:
        self._run("rabbitmq-server", "-detached")
        deadline = time.monotonic() + 90
        while True:
            try:
                self.ctl("await_startup", "--timeout", "60", timeout=70)
                break
            except (RuntimeError, subprocess.TimeoutExpired):
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        pid_file = self.dir / "rabbitmq.pid"
        self.pid = int(pid_file.read_text().strip()) if pid_file.exists() else None
        self.ctl("add_vhost", self.vhost)
        self.ctl("set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*")

    def stop_app(self) -> None:
        self.ctl("stop_app")

    def start_app(self) -> None:
        self.ctl("start_app")
        self.ctl("await_startup", "--timeout", "60", timeout=70)

    def uri(self, port: int | None = None) -> str:
        return f"amqp://guest:guest@127.0.0.1:{port or self.port}/{self.vhost}"

    def list_queues(self) -> dict[str, int]:
        out = self.ctl("list_queues", "-p", self.vhost, "name", "messages")
        queues = {}
        for line in out.splitlines()[1:]:
            parts = line.split("\t")
            if len(parts) == 2 and parts[1].strip().isdigit():
                queues[parts[0]] = int(parts[1])
        return queues

    def stop(self) -> str:
        """Stop the node by its own command, then by its PID if it lingers."""
        try:
            self.ctl("stop", timeout=60)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            if self.pid and _alive(self.pid):
                os.kill(self.pid, signal.SIGKILL)
                return f"rabbitmq node {self.node} killed by PID {self.pid} ({exc})"
        if self.pid:
            for _ in range(100):
                if not _alive(self.pid):
                    break
                time.sleep(0.1)
            else:
                os.kill(self.pid, signal.SIGKILL)
                return f"rabbitmq node {self.node} killed by PID {self.pid}"
        return f"rabbitmq node {self.node} stopped"


def make_base(run_id: str) -> Path:
    base = Path(tempfile.mkdtemp(prefix=f"bersinar-chaos-{run_id}-"))
    # the rabbitmq account and the embedded PostgreSQL's must reach their folders
    base.chmod(0o755)
    return base


def remove_base(base: Path) -> None:
    shutil.rmtree(base, ignore_errors=True)
