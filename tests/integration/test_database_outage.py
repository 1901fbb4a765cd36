"""A service whose database cannot be reached answers 503, not 500, and an event it
cannot handle for that reason waits for the database instead of being parked; a pooled
connection the server dropped is replaced before use."""

from __future__ import annotations

import time

import eventlet
import pytest
import requests
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from bersinar.db import make_engine
from gateway.service import GatewayService
from harness.infra import free_port
from services.laporan.service import LaporanService
from services.mitra.service import MitraService
from tests.integration.conftest import wait_until
from tests.integration.test_messaging_reliability import publish, referral_event

UNREACHABLE = "postgresql+psycopg2://postgres@127.0.0.1:1/nowhere"


def test_rpc_to_a_service_without_its_database_answers_503(container_factory, make_config):
    container_factory(MitraService, make_config("mitra", DATABASE_URL=UNREACHABLE)).start()
    gateway = container_factory(GatewayService, make_config("gateway"))
    gateway.start()
    response = requests.get(
        f"http://{gateway.config['WEB_SERVER_ADDRESS']}/api/v1/partners",
        headers={"Authorization": f"Bearer {gateway.config['ADMIN_KEY']}"},
        timeout=30,
    )
    assert response.status_code == 503
    assert response.json()["code"] == "SERVICE_UNAVAILABLE"


def test_a_service_without_its_database_is_not_ready_and_one_with_it_is(
    container_factory, make_config
):
    """/ready on the metrics port (the readiness probe of compose and Kubernetes) speaks
    of the process's own broker consumers and database; the port answers all the same."""
    down_port, up_port = free_port(), free_port()
    config = make_config("mitra", DATABASE_URL=UNREACHABLE, METRICS_PORT=down_port)
    container_factory(MitraService, config).start()
    container_factory(LaporanService, make_config("laporan", METRICS_PORT=up_port)).start()

    down = requests.get(f"http://127.0.0.1:{down_port}/ready", timeout=30)
    assert down.status_code == 503
    assert down.json() == {"status": "unavailable", "reasons": {"database": "OperationalError"}}
    assert requests.get(f"http://127.0.0.1:{down_port}/metrics", timeout=30).ok
    up = wait_until(
        lambda: (r := requests.get(f"http://127.0.0.1:{up_port}/ready", timeout=30)).ok and r,
        timeout=30,
        message="laporan ready",
    )
    assert up.json() == {"status": "ok"}


def test_an_event_is_not_parked_while_the_database_is_down(
    container_factory, make_config, amqp_uri, clean_databases
):
    container_factory(LaporanService, make_config("laporan", DATABASE_URL=UNREACHABLE)).start()
    labels = {
        "service": "laporan",
        "consumer": "on_referral_requested",
        "event_type": "referral_requested",
    }

    def value(name):
        return REGISTRY.get_sample_value(name, labels) or 0.0

    retried, parked = value("bersinar_events_retried_total"), value("bersinar_events_parked_total")
    publish(amqp_uri, referral_event())
    # more tries than the retry schedule allows for a failing handler
    wait_until(
        lambda: value("bersinar_events_retried_total") >= retried + 5,
        timeout=30,
        message="five retries",
    )
    print(
        f"\n[database down] retries={value('bersinar_events_retried_total') - retried:.0f} "
        f"parked={value('bersinar_events_parked_total') - parked:.0f}"
    )
    assert value("bersinar_events_parked_total") == parked


def test_a_request_answered_503_is_not_carried_out_when_the_service_returns(
    container_factory, make_config, clean_databases
):
    mitra = container_factory(MitraService, make_config("mitra"))
    mitra.start()  # declares its durable request queue
    mitra.stop()  # and is gone: requests wait in that queue
    gateway = container_factory(GatewayService, make_config("gateway", RPC_TIMEOUT=1))
    gateway.start()
    base = f"http://{gateway.config['WEB_SERVER_ADDRESS']}"
    admin = {"Authorization": f"Bearer {gateway.config['ADMIN_KEY']}"}
    body = {
        "id": "yayasan-terlambat",
        "name": "Yayasan Terlambat",
        "kind": "foundation",
        "kabupaten_kota": "Kota Bengkulu",
        "sex_served": "all",
    }
    response = requests.post(f"{base}/api/v1/partners", json=body, headers=admin, timeout=30)
    assert (response.status_code, response.json()["code"]) == (503, "SERVICE_UNAVAILABLE")

    eventlet.sleep(1.5)  # the request's time in the queue has run out
    container_factory(MitraService, make_config("mitra")).start()
    listed = requests.get(f"{base}/api/v1/partners", headers=admin, timeout=30)
    assert listed.status_code == 200
    eventlet.sleep(1.0)  # anything still queued would have been handled by now
    listed = requests.get(f"{base}/api/v1/partners", headers=admin, timeout=30)
    ids = [p["id"] for p in listed.json()["items"]]
    print(f"\n[rpc expiry] 503 after 1 s; partners after the service returned: {ids}")
    assert "yayasan-terlambat" not in ids


def _terminate(url: str, backend_pid: int) -> None:
    with make_engine(url, poolclass=NullPool).connect() as other:
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend_pid})


def _backend_pid(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT pg_backend_pid()")).scalar_one()


def test_a_pooled_connection_that_lay_idle_is_tested_and_replaced(database_urls, monkeypatch):
    """The server dropped a pooled connection (a restart, an idle timeout): the next
    unit of work gets a working one, because a connection idle longer than DB_PING_IDLE
    is tested before use."""
    monkeypatch.setenv("DB_PING_IDLE", "0.05")
    engine = make_engine(database_urls["mitra"], pool_size=1, max_overflow=0)
    try:
        first = _backend_pid(engine)
        _terminate(database_urls["mitra"], first)
        time.sleep(0.2)
        second = _backend_pid(engine)  # would raise if the dead connection were used
        assert second != first
    finally:
        engine.dispose()


def test_a_connection_given_back_a_moment_ago_is_used_without_a_test(database_urls, monkeypatch):
    """The other side of the rule: a busy process does not pay a round trip per unit of
    work. Shown by dropping a connection just returned: it is used untested and the unit
    of work fails (the pool is then renewed, and the next one works)."""
    monkeypatch.setenv("DB_PING_IDLE", "3600")
    engine = make_engine(database_urls["mitra"], pool_size=1, max_overflow=0)
    try:
        first = _backend_pid(engine)
        _terminate(database_urls["mitra"], first)
        with pytest.raises(OperationalError):
            _backend_pid(engine)
        assert _backend_pid(engine) != first
    finally:
        engine.dispose()
