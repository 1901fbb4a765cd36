"""The outbox relay's backlog and oldest-age gauges keep telling the truth while the
broker or the database is down, so BersinarOutboxStale (and, for the database,
BersinarOutboxUnchecked) can fire: each test cuts one of them off a relay of its own,
on a database of its own, and reads the gauges as Prometheus would."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import eventlet
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from bersinar.db import UnitOfWorkFactory, make_engine
from bersinar.envelope import utcnow
from bersinar.relay import OutboxRelay
from harness import infra, produced
from services.mitra.models import Base
from tests.integration.conftest import wait_until

WAITED = 30  # seconds the rows had waited when written


@pytest.fixture
def outbox_url(test_run_id):
    """mitra's schema in a database no other test uses: cutting it off hurts nobody."""
    urls = infra.create_databases(f"bt_{test_run_id}_{uuid.uuid4().hex[:6]}", ("mitra",))
    yield urls["mitra"]
    allow_connections(urls["mitra"], True)
    infra.drop_databases(urls)


def allow_connections(url: str, allowed: bool) -> None:
    """Let nobody in (and throw out who is in), or let them in again: the database is
    down for its clients while the shared server goes on serving everyone else."""
    target = make_url(url)  # a server's address, or a socket folder in the query
    name = target.database
    admin = make_engine(
        target.set(database="postgres").render_as_string(hide_password=False), poolclass=NullPool
    )
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(
                text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {str(allowed).lower()}')
            )
            if not allowed:
                connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name"
                    ),
                    {"name": name},
                )
    finally:
        admin.dispose()


def write_events(url: str, count: int, waited: float = WAITED) -> None:
    """Rows as mitra's unit of work writes them, ``waited`` seconds old: partner_updated
    of partners of their own (one ordering key each, so none waits behind another)."""
    factory = UnitOfWorkFactory(url, "mitra", Base.metadata)
    try:
        with factory() as uow:
            for _ in range(count):
                partner = f"mitra-{uuid.uuid4().hex[:8]}"
                uow.emit(
                    "partner_updated",
                    produced.partner_event("partner_updated", partner)["data"],
                    f"partner:{partner}",
                    occurred_at=utcnow() - timedelta(seconds=waited),
                )
            uow.commit()
    finally:
        factory.dispose()


def gauge(name: str, service: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"service": service})


@pytest.fixture
def run_relay():
    started = []

    def start(service, url, amqp_uri):
        relay = OutboxRelay(service, url, amqp_uri, idle_interval=0.02)
        started.append((relay, eventlet.spawn(relay.run)))
        return relay

    yield start
    for relay, thread in started:
        relay.stop()
        thread.wait()


def test_the_gauges_move_while_the_broker_is_unreachable(outbox_url, run_relay, amqp_uri):
    service = f"gauges-broker-{uuid.uuid4().hex[:6]}"
    failures = "bersinar_outbox_publish_failures_total"
    write_events(outbox_url, 3)
    nowhere = amqp_uri.rsplit("/", 1)[0] + f"/no-such-vhost-{uuid.uuid4().hex[:6]}"
    run_relay(service, outbox_url, nowhere)

    wait_until(lambda: gauge(failures, service), message="a failed publish")
    wait_until(lambda: gauge("bersinar_outbox_backlog", service) == 3, message="backlog 3")
    first_age = gauge("bersinar_outbox_oldest_age_seconds", service)
    first_check = gauge("bersinar_outbox_last_check_timestamp_seconds", service)
    write_events(outbox_url, 2)  # more waits while the broker stays away
    wait_until(lambda: gauge("bersinar_outbox_backlog", service) == 5, message="backlog 5")
    eventlet.sleep(1.5)
    age = gauge("bersinar_outbox_oldest_age_seconds", service)
    check = gauge("bersinar_outbox_last_check_timestamp_seconds", service)
    print(
        f"\n[broker down] publish_failures={gauge(failures, service):.0f} backlog 3->5 "
        f"age {first_age:.1f}s->{age:.1f}s last_check +{check - first_check:.1f}s"
    )
    assert first_age >= WAITED
    assert age >= first_age + 1.5
    assert check > first_check
    assert gauge(failures, service) >= 2  # it kept trying all along


def test_the_age_grows_and_the_check_stands_still_while_the_database_is_down(
    outbox_url, run_relay, amqp_uri
):
    service = f"gauges-db-{uuid.uuid4().hex[:6]}"
    write_events(outbox_url, 3)  # unroutable on the run's broker: they stay unpublished
    relay = run_relay(service, outbox_url, amqp_uri)
    wait_until(lambda: gauge("bersinar_outbox_backlog", service) == 3, message="backlog 3")

    allow_connections(outbox_url, False)
    cut = time.time()
    assert relay.update_gauges(force=True) is False  # the outbox really cannot be read
    eventlet.sleep(0.5)
    age_then = gauge("bersinar_outbox_oldest_age_seconds", service)
    check_then = gauge("bersinar_outbox_last_check_timestamp_seconds", service)
    eventlet.sleep(2.0)
    age_now = gauge("bersinar_outbox_oldest_age_seconds", service)
    check_now = gauge("bersinar_outbox_last_check_timestamp_seconds", service)
    backlog = gauge("bersinar_outbox_backlog", service)
    print(
        f"\n[database down] backlog={backlog:.0f} age {age_then:.1f}s->{age_now:.1f}s "
        f"last_check {cut - check_now:.1f}s before the cut, unchanged"
    )
    assert age_now >= age_then + 2.0 and age_then >= WAITED
    assert check_now == check_then <= cut
    assert backlog == 3  # as last seen

    allow_connections(outbox_url, True)
    wait_until(
        lambda: gauge("bersinar_outbox_last_check_timestamp_seconds", service) > cut,
        timeout=30,
        message="the relay reading its outbox again",
    )
