"""End-to-end: the processes of `make run` as subprocesses, on a vhost and databases of
their own (so the in-process integration tests never compete with them)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from bersinar.envelope import rfc3339, utcnow
from tests.support import infra
from tests.support.fixtures import TEST_HMAC_KEY
from tests.support.system import System


@pytest.fixture(scope="package")
def e2e_env(test_run_id, encryption_keys):
    with infra.own_broker_and_databases(f"bersinar-e2e-{test_run_id}", f"be_{test_run_id}") as env:
        yield env


@pytest.fixture(scope="package")
def system(e2e_env, encryption_keys, tmp_path_factory):
    amqp_uri, urls = e2e_env
    clock = tmp_path_factory.mktemp("e2e-clock") / "now"
    clock.write_text(rfc3339(utcnow()))  # tests that move the clock put it back
    system = System(
        amqp_uri,
        urls,
        encryption_keys,
        TEST_HMAC_KEY,
        tmp_path_factory.mktemp("e2e-logs"),
        extra_env={
            "CLOCK_FILE": str(clock),
            "AGREEMENT_CHECK_INTERVAL": "0.5",
            # laporan's deadlines: checked often, from a month no other test reaches
            "REPORT_CHECK_INTERVAL": "0.5",
            "REPORT_START_PERIOD": "2027-06",
        },
    )
    system.clock_file = clock
    system.seed()
    system.start_all()
    system.urls = urls
    wait_for_partner_model(system)
    yield system
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
