"""A service whose database cannot be reached answers 503, not 500, and an event it
cannot handle for that reason waits for the database instead of being parked."""

from __future__ import annotations

import requests
from prometheus_client import REGISTRY

from gateway.service import GatewayService
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
