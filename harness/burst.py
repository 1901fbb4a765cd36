"""A burst: referrals POSTed at a number of connections as fast as they are answered
against a system started as `make run` starts it; then, from the last answer: every
service ``ok`` on ``/health`` within 60 s, every queue of the vhost drained, every
referral answered 201 in its partner's in-app inbox exactly once, no process restarted
by supervisord. It reports the peak backlog (messages ready and unacked in the vhost's
queues plus outbox rows not yet published, sampled during the burst) and the drain time
(from the last answer until the queues and outboxes are empty and every inbox row is
there).

The fault suite runs 2,000 at 20 connections (``python -m chaos --case burst``);
tests/e2e/test_burst.py a smaller one on every `make test`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import requests
from sqlalchemy import create_engine, text

from bersinar.config import SERVICES
from harness.load import Load
from harness.system import System
from services.notifikasi.domain import recipient_id

HEALTH_WITHIN_S = 60.0
MOST_PLACES = 10_000  # the most places per offer the API takes
SAMPLE_EVERY_S = 1.0


def raise_capacity(system: System, places: int = MOST_PLACES, timeout: float = 120.0) -> None:
    """The seeded offers (10-40 places) would refuse a burst CAPACITY_FULL: every offer
    of every partner gets ``places`` through the API (mitra, then its partner_updated to
    rujukan), then this waits until rujukan's occupancy shows them."""
    partners = system.get("/api/v1/partners?limit=100")
    partners.raise_for_status()
    for partner in partners.json()["items"]:
        offers = [
            {"service_type": s["service_type"], "capacity": places, "unit": s["unit"]}
            for s in partner["services"]
        ]
        answer = system.session_patch(f"/api/v1/partners/{partner['id']}", {"services": offers})
        if answer.status_code != 200:
            raise RuntimeError(f"PATCH {partner['id']}: {answer.status_code} {answer.text[:300]}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = system.get("/api/v1/occupancy")
        if answer.status_code == 200 and all(
            item["capacity"] == places for item in answer.json()["items"]
        ):
            return
        time.sleep(0.5)
    raise TimeoutError(f"rujukan did not learn the new capacities in {timeout:.0f}s")


def queue_depths(listing: str) -> dict[str, int]:
    """``rabbitmqctl list_queues name messages_ready messages_unacknowledged`` output:
    messages ready and unacked per queue."""
    depths = {}
    for line in listing.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[1].strip().isdigit() and parts[2].strip().isdigit():
            depths[parts[0]] = int(parts[1]) + int(parts[2])
    return depths


def parked(depths: dict[str, int]) -> dict[str, int]:
    return {name: n for name, n in depths.items() if name.endswith(".parked")}


def queued(depths: dict[str, int]) -> int:
    """Messages waiting for or being handled by a consumer (parked ones wait for people)."""
    return sum(n for name, n in depths.items() if not name.endswith(".parked"))


@dataclass
class BurstResult:
    count: int
    connections: int
    load: dict = field(default_factory=dict)
    post_s: float = 0.0  # first request to last answer
    peak_backlog: int = 0
    peak_queued: int = 0  # at the sample of the peak backlog
    peak_outbox: int = 0
    samples: int = 0
    health_s: float | None = None  # from the last answer
    drain_s: float | None = None  # from the last answer
    missing: int = 0
    duplicated: int = 0
    restarted: list[str] = field(default_factory=list)
    parked: dict[str, int] = field(default_factory=dict)  # new parked messages per queue
    failures: list[str] = field(default_factory=list)

    def figures(self) -> str:
        ok, retried = self.load.get("ok", 0), self.load.get("clean_failures", 0)
        rate = ok / self.post_s if self.post_s else 0.0
        return (
            f"{ok} of {self.count} answered 201 at {self.connections} connections in "
            f"{self.post_s:.1f}s ({rate:.0f}/s, {retried} clean failures retried); "
            f"peak backlog {self.peak_backlog} (queued "
            f"{self.peak_queued}, outbox {self.peak_outbox}; {self.samples} samples); "
            f"/health ok {_s(self.health_s)} and drained {_s(self.drain_s)} after the last "
            f"answer; missing {self.missing}, duplicated {self.duplicated}; restarted "
            f"{self.restarted or 'none'}"
        )


def _s(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f}s"


class Burst:
    """``list_queues``: the vhost's queues, as :func:`queue_depths` reads them (each
    broker has its own ``rabbitmqctl``). ``first_index``: where its referral bodies
    start (harness.loadgen.referral_for: distinct clients)."""

    def __init__(
        self,
        system: System,
        list_queues: Callable[[], dict[str, int]],
        *,
        count: int,
        connections: int,
        first_index: int = 0,
        label: str = "burst",
        drain_cap: float = 600.0,
    ):
        self.system = system
        self.list_queues = list_queues
        self.count = count
        self.connections = connections
        self.first_index = first_index
        self.label = label
        self.drain_cap = drain_cap
        self.engines = {
            c: create_engine(system.urls[c], pool_size=1, max_overflow=1, pool_pre_ping=True)
            for c in SERVICES
        }
        self._stop = threading.Event()

    def scalar(self, component: str, sql: str, **params):
        with self.engines[component].connect() as connection:
            return connection.execute(text(sql), params).scalar()

    def unpublished(self) -> int:
        return sum(
            self.scalar(s, "SELECT count(*) FROM outbox WHERE published_at IS NULL")
            for s in SERVICES
        )

    def run(self) -> BurstResult:
        result = BurstResult(self.count, self.connections)
        try:
            self._run(result)
        finally:
            self._stop.set()
            for engine in self.engines.values():
                engine.dispose()
        return result

    def _run(self, result: BurstResult) -> None:
        pids = self.system.pids()
        parked_before = parked(self.list_queues())
        load = Load(
            base_urls=[self.system.base_url],
            admin_key=self.system.admin_key,
            label=self.label,
            first_index=self.first_index,
            count=self.count,
            workers=self.connections,
            deadline=time.monotonic() + 1800,
        )
        sampler = threading.Thread(target=self._sample, args=(result,), daemon=True)
        sampler.start()
        load.start()
        load.wait()
        self._stop.set()
        sampler.join(timeout=60)
        last = max((o.ok_at for o in load.outcomes if o.ok_at), default=time.monotonic())
        result.load = load.figures()
        result.post_s = last - load.started_at
        self._wait_healthy(result, last)
        ids = {o.referral_id: o for o in load.ok()}
        self._wait_drained(result, last, list(ids))
        time.sleep(1.0)  # a redelivered duplicate lands now, if there is one
        result.missing, result.duplicated = self._inbox(list(ids))
        after = self.system.pids()
        result.restarted = sorted(n for n, pid in pids.items() if after.get(n) != pid)
        now_parked = parked(self.list_queues())
        result.parked = {
            q: n - parked_before.get(q, 0)
            for q, n in now_parked.items()
            if n > parked_before.get(q, 0)
        }
        self._verdict(result)

    def _sample(self, result: BurstResult) -> None:
        while not self._stop.is_set():
            try:
                depth, outbox = queued(self.list_queues()), self.unpublished()
            except Exception:  # a slow rabbitmqctl under load: the next sample counts
                self._stop.wait(SAMPLE_EVERY_S)
                continue
            result.samples += 1
            if depth + outbox > result.peak_backlog:
                result.peak_backlog = depth + outbox
                result.peak_queued, result.peak_outbox = depth, outbox
            self._stop.wait(SAMPLE_EVERY_S)

    def _wait_healthy(self, result: BurstResult, last: float) -> None:
        deadline = last + HEALTH_WITHIN_S
        while time.monotonic() < deadline:
            try:
                answer = requests.get(f"{self.system.base_url}/health", timeout=5)
                services = answer.json().get("services", {})
                if answer.status_code == 200 and set(services.values()) == {"ok"}:
                    result.health_s = max(0.0, time.monotonic() - last)
                    return
            except (requests.RequestException, ValueError):
                pass
            time.sleep(0.5)

    def _wait_drained(self, result: BurstResult, last: float, ids: list[str]) -> None:
        deadline = last + self.drain_cap
        while time.monotonic() < deadline:
            if not queued(self.list_queues()) and not self.unpublished():
                missing, _ = self._inbox(ids)
                if not missing:
                    result.drain_s = time.monotonic() - last
                    return
            time.sleep(0.5)

    def _inbox(self, ids: list[str]) -> tuple[int, int]:
        """(referrals without their partner's inbox message, referrals with more than one
        referral_requested event or more than one such message)."""
        events: dict[str, list[tuple[str, str]]] = {}
        with self.engines["rujukan"].connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT ordering_key, event_id, CAST(payload AS json)->'data'->>'partner_id' "
                    "FROM outbox WHERE event_type = 'referral_requested' "
                    "AND ordering_key = ANY(:keys)"
                ),
                {"keys": [f"referral:{r}" for r in ids]},
            ).all()
        for key, event_id, partner_id in rows:
            events.setdefault(key.removeprefix("referral:"), []).append(
                (event_id, recipient_id("partner", partner_id))
            )
        with self.engines["notifikasi"].connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT event_id, recipient, count(*) FROM notifications "
                    "WHERE event_type = 'referral_requested' AND event_id = ANY(:ids) "
                    "GROUP BY 1, 2"
                ),
                {"ids": [e for found in events.values() for e, _ in found]},
            ).all()
        messages = {(event_id, recipient): n for event_id, recipient, n in rows}
        missing = duplicated = 0
        for referral_id in ids:
            found = events.get(referral_id, [])
            delivered = sum(messages.get(pair, 0) for pair in found)
            if not delivered:
                missing += 1
            elif delivered > 1 or len(found) > 1:
                duplicated += 1
        return missing, duplicated

    def _verdict(self, result: BurstResult) -> None:
        load, failures = result.load, result.failures
        if load["gave_up"] or load["refused_4xx"] or load["unclean_5xx"]:
            failures.append(
                f"requests: {load['gave_up']} never succeeded, refused {load['refused_4xx']}, "
                f"unclean 5xx {load['unclean_kinds']}"
            )
        if result.health_s is None:
            failures.append(f"/health not ok for every service within {HEALTH_WITHIN_S:.0f}s")
        if result.drain_s is None:
            failures.append(f"not drained within {self.drain_cap:.0f}s of the last answer")
        if result.missing:
            failures.append(f"{result.missing} referrals not in their partner's inbox")
        if result.duplicated:
            failures.append(f"{result.duplicated} referrals in their partner's inbox twice")
        if result.restarted:
            failures.append(f"restarted by supervisord: {result.restarted}")
        if result.parked:
            failures.append(f"parked during the burst: {result.parked}")
