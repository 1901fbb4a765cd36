from __future__ import annotations

import eventlet
import pytest
from sqlalchemy import func, select

from bersinar.relay import OutboxRelay
from services.mitra import handlers as mitra_handlers
from services.rujukan.models import PartnerView


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
    with uow_factories["rujukan"]() as uow:
        return uow.session.scalar(select(func.count()).select_from(PartnerView)) >= 5


@pytest.fixture
def seeded(clean_databases):
    with clean_databases["mitra"]() as uow:
        mitra_handlers.seed_partners(uow)
        uow.commit()
    return clean_databases
