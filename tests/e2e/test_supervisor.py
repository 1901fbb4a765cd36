"""`make run` itself (`bersinar run`: supervisord with deploy/supervisord.conf): a killed
service is started again; Ctrl-C stops everything in order (gateway, services, relays,
the database last) without SIGKILL, with every committed event published; a second run
on the same folder keeps the data and seeds nothing twice; with every
<SERVICE>_DATABASE_URL set no embedded server is started; supervisorctl works on the
checked-in configuration without extra environment."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time

import psycopg2
import pytest
import requests

from bersinar import pg
from bersinar.config import COMPONENTS, ROOT
from harness import infra
from harness.data import referral_body
from harness.system import BIN, PROGRAMS, System
from tests.support.fixtures import TEST_HMAC_KEY
from tests.support.logs import check_log_folder

STOP_ORDER = ["gateway", "services", "relays", "postgres"]
GROUP = {"gateway": "gateway", "postgres": "postgres", "setup": "setup"}


def group_of(program: str) -> str:
    if program.startswith("relay-"):
        return "relays"
    return GROUP.get(program, "services")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def fetch(dsn: str, sql: str) -> tuple:
    connection = psycopg2.connect(dsn)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchone()
    finally:
        connection.close()


def scalar(dsn: str, sql: str):
    return fetch(dsn, sql)[0]


def dsn(var, component):
    return f"host={pg.socket_dir(var / 'pg')} user=postgres dbname={pg.database_name(component)}"


def stop_lines(output: str) -> list[str]:
    """The programs supervisord reported stopped, in order, after the Ctrl-C."""
    after = output[output.index("received SIGINT") :]
    return re.findall(r"INFO stopped: (\S+)", after)


@pytest.fixture
def vhost(test_run_id):
    with infra.own_vhost(f"bersinar-sup-{test_run_id}") as amqp_uri:
        yield amqp_uri


def test_restart_of_a_killed_service_ctrl_c_in_order_and_a_second_run(
    vhost, encryption_keys, var_dirs, tmp_path
):
    var = var_dirs("supervised")
    system = System(vhost, encryption_keys, TEST_HMAC_KEY, var)
    try:
        system.start_all()
        before = system.pids()
        assert set(before) == {*PROGRAMS, "postgres"}
        assert system.status()["setup"].startswith("EXITED")

        killed_at = time.monotonic()
        os.kill(before["notifikasi"], signal.SIGKILL)
        restarted = system.wait_restarted("notifikasi", before["notifikasi"])
        system.wait_healthy(timeout=60)
        print(
            f"\n[supervisor] notifikasi {before['notifikasi']} killed, running again as "
            f"{restarted} in {time.monotonic() - killed_at:.1f}s"
        )

        # Ctrl-C while referrals are being posted
        answered: list[str] = []
        stop_posting = threading.Event()

        def post():
            with requests.Session() as session:
                while not stop_posting.is_set():
                    body = referral_body(partner_id="yayasan-kipas", service_type="outpatient")
                    try:
                        reply = session.post(
                            system.base_url + "/api/v1/referrals",
                            json=body,
                            headers=system.headers(),
                            timeout=10,
                        )
                    except requests.RequestException:
                        return  # the gateway has stopped
                    if reply.status_code == 201:
                        answered.append(reply.json()["id"])

        poster = threading.Thread(target=post)
        poster.start()
        deadline = time.monotonic() + 60
        while len(answered) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        children = system.pids()
        status = system.terminate_all()
        stop_posting.set()
        poster.join(timeout=30)
    finally:
        system.terminate_all()

    output = system.run_output()
    assert status == 0
    assert len(answered) >= 20
    assert [name for name, pid in children.items() if alive(pid)] == []
    after_ctrl_c = output[output.index("received SIGINT") :]
    assert "SIGKILL" not in after_ctrl_c, after_ctrl_c
    order = [group_of(name) for name in stop_lines(output)]
    assert [g for i, g in enumerate(order) if i == 0 or order[i - 1] != g] == STOP_ORDER
    with pytest.raises(requests.ConnectionError):
        requests.get(system.base_url + "/health", timeout=2)

    # the relays stopped after the services: every event committed was published
    server = pg.start_background(var / "pg", tmp_path / "pg-check.log")
    try:
        pg.wait_ready(pg.admin_dsn(var / "pg"))
        for component in ("mitra", "rujukan"):
            pending = scalar(
                dsn(var, component), "SELECT count(*) FROM outbox WHERE published_at IS NULL"
            )
            assert pending == 0, f"{component}: {pending} outbox rows left unpublished"
    finally:
        pg.stop_background(server)

    # a second run on the same folder: the same data, nothing seeded or created twice
    again = System(vhost, encryption_keys, TEST_HMAC_KEY, var)
    try:
        again.start_all()
        output = again.run_output()
        assert "mitra: 0 partner(s) seeded" in output
        assert "console: accounts exist; none created" in output
        assert "database created" not in output.split("received SIGINT")[-1]
        partners = again.get("/api/v1/partners").json()["items"]
        assert len(partners) == 5
        # every referral stored (answered 201, or created as the gateway stopped) reached
        # the partner's inbox exactly once
        stored = scalar(
            dsn(var, "rujukan"),
            "SELECT count(*) FROM referrals WHERE partner_id = 'yayasan-kipas'",
        )
        assert stored >= len(set(answered))
        inbox_sql = (
            "SELECT count(*), count(DISTINCT event_id) FROM notifications "
            "WHERE event_type = 'referral_requested' AND recipient = 'partner:yayasan-kipas'"
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            rows, distinct = fetch(dsn(var, "notifikasi"), inbox_sql)
            if rows >= stored:
                break
            time.sleep(0.5)
        assert (rows, distinct) == (stored, stored)
        for referral_id in answered:
            assert again.get(f"/api/v1/referrals/{referral_id}").status_code == 200
            found = scalar(
                dsn(var, "notifikasi"),
                f"SELECT count(*) FROM notifications WHERE body LIKE '%{referral_id}%'",
            )
            assert found >= 1, referral_id
    finally:
        assert again.terminate_all() == 0
    # through a kill, two starts and two Ctrl-C: every line of every log is JSON, the
    # start-up steps', the database's and supervisord's own included
    checked = check_log_folder(var / "log")
    assert all(checked.get(name) for name in ("setup.log", "postgres.log", "supervisord.log"))
    supervisord_log = (var / "log" / "supervisord.log").read_text()
    assert supervisord_log.count('"message": "received SIGINT indicating exit request"') == 2


def test_with_every_database_url_set_no_embedded_server_runs(
    vhost, encryption_keys, var_dirs, test_run_id
):
    var = var_dirs("external")
    urls = infra.create_databases(f"bs_{test_run_id}", migrate=False)
    system = System(vhost, encryption_keys, TEST_HMAC_KEY, var, database_urls=urls)
    try:
        system.start_all()
        states = system.status()
        assert states["postgres"].startswith("STOPPED")  # never started
        assert "postgres" not in system.pids()
        assert not (var / "pg").exists()
        output = system.run_output()
        assert "no embedded PostgreSQL" in output
        for component in COMPONENTS:
            assert f"{component}: migrated" in output
        assert len(system.get("/api/v1/partners").json()["items"]) == 5
    finally:
        assert system.terminate_all() == 0
        infra.drop_databases(urls)
    checked = check_log_folder(var / "log")
    assert checked.get("setup.log") and checked.get("supervisord.log"), checked


def test_supervisorctl_reads_the_checked_in_configuration_without_extra_environment():
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/")}
    done = subprocess.run(
        [str(BIN / "supervisorctl"), "-c", str(ROOT / "deploy" / "supervisord.conf"), "status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        cwd="/",
    )
    said = done.stdout + done.stderr
    # it reads the file and asks the supervisord of var/ in the checkout (4: none runs;
    # 0 or 3: one runs), instead of refusing a configuration that names a variable
    assert "Error" not in said, said
    assert done.returncode in (0, 3, 4), said
    if done.returncode == 4:
        assert f"unix://{ROOT / 'var' / 'supervisor.sock'} no such file" in said
