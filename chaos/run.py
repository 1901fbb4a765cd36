"""The fault suite: the system as `make run` starts it (`bersinar run`: supervisord, the
embedded PostgreSQL, `bersinar setup`, the services, relays and gateway) in a folder of
the suite's own, against a RabbitMQ node of its own reached through a TCP proxy that can
spoil the network; referrals are posted while each fault happens, then the suite counts
what every referral answered 201 caused in laporan and notifikasi.

Each case is bounded in time and prints: requests ok / clean failures / 5xx not clean,
lost, duplicated, recovery seconds and a verdict against the targets (0 lost, 0
duplicated, no unclean 5xx, recovery under 30 s). Everything it made is removed at the
end, whatever happened; it ends only processes it started, by PID or by their own command.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import amqp
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

from bersinar import pg
from bersinar.clock import write_clock
from bersinar.config import ROOT, SERVICES
from bersinar.envelope import parse_rfc3339, utcnow
from chaos.infra import PrivateRabbit, make_base, remove_base
from chaos.proxy import FaultProxy
from harness import procstat, produced
from harness.burst import Burst, queue_depths, raise_capacity
from harness.infra import free_port
from harness.load import Load
from harness.receivers import SmtpServer
from harness.system import RELAYS, System

BIN = Path(sys.executable).parent
PROGRAMS = (*SERVICES, "gateway", *RELAYS)
RECOVERY_TARGET_S = 30.0
DRAIN_CAP_S = 600.0  # a backlog still moving is waited for at most this long
CASE_INDEX_STRIDE = 1_000_000  # each case draws its clients from its own range of NIKs
BURST_CONNECTIONS = 20
OVERDUE_AFTER = timedelta(hours=49)  # past the default 48 h response deadline


@dataclass
class Settings:
    referrals: int = 1000
    workers: int = 8
    fault_seconds: float = 10.0
    bound: float = 240.0  # per case: from the fault's end, no new request after it
    drain: float = 60.0  # then the pipeline delivers; lost if nothing moves this long
    burst: int = 2000  # referrals of the burst case
    cases: tuple[str, ...] = ()
    short: bool = False
    write_docs: bool = False
    keep: bool = False


@dataclass
class CaseResult:
    name: str
    load: dict = field(default_factory=dict)
    lost: int = 0
    lost_detail: dict = field(default_factory=dict)
    duplicated: int = 0
    duplicated_detail: dict = field(default_factory=dict)
    recovery_s: float | None = None
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # why the verdict is FAIL
    recoveries: list[float | None] = field(default_factory=list)  # one per fault
    # from the fault's end until what was answered 201 before it reached both consumers
    catch_up_s: float | None = None
    seconds: float = 0.0

    @property
    def verdict(self) -> str:
        return "FAIL" if self.failures else "ok"

    def total(self, figure: str) -> int:
        """A figure of the load and the probe together."""
        return self.load.get(figure, 0) + self.load.get("probe", {}).get(figure, 0)


def log(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", flush=True)


class Chaos:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.run_id = uuid.uuid4().hex[:8]
        self.base = make_base(self.run_id)
        self.rabbit: PrivateRabbit | None = None
        self.proxy: FaultProxy | None = None
        self.system: System | None = None
        self.extra: dict[str, subprocess.Popen] = {}
        self.helpers: list[subprocess.Popen] = []
        self.engines: dict = {}
        self.admin_key = f"bsk_chaos-{secrets.token_urlsafe(24)}"
        self.results: list[CaseResult] = []
        self.cleanup: list[str] = []
        self.case_number = 0
        self._dup_baseline: dict[str, int] = {}  # duplicates counted at the last case's end
        self.loads: list[Load] = []  # every load started, stopped at teardown
        self.clock_file = self.base / "clock"
        self.started = time.monotonic()

    # -- setup ----------------------------------------------------------------------

    def setup(self) -> None:
        log(f"run {self.run_id} in {self.base}")
        self.rabbit = PrivateRabbit(self.run_id, self.base)
        self.rabbit.start()
        log(f"RabbitMQ node {self.rabbit.node} on port {self.rabbit.port}")
        self.proxy = FaultProxy(self.rabbit.port).start()
        smtp_port = free_port()
        # notifikasi's e-mails: the tests' SMTP server (aiosmtpd), a Maildir of the run's
        self.helpers.append(SmtpServer(self.base / "mail", smtp_port).start().process)
        write_clock(self.clock_file, utcnow())
        # the default set-up of `make run`: the embedded PostgreSQL under var/pg
        self.system = System(
            self.rabbit.uri(self.proxy.port),
            f"c1:{Fernet.generate_key().decode()}",
            secrets.token_urlsafe(48),
            self.base / "var",
            admin_key=self.admin_key,
            extra_env={
                "NOTIFIKASI_SMTP_HOST": "127.0.0.1",
                "NOTIFIKASI_SMTP_PORT": str(smtp_port),
                "CLOCK_FILE": str(self.clock_file),
                "RUJUKAN_RESPONSE_DEADLINE_CHECK_SECONDS": "1",
            },
        )
        self.system.start_all(timeout=300)
        for component, url in self.system.urls.items():
            self.engines[component] = create_engine(
                url, pool_size=2, max_overflow=2, pool_pre_ping=True
            )
        log(f"healthy: gateway {self.system.base_url}, PIDs {self.system.pids()}")
        self.wait_read_model()
        raise_capacity(self.system)

    def queue_depths(self) -> dict[str, int]:
        return queue_depths(
            self.rabbit.ctl(
                "list_queues",
                "-p",
                self.rabbit.vhost,
                "name",
                "messages_ready",
                "messages_unacknowledged",
            )
        )

    def wait_read_model(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            partners = self.scalar("rujukan", "SELECT count(*) FROM partner_view")
            agreements = self.scalar("rujukan", "SELECT count(*) FROM agreement_view")
            if partners >= 5 and agreements >= 5:
                return
            time.sleep(0.3)
        raise TimeoutError("rujukan never learnt the seeded partners")

    # -- reading the run's databases ----------------------------------------------------

    def scalar(self, component: str, sql: str, timeout: float = 60, **params):
        return self.query(component, sql, timeout=timeout, **params)[0][0]

    def query(self, component: str, sql: str, timeout: float = 60, **params) -> list:
        """Through an outage of the database: try again for ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with self.engines[component].connect() as connection:
                    return connection.execute(text(sql), params).all()
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def effects(self, referral_ids: list[str]) -> dict:
        """What each referral caused: rujukan's event (found by its ordering key, which is
        indexed), laporan's record, notifikasi's notification."""
        if not referral_ids:
            return {"requested": {}, "laporan": set(), "notified": set()}
        requested: dict[str, list[str]] = {}
        for key, event_id in self.query(
            "rujukan",
            "SELECT ordering_key, event_id FROM outbox "
            "WHERE ordering_key = ANY(:keys) AND event_type = 'referral_requested'",
            keys=[f"referral:{r}" for r in referral_ids],
        ):
            requested.setdefault(key.removeprefix("referral:"), []).append(event_id)
        recorded = {
            row[0]
            for row in self.query(
                "laporan",
                "SELECT referral_id FROM referral_records WHERE referral_id = ANY(:ids)",
                ids=referral_ids,
            )
        }
        event_ids = [e for events in requested.values() for e in events]
        noted = {
            row[0]
            for row in self.query(
                "notifikasi",
                "SELECT DISTINCT event_id FROM notifications WHERE event_id = ANY(:ids)",
                ids=event_ids,
            )
        }
        notified = {r for r, events in requested.items() if any(e in noted for e in events)}
        return {"requested": requested, "laporan": recorded, "notified": notified}

    def duplicates(self) -> dict[str, int]:
        """Effects that happened more than once, anywhere in the run's databases."""
        checks = {
            "referrals per client": (
                "rujukan",
                "SELECT count(*) FROM (SELECT client_id FROM referrals "
                "GROUP BY client_id HAVING count(*) > 1) d",
            ),
            "requested events per referral": (
                "rujukan",
                "SELECT count(*) FROM (SELECT CAST(payload AS json)->'data'->>'referral_id' r "
                "FROM outbox WHERE event_type = 'referral_requested' GROUP BY 1 "
                "HAVING count(*) > 1) d",
            ),
            "overdue events per referral": (
                "rujukan",
                "SELECT count(*) FROM (SELECT CAST(payload AS json)->'data'->>'referral_id' r "
                "FROM outbox WHERE event_type = 'referral_response_overdue' GROUP BY 1 "
                "HAVING count(*) > 1) d",
            ),
            "agreement notices": (
                "mitra",
                "SELECT count(*) FROM (SELECT event_type, CAST(payload AS json)->'data'->>"
                "'agreement_id' a, CAST(payload AS json)->'data'->>'notice' n FROM outbox "
                "WHERE event_type IN ('agreement_expiring', 'agreement_expired') "
                "GROUP BY 1, 2, 3 HAVING count(*) > 1) d",
            ),
            "notifications per recipient and event": (
                "notifikasi",
                "SELECT count(*) FROM (SELECT recipient, event_id FROM notifications "
                "GROUP BY 1, 2 HAVING count(*) > 1) d",
            ),
            "deliveries per recipient, channel and event": (
                "notifikasi",
                "SELECT count(*) FROM (SELECT recipient, channel, event_id FROM deliveries "
                "GROUP BY 1, 2, 3 HAVING count(*) > 1) d",
            ),
            "laporan inbox per event": (
                "laporan",
                "SELECT count(*) FROM (SELECT consumer, event_id FROM inbox "
                "GROUP BY 1, 2 HAVING count(*) > 1) d",
            ),
        }
        return {name: int(self.scalar(db, sql)) for name, (db, sql) in checks.items()}

    # -- a case -------------------------------------------------------------------------

    def new_load(
        self,
        label: str,
        count: int | None = None,
        urls: list[str] | None = None,
        spread: float = 0.0,
    ) -> Load:
        """``spread``: seconds the load should last at least (its workers pause between
        requests), so that it runs through every fault of the case."""
        self.case_number += 1
        load = Load(
            base_urls=urls or [self.system.base_url],
            admin_key=self.admin_key,
            label=f"{self.run_id}-{label}",
            first_index=self.case_number * CASE_INDEX_STRIDE,
            count=count or self.settings.referrals,
            workers=self.settings.workers,
            deadline=time.monotonic() + 3600,
        )
        if spread:
            load.pace = self.settings.workers * spread / load.count
        self.loads.append(load)
        return load

    def wait_ok(self, load: Load, fraction: float, timeout: float = 120) -> None:
        """Start the fault once part of the load is through (or the load is done)."""
        want = max(1, int(load.count * fraction))
        deadline = time.monotonic() + timeout
        while load.ok_count() < want and not load.wait(0) and time.monotonic() < deadline:
            time.sleep(0.05)

    def finish(
        self,
        result: CaseResult,
        load: Load,
        fault_ends: list[float],
        probe: Probe | None = None,
        tracker: Tracker | None = None,
        restoring_from: list[float] | None = None,
    ) -> None:
        """Bound the load, wait for the pipeline, count lost and duplicated, and measure
        per fault: recovery, from its end until a request succeeds again and both
        consumers handle events again (the target); caught up, until every referral
        answered 201 before its end has both effects (how long the backlog took).
        ``restoring_from``: when the undoing of each fault began (a broker takes seconds
        to start, and the system may be back before the command returns): success from
        then on counts, as recovery 0."""
        bound_at = max(fault_ends) + self.settings.bound
        load.deadline = bound_at  # no new attempt after it
        loads = [load] + ([probe.load] if probe else [])
        tracker = tracker or Tracker(self, loads).start()
        load.wait(max(1.0, bound_at - time.monotonic()) + 30)
        if probe is not None:
            # the load may be through before the fault's end is seen (a server takes
            # connections a moment before the check that notes it): the probe goes on
            # until a request succeeds after each fault and both consumers handle again
            for since in restoring_from or fault_ends:
                while time.monotonic() < bound_at and not (
                    probe.load.first_ok_after(since) and tracker.first_progress_after(since)
                ):
                    time.sleep(0.25)
            probe.stop()
        # what was answered 201 has until the consumers stop making progress (or a cap)
        # to reach both of them: a slow consumer is not a lost effect
        tracker.wait_all(self.settings.drain, time.monotonic() + DRAIN_CAP_S)
        tracker.stop()
        outcomes = [o for each in loads for o in each.ok()]
        recoveries, catch_ups = [], []
        for end, since in zip(fault_ends, restoring_from or fault_ends, strict=True):
            again = min(
                [t for t in (each.first_ok_after(since) for each in loads) if t], default=None
            )
            flowing = tracker.first_progress_after(since)
            recoveries.append(
                None if again is None or flowing is None else max(again, flowing, end) - end
            )
            before = [o.referral_id for o in outcomes if o.ok_at < end]
            caught = tracker.all_done_at(before)
            catch_ups.append(None if caught is None else max(caught, end) - end)
        result.catch_up_s = None if None in catch_ups else max(catch_ups, default=0.0)
        ids = [o.referral_id for o in outcomes]
        time.sleep(1.0)  # a redelivered duplicate lands now, if there is one
        found = self.effects(ids)
        missing_laporan = [r for r in ids if r not in found["laporan"]]
        missing_notified = [r for r in ids if r not in found["notified"]]
        result.load = load.figures()
        if probe is not None:
            result.load["probe"] = probe.load.figures()
        lost = set(missing_laporan) | set(missing_notified)
        result.lost = len(lost)
        result.lost_detail = {
            "not in laporan": len(missing_laporan),
            "not in notifikasi": len(missing_notified),
            "no referral_requested event": sum(1 for r in ids if r not in found["requested"]),
        }
        dup = self.duplicates()
        result.duplicated_detail = {k: v - self._dup_baseline.get(k, 0) for k, v in dup.items()}
        self._dup_baseline = dup
        result.duplicated = sum(max(0, v) for v in result.duplicated_detail.values())
        if None in recoveries:
            result.recovery_s = None
        else:
            result.recovery_s = max(recoveries) if recoveries else 0.0
        result.recoveries = recoveries
        unclean = result.total("unclean_5xx")
        if result.lost:
            result.failures.append(f"{result.lost} lost {result.lost_detail}")
        if result.duplicated:
            details = {k: v for k, v in result.duplicated_detail.items() if v}
            result.failures.append(f"duplicated {details}")
        if unclean:
            result.failures.append(f"{unclean} unclean 5xx {result.load['unclean_kinds']}")
        if result.load["refused_4xx"]:
            result.failures.append(f"refused {result.load['refused_4xx']}")
        if result.load["gave_up"]:
            result.failures.append(f"{result.load['gave_up']} requests never succeeded")
        if result.recovery_s is None:
            result.failures.append("not recovered within the case's bound")
        elif result.recovery_s > RECOVERY_TARGET_S:
            result.failures.append(f"recovery {result.recovery_s:.1f}s > {RECOVERY_TARGET_S:.0f}s")

    def same_pids(self, before: dict[str, int], result: CaseResult) -> None:
        after = self.system.pids()
        restarted = sorted(n for n, pid in before.items() if after.get(n) != pid)
        if restarted:
            result.failures.append(f"restarted (did not reconnect by itself): {restarted}")

    def run_case(self, name: str, body) -> None:
        log(f"case {name}: start")
        result = CaseResult(name)
        started = time.monotonic()
        offsets = self._log_offsets()
        try:
            body(result)
        except Exception as exc:
            result.failures.append(f"case aborted: {type(exc).__name__}: {exc}")
            traceback.print_exc()
        finally:
            if self.proxy is not None:
                self.proxy.clear()
        result.seconds = time.monotonic() - started
        self.results.append(result)
        log(
            f"case {name}: {result.verdict} lost={result.lost} duplicated={result.duplicated} "
            f"recovery={_fmt(result.recovery_s)}s {[_fmt(r) for r in result.recoveries]} "
            f"caught_up={_fmt(result.catch_up_s)}s "
            f"load={result.load} " + ("; ".join(result.failures) if result.failures else "")
        )
        if result.failures:
            # the run's folder goes at teardown: what the processes logged as errors
            # during a failed case is shown here, where CI keeps it
            for line in self._errors_logged_since(offsets):
                log(f"  logged: {line}")
        # the next case starts from a working system
        try:
            self.system.wait_healthy(timeout=60)
        except TimeoutError as exc:
            log(f"not healthy after {name}: {exc}")

    # -- the cases ----------------------------------------------------------------------

    def outage(self, result: CaseResult, label: str, stop, start, seconds: float) -> None:
        """Stop something under load, start it again after ``seconds``; every process
        must come back by itself (same PIDs)."""
        pids = self.system.pids()
        load = self.new_load(label).start()
        probe = Probe(self, f"{label}-probe").start()
        tracker = Tracker(self, [load, probe.load]).start()
        self.wait_ok(load, 0.2)
        log(f"{label}: stopping")
        stop()
        time.sleep(seconds)
        restoring = time.monotonic()
        start()
        end = time.monotonic()
        log(f"{label}: started again")
        self.finish(result, load, [end], probe, tracker, restoring_from=[restoring])
        self.same_pids(pids, result)

    def _log_offsets(self) -> dict[Path, int]:
        return {path: path.stat().st_size for path in self.system.log_dir.glob("*.log")}

    def _errors_logged_since(self, offsets: dict[Path, int], limit: int = 20) -> list[str]:
        """ERROR and CRITICAL lines the processes wrote since ``offsets`` (a partner
        without an e-mail address excepted: expected with the seeded partners)."""
        lines = []
        for path in sorted(self.system.log_dir.glob("*.log")):
            with open(path, "rb") as handle:
                handle.seek(offsets.get(path, 0))
                for raw in handle:
                    text = raw.decode("utf-8", "replace").strip()
                    if '"level": "ERROR"' in text or '"level": "CRITICAL"' in text:
                        if "NO_ADDRESS" not in text:
                            lines.append(f"{path.stem}: {text[:3000]}")
        return lines[-limit:]

    def case_broker(self, result: CaseResult) -> None:
        """rabbitmqctl stop_app, then start_app."""
        seconds = self.settings.fault_seconds
        self.outage(result, "broker", self.rabbit.stop_app, self.rabbit.start_app, seconds)

    def case_database(self, result: CaseResult) -> None:
        """The embedded PostgreSQL crashes: SIGKILL to all its processes at once;
        supervisord starts it again, and it recovers from its write-ahead log. Every
        other process must come back by itself (same PIDs)."""
        pids = self.system.pids()
        load = self.new_load("database").start()
        probe = Probe(self, "database-probe").start()
        tracker = Tracker(self, [load, probe.load]).start()
        self.wait_ok(load, 0.2)
        killed = self.crash_postgres()
        crashed = time.monotonic()
        self.system.wait_restarted("postgres", killed, timeout=120)
        restarted = time.monotonic()
        pg.wait_ready(pg.admin_dsn(self.system.var_dir / "pg"), timeout=120)
        back = time.monotonic()
        log(f"database: accepting connections again {back - crashed:.1f}s after the crash")
        result.notes.append(
            f"the server accepted connections again {back - crashed:.1f}s after the crash "
            "(supervisord's restart and crash recovery); recovery counts from then, and a "
            "success after the restart and before this check counts as recovery 0"
        )
        self.finish(result, load, [back], probe, tracker, restoring_from=[restarted])
        del pids["postgres"]
        self.same_pids(pids, result)

    def crash_postgres(self) -> int:
        """SIGKILL to supervisord's program (`bersinar db serve`, which logs the server's
        lines), the postmaster it started and every process the postmaster started (each
        backend leads a process group of its own, so not by group): the postmaster is
        stopped first, so that it forks nothing while its children are listed. Returns
        the program's PID."""
        pid = self.system.pid("postgres")
        os.kill(pid, signal.SIGSTOP)
        postmasters = procstat.children(pid)
        for postmaster in postmasters:
            os.kill(postmaster, signal.SIGSTOP)
        backends = [child for p in postmasters for child in procstat.children(p)]
        victims = [*backends, *postmasters, pid]
        for victim in victims:
            os.kill(victim, signal.SIGKILL)
        log(f"database: SIGKILL to the embedded PostgreSQL's {len(victims)} processes ({pid})")
        return pid

    def case_kill(self, result: CaseResult) -> None:
        victims = (*SERVICES, "gateway", "relay-rujukan")
        load = self.new_load("kill", spread=6.0 * len(victims)).start()
        probe = Probe(self, "kill-probe").start()
        tracker = Tracker(self, [load, probe.load]).start()
        self.wait_ok(load, 0.1)
        ends = []
        restarts = []
        for victim in victims:
            try:
                pid = self.system.kill(victim)  # by its PID
            except KeyError:
                result.failures.append(f"{victim} not running before its kill")
                continue
            ends.append(time.monotonic())
            log(f"kill -9 {victim} ({pid})")
            try:
                self.system.wait_restarted(victim, pid, timeout=60)
                restarts.append(f"{victim} {time.monotonic() - ends[-1]:.1f}s")
            except TimeoutError:
                result.failures.append(f"{victim} not restarted by supervisord in 60s")
            # let it get back to work before the next one
            self.wait_ok(load, min(1.0, load.ok_count() / load.count + 0.1), timeout=20)
        result.notes.append(f"killed in turn: {', '.join(victims)}")
        result.notes.append(f"running again (supervisord, startsecs 3): {', '.join(restarts)}")
        self.finish(result, load, ends, probe, tracker)

    def case_network(self, result: CaseResult) -> None:
        pids = self.system.pids()
        load = self.new_load("network", spread=3.5 * self.settings.fault_seconds).start()
        probe = Probe(self, "network-probe").start()
        tracker = Tracker(self, [load, probe.load]).start()
        self.wait_ok(load, 0.15)
        ends = []
        seconds = self.settings.fault_seconds
        log(f"network: 100 ms delay per transfer for {seconds:.0f}s")
        self.proxy.set_delay(0.1)
        time.sleep(seconds)
        self.proxy.set_delay(0.0)
        ends.append(time.monotonic())
        self.wait_ok(load, 0.4, timeout=30)
        log(f"network: nothing passes (all dropped) for {seconds:.0f}s")
        self.proxy.stall(True)
        time.sleep(seconds)
        self.proxy.stall(False)
        ends.append(time.monotonic())
        self.wait_ok(load, 0.6, timeout=30)
        log(f"network: every connection reset, new ones refused for {seconds / 2:.0f}s")
        self.proxy.refuse(True)
        cut = self.proxy.reset_all()
        time.sleep(seconds / 2)
        self.proxy.refuse(False)
        ends.append(time.monotonic())
        result.notes.append(f"{cut} broker connections reset")
        self.finish(result, load, ends, probe, tracker)
        self.same_pids(pids, result)

    def case_poison(self, result: CaseResult) -> None:
        load = self.new_load("poison").start()
        tracker = Tracker(self, [load]).start()
        self.wait_ok(load, 0.2)
        queues = self.handler_queues()
        poisoned = self.publish_poison(queues)
        end = time.monotonic()
        log(f"poison: one message into each of {len(queues)} consumer queues")
        self.finish(result, load, [end], tracker=tracker)
        parked, missing = self.wait_parked(poisoned, end + self.settings.bound)
        result.notes.append(
            f"{sum(poisoned.values())} poison messages into {len(queues)} queues; "
            f"{parked} queues parked all theirs"
        )
        if missing:
            result.failures.append(f"poison not parked in {len(missing)} queue(s): {missing[:5]}")
            result.lost += len(missing)

    def case_two_instances(self, result: CaseResult) -> None:
        second_gateway = self.start_second_instances()
        urls = [self.system.base_url, second_gateway]
        load = self.new_load("two", urls=urls).start()
        tracker = Tracker(self, [load]).start()
        self.wait_ok(load, 0.5)
        # every referral still waiting for its partner's answer is now overdue: both
        # rujukan instances' timers see it; the event must leave once
        now = parse_rfc3339(self.clock_file.read_text().strip())
        write_clock(self.clock_file, now + OVERDUE_AFTER)
        log("two instances: clock moved 49 h ahead; every request is overdue")
        end = time.monotonic()
        self.finish(result, load, [end], tracker=tracker)
        due = self.scalar(
            "rujukan",
            "SELECT count(*) FROM referrals WHERE status = 'requested' AND response_due_at < :now",
            now=now + OVERDUE_AFTER,
        )
        deadline = time.monotonic() + self.settings.bound
        while time.monotonic() < deadline:
            emitted = self.scalar(
                "rujukan",
                "SELECT count(DISTINCT CAST(payload AS json)->'data'->>'referral_id') FROM outbox "
                "WHERE event_type = 'referral_response_overdue'",
            )
            if emitted >= due:
                break
            time.sleep(0.5)
        total = self.scalar(
            "rujukan", "SELECT count(*) FROM outbox WHERE event_type = 'referral_response_overdue'"
        )
        result.notes.append(f"overdue: {due} referrals, {emitted} with an event, {total} events")
        if emitted < due:
            result.failures.append(f"overdue emitted for {emitted} of {due}")
        # the overdue events reach laporan and notifikasi (two instances each): count
        # the effects again once they are handled
        deadline = time.monotonic() + self.settings.drain
        while time.monotonic() < deadline:
            handled = [
                self.scalar(
                    db,
                    "SELECT count(*) FROM inbox WHERE event_type = 'referral_response_overdue'",
                )
                for db in ("laporan", "notifikasi")
            ]
            if min(handled) >= total:
                break
            time.sleep(0.5)
        after = self.duplicates()
        extra = {k: v - self._dup_baseline.get(k, 0) for k, v in after.items()}
        self._dup_baseline = after
        extra = {k: v for k, v in extra.items() if v > 0}
        if extra:
            result.duplicated += sum(extra.values())
            result.failures.append(f"duplicated after the overdue events: {extra}")
        # the second instances go; the system of the next case is the usual one
        self.stop_extra()

    def case_burst(self, result: CaseResult) -> None:
        """No fault: referrals as fast as they are answered at 20 connections; the system
        must absorb them (chaos/burst.py)."""
        self.case_number += 1
        burst = Burst(
            self.system,
            self.queue_depths,
            count=self.settings.burst,
            connections=BURST_CONNECTIONS,
            first_index=self.case_number * CASE_INDEX_STRIDE,
            label=f"{self.run_id}-burst",
            drain_cap=DRAIN_CAP_S,
        ).run()
        log(f"burst: {burst.figures()}")
        result.load = burst.load
        result.lost, result.duplicated = burst.missing, burst.duplicated
        # "recovery": /health ok after the last answer; "caught up": the drain time
        result.recovery_s, result.recoveries = burst.health_s, [burst.health_s]
        result.catch_up_s = burst.drain_s
        result.notes.append(burst.figures())
        result.failures += burst.failures
        dup = self.duplicates()
        extra = {k: v - self._dup_baseline.get(k, 0) for k, v in dup.items()}
        self._dup_baseline = dup
        extra = {k: v for k, v in extra.items() if v > 0}
        if extra:
            result.duplicated += sum(extra.values())
            result.failures.append(f"duplicated {extra}")

    def start_second_instances(self) -> str:
        """The commands of deploy/supervisord.conf once more, outside supervisord, on the
        same broker and the same embedded server (its databases' URLs)."""
        port = free_port()
        env = {
            **self.system.env,
            **{f"{c.upper()}_DATABASE_URL": url for c, url in self.system.urls.items()},
            "GATEWAY_ADDRESS": f"127.0.0.1:{port}",
            "NOTIFIKASI_METRICS_PORT": "0",
            "GATEWAY_METRICS_PORT": "0",
        }
        for name in PROGRAMS:
            kind, _, service = name.partition("-")
            command = [str(BIN / "bersinar"), *(("relay", service) if service else ("serve", kind))]
            log_file = open(self.system.log_dir / f"{name}-2.log", "ab")  # noqa: SIM115
            self.extra[name] = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        import requests

        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/health", timeout=3).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.5)
        else:
            raise TimeoutError("the second instances did not become healthy")
        log(f"second instance of every program started; second gateway {url}")
        return url

    def stop_extra(self) -> None:
        processes = list(self.extra.values())
        self.extra.clear()
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    # -- poison ---------------------------------------------------------------------------

    def handler_queues(self) -> list[tuple[str, str, str]]:
        """(queue, source, event type) of every event handler of every service."""
        from bersinar.entrypoints import event_handlers_of
        from cli.main import service_class

        found = []
        for service in SERVICES:
            for handler, queue in event_handlers_of(service_class(service), service):
                found.append((queue, handler.source_service, handler.event_type))
        return found

    def publish_poison(self, queues) -> dict[str, int]:
        """Straight into each handler's queue, a message no consumer can ever handle: an
        event made by its producer's code (so it keeps its contract) whose event id is a
        UUID in its ``urn:uuid:`` spelling (the envelope check accepts it; the inbox
        column of 36 characters refuses it), so the handler fails on every attempt, is
        retried, then parked. Into the first queue of each
        service also a body that is not JSON at all. Returns the parkings expected per
        queue."""
        connection = amqp.Connection(
            host=f"127.0.0.1:{self.rabbit.port}",
            userid="guest",
            password="guest",
            virtual_host=self.rabbit.vhost,
        )
        connection.connect()
        channel = connection.channel()
        channel.confirm_select()
        expected: dict[str, int] = {}
        services_seen = set()
        for queue, source, event_type in queues:
            event = produced.sample(event_type)
            assert event["source"] == source, (queue, source)
            event["event_id"] = f"urn:uuid:{event['event_id']}"
            bodies = [json.dumps(event)]
            service = queue.split("--", 1)[1].split(".", 1)[0]
            if service not in services_seen:
                services_seen.add(service)
                bodies.append("{this is not json")
            for body in bodies:
                channel.basic_publish(
                    amqp.Message(
                        body,
                        content_type="application/json",
                        delivery_mode=2,
                        message_id=str(uuid.uuid4()),
                    ),
                    exchange="",
                    routing_key=queue,
                )
            expected[queue] = len(bodies)
        connection.close()
        return expected

    def wait_parked(self, poisoned: dict[str, int], until: float) -> tuple[int, list[str]]:
        while True:
            counts = self.rabbit.list_queues()
            missing = [q for q, n in poisoned.items() if counts.get(f"{q}.parked", 0) < n]
            if not missing or time.monotonic() > until:
                return len(poisoned) - len(missing), missing
            time.sleep(1.0)

    # -- teardown -----------------------------------------------------------------------

    def teardown(self) -> None:
        for load in self.loads:  # its threads would go on retrying and hold the exit
            load.abort()
        try:
            self.stop_extra()
        except Exception as exc:
            self.cleanup.append(f"second instances: {exc}")
        if self.system is not None and self.system.supervisor is not None:
            pid = self.system.supervisor.pid
            # Ctrl-C: supervisord stops its programs in order, the database last
            status = self.system.terminate_all()
            self.cleanup.append(f"supervisord {pid} and its programs stopped ({status})")
        for helper in self.helpers:
            if helper.poll() is None:
                helper.terminate()
                try:
                    helper.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    helper.kill()
        for engine in self.engines.values():
            engine.dispose()
        if self.proxy is not None:
            self.proxy.close()
        if self.rabbit is not None:
            self.cleanup.append(self.rabbit.stop())
        if self.settings.keep:
            self.cleanup.append(f"kept {self.base}")
        else:
            remove_base(self.base)
            self.cleanup.append(f"removed {self.base}")

    def run(self) -> None:
        cases = {
            "broker": ("rabbitmq stop_app/start_app", self.case_broker),
            "database": ("postgresql crash", self.case_database),
            "kill": ("kill -9 each in turn", self.case_kill),
            "network": ("network delay/drop/reset", self.case_network),
            "poison": ("poison message per consumer", self.case_poison),
            "instances": ("two instances of everything", self.case_two_instances),
            "burst": (f"burst of {self.settings.burst:,} at {BURST_CONNECTIONS}", self.case_burst),
        }
        chosen = self.settings.cases
        try:
            self.setup()
            unknown = set(chosen) - set(cases)
            if unknown:
                raise SystemExit(f"no such case: {sorted(unknown)} (cases: {', '.join(cases)})")
            for key, (name, body) in cases.items():
                if not chosen or key in chosen:
                    self.run_case(name, body)
        except BaseException as exc:
            self.cleanup.append(f"run aborted: {type(exc).__name__}: {exc}")
            if isinstance(exc, Exception):
                traceback.print_exc()
            else:
                raise
        finally:
            previous = {
                s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)
            }
            log("tearing down")
            try:
                self.teardown()
            finally:
                for s, h in previous.items():
                    signal.signal(s, h)
            log("; ".join(self.cleanup))


