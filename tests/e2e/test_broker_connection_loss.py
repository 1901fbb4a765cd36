"""RabbitMQ closes one process's connections under load (as `rabbitmqctl
close_connection` does, or a missed heartbeat): every queue that had consumers has them
again within 30 s of the broker taking connections again, without the process being
restarted; /health is 503 naming that process while it cannot consume, and never ok while
a consumer is missing; every referral answered 201 reaches the partner's inbox once.

To see /health during the gap, the vhost refuses new connections for a few seconds after
the cut (a vhost limit of 0 connections: the others' stay open). Each case prints how
long the process took to consume again."""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

from harness.data import referral_body

pytestmark = pytest.mark.reliability

RECOVERY_LIMIT = 30.0  # seconds, from the broker taking connections again
GAP = 3.0  # seconds the vhost refuses new connections after the cut
PARTNER = "yayasan-pesona"
REFERRAL_ID = re.compile(r"rujukan ([0-9a-f-]{36})")
CONNECTION_NAME = re.compile(r'"connection_name","([^"]*)"')


class Broker:
    """rabbitmqctl on the system's own vhost only."""

    def __init__(self, amqp_uri: str):
        self.vhost = amqp_uri.rsplit("/", 1)[1]

    def ctl(self, *args: str) -> str:
        done = subprocess.run(
            ["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True, timeout=60
        )
        return done.stdout

    def consumers(self) -> dict[str, int]:
        rows = self.ctl("list_queues", "-p", self.vhost, "name", "consumers").splitlines()
        return {name: int(count) for name, count in (row.split("\t") for row in rows[1:])}

    def missing(self, before: dict[str, int]) -> set[str]:
        now = self.consumers()
        return {queue for queue, count in before.items() if now.get(queue, 0) < count}

    def connections(self) -> list[tuple[str, int, str]]:
        """(broker pid, client port, connection_name or '') of each connection."""
        rows = self.ctl("list_connections", "pid", "vhost", "peer_port", "client_properties")
        found = []
        for row in rows.splitlines()[1:]:
            pid, vhost, port, properties = row.split("\t", 3)
            if vhost == self.vhost:
                name = CONNECTION_NAME.search(properties)
                found.append((pid, int(port), name.group(1) if name else ""))
        return found

    def close(self, pids: list[str]) -> None:
        """All at once, as a broker that drops a process's connections."""
        closing = [
            subprocess.Popen(
                ["rabbitmqctl", "-q", "close_connection", pid, "connection-loss test"],
                stdout=subprocess.DEVNULL,
            )
            for pid in pids
        ]
        for process in closing:
            process.wait(timeout=60)  # one that closed by itself meanwhile is no matter

    @contextmanager
    def refusing_new_connections(self):
        self.ctl("set_vhost_limits", "-p", self.vhost, '{"max-connections": 0}')
        try:
            yield
        finally:
            self.ctl("clear_vhost_limits", "-p", self.vhost)


def local_ports(pid: int) -> set[int]:
    """The local TCP ports of a process's sockets, read from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


class Load:
    """Referrals posted by a few threads until the block ends: (status, id) of each."""

    def __init__(self, system, workers: int = 3, pause: float = 0.05):
        self.system = system
        self.workers = workers
        self.pause = pause
        self.results: list[tuple[int, str | None]] = []
        self._stop = threading.Event()

    def _post(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                body = referral_body(partner_id=PARTNER, service_type="outpatient")
                try:
                    response = session.post(
                        self.system.base_url + "/api/v1/referrals",
                        json=body,
                        headers=self.system.headers(),
                        timeout=30,
                    )
                    answer = (response.status_code, response.json().get("id"))
                except (requests.RequestException, ValueError):
                    answer = (0, None)
                self.results.append(answer)
                self._stop.wait(self.pause)

    def __enter__(self):
        self._threads = [threading.Thread(target=self._post) for _ in range(self.workers)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def created(self) -> list[str]:
        return [referral_id for status, referral_id in self.results if status == 201]


def health(system) -> tuple[int, dict]:
    response = requests.get(system.base_url + "/health", timeout=30)
    return response.status_code, response.json()


def partner_inbox(engine) -> Counter:
    """How many of the partner's notifications name each referral."""
    with engine.connect() as connection:
        bodies = connection.execute(
            text(
                "SELECT body FROM notifications "
                "WHERE event_type = 'referral_requested' AND recipient = :recipient"
            ),
            {"recipient": f"partner:{PARTNER}"},
        ).scalars()
        return Counter(m.group(1) for m in map(REFERRAL_ID.search, bodies) if m)


@pytest.fixture(scope="module")
def broker(system):
    return Broker(system.amqp_uri)


@pytest.fixture(scope="module")
def notifikasi_db(system):
    engine = create_engine(system.urls["notifikasi"])
    yield engine
    engine.dispose()


def connections_of(broker, system, target: str) -> list[str]:
    """The broker pids of ``target``'s connections: a program's (by its sockets' ports),
    or ``notifikasi events``, the connection of notifikasi's event handlers alone."""
    if target == "notifikasi events":
        return [pid for pid, _, name in broker.connections() if name == target]
    ports = local_ports(system.pid(target))
    return [pid for pid, port, _ in broker.connections() if port in ports]


def check_gap(target: str, samples: list[tuple[set, int, dict]]) -> None:
    """While the target cannot reconnect, /health is 503 and names it with a reason."""
    component = target.split()[0]
    for missing, status, body in samples:
        assert missing, "the cut left every consumer in place"
        assert status == 503, body
        assert body["services"][component] != "ok", body
        assert body["reasons"][component], body
    if target == "notifikasi events":  # RPC works: only health's consumer report tells
        assert any(
            body["services"]["notifikasi"] == "degraded"
            and body["consumers"]["notifikasi"] == {"rpc": "ok", "events": "disconnected"}
            and "konsumen event notifikasi" in body["reasons"]["notifikasi"]
            for _, _, body in samples
        ), samples
    if target == "gateway":
        assert any(
            body["services"]["gateway"] == "degraded"
            and "konsumen RPC gateway" in body["reasons"]["gateway"]
            for _, _, body in samples
        ), samples


def wait_recovered(broker, system, before: dict[str, int]) -> float:
    """Until every queue has its consumers back and /health is ok; returns when. Fails if
    /health said ok between two listings that both lacked the same consumer."""
    deadline = time.monotonic() + RECOVERY_LIMIT
    missing = broker.missing(before)
    while True:
        status, body = health(system)
        answered = time.monotonic()
        if status == 200 and not missing:
            return answered
        following = broker.missing(before)
        if status == 200:
            assert not (missing & following), f"/health ok while {missing & following} unconsumed"
        if answered > deadline:
            pytest.fail(f"not recovered in {RECOVERY_LIMIT:.0f}s: {following or body}")
        missing = following


@pytest.mark.parametrize(
    "target", ["mitra", "rujukan", "laporan", "notifikasi", "notifikasi events", "gateway"]
)
def test_consumers_come_back_after_the_broker_closes_the_connections(
    system, broker, notifikasi_db, target
):
    system.wait_healthy(timeout=60)
    program = target.split()[0]
    pid = system.pid(program)
    before = {queue: count for queue, count in broker.consumers().items() if count}
    with Load(system) as load:
        time.sleep(1.0)
        victims = connections_of(broker, system, target)
        assert victims, f"no broker connection of {target}"
        with broker.refusing_new_connections():
            broker.close(victims)
            cut = time.monotonic()
            samples = []
            while time.monotonic() < cut + GAP or not samples:
                missing = broker.missing(before)
                samples.append((missing, *health(system)))
        opened = time.monotonic()
        check_gap(target, samples)
        recovered = wait_recovered(broker, system, before)
        time.sleep(1.0)  # referrals after the recovery too
    assert system.pid(program) == pid, "recovered by a restart, not in the process"

    created = load.created()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        inbox = partner_inbox(notifikasi_db)
        if all(inbox[referral_id] for referral_id in created):
            break
        time.sleep(0.5)
    time.sleep(1.0)  # a redelivered duplicate would land by now
    inbox = partner_inbox(notifikasi_db)
    lost = sum(1 for referral_id in created if inbox[referral_id] == 0)
    duplicated = sum(1 for referral_id in created if inbox[referral_id] > 1)
    refused = Counter(status for status, _ in load.results if status != 201)
    print(
        f"\n[connection loss: {target}] connections_closed={len(victims)} "
        f"queues_consuming={len(before)} health_in_gap="
        f"{sorted({body['services'][program] for _, _, body in samples})} "
        f"recovery_s={recovered - opened:.1f} (from the cut {recovered - cut:.1f}) "
        f"posted={len(load.results)} created={len(created)} not_201={dict(refused)} "
        f"lost={lost} duplicated={duplicated}"
    )
    assert created, "no referral was created under the load"
    assert lost == 0
    assert duplicated == 0
