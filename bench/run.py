"""The benchmark run: a system of its own started as `make run` starts it (`bersinar run`
on a folder of its own: supervisord, the embedded PostgreSQL, `bersinar setup`, every
process; a fresh vhost), seeded; HTTP phases at 1, 10 and 50 connections (create, then read a
partner, read a referral, list referrals, accept a referral, submit a report); an outbox
→ relay → consumers phase; referrals grown to 10k, 100k and 1M with list latency, the
time of the indicators and a FHIR Bulk Data export of them all (its time and every
process's memory) at each size; then everything is torn down, whatever happened.

Everything it talks to is on 127.0.0.1. It stops only the supervisord it started (and with
it everything that supervisord runs).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import time
import traceback
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

from bench import export, report, scale, wrk
from bench.baseline import CREATE_BODY, CREATE_PATH, READ_PATHS, Baseline
from bench.ops import EVENTS_OF, OPERATIONS, REPORT_ENV, Operations
from bench.results import (
    PROCESSES,
    Results,
    Settings,
)
from bersinar import pg
from bersinar.config import COMPONENTS, ROOT, SERVICES
from harness import infra, procstat, produced
from harness.loadgen import MIX, referral_for
from harness.receivers import SmtpServer
from harness.system import System

BIN = Path(sys.executable).parent
RESULTS_DIR = ROOT / "bench" / "results"  # git-ignored
CONSUMERS = ("laporan", "notifikasi")  # who handles rujukan's referral_requested
# clients of four age groups (18-24, 25-34, 35-44, 45+) for the events phase
BIRTH_DATES = (date(2004, 3, 1), date(1994, 3, 1), date(1986, 3, 1), date(1970, 3, 1))


DISTURBED_AT = 25.0  # % of a core used by others during a window: the run notes it
BENCH_CAPACITY = 1_000_000  # places per offer during the run (see Bench.raise_capacity)

# Referral indices: each phase draws its clients from its own range (distinct NIKs).
PROBE_FIRST_INDEX = 0
PHASE_FIRST_INDEX = 1_000_000  # phase k starts at (k + 1) * this


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def machine_facts() -> dict:
    def run(*cmd: str) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "?"

    cpu_model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    mem_line = next((ln for ln in run("free", "-g").splitlines() if ln.startswith("Mem:")), "")
    return {
        "nproc": run("nproc"),
        "free_g": " ".join(mem_line.split()),
        "cpu_model": cpu_model,
        "loadavg_before": Path("/proc/loadavg").read_text().split()[:3],
        "kernel": run("uname", "-r"),
        "python": sys.version.split()[0],
    }


def only_localhost() -> None:
    """Refuse to run against a broker elsewhere (the database is the run's own)."""
    host = urlsplit(infra.AMQP_BASE).hostname
    if host not in ("127.0.0.1", "localhost"):
        raise SystemExit(f"bench runs only against 127.0.0.1, not {host} ({infra.AMQP_BASE})")


def read_line(stream, timeout: float) -> str:
    ready, _, _ = select.select([stream], [], [], timeout)
    if not ready:
        raise TimeoutError("no answer from a child process in time")
    return stream.readline().decode().strip()


class SessionSampler:
    """What the PostgreSQL sessions of one database are doing, averaged over samples:
    running a statement, waiting for a lock (e.g. rujukan's partner row), or idle inside
    a transaction (the service is busy elsewhere while holding it open)."""

    QUERY = text(
        "SELECT state, wait_event_type, count(*) FROM pg_stat_activity "
        "WHERE datname = :name AND pid <> pg_backend_pid() GROUP BY 1, 2"
    )

    def __init__(self, engine, database: str):
        self.engine = engine
        self.database = database
        self.samples = 0
        self.totals = {"running": 0, "lock_wait": 0, "idle_in_tx": 0}

    def sample(self) -> None:
        with self.engine.connect() as connection:
            rows = connection.execute(self.QUERY, {"name": self.database}).all()
        self.samples += 1
        for state, wait, count in rows:
            if state == "active" and wait == "Lock":
                self.totals["lock_wait"] += count
            elif state == "active":
                self.totals["running"] += count
            elif state and state.startswith("idle in transaction"):
                self.totals["idle_in_tx"] += count

    def averages(self) -> dict[str, float]:
        return {k: v / self.samples for k, v in self.totals.items()} if self.samples else {}


class Bench:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.results = Results()
        self.run_id = uuid.uuid4().hex[:8]
        self.vhost = f"bersinar-bench-{self.run_id}"
        # the run's BERSINAR_VAR: the embedded PostgreSQL's data, the processes' logs
        self.var_dir = RESULTS_DIR / f"run-{self.run_id}"
        self.log_dir = self.var_dir / "log"
        self.admin_key = f"bsk_bench-{secrets.token_urlsafe(24)}"
        self.urls: dict[str, str] = {}
        self.vhost_made = False
        self.system: System | None = None
        self.engines: dict = {}
        self.children: list[subprocess.Popen] = []  # load generator, canned server, sink
        self.smtp_sink: SmtpServer | None = None
        self.t_start = time.monotonic()
        self.rss_hwm: dict[str, int] = {}
        self.started_pids: dict[str, int] = {}  # each process's PID once the system is up
        self.baseline: Baseline | None = None
        self.baseline_vhost = f"{self.vhost}-baseline"
        self.baseline_vhost_made = False
        self.national_key: str | None = None  # the data-scale phase's Bulk Data exports

    # -- plumbing -------------------------------------------------------------------

    def elapsed(self) -> float:
        return time.monotonic() - self.t_start

    def over_budget(self, need: float) -> bool:
        return self.elapsed() + need > self.settings.budget

    def scalar(self, component: str, sql: str, **params):
        with self.engines[component].connect() as connection:
            return connection.execute(text(sql), params).scalar()

    def rows(self, component: str, sql: str, **params) -> list:
        with self.engines[component].connect() as connection:
            return connection.execute(text(sql), params).all()

    def pids(self) -> dict[str, int]:
        """The Bersinar processes (supervisord's programs but the database)."""
        return {name: pid for name, pid in self.started_pids.items() if name in PROCESSES}

    def postmaster(self) -> int:
        """The embedded PostgreSQL as supervisord runs it (bersinar.pg run_server, whose
        child is the postmaster): the root of the database's process tree."""
        return self.started_pids["postgres"]

    def backend_pids(self) -> list[int]:
        """The embedded PostgreSQL's backends serving the components' databases."""
        names = [pg.database_name(c) for c in COMPONENTS]
        with self.engines["admin"].connect() as connection:
            rows = connection.execute(
                text("SELECT pid FROM pg_stat_activity WHERE datname = ANY(:names)"),
                {"names": names},
            ).all()
        return [row[0] for row in rows]

    def cpu_window(self) -> procstat.CpuWindow:
        groups = {name: [pid] for name, pid in self.pids().items()}
        backends = self.backend_pids()
        groups["postgres (backends)"] = backends
        # the postmaster and its own workers (WAL writer, checkpointer, autovacuum...)
        groups["postgres (server processes)"] = [
            pid
            for pid in (self.postmaster(), *procstat.descendants(self.postmaster()))
            if pid not in backends
        ]
        groups["rabbitmq"] = procstat.pids_by_cmdline("rabbit boot")
        groups["bench harness"] = [os.getpid()]
        return procstat.CpuWindow(groups)

    def finish_cpu(self, window: procstat.CpuWindow) -> dict[str, float]:
        window.add_new_pids("postgres (backends)", self.backend_pids())
        figures = window.end()
        accounted = sum(v for k, v in figures.items() if k not in ("machine", "machine_cores"))
        figures["other (rest of machine)"] = max(0.0, figures["machine"] - accounted)
        return figures

    def note_disturbance(self, label: str, cpu: dict[str, float]) -> None:
        """The machine is shared: say so when other work took a real share of it."""
        other = cpu.get("other (rest of machine)", 0.0)
        if other > DISTURBED_AT:
            note = (
                f"{label}: other processes on the machine used {other:.0f}% of a core "
                f"during the window; the figures are lower than on a quiet machine"
            )
            self.results.notes.append(note)
            log(note)

    def update_hwm(self) -> None:
        for name, pid in self.pids().items():
            _, hwm = procstat.rss_kib(pid)
            self.rss_hwm[name] = max(self.rss_hwm.get(name, 0), hwm)

    def memory_sampler(self) -> procstat.RssSampler:
        return procstat.RssSampler(self.pids(), trees={"postgres": self.postmaster()})

    def keep_peaks(self, phase: str, sampler: procstat.RssSampler) -> None:
        self.results.rss_peak_kib[phase] = sampler.peak
        self.results.postgres_kib[phase] = sampler.tree_peak["postgres"]

    def merge_peaks(self, phase: str, sampler: procstat.RssSampler) -> None:
        """A window's peaks into a phase of several windows (each operation, the export at
        each size): the largest of any of them."""
        merged = self.results.rss_peak_kib.setdefault(phase, {})
        for name, kib in sampler.peak.items():
            merged[name] = max(merged.get(name, 0), kib)
        database = self.results.postgres_kib.setdefault(phase, {})
        for key, value in sampler.tree_peak["postgres"].items():
            database[key] = max(database.get(key, 0), value)

    def check_alive(self) -> None:
        """supervisord starts a process that died again: a new PID is a death."""
        now = self.system.pids()
        dead = [name for name, pid in self.started_pids.items() if now.get(name) != pid]
        if self.baseline is not None:
            alive = self.baseline.alive()
            dead += [f"baseline {n}" for n in self.baseline.processes if n not in alive]
        if dead:
            raise RuntimeError(
                f"process(es) died during the run (restarted by supervisord or not running): "
                f"{', '.join(dead)} (logs in {self.log_dir})"
            )

    # -- setup ------------------------------------------------------------------------

    def setup(self) -> None:
        t0 = time.monotonic()
        log(f"run {self.run_id}: vhost {self.vhost}, folder {self.var_dir.relative_to(ROOT)}")
        self.vhost_made = True  # set first: a half-made vhost is deleted too
        infra.create_vhost(self.vhost)
        # notifikasi e-mails partners and staff: a local sink accepts them, as a mail
        # server would (without one every delivery fails, retries and is reported)
        smtp_port = infra.free_port()
        self.smtp_sink = SmtpServer(self.var_dir / "mail", smtp_port).start()
        # the default set-up of `make run`: the embedded PostgreSQL under var/pg
        self.system = System(
            infra.amqp_uri_for(self.vhost),
            f"b1:{Fernet.generate_key().decode()}",
            secrets.token_urlsafe(48),
            self.var_dir,
            admin_key=self.admin_key,
            extra_env={
                "NOTIFIKASI_SMTP_HOST": "127.0.0.1",
                "NOTIFIKASI_SMTP_PORT": str(smtp_port),
                **REPORT_ENV,
            },
        )
        log(f"bersinar run: {len(PROCESSES)} processes, gateway on {self.system.base_url}")
        self.system.start_all(timeout=300)  # databases, migrations, queues, seed: setup's
        self.results.setup_s["bersinar run"] = time.monotonic() - t0
        self.started_pids = self.system.pids()
        missing = {*PROCESSES, "postgres"} - set(self.started_pids)
        if missing:
            raise RuntimeError(f"bersinar run did not start {sorted(missing)}")
        self.urls = dict(self.system.urls)
        for component, url in self.urls.items():
            self.engines[component] = create_engine(url, pool_size=2, max_overflow=0)
        self.engines["admin"] = create_engine(
            pg.url(self.var_dir / "pg", "postgres"), pool_size=1, max_overflow=0
        )
        log(f"healthy after {self.results.setup_s['bersinar run']:.1f}s; PIDs {self.started_pids}")
        self.start_baseline()

    def start_baseline(self) -> None:
        """The plain-nameko pair (bench/baseline/): the same broker (a vhost of its own)
        and the same PostgreSQL server (a database of its own) as the system."""
        from bench.baseline import DATABASE

        t0 = time.monotonic()
        self.baseline_vhost_made = True
        infra.create_vhost(self.baseline_vhost)
        self.baseline = Baseline(
            infra.amqp_uri_for(self.baseline_vhost),
            pg.url(self.var_dir / "pg", DATABASE),
            infra.free_port(),
            self.log_dir,
        )
        self.baseline.create_database(
            self.engines["admin"], lambda url: create_engine(url, pool_size=1, max_overflow=0)
        )
        self.baseline.start()
        self.results.setup_s["baseline"] = time.monotonic() - t0
        log(f"baseline up on {self.baseline.base_url}; PIDs {self.baseline.pids()}")

    def seed(self) -> None:
        """`bersinar setup` seeded mitra; rujukan must have learnt the partners."""
        t0 = time.monotonic()
        self.wait_read_model(version=1)
        # A POST for a partner rujukan does not know yet answers 422 "Mitra tidak dikenal".
        self.wait_known_partner()
        self.raise_capacity()
        self.probe_mix()
        self.results.setup_s["seed"] = time.monotonic() - t0

    def wait_read_model(self, version: int, timeout: float = 60.0) -> None:
        """Until rujukan's partner read model holds every seeded partner at ``version``."""
        from services.mitra.domain import SEED_PARTNERS

        want = len(SEED_PARTNERS)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            have = self.scalar(
                "rujukan", "SELECT count(*) FROM partner_view WHERE version >= :v", v=version
            )
            agreements = self.scalar("rujukan", "SELECT count(*) FROM agreement_view")
            if have == want and agreements >= want:
                return
            time.sleep(0.2)
        raise TimeoutError(
            f"rujukan's partner read model did not reach version {version} "
            f"of {want} partners in {timeout}s"
        )

    def wait_known_partner(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        index = PROBE_FIRST_INDEX + 9_000
        while time.monotonic() < deadline:
            response = self.system.post("/api/v1/referrals", referral_for(index))
            index += len(MIX)  # same partner and service, a new client
            if response.status_code == 201:
                return
            body = response.text
            if not (response.status_code == 422 and "tidak dikenal" in body):
                raise RuntimeError(
                    f"unexpected answer while waiting for the partner read "
                    f"model: {response.status_code} {body[:300]}"
                )
            time.sleep(0.3)
        raise TimeoutError("rujukan kept answering 'Mitra tidak dikenal'")

    def raise_capacity(self) -> None:
        """The seeded capacities (10-40 places per offer) would answer 409 CAPACITY_FULL
        after a few hundred referrals. Raise every offer in rujukan's partner read model
        (this run's own database) so the load measures creation, not refusals. Written
        here rather than through mitra so the bench does not depend on mitra's editing
        code; no partner_updated is sent during the run to undo it."""
        with self.engines["rujukan"].begin() as connection:
            rows = connection.execute(text("SELECT partner_id, services FROM partner_view")).all()
            for partner_id, services in rows:
                offers = json.loads(services) if isinstance(services, str) else services
                for offer in offers:
                    offer["capacity"] = BENCH_CAPACITY
                connection.execute(
                    text(
                        "UPDATE partner_view SET services = CAST(:services AS json) "
                        "WHERE partner_id = :partner_id"
                    ),
                    {"services": json.dumps(offers), "partner_id": partner_id},
                )

    def probe_mix(self) -> None:
        """One referral of every (partner, service type) of the mix must be accepted."""
        for offset in range(len(MIX)):
            response = self.system.post(
                "/api/v1/referrals", referral_for(PROBE_FIRST_INDEX + offset)
            )
            if response.status_code != 201:
                raise RuntimeError(
                    f"probe {MIX[offset][:2]} answered {response.status_code}: "
                    f"{response.text[:300]}"
                )

    # -- load generator ---------------------------------------------------------------

    def spawn(self, module: str, *args: str) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(self.log_dir / f"{module}.stderr", "ab"),  # noqa: SIM115
            start_new_session=True,
        )
        self.children.append(process)
        return process

    def stop_child(self, process: subprocess.Popen) -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if process in self.children:
            self.children.remove(process)

    def drive(
        self,
        port: int,
        connections: int,
        warmup: float,
        duration: float,
        first_index: int = 0,
        static_body: str | None = None,
        sample: bool = True,
        plan: dict | None = None,
    ):
        """Run the load generator once; returns (its figures, CPU window, memory
        sampler)."""
        plan_file = None
        if plan is not None:
            plan_file = self.log_dir / f"plan-{uuid.uuid4().hex[:8]}.json"
            plan_file.write_text(json.dumps(plan))
        config = {
            "host": "127.0.0.1",
            "port": port,
            "path": "/api/v1/referrals",
            "headers": {"Authorization": f"Bearer {self.admin_key}"},
            "connections": connections,
            "warmup": warmup,
            "duration": duration,
            "first_index": first_index,
            "static_body": static_body,
            "plan": str(plan_file) if plan_file else None,
        }
        generator = self.spawn("harness.loadgen", json.dumps(config))
        try:
            line = read_line(generator.stdout, 30)
            if line != "READY":
                raise RuntimeError(f"load generator did not start: {line!r}")
            generator.stdin.write(b"go\n")
            generator.stdin.flush()
            start = time.monotonic()
            window = rss = sessions = None
            if sample:
                window = self.cpu_window()
                window.groups["load generator"] = procstat.Group("load generator", [generator.pid])
                rss = self.memory_sampler()
                sessions = SessionSampler(self.engines["admin"], pg.database_name("rujukan"))
            time.sleep(max(0.0, warmup - (time.monotonic() - start)))
            if window is not None:
                window.begin()
            while time.monotonic() - start < warmup + duration:
                if rss is not None:
                    rss.sample()
                    sessions.sample()
                if select.select([generator.stdout], [], [], 0.25)[0]:
                    break  # a plan used up before the end: the generator has answered
            cpu = self.finish_cpu(window) if window is not None else None
            line = read_line(generator.stdout, 90)
            figures = json.loads(line)
            generator.wait(timeout=30)
        finally:
            self.stop_child(generator)
            if plan_file is not None:
                plan_file.unlink(missing_ok=True)
        if sessions is not None:
            figures["rujukan_db_sessions"] = sessions.averages()
        return figures, cpu, rss

    def drive_wrk(
        self,
        base_url: str,
        paths,
        connections: int,
        warmup: float,
        duration: float,
        method: str = "GET",
        headers: dict[str, str] | None = None,
        body: str | None = None,
        pids: dict[str, int] | None = None,
    ):
        """wrk once uncounted (warm-up), then counted; returns (its figures, CPU window,
        memory sampler), CPU and memory of ``pids`` (default: the system's processes)."""
        script_file = self.log_dir / f"wrk-{uuid.uuid4().hex[:8]}.lua"
        args = {"method": method, "headers": headers, "body": body}
        try:
            if warmup > 0:
                wrk.figures(wrk.start(base_url, paths, connections, warmup, script_file, **args), 0)
            if pids is None:
                window, rss = self.cpu_window(), self.memory_sampler()
            else:
                window = procstat.CpuWindow(
                    {
                        **{name: [pid] for name, pid in pids.items()},
                        "postgres (backends)": self.backend_pids(),
                        "rabbitmq": procstat.pids_by_cmdline("rabbit boot"),
                    }
                )
                rss = procstat.RssSampler(pids)
            process = wrk.start(base_url, paths, connections, duration, script_file, **args)
            window.groups["load generator"] = procstat.Group("load generator", [process.pid])
            window.begin()
            while process.poll() is None:
                rss.sample()
                time.sleep(0.25)
            cpu = self.finish_cpu(window)
            figures = wrk.figures(process, connections)
        finally:
            script_file.unlink(missing_ok=True)
        figures["generator_cpu_pct"] = cpu.get("load generator", 0.0)
        return figures, cpu, rss

    def measure_baseline(self, kind: str, connections: int, warmup: float, duration: float):
        """The baseline's read (one row over one RPC) or create (one row, one event, one
        row by its consumer) at ``connections``, with wrk, right after the system's phase."""
        if kind == "read":
            paths, method, body = READ_PATHS, "GET", None
        else:
            paths, method, body = (CREATE_PATH,), "POST", CREATE_BODY
        figures, cpu, rss = self.drive_wrk(
            self.baseline.base_url,
            paths,
            connections,
            warmup,
            duration,
            method=method,
            body=body,
            pids=self.baseline.pids(),
        )
        self.check_alive()
        own = sum(v for k, v in cpu.items() if k.startswith("baseline "))
        everything = own + sum(cpu.get(k, 0) for k in ("postgres (backends)", "rabbitmq"))
        figures.update(
            kind=kind,
            cpu=cpu,
            rss_peak_kib=rss.peak,
            cpu_ms_per_request=10.0 * everything / figures["ok_per_s"]
            if figures["ok_per_s"]
            else None,
        )
        return figures

    def compare(self, label: str, figures: dict, kind: str, warmup: float, duration: float):
        """The baseline's figure beside the system's, and their ratios, for one phase."""
        base = self.measure_baseline(kind, figures["connections"], warmup, duration)
        figures["baseline"] = base
        figures["ratio"] = figures["ok_per_s"] / base["ok_per_s"] if base["ok_per_s"] else None
        figures["p99_ratio"] = figures["p99_ms"] / base["p99_ms"] if base["p99_ms"] else None
        largest = max(base["rss_peak_kib"].items(), key=lambda kv: kv[1], default=("-", 0))
        log(
            f"{label}: Bersinar {figures['ok_per_s']:.0f} req/s p99 {figures['p99_ms']:.1f} ms; "
            f"baseline {kind} {base['ok_per_s']:.0f} req/s p99 {base['p99_ms']:.1f} ms; ratio "
            f"{figures['ratio'] or 0:.2f}x (p99 {figures['p99_ratio'] or 0:.2f}x); baseline "
            f"CPU {base['cpu_ms_per_request'] or 0:.1f} ms per request (its processes, "
            f"PostgreSQL, RabbitMQ), largest RSS {largest[0]} {largest[1] / 1024:.0f} MiB"
        )

    def calibrate(self) -> None:
        """How fast can the generator go at all? Against a server that answers at once."""
        port = infra.free_port()
        server = self.spawn("bench.canned", str(port))
        try:
            if read_line(server.stdout, 15) != "LISTENING":
                raise RuntimeError("canned server did not start")
            for connections in (10, 50):
                # the same bodies as the real phases: their making is part of the cost
                figures, _, _ = self.drive(
                    port,
                    connections,
                    warmup=0.5,
                    duration=2.5,
                    first_index=9 * PHASE_FIRST_INDEX,
                    sample=False,
                )
                figures["connections"] = connections
                self.results.calibration = self.results.calibration or {}
                self.results.calibration[str(connections)] = figures
                log(
                    f"generator ceiling at {connections} conn (canned server): "
                    f"{figures['ok_per_s']:.0f} req/s, p50 {figures['p50_ms']:.2f} ms, "
                    f"generator CPU {figures['generator_cpu_pct']:.0f}% of a core"
                )
        finally:
            self.stop_child(server)

    # -- phases ----------------------------------------------------------------------

    def wait_drained(
        self,
        label: str,
        source: str = "rujukan",
        event_type: str = "referral_requested",
        consumers: tuple[str, ...] = CONSUMERS,
    ) -> float:
        """Until every ``event_type`` event of ``source`` so far reached its consumers'
        inboxes (so one phase's backlog does not load the next). Returns seconds waited."""
        t0 = time.monotonic()
        deadline = t0 + self.settings.drain_timeout
        while True:
            outbox = self.scalar(
                source, "SELECT count(*) FROM outbox WHERE event_type = :t", t=event_type
            )
            pending = self.scalar(source, "SELECT count(*) FROM outbox WHERE published_at IS NULL")
            handled = [
                self.scalar(c, "SELECT count(*) FROM inbox WHERE event_type = :t", t=event_type)
                for c in consumers
            ]
            if pending == 0 and all(h >= outbox for h in handled):
                waited = time.monotonic() - t0
                if waited > 1:
                    log(f"consumers caught up {waited:.1f}s after {label}")
                return waited
            if time.monotonic() > deadline:
                note = (
                    f"after {label}: consumers had not caught up in "
                    f"{self.settings.drain_timeout:.0f}s (outbox {outbox}, unpublished "
                    f"{pending}, handled {dict(zip(consumers, handled, strict=True))})"
                )
                self.results.notes.append(note)
                log(note)
                return time.monotonic() - t0
            time.sleep(0.2)

    def http_phase(self, number: int, connections: int) -> None:
        need = self.settings.warmup + self.settings.duration + 15
        if self.over_budget(need + 60):
            note = f"{connections}-connection phase skipped: time budget spent"
            self.results.notes.append(note)
            log(note)
            return
        label = f"POST c={connections}"
        log(f"{label}: {self.settings.warmup:.0f}s warm-up + {self.settings.duration:.0f}s counted")
        figures, cpu, memory = self.drive(
            int(self.system.port),
            connections,
            self.settings.warmup,
            self.settings.duration,
            first_index=(number + 1) * PHASE_FIRST_INDEX,
        )
        self.check_alive()
        self.update_hwm()
        self.keep_peaks(label, memory)
        self.results.cpu[label] = cpu
        self.note_disturbance(label, cpu)
        figures["label"] = label
        log(
            f"{label}: {figures['ok_per_s']:.0f} req/s (201), p50 {figures['p50_ms']:.1f} ms, "
            f"p99 {figures['p99_ms']:.1f} ms, statuses {figures['statuses']}, generator CPU "
            f"{figures['generator_cpu_pct']:.0f}% of a core"
        )
        counted = {
            k: v
            for k, v in cpu.items()
            if k in PROCESSES
            or k in ("postgres (backends)", "postgres (server processes)", "rabbitmq")
        }
        ours = sum(counted.values())
        figures["system_cpu_ms_per_request"] = (
            10.0 * ours / figures["ok_per_s"] if figures["ok_per_s"] else None
        )
        # each process's CPU ms per referral (% of a core over the window / req/s × 10)
        figures["cpu_ms_per_request_by_process"] = (
            {k: 10.0 * v / figures["ok_per_s"] for k, v in counted.items()}
            if figures["ok_per_s"]
            else {}
        )
        figures["rujukan_cpu_ms_per_request"] = (
            10.0 * cpu.get("rujukan", 0) / figures["ok_per_s"] if figures["ok_per_s"] else None
        )
        db = figures.get("rujukan_db_sessions") or {}
        log(
            f"{label}: CPU per referral: whole system "
            f"{figures['system_cpu_ms_per_request'] or 0:.1f} ms, rujukan "
            f"{figures['rujukan_cpu_ms_per_request'] or 0:.1f} ms; rujukan DB sessions on "
            f"average: {db.get('running', 0):.1f} running, {db.get('lock_wait', 0):.1f} waiting "
            f"for a lock, {db.get('idle_in_tx', 0):.1f} idle in transaction"
        )
        total = figures["system_cpu_ms_per_request"]
        shares = sorted(
            figures["cpu_ms_per_request_by_process"].items(), key=lambda kv: kv[1], reverse=True
        )
        log(
            f"{label}: CPU ms per referral by process (share of the whole): "
            + (", ".join(f"{k} {v:.1f} ({100 * v / total:.0f}%)" for k, v in shares if v > 0))
            if total
            else f"{label}: no referral counted"
        )
        for error in figures["errors"]:
            log(f"  e.g. {error}")
        figures["drain_s"] = self.wait_drained(label)
        log(f"{label}: largest RSS {report.largest_rss(memory.peak)} MiB")
        self.compare(label, figures, "create", self.settings.warmup, self.settings.duration)
        self.results.http.append(figures)

    def events_phase(self) -> None:
        from bersinar.db import UnitOfWorkFactory
        from services.rujukan.models import Base

        n = self.settings.events
        if self.over_budget(self.settings.event_timeout / 2):
            note = "events phase skipped: time budget spent"
            self.results.notes.append(note)
            log(note)
            return
        label = "events"
        referrals = self.scalar("rujukan", "SELECT count(*) FROM referrals")
        clients = self.scalar("rujukan", "SELECT count(*) FROM clients")
        self.results.setup_s["referrals_created"] = referrals
        self.results.setup_s["distinct_clients"] = clients
        if clients != referrals:
            self.results.notes.append(
                f"{referrals - clients} of {referrals} referrals were "
                f"for a returning client (same NIK)"
            )
        before = {
            c: self.scalar(c, "SELECT count(*) FROM inbox WHERE event_type = 'referral_requested'")
            for c in CONSUMERS
        }
        log(f"{label}: writing {n} referral_requested rows to rujukan's outbox in one transaction")
        factory = UnitOfWorkFactory(self.urls["rujukan"], "rujukan", Base.metadata)
        try:
            with factory() as uow:
                for i in range(n):
                    partner, service_type, sexes = MIX[i % len(MIX)]
                    # the payload rujukan's own code builds (its contract is checked)
                    data = produced.referral_requested(
                        partner_id=partner,
                        service_type=service_type,
                        sex=sexes[i % len(sexes)],
                        birth_date=BIRTH_DATES[i % len(BIRTH_DATES)],
                    )["data"]
                    uow.emit("referral_requested", data, f"referral:{data['referral_id']}")
                window = self.cpu_window()
                rss = self.memory_sampler()
                t_commit = time.monotonic()
                uow.commit()
                t0 = time.monotonic()
                wall0 = datetime.now(UTC)
                window.begin()
        finally:
            factory.dispose()
        insert_s = t0 - t_commit
        done: dict[str, float] = {}
        last_progress = t0
        timeout = min(
            self.settings.event_timeout, max(30.0, self.settings.budget + 15 - self.elapsed())
        )
        deadline = t0 + timeout
        counts = {}
        while time.monotonic() < deadline:
            rss.sample()
            now = time.monotonic()
            if (
                "relay" not in done
                and self.scalar("rujukan", "SELECT count(*) FROM outbox WHERE published_at IS NULL")
                == 0
            ):
                done["relay"] = now - t0
            for consumer in CONSUMERS:
                if consumer in done:
                    continue
                counts[consumer] = (
                    self.scalar(
                        consumer,
                        "SELECT count(*) FROM inbox WHERE event_type = 'referral_requested'",
                    )
                    - before[consumer]
                )
                if counts[consumer] >= n:
                    done[consumer] = now - t0
            if len(done) == 1 + len(CONSUMERS):
                break
            if now - last_progress >= 5:
                last_progress = now
                log(f"{label}: {now - t0:.0f}s, handled {counts}")
            time.sleep(0.05)
        cpu = self.finish_cpu(window)
        self.check_alive()
        self.update_hwm()
        # Precise ends from the rows' own timestamps (same clock): last publish, last handle.
        last_published = self.scalar("rujukan", "SELECT max(published_at) FROM outbox")
        seconds = {"relay": (last_published - wall0).total_seconds() if "relay" in done else None}
        for consumer in CONSUMERS:
            last = self.scalar(
                consumer,
                "SELECT max(handled_at) FROM inbox WHERE event_type = 'referral_requested'",
            )
            seconds[consumer] = (last - wall0).total_seconds() if consumer in done else None
        for consumer in CONSUMERS:
            if consumer not in done:
                counts[consumer] = (
                    self.scalar(
                        consumer,
                        "SELECT count(*) FROM inbox WHERE event_type = 'referral_requested'",
                    )
                    - before[consumer]
                )
        elapsed = time.monotonic() - t0
        rates = {}
        for name, secs in seconds.items():
            if secs is not None and secs > 0:
                rates[name] = n / secs
            elif name in CONSUMERS:  # did not finish: the rate it managed
                rates[name] = counts[name] / elapsed
        complete = len(done) == 1 + len(CONSUMERS)
        e2e_seconds = max(s for s in seconds.values() if s is not None) if complete else None
        self.results.events = {
            "n": n,
            "insert_s": insert_s,
            "complete": complete,
            "seconds": seconds,
            "rates": rates,
            "end_to_end_per_s": (n / e2e_seconds)
            if e2e_seconds
            else min(counts[c] for c in CONSUMERS) / elapsed,
            "end_to_end_s": e2e_seconds,
            "handled": counts,
        }
        self.keep_peaks(label, rss)
        self.results.cpu[label] = cpu
        self.note_disturbance(label, cpu)
        log(
            f"{label}: relay {rates.get('relay', 0):.0f}/s, laporan "
            f"{rates.get('laporan', 0):.0f}/s, notifikasi {rates.get('notifikasi', 0):.0f}/s, "
            f"end to end {self.results.events['end_to_end_per_s']:.0f} events/s"
            + ("" if complete else f" (INCOMPLETE after {elapsed:.0f}s: {counts})")
        )
        self.baseline_events(n, timeout)

    def baseline_events(self, n: int, timeout: float) -> None:
        """The baseline's consumer (one transaction per event, nameko's prefetch) beside
        Bersinar's: ``n`` events published at once, the rate at which it inserts their
        rows."""
        from bench.baseline import DATABASE

        engine = create_engine(pg.url(self.var_dir / "pg", DATABASE), pool_size=1)
        try:

            def logged() -> int:
                with engine.connect() as connection:
                    return connection.execute(text("SELECT count(*) FROM item_log")).scalar()

            before = logged()
            window = procstat.CpuWindow({k: [v] for k, v in self.baseline.pids().items()})
            window.begin()
            t0 = time.monotonic()
            self.baseline.publish_events(n)
            published = time.monotonic() - t0
            deadline = t0 + timeout
            done = logged() - before
            while done < n and time.monotonic() < deadline:
                time.sleep(0.05)
                done = logged() - before
            seconds = time.monotonic() - t0
            cpu = window.end()
        finally:
            engine.dispose()
        rate = done / seconds
        self.results.events["baseline"] = {
            "n": n,
            "published_s": published,
            "handled": done,
            "seconds": seconds,
            "rate": rate,
            "cpu": cpu,
        }
        ratio = self.results.events["end_to_end_per_s"] / rate if rate else 0
        self.results.events["ratio"] = ratio
        log(
            f"events: baseline consumer {rate:.0f} events/s ({done} of {n} in {seconds:.1f}s); "
            f"Bersinar end to end / baseline {ratio:.2f}x"
        )

    def settle(self, label: str) -> None:
        """Until no service has an event left to publish (notifikasi's own events of the
        phase before, e-mails), so one phase's tail does not load the next."""
        deadline = time.monotonic() + self.settings.drain_timeout
        while time.monotonic() < deadline:
            pending = sum(
                self.scalar(s, "SELECT count(*) FROM outbox WHERE published_at IS NULL")
                for s in SERVICES
            )
            if not pending:
                return
            time.sleep(0.3)
        log(f"before {label}: events still unpublished after {self.settings.drain_timeout:.0f}s")

    def op_phase(self, operations: Operations, operation: str, connections: int) -> None:
        label = f"{operation} c={connections}"
        self.settle(label)
        if self.over_budget(self.settings.op_warmup + self.settings.op_duration + 60):
            note = f"{label} skipped: time budget spent"
            self.results.notes.append(note)
            log(note)
            return
        plan = operations.plan(operation)
        if not plan["requests"]:
            note = f"{label} skipped: nothing left to do it to"
            self.results.notes.append(note)
            log(note)
            return
        log(
            f"{label}: {OPERATIONS[operation]}, {self.settings.op_warmup:g}s warm-up + "
            f"{self.settings.op_duration:g}s counted ({len(plan['requests'])} requests planned)"
        )
        reads = all(r[0] == "GET" and r[3] == 0 for r in plan["requests"])
        if reads and plan.get("cycle"):  # the same paths in turn: wrk can send them
            figures, cpu, memory = self.drive_wrk(
                self.system.base_url,
                [r[1] for r in plan["requests"]],
                connections,
                self.settings.op_warmup,
                self.settings.op_duration,
                headers=plan["headers"][0],
            )
        else:
            figures, cpu, memory = self.drive(
                int(self.system.port),
                connections,
                self.settings.op_warmup,
                self.settings.op_duration,
                plan=plan,
            )
        operations.sent[operation] = operations.sent.get(operation, 0) + figures["sent_total"]
        self.check_alive()
        self.update_hwm()
        self.merge_peaks("operations", memory)
        self.note_disturbance(label, cpu)
        figures.update(label=label, operation=operation, cpu=cpu)
        log(
            f"{label}: {figures['ok_per_s']:.0f} req/s (2xx), p50 {figures['p50_ms']:.1f} ms, "
            f"p99 {figures['p99_ms']:.1f} ms, statuses {figures['statuses']}"
            + (" (plan used up)" if figures.get("plan_used_up") else "")
        )
        for error in figures["errors"]:
            log(f"  e.g. {error}")
        failed = sum(n for status, n in figures["statuses"].items() if status.startswith("5"))
        if failed:  # a note other than a disturbance keeps the processes' logs
            note = f"{label}: {failed} answers 5xx, e.g. {figures['errors'][:1]}"
            self.results.notes.append(note)
        if operation in EVENTS_OF:
            figures["drain_s"] = self.wait_drained(label, *EVENTS_OF[operation])
        figures["rss_peak_kib"] = memory.peak
        log(f"{label}: largest RSS {report.largest_rss(memory.peak)} MiB")
        kind = "read" if reads else "create"
        self.compare(label, figures, kind, self.settings.op_warmup, self.settings.op_duration)
        self.results.ops.setdefault(operation, []).append(figures)

    def explain_list(self) -> list[dict]:
        """PostgreSQL's own account of the list query behind GET /referrals (first page,
        newest first) for three filters: the plan's index and its execution time."""
        from bench.ops import PARTNERS

        found = []
        for where, params in (
            ("partner_id = :p AND status = :s", {"p": PARTNERS[1], "s": "admitted"}),
            ("partner_id = :p", {"p": PARTNERS[1]}),
            ("status = :s", {"s": "requested"}),
        ):
            sql = (
                "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT * FROM referrals WHERE "
                f"{where} ORDER BY created_at DESC, id DESC LIMIT 51"
            )
            plan = self.scalar("rujukan", sql, **params)
            plan = json.loads(plan) if isinstance(plan, str) else plan
            indexes = sorted(set(_plan_values(plan[0]["Plan"], "Index Name")))
            found.append(
                {
                    "filter": where.replace(":p", repr(params.get("p"))).replace(
                        ":s", repr(params.get("s"))
                    ),
                    "execution_ms": plan[0]["Execution Time"],
                    "indexes": indexes,
                    "nodes": sorted(set(_plan_values(plan[0]["Plan"], "Node Type"))),
                }
            )
        return found

    def time_indicators(self, period: str) -> dict:
        times, statuses = [], []
        for _ in range(self.settings.indicator_calls):
            t0 = time.perf_counter()
            response = self.system.get(f"/api/v1/indicators?period={period}")
            times.append((time.perf_counter() - t0) * 1000)
            statuses.append(response.status_code)
        warm = sorted(times[1:]) or times
        return {
            "period": period,
            "first_ms": times[0],
            "median_ms": warm[len(warm) // 2],
            "max_ms": max(times),
            "statuses": statuses,
        }

    def drop_backlog(self) -> None:
        """The events phase stops at its timeout with the consumers possibly thousands of
        its synthetic events behind; left queued they would load the data-scale phase
        unevenly (more at 10k than at 1M). What is still queued is purged, then the
        harness waits until no service has an event left to publish."""
        if not self.settings.scale_sizes or not self.results.events:
            return
        if not self.results.events["complete"]:
            purged = infra.purge_queues(infra.amqp_uri_for(self.vhost))
            note = (
                f"{purged} queued messages left by the events phase purged before the scale phase"
            )
            self.results.notes.append(note)
            log(note)
        self.settle("the scale phase")

    def scale_phase(self, operations: Operations) -> None:
        sizes = sorted(self.settings.scale_sizes)
        if not sizes:
            return
        fill = scale.template(self.engines["rujukan"])
        now = datetime.now(UTC)
        today = now.date()
        period = f"{today.year - (today.month == 1)}-{(today.month - 2) % 12 + 1:02d}"
        admin = {"Authorization": f"Bearer {self.admin_key}"}
        generated = 0
        for size in sizes:
            label = f"scale {size:,}"
            if self.over_budget(90):
                note = f"{label} skipped: time budget spent"
                self.results.notes.append(note)
                log(note)
                break
            existing = self.scalar("rujukan", "SELECT count(*) FROM referrals")
            add = max(0, size - existing)
            log(f"{label}: generating {add:,} referrals (rujukan and laporan)")
            t0 = time.monotonic()
            detail = scale.grow(self.engines, generated, generated + add, fill, now, log)
            generated += add
            entry = {
                "size": size,
                "added": add,
                "load_s": time.monotonic() - t0,
                "load_detail": detail,
                "referrals": self.scalar("rujukan", "SELECT count(*) FROM referrals"),
                "records": self.scalar("laporan", "SELECT count(*) FROM referral_records"),
                "by_status": dict(
                    self.rows("rujukan", "SELECT status, count(*) FROM referrals GROUP BY 1")
                ),
            }
            log(
                f"{label}: loaded in {entry['load_s']:.1f}s ({entry['referrals']:,} referrals, "
                f"{entry['records']:,} laporan records)"
            )
            urls = operations.walk_list(
                operations.list_filters(("requested", "admitted", "completed"))
            )
            entry["list_urls"] = len(urls)
            warm = {"headers": [admin], "requests": [["GET", u, None, 0] for u in urls]}
            self.drive(int(self.system.port), 2, 0.0, 120.0, sample=False, plan=warm)
            entry["list"] = {}
            for connections in self.settings.scale_connections:
                count = self.settings.scale_requests
                plan = {
                    "headers": [admin],
                    "requests": [["GET", urls[i % len(urls)], None, 0] for i in range(count)],
                }
                figures, cpu, _ = self.drive(
                    int(self.system.port), connections, 0.0, 300.0, plan=plan
                )
                figures["cpu"] = cpu
                entry["list"][str(connections)] = figures
                log(
                    f"{label}: list at {connections} conn: {figures['completed']} requests, "
                    f"p50 {figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms, "
                    f"{figures['ok_per_s']:.0f} req/s, statuses {figures['statuses']}"
                )
            entry["explain"] = self.explain_list()
            entry["indicators"] = self.time_indicators(period)
            ind = entry["indicators"]
            log(
                f"{label}: GET /indicators?period={period}: first {ind['first_ms']:.0f} ms, "
                f"median {ind['median_ms']:.0f} ms, max {ind['max_ms']:.0f} ms, "
                f"statuses {ind['statuses']}"
            )
            entry["export"] = self.export_phase(label)
            self.check_alive()
            self.update_hwm()
            self.results.scale.append(entry)

    def export_phase(self, label: str) -> dict:
        """A FHIR Bulk Data export of every referral with a national key (bench.export),
        timed, its lines checked against rujukan's table, with the peak memory of every
        process meanwhile and the CPU each used. A mismatch or a failed export is noted
        loudly; neither ends the run."""
        if self.national_key is None:
            self.national_key = export.national_key(self.system.base_url, self.admin_key)
        referrals = self.scalar("rujukan", "SELECT count(*) FROM referrals")
        timeout = max(120.0, referrals / 1000 * 3)  # a stuck export, not a slow one
        log(f"{label}: FHIR Bulk Data export of {referrals:,} referrals (national key)")
        window = self.cpu_window()
        window.begin()
        with export.MemoryWatch(self.memory_sampler(), self.backend_pids) as watch:
            try:
                figures = export.export(self.system.base_url, self.national_key, timeout)
            except export.ExportFailed as exc:
                figures = {"error": str(exc)}
        if watch.error is not None:
            raise watch.error
        figures.update(
            referrals=referrals,
            cpu=self.finish_cpu(window),
            rss_peak_kib=watch.sampler.peak,
            postgres_kib=watch.sampler.tree_peak["postgres"],
            backend_peak_kib=watch.backend_peak,
        )
        self.merge_peaks("export", watch.sampler)
        self._check_export(label, figures)
        return figures

    def _check_export(self, label: str, figures: dict) -> None:
        """Log the export's figures; note a failure, or any file whose manifest count or
        downloaded lines differ from the referrals in rujukan's database."""
        if "error" in figures:
            note = f"{label}: FHIR BULK DATA EXPORT FAILED: {figures['error']}"
            self.results.notes.append(note)
            log(note)
            return
        task = figures["files"].get("Task", {"count": 0, "lines": 0, "bytes": 0})
        log(
            f"{label}: export to manifest {figures['export_s']:.1f}s, download "
            f"{figures['download_s']:.1f}s, {task['lines']:,} Task lines "
            f"({task['bytes'] / 2**20:.0f} MiB), largest RSS "
            f"{report.largest_rss(figures['rss_peak_kib'])} MiB"
        )
        for resource_type in figures["types"]:
            found = figures["files"].get(resource_type, {"count": 0, "lines": 0})
            if found["count"] != figures["referrals"] or found["lines"] != figures["referrals"]:
                note = (
                    f"{label}: EXPORT MISMATCH: {resource_type} manifest count "
                    f"{found['count']:,}, lines downloaded {found['lines']:,}, referrals in "
                    f"rujukan {figures['referrals']:,}"
                )
                self.results.notes.append(note)
                log(note)

    # -- teardown ---------------------------------------------------------------------

    def teardown(self) -> None:
        for process in self.children:
            try:
                self.stop_child(process)
            except Exception as exc:  # keep tearing down
                self.results.cleanup.append(f"helper {process.pid}: {exc}")
        for engine in self.engines.values():
            engine.dispose()
        if self.system is not None:
            started = dict(self.started_pids)
            try:
                self.update_hwm()
            except Exception:
                pass
            # Ctrl-C: supervisord stops everything in order, the database last
            self.system.terminate_all()
            alive = [
                n
                for n, pid in started.items()
                if Path(f"/proc/{pid}").exists()
                and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
            ]
            self.results.cleanup.append(
                f"{len(started)} processes stopped" + (f"; STILL ALIVE: {alive}" if alive else "")
            )
        if self.baseline is not None:
            self.baseline.stop()
            self.results.cleanup.append("baseline stopped")
        if self.baseline_vhost_made:
            infra.delete_vhost(self.baseline_vhost)
            self.results.cleanup.append(f"vhost {self.baseline_vhost} deleted")
        if self.smtp_sink is not None:
            self.stop_smtp_sink()
        if (self.var_dir / "pg").exists():
            pg.remove(self.var_dir / "pg")
            self.results.cleanup.append("the embedded PostgreSQL's data removed")
        if self.vhost_made:
            infra.delete_vhost(self.vhost)
            self.results.cleanup.append(f"vhost {self.vhost} deleted")
        trouble = [n for n in self.results.notes if "quiet machine" not in n]
        if self.log_dir.exists() and (self.settings.keep_logs or trouble):
            self.results.cleanup.append(f"logs kept in {self.log_dir.relative_to(ROOT)}")
        else:
            shutil.rmtree(self.var_dir, ignore_errors=True)

    def stop_smtp_sink(self) -> None:
        sink, self.smtp_sink = self.smtp_sink, None
        accepted = sink.accepted()
        sink.stop()
        self.results.setup_s["emails_accepted"] = accepted
        self.results.cleanup.append(f"SMTP server stopped ({accepted} e-mails accepted)")

    # -- the whole run ----------------------------------------------------------------

    def run(self) -> Results:
        self.results.machine = machine_facts()
        try:
            self.setup()
            self.seed()
            if self.settings.calibrate:
                self.calibrate()
            for number, connections in enumerate(self.settings.connections):
                self.http_phase(number, connections)
            operations = Operations(self)
            operations.prepare()
            for operation in self.settings.operations:
                for connections in self.settings.connections:
                    self.op_phase(operations, operation, connections)
            self.events_phase()
            self.drop_backlog()
            self.scale_phase(operations)
        except BaseException as exc:
            self.results.notes.append(f"run aborted: {type(exc).__name__}: {exc}")
            log(f"run aborted: {type(exc).__name__}: {exc}")
            if isinstance(exc, Exception):
                traceback.print_exc()
            if not isinstance(exc, Exception):
                raise
        finally:
            # a second Ctrl-C must not leave processes, databases or the vhost behind
            previous = {
                sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)
            }
            log("tearing down (Ctrl-C is ignored until it is done)")
            try:
                self.teardown()
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
            self.results.rss_hwm_kib = dict(self.rss_hwm)
            self.results.wall_s = self.elapsed()
            self.results.machine["loadavg_after"] = Path("/proc/loadavg").read_text().split()[:3]
            log("; ".join(self.results.cleanup))
        return self.results


def _plan_values(node: dict, key: str):
    """Every value of ``key`` in an EXPLAIN plan tree."""
    if key in node:
        yield node[key]
    for child in node.get("Plans", []):
        yield from _plan_values(child, key)


def _csv(value: str, kind=int) -> tuple:
    return tuple(kind(v) for v in value.split(",") if v.strip())


SHORT = {  # --short: every phase, small counts; the CI run, about two minutes
    "connections": (1, 10),
    "warmup": 1.0,
    "duration": 3.0,
    "op_warmup": 0.5,
    "op_duration": 2.5,
    "events": 500,
    "event_timeout": 60.0,
    "drain_timeout": 20.0,
    "scale_sizes": (2_000, 5_000),
    "scale_requests": 60,
    "indicator_calls": 3,
    "calibrate": False,
    "budget": 420.0,
    "short": True,
}


def parse_args(argv: list[str] | None) -> Settings:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--connections",
        default="1,10,50",
        help="connection counts of the HTTP phases (default 1,10,50)",
    )
    parser.add_argument("--duration", type=float, default=15.0, help="counted seconds per phase")
    parser.add_argument("--warmup", type=float, default=3.0, help="uncounted seconds per phase")
    parser.add_argument(
        "--events", type=int, default=10_000, help="outbox rows of the events phase"
    )
    parser.add_argument(
        "--no-calibrate",
        action="store_true",
        help="skip measuring the load generator's own ceiling",
    )
    parser.add_argument(
        "--operations",
        default=",".join(OPERATIONS),
        help=f"operation phases, in order (default {','.join(OPERATIONS)}; '' for none)",
    )
    parser.add_argument("--op-duration", type=float, default=8.0, help="counted s per operation")
    parser.add_argument("--op-warmup", type=float, default=2.0, help="uncounted s per operation")
    parser.add_argument(
        "--sizes",
        default="10000,100000,1000000",
        help="referral counts of the data-scale phase (default 10000,100000,1000000; '' none)",
    )
    parser.add_argument(
        "--scale-requests", type=int, default=600, help="list requests per size and conn count"
    )
    parser.add_argument("--budget", type=float, default=3600.0, help="seconds before skipping")
    parser.add_argument(
        "--short",
        action="store_true",
        help="every phase with small counts (1 and 10 connections, 2k and 5k referrals): "
        "the CI run, about two minutes; other options are ignored",
    )
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the processes' logs in bench/results/"
    )
    args = parser.parse_args(argv)
    unknown = set(_csv(args.operations, str)) - set(OPERATIONS)
    if unknown:
        parser.error(f"unknown operations: {', '.join(sorted(unknown))}")
    common = {"write_docs": not args.no_docs, "keep_logs": args.keep_logs}
    if args.short:
        return Settings(**SHORT, **common)
    return Settings(
        connections=_csv(args.connections),
        duration=args.duration,
        warmup=args.warmup,
        operations=_csv(args.operations, str),
        op_duration=args.op_duration,
        op_warmup=args.op_warmup,
        events=args.events,
        scale_sizes=_csv(args.sizes),
        scale_requests=args.scale_requests,
        budget=args.budget,
        calibrate=not args.no_calibrate,
        **common,
    )


def main(argv: list[str] | None = None) -> int:

    settings = parse_args(argv)
    only_localhost()

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    bench = Bench(settings)
    bench.log_dir.mkdir(parents=True, exist_ok=True)
    try:
        results = bench.run()
    except KeyboardInterrupt:
        print("interrupted: everything the bench started was torn down", file=sys.stderr)
        return 130
    table = report.text(results, settings)
    print()
    print(table)
    (RESULTS_DIR / "latest.json").write_text(
        json.dumps(report.as_dict(results), indent=2, default=str)
    )
    if settings.write_docs and results.http:
        settings.docs_path.write_text(report.markdown(results, settings))
        print(
            f"\nwritten: {settings.docs_path.relative_to(ROOT)} and "
            f"{(RESULTS_DIR / 'latest.json').relative_to(ROOT)}"
        )
    return 0 if not any(n.startswith("run aborted") for n in results.notes) else 1
