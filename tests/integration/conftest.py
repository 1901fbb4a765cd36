from __future__ import annotations

import eventlet
import pytest
from sqlalchemy import func, select

from bersinar.clock import write_clock
from bersinar.relay import OutboxRelay
from services.mitra import handlers as mitra_handlers
from services.rujukan.models import AgreementView, PartnerView


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.05, message: str = ""):
    """Poll until predicate() is truthy; the value is returned. Fails the test on timeout."""
    deadline = eventlet.hubs.get_hub().clock() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if eventlet.hubs.get_hub().clock() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message or predicate}")
        eventlet.sleep(interval)


@pytest.fixture
def relays(make_config):
    """Outbox relays for every service, as green threads of the test process."""
    started = []

    def start(*services):
        for service in services:
            config = make_config(service)
            relay = OutboxRelay(
                service, config["DATABASE_URL"], config["AMQP_URI"], idle_interval=0.02
            )
            started.append((relay, eventlet.spawn(relay.run)))
        return [relay for relay, _ in started]

    yield start
    for relay, _ in started:
        relay.stop()
    for _, thread in started:
        thread.wait()


def partners_known(uow_factories):
    """rujukan has learnt the five seeded partners and their agreements (separate events,
    which may arrive in either order)."""
    with uow_factories["rujukan"]() as uow:
        partners = uow.session.scalar(select(func.count()).select_from(PartnerView))
        agreements = uow.session.scalar(select(func.count()).select_from(AgreementView))
    return partners >= 5 and agreements >= 5


@pytest.fixture
def seeded(clean_databases):
    with clean_databases["mitra"]() as uow:
        mitra_handlers.seed_partners(uow)
        uow.commit()
    return clean_databases


@pytest.fixture
def clock_file(tmp_path):
    """A clock the services read (config CLOCK_FILE); set it with ``clock_file.set(d)``."""
    from datetime import UTC, datetime

    path = tmp_path / "clock"

    class ClockFile:
        def __init__(self):
            self.path = path

        def set(self, day):
            moment = datetime(day.year, day.month, day.day, 3, 0, tzinfo=UTC)  # 10:00 WIB
            write_clock(path, moment)

    clock = ClockFile()
    clock.set(datetime.now(UTC).date())
    return clock