CONSUMERS = ("laporan", "notifikasi")
HANDLED = "SELECT count(*) FROM inbox WHERE event_type = 'referral_requested'"


class Tracker:
    """Watches, from the moment a referral is answered 201, for its record in laporan and
    its notification in notifikasi, and notes when both are there."""

    def __init__(self, chaos: Chaos, loads: list[Load]):
        self.chaos = chaos
        self.loads = loads
        self.done_at: dict[str, float] = {}
        # when each consumer's count of handled referral_requested events went up
        self.progress: dict[str, list[float]] = {c: [] for c in CONSUMERS}
        self._counts: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tracker", daemon=True)

    def start(self) -> Tracker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def pending(self) -> list[str]:
        return [
            o.referral_id
            for load in self.loads
            for o in load.ok()
            if o.referral_id not in self.done_at
        ]

    def _sample_consumers(self) -> None:
        for consumer in CONSUMERS:
            try:
                count = self.chaos.scalar(consumer, HANDLED, timeout=0)
            except Exception:  # the database is the fault of this case
                continue
            if consumer in self._counts and count > self._counts[consumer]:
                self.progress[consumer].append(time.monotonic())
            self._counts[consumer] = count

    def first_progress_after(self, moment: float) -> float | None:
        """When both consumers were handling events again after ``moment``."""
        firsts = [next((t for t in times if t > moment), None) for times in self.progress.values()]
        return None if None in firsts else max(firsts)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample_consumers()
            pending = self.pending()
            if pending:
                try:
                    found = self.chaos.effects(pending)
                except Exception:  # the database is the fault of this case
                    found = {"laporan": set(), "notified": set()}
                now = time.monotonic()
                for referral_id in found["laporan"] & found["notified"]:
                    self.done_at.setdefault(referral_id, now)
            self._stop.wait(0.5)

    def wait_all(self, quiet: float, cap: float) -> bool:
        """Until every referral answered 201 has its effects; given up when the consumers
        have handled nothing for ``quiet`` seconds (stuck, not slow: what is missing
        then is lost) or at the monotonic moment ``cap``."""
        last = time.monotonic()
        seen = sum(len(times) for times in self.progress.values())
        while time.monotonic() < cap:
            if all(load.wait(0) for load in self.loads) and not self.pending():
                return True
            now_seen = sum(len(times) for times in self.progress.values())
            if now_seen != seen:
                seen, last = now_seen, time.monotonic()
            elif time.monotonic() - last > quiet:
                break
            time.sleep(0.25)
        return not self.pending()

    def all_done_at(self, ids: list[str]) -> float | None:
        if any(i not in self.done_at for i in ids):
            return None
        return max((self.done_at[i] for i in ids), default=0.0)


