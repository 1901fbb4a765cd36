"""End-to-end: the system started as `make run` starts it (`bersinar run`: supervisord,
the embedded PostgreSQL, `bersinar setup`), in a folder and on a vhost of its own (so
the in-process integration tests never compete with it)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bersinar.envelope import rfc3339, utcnow
from harness import infra
from harness.system import System
from tests.e2e import edge as edge_world
from tests.support.fixtures import TEST_HMAC_KEY


def pytest_collection_modifyitems(items):
    """test_privacy_logs.py reads what the other end-to-end modules made every system
    log: its tests run after all others."""
    module = Path(__file__).parent / "test_privacy_logs.py"
    last = [item for item in items if item.path == module]
    items[:] = [item for item in items if item not in last] + last


@pytest.fixture(scope="package")
def e2e_vhost(test_run_id):
    with infra.own_vhost(f"bersinar-e2e-{test_run_id}") as amqp_uri:
        yield amqp_uri


@pytest.fixture(scope="package")
def system(e2e_vhost, encryption_keys, var_dirs):
    """`bersinar run` as `make run` runs it: the embedded PostgreSQL in its own folder."""
    var = var_dirs("e2e")
    clock = var / "clock"
    clock.write_text(rfc3339(utcnow()))  # tests that move the clock put it back
    system = System(
        e2e_vhost,
        encryption_keys,
        TEST_HMAC_KEY,
        var,
        extra_env={
            "CLOCK_FILE": str(clock),
            "AGREEMENT_CHECK_INTERVAL": "0.5",
            # laporan's deadlines: checked often, from a month no other test reaches
            "REPORT_CHECK_INTERVAL": "0.5",
            "REPORT_START_PERIOD": "2027-06",
        },
    )
    system.clock_file = clock
    try:
        system.start_all()
        wait_for_partner_model(system)
        yield system
    finally:
        system.terminate_all()


def wait_for_partner_model(system: System, timeout: float = 30) -> None:
    from bersinar.db import make_engine
    from services.rujukan.models import AgreementView, PartnerView

    engine = make_engine(system.urls["rujukan"])
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                partners = connection.scalar(select(func.count()).select_from(PartnerView))
                agreements = connection.scalar(select(func.count()).select_from(AgreementView))
                if partners >= 5 and agreements >= 5:
                    return
            time.sleep(0.2)
        raise TimeoutError("rujukan never learnt the seeded partners")
    finally:
        engine.dispose()


@pytest.fixture(scope="package")
def edge(test_run_id, encryption_keys, var_dirs):
    """The system of tests/e2e/edge.py: the suites on it change data and move nothing
    back, so it is never the shared ``system``."""
    var = var_dirs("edge")
    clock = var / "clock"
    clock.write_text(edge_world.NOW)
    with infra.own_vhost(f"bersinar-edge-{test_run_id}") as amqp_uri:
        system = System(
            amqp_uri,
            encryption_keys,
            TEST_HMAC_KEY,
            var,
            extra_env={"CLOCK_FILE": str(clock), "REPORT_START_PERIOD": "2026-01"},
        )
        try:
            system.start_all()
            yield system
        finally:
            system.terminate_all()


@pytest.fixture(scope="package")
def world(edge):
    made = edge_world.World(edge)
    # something in every inbox the cells read: a rejection tells the officers, a new
    # referral tells the partner, a report submitted tells the admins
    made.ok(
        edge.post(
            f"/api/v1/referrals/{made.referral()}/reject",
            {"reason": "client_unreachable"},
            key=made.keys["partner"],
        )
    )
    return made
