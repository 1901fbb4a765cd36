"""The first vertical slice through all four services and the gateway, in one process:
real RabbitMQ (the run's vhost), real PostgreSQL, real HTTP."""

from __future__ import annotations

import json
import logging

import pytest
import requests
from sqlalchemy import func, select, text

from gateway.service import GatewayService
from harness.data import referral_body
from services.laporan.models import ReferralRecord
from services.laporan.service import LaporanService
from services.mitra.service import MitraService
from services.notifikasi.models import Notification
from services.notifikasi.service import NotifikasiService
from services.rujukan.models import Client
from services.rujukan.service import RujukanService
from tests.integration.conftest import partners_known, wait_until

SERVICES = {
    "mitra": MitraService,
    "rujukan": RujukanService,
    "laporan": LaporanService,
    "notifikasi": NotifikasiService,
    "gateway": GatewayService,
}


@pytest.fixture
def system(container_factory, make_config, relays, seeded):
    containers = {}
    for name, cls in SERVICES.items():
        container = container_factory(cls, make_config(name))
        container.start()
        containers[name] = container
    relays("mitra", "rujukan", "laporan", "notifikasi")
    wait_until(lambda: partners_known(seeded), message="rujukan's partner read model")
    base = f"http://{containers['gateway'].config['WEB_SERVER_ADDRESS']}"
    return base, containers["gateway"].config["ADMIN_KEY"], seeded


def auth(key):
    return {"Authorization": f"Bearer {key}"}


def count(factory, model, *where):
    with factory() as uow:
        return uow.session.scalar(select(func.count()).select_from(model).where(*where))


def test_referral_reaches_partner_inbox_and_laporan(system, caplog):
    base, admin_key, dbs = system
    caplog.set_level(logging.DEBUG)

    partner_key = requests.post(
        f"{base}/api/v1/api-keys",
        headers=auth(admin_key),
        json={"role": "partner", "partner_id": "yayasan-kipas", "label": "operator Kipas"},
        timeout=10,
    )
    assert partner_key.status_code == 201, partner_key.text
    other_key = requests.post(
        f"{base}/api/v1/api-keys",
        headers=auth(admin_key),
        json={"role": "partner", "partner_id": "yayasan-pesona", "label": "operator Pesona"},
        timeout=10,
    ).json()["key"]

    body = referral_body(partner_id="yayasan-kipas")
    created = requests.post(
        f"{base}/api/v1/referrals", headers=auth(admin_key), json=body, timeout=10
    )
    assert created.status_code == 201, created.text
    referral = created.json()
    assert referral["status"] == "requested"
    assert referral["partner_id"] == "yayasan-kipas"

    wait_until(
        lambda: count(dbs["laporan"], ReferralRecord, ReferralRecord.referral_id == referral["id"]),
        message="laporan's record of the referral",
    )
    wait_until(
        lambda: count(
            dbs["notifikasi"],
            Notification,
            Notification.recipient == "partner:yayasan-kipas",
            Notification.event_type == "referral_requested",
        ),
        message="the notification in the partner's inbox",
    )

    inbox = requests.get(
        f"{base}/api/v1/notifications", headers=auth(partner_key.json()["key"]), timeout=10
    ).json()["items"]
    inbox = [n for n in inbox if n["event_type"] == "referral_requested"]
    assert len(inbox) == 1
    assert referral["id"] in inbox[0]["body"]
    # another partner's operator sees nothing of it
    others = requests.get(f"{base}/api/v1/notifications", headers=auth(other_key), timeout=10)
    assert all(referral["id"] not in n["body"] for n in others.json()["items"])
    assert all(n["recipient"] == "partner:yayasan-pesona" for n in others.json()["items"])

    # the identity stays in rujukan, encrypted: not in any event, notification or log
    secrets = (body["client"]["name"], body["client"]["nik"], body["client"]["phone"])
    with dbs["rujukan"]() as uow:
        payloads = [row[0] for row in uow.session.execute(text("SELECT payload FROM outbox"))]
        client = uow.session.scalars(select(Client)).one()
        stored = (client.nik_encrypted, client.name_encrypted, client.phone_encrypted)
    for secret, ciphertext in zip(secrets, stored, strict=True):
        assert ciphertext and secret not in ciphertext
    with dbs["notifikasi"]() as uow:
        notification_text = json.dumps(
            [(n.title, n.body) for n in uow.session.scalars(select(Notification))]
        )
    logs = "\n".join(record.getMessage() for record in caplog.records)
    for secret in secrets:
        assert all(secret not in payload for payload in payloads)
        assert secret not in notification_text
        assert secret not in logs


def test_laporan_counts_referrals_by_partner(system, container_factory):
    base, admin_key, dbs = system
    for partner, sex in (
        ("yayasan-karunia-insani", "F"),
        ("yayasan-kipas", "M"),
        ("yayasan-kipas", "F"),
    ):
        response = requests.post(
            f"{base}/api/v1/referrals",
            headers=auth(admin_key),
            json=referral_body(partner_id=partner, sex=sex),
            timeout=10,
        )
        assert response.status_code == 201, response.text
    wait_until(lambda: count(dbs["laporan"], ReferralRecord) == 3, message="three records")
    with dbs["laporan"]() as uow:
        from services.laporan.handlers import recorded_counts

        period = uow.session.scalar(select(ReferralRecord.period))
        counts = recorded_counts(uow, period)
    assert counts["partners"]["yayasan-kipas"]["requested"] == 2
    assert counts["partners"]["yayasan-kipas"]["by_sex"] == {"M": 1, "F": 1}
    assert counts["partners"]["yayasan-karunia-insani"]["by_sex"] == {"F": 1}


def test_female_only_partner_refuses_a_male_client(system):
    base, admin_key, dbs = system
    response = requests.post(
        f"{base}/api/v1/referrals",
        headers=auth(admin_key),
        json=referral_body(partner_id="yayasan-karunia-insani", sex="M"),
        timeout=10,
    )
    assert response.status_code == 422
    assert response.json()["code"] == "NOT_ELIGIBLE"
    assert count(dbs["rujukan"], Client) == 0
    with dbs["rujukan"]() as uow:
        assert (
            uow.session.scalar(
                text("SELECT COUNT(*) FROM outbox WHERE event_type = 'referral_requested'")
            )
            == 0
        )