class Probe:
    """One referral every half second through the whole case: when requests succeed
    again after a fault, whether or not the main load is still running."""

    def __init__(self, chaos: Chaos, label: str):
        chaos.case_number += 1
        self.load = Load(
            base_urls=[chaos.system.base_url],
            admin_key=chaos.admin_key,
            label=f"{chaos.run_id}-{label}",
            first_index=chaos.case_number * CASE_INDEX_STRIDE,
            count=100_000,
            workers=1,
            deadline=time.monotonic() + 3600,
        )
        self.load.pace = 0.5
        chaos.loads.append(self.load)

    def start(self) -> Probe:
        self.load.start()
        return self

    def stop(self) -> None:
        self.load.stop()
        self.load.wait(60)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def table(results: list[CaseResult]) -> str:
    header = (
        f"{'case':32} {'requests':>8} {'ok':>6} {'clean fail':>10} {'5xx other':>9} "
        f"{'lost':>5} {'dup':>4} {'recovery s':>10} {'caught up s':>11}  verdict"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(
            f"{r.name:32} {r.total('requests'):>8} {r.total('ok'):>6} "
            f"{r.total('clean_failures'):>10} {r.total('unclean_5xx'):>9} {r.lost:>5} "
            f"{r.duplicated:>4} {_fmt(r.recovery_s):>10} {_fmt(r.catch_up_s):>11}  {r.verdict}"
        )
    for r in results:
        for line in r.notes:
            lines.append(f"  {r.name}: {line}")
        for line in r.failures:
            lines.append(f"  {r.name}: FAIL {line}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> Settings:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--short", action="store_true", help="small counts (CI)")
    parser.add_argument("--referrals", type=int, help="referrals per case (default 1000)")
    parser.add_argument("--fault-seconds", type=float, help="how long a fault lasts")
    parser.add_argument(
        "--case",
        action="append",
        default=[],
        help="only this case (broker, database, kill, network, poison, instances, burst); "
        "repeatable",
    )
    parser.add_argument("--write-docs", action="store_true", help="update docs/chaos.md")
    parser.add_argument("--keep", action="store_true", help="keep the run's folder and logs")
    args = parser.parse_args(argv)
    settings = Settings(short=args.short, cases=tuple(args.case), keep=args.keep)
    if args.short:
        settings.referrals, settings.fault_seconds, settings.bound = 60, 5.0, 90.0
        settings.drain = 30.0
        settings.burst = 400
    if args.referrals:
        settings.referrals = args.referrals
    if args.fault_seconds:
        settings.fault_seconds = args.fault_seconds
    settings.write_docs = args.write_docs
    return settings


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(argv)

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    chaos = Chaos(settings)
    try:
        chaos.run()
    except KeyboardInterrupt:
        print("interrupted: everything the suite started was removed", file=sys.stderr)
        return 130
    wall = time.monotonic() - chaos.started
    report = table(chaos.results)
    print()
    print(report)
    print(f"\n{len(chaos.results)} case(s) in {wall:.0f}s; {'; '.join(chaos.cleanup)}")
    if settings.write_docs:
        from chaos.report import write_docs

        write_docs(chaos.results, settings, wall)
    aborted = any(c.startswith("run aborted") for c in chaos.cleanup)
    if aborted or not chaos.results or any(r.failures for r in chaos.results):
        return 1
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
