"""Processes killed with SIGKILL under load lose nothing and duplicate nothing. Each test
prints lost / duplicated / recovery seconds."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import create_engine, text

from harness.data import referral_body

pytestmark = pytest.mark.reliability

# the partner inbox also holds other events' messages (agreements, ...): count these
REQUESTED = "SELECT COUNT(*) FROM notifications WHERE event_type = 'referral_requested'"


class Db:
    def __init__(self, url):
        self.engine = create_engine(url)

    def scalar(self, sql, **params):
        with self.engine.connect() as connection:
            return connection.execute(text(sql), params).scalar()


@pytest.fixture(scope="module")
def dbs(system):
    handles = {name: Db(url) for name, url in system.urls.items()}
    yield handles
    for handle in handles.values():
        handle.engine.dispose()


def post_referrals(system, count, partner_id="yayasan-kipas", workers=10):
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=workers, pool_maxsize=workers)
    session.mount("http://", adapter)

    def post(_):
        body = referral_body(partner_id=partner_id, service_type="outpatient")
        response = session.post(
            system.base_url + "/api/v1/referrals", json=body, headers=system.headers(), timeout=30
        )
        return response.status_code, response.json().get("id")

    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(post, range(count)))
    session.close()
    return results


def wait_for(predicate, timeout, message):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout}s waiting for {message}")


def test_kill_notifikasi_while_500_events_are_in_flight(system, dbs):
    before = dbs["notifikasi"].scalar(REQUESTED)
    total = 500

    with ThreadPoolExecutor(1) as background:
        posting = background.submit(post_referrals, system, total)
        # kill it once part of the work is done: the rest is queued or in flight
        wait_for(
            lambda: dbs["notifikasi"].scalar(REQUESTED) >= before + 50,
            60,
            "the first notifications",
        )
        killed = system.kill("notifikasi")
        killed_at = time.monotonic()
        at_kill = dbs["notifikasi"].scalar(REQUESTED) - before
        results = posting.result(timeout=180)
    assert [status for status, _ in results] == [201] * total

    system.wait_restarted("notifikasi", killed)  # by supervisord, as under `make run`
    restarted = killed_at
    wait_for(
        lambda: dbs["notifikasi"].scalar(REQUESTED) >= before + total,
        90,
        "every notification after the restart",
    )
    recovery = time.monotonic() - restarted
    time.sleep(1.0)  # let any redelivered duplicate land before counting

    ids = [referral_id for _, referral_id in results]
    rows = dbs["notifikasi"].scalar(REQUESTED) - before
    duplicates = dbs["notifikasi"].scalar(
        "SELECT COUNT(*) FROM (SELECT recipient, event_id FROM notifications "
        "GROUP BY recipient, event_id HAVING COUNT(*) > 1) d"
    )
    missing = sum(
        1
        for referral_id in ids
        if not dbs["notifikasi"].scalar(
            "SELECT COUNT(*) FROM notifications WHERE body LIKE :p", p=f"%{referral_id}%"
        )
    )
    print(
        f"\n[kill -9 notifikasi] posted={total} handled_before_kill={at_kill} "
        f"notifications={rows} lost={missing} duplicated={duplicates} "
        f"recovery_s={recovery:.1f}"
    )
    assert missing == 0
    assert duplicates == 0
    assert rows == total


def test_kill_relay_between_commit_and_publish(system, dbs):
    pending_sql = (
        "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL "
        "AND event_type = 'referral_requested'"
    )
    records_before = dbs["laporan"].scalar("SELECT COUNT(*) FROM referral_records")
    # frozen, it keeps its leadership and publishes nothing; then killed in that state
    frozen = system.kill("relay-rujukan", signal.SIGSTOP)
    try:
        results = post_referrals(system, 50, partner_id="yayasan-pesona", workers=5)
        assert [status for status, _ in results] == [201] * 50
        # committed with their events, not yet published
        assert dbs["rujukan"].scalar(pending_sql) == 50
        time.sleep(1.0)
        assert dbs["laporan"].scalar("SELECT COUNT(*) FROM referral_records") == records_before
    finally:
        restarted = time.monotonic()
        os.kill(frozen, signal.SIGKILL)
        system.wait_restarted("relay-rujukan", frozen)
    wait_for(
        lambda: (
            dbs["laporan"].scalar("SELECT COUNT(*) FROM referral_records") >= records_before + 50
        ),
        60,
        "laporan to record the held events",
    )
    recovery = time.monotonic() - restarted
    ids = [referral_id for _, referral_id in results]
    recorded = sum(
        dbs["laporan"].scalar("SELECT COUNT(*) FROM referral_records WHERE referral_id = :r", r=r)
        for r in ids
    )
    print(
        f"\n[kill -9 relay] committed=50 recorded={recorded} lost={50 - recorded} "
        f"pending_after={dbs['rujukan'].scalar(pending_sql)} recovery_s={recovery:.1f}"
    )
    assert recorded == 50
    assert dbs["rujukan"].scalar(pending_sql) == 0
