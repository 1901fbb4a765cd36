"""mitra with the real broker and PostgreSQL: expiry notices exactly once across two
instances and restarts, capacity changes reaching rujukan, and who may change what."""

from __future__ import annotations

import json
import time
from datetime import date

import eventlet
import pytest
import requests
from nameko.containers import ServiceContainer
from nameko.testing.services import entrypoint_hook
from prometheus_client import REGISTRY
from sqlalchemy import select, text

from bersinar.relay import OutboxRelay
from gateway.service import GatewayService
from services.mitra.handlers import seed_partners
from services.mitra.service import MitraService
from services.rujukan.models import PartnerView
from services.rujukan.service import RujukanService
from tests.integration.conftest import partners_known, wait_until
from tests.support.fixtures import empty_everything


def outbox_events(factory, event_type):
    with factory() as uow:
        rows = uow.session.execute(
            text("SELECT payload FROM outbox WHERE event_type = :t ORDER BY id"), {"t": event_type}
        ).all()
    return [json.loads(row[0]) for row in rows]


def test_expiry_notices_are_emitted_once_across_two_instances_and_restarts(
    container_factory, make_config, clean_databases, clock_file
):
    dbs = clean_databases
    config = make_config("mitra", CLOCK_FILE=str(clock_file.path))
    first, second = (container_factory(MitraService, config) for _ in range(2))
    first.start()
    second.start()
    with entrypoint_hook(first, "register_partner") as register:
        partner = register(
            {
                "name": "Klinik Uji Kedaluwarsa",
                "kind": "clinic",
                "kabupaten_kota": "Seluma",
                "sex_served": "all",
                "services": [{"service_type": "outpatient", "capacity": 5}],
            },
            "officer:test",
        )
    with entrypoint_hook(first, "sign_agreement") as sign:
        agreement = sign(
            partner["id"],
            {
                "number": "PKS/UJI/2026/001",
                "signed_on": "2025-12-20",
                "valid_from": "2026-01-01",
                "valid_until": "2027-03-31",
            },
            "officer:test",
        )
    assert agreement["status"] in ("active", "expiring")

    def check_in_both():
        with (
            entrypoint_hook(first, "check_agreements") as a,
            entrypoint_hook(second, "check_agreements") as b,
        ):
            results = [eventlet.spawn(a), eventlet.spawn(b)]
            return [r.wait() for r in results]

    schedule = [
        (date(2026, 12, 30), None),
        (date(2026, 12, 31), "expiring_90"),
        (date(2027, 1, 15), None),
        (date(2027, 3, 1), "expiring_30"),
        (date(2027, 3, 24), "expiring_7"),
        (date(2027, 3, 31), None),
        (date(2027, 4, 1), "expired"),
        (date(2027, 6, 1), None),
    ]
    seen = []
    for day, expected in schedule:
        clock_file.set(day)
        sent = [notice for result in check_in_both() for _, notice in result]
        sent += [notice for result in check_in_both() for _, notice in result]  # again
        assert sent == ([expected] if expected else []), day
        seen.extend(sent)

    # a restart (new instances) emits nothing again
    first.stop()
    second.stop()
    third = container_factory(MitraService, config)
    third.start()
    with entrypoint_hook(third, "check_agreements") as check:
        assert check() == []

    expiring = [e["data"] for e in outbox_events(dbs["mitra"], "agreement_expiring")]
    expired = [e["data"] for e in outbox_events(dbs["mitra"], "agreement_expired")]
    print(
        f"\n[expiry] notices={seen} expiring_events={len(expiring)} expired_events={len(expired)}"
    )
    # the registry's gauges, refreshed by the same timer
    assert REGISTRY.get_sample_value("bersinar_agreements", {"status": "expired"}) == 1
    assert REGISTRY.get_sample_value("bersinar_agreements", {"status": "active"}) == 0
    assert REGISTRY.get_sample_value("bersinar_partners", {"status": "active"}) == 1
    assert [e["days_left"] for e in expiring] == [90, 30, 7]
    assert [e["days_left"] for e in expired] == [-1]
    assert all(e["agreement_id"] == agreement["id"] for e in expiring + expired)


@pytest.fixture(scope="module")
def gateway_system(make_config, uow_factories, amqp_uri):
    """mitra, rujukan and the gateway with relays, started once for this module's
    permission tests (each test leaves the registry as it found it, or says so)."""
    empty_everything(uow_factories, amqp_uri)
    with uow_factories["mitra"]() as uow:
        seed_partners(uow)
        uow.commit()
    containers = [
        ServiceContainer(cls, make_config(name))
        for name, cls in (
            ("mitra", MitraService),
            ("rujukan", RujukanService),
            ("gateway", GatewayService),
        )
    ]
    for container in containers:
        container.start()
    relays = [
        OutboxRelay(s, make_config(s)["DATABASE_URL"], amqp_uri, idle_interval=0.02)
        for s in ("mitra", "rujukan")
    ]
    threads = [eventlet.spawn(relay.run) for relay in relays]
    wait_until(lambda: partners_known(uow_factories), message="rujukan's partner read model")
    gateway = containers[-1]
    base = f"http://{gateway.config['WEB_SERVER_ADDRESS']}"
    admin = {"Authorization": f"Bearer {gateway.config['ADMIN_KEY']}"}

    def key(role, partner_id=None):
        body = {"role": role, "label": f"{role} test"}
        if partner_id:
            body["partner_id"] = partner_id
        response = requests.post(f"{base}/api/v1/api-keys", json=body, headers=admin, timeout=10)
        assert response.status_code == 201, response.text
        return {"Authorization": f"Bearer {response.json()['key']}"}

    yield base, admin, key, uow_factories
    for relay in relays:
        relay.stop()
    for thread in threads:
        thread.wait()
    for container in containers:
        container.kill()


def capacity_in_rujukan(dbs, partner_id, service_type):
    with dbs["rujukan"]() as uow:
        view = uow.session.scalars(
            select(PartnerView).where(PartnerView.partner_id == partner_id)
        ).one()
        return {s["service_type"]: s["capacity"] for s in view.services}.get(service_type)


def test_a_partner_updates_its_own_capacity_and_rujukan_follows(gateway_system):
    base, admin, key, dbs = gateway_system
    kipas = key("partner", "yayasan-kipas")
    before = requests.get(f"{base}/api/v1/partners/yayasan-kipas", headers=kipas, timeout=10)
    started = time.monotonic()
    response = requests.patch(
        f"{base}/api/v1/partners/yayasan-kipas",
        headers=kipas,
        json={"services": [{"service_type": "inpatient", "capacity": 3}]},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert {s["service_type"]: s["capacity"] for s in response.json()["services"]}["inpatient"] == 3
    assert response.json()["updated_at"] > before.json()["updated_at"]
    wait_until(
        lambda: capacity_in_rujukan(dbs, "yayasan-kipas", "inpatient") == 3,
        timeout=10,
        message="rujukan's read model to show the new capacity",
    )
    print(
        f"\n[capacity] rujukan's read model followed in "
        f"{(time.monotonic() - started) * 1000:.0f} ms"
    )


@pytest.mark.parametrize(
    ("change", "path_partner", "status", "code"),
    [
        ({"status": "inactive"}, "yayasan-kipas", 403, "FORBIDDEN"),
        ({"name": "Yayasan Kipas Baru"}, "yayasan-kipas", 403, "FORBIDDEN"),
        (
            {"services": [{"service_type": "aftercare", "capacity": 9}]},
            "yayasan-pesona",
            404,
            "NOT_FOUND",
        ),
        (
            {"services": [{"service_type": "inpatient", "capacity": 1}]},
            "yayasan-pesona",
            404,
            "NOT_FOUND",
        ),
        (
            {"services": [{"service_type": "outpatient", "capacity": -1}]},
            "yayasan-kipas",
            422,
            "VALIDATION_ERROR",
        ),
        (
            {"contacts": [{"name": "Operator", "role": "boss"}]},
            "yayasan-kipas",
            422,
            "VALIDATION_ERROR",
        ),
        ({}, "yayasan-kipas", 422, "VALIDATION_ERROR"),
    ],
)
def test_a_partner_cannot_change_what_is_not_its_own(
    gateway_system, change, path_partner, status, code
):
    base, admin, key, dbs = gateway_system
    kipas = key("partner", "yayasan-kipas")
    before = requests.get(
        f"{base}/api/v1/partners/{path_partner}", headers=admin, timeout=10
    ).json()
    response = requests.patch(
        f"{base}/api/v1/partners/{path_partner}", headers=kipas, json=change, timeout=10
    )
    assert (response.status_code, response.json()["code"]) == (status, code), response.text
    after = requests.get(f"{base}/api/v1/partners/{path_partner}", headers=admin, timeout=10).json()
    assert after == before


def test_a_partner_adding_a_new_service_type_is_refused(gateway_system):
    base, admin, key, dbs = gateway_system
    pesona = key("partner", "yayasan-pesona")  # offers outpatient and aftercare
    response = requests.patch(
        f"{base}/api/v1/partners/yayasan-pesona",
        headers=pesona,
        json={"services": [{"service_type": "inpatient", "capacity": 4}]},
        timeout=10,
    )
    assert response.status_code == 403
    assert "services.inpatient" in response.json()["errors"]


def test_contacts_are_shown_to_staff_and_to_the_partner_itself_only(gateway_system):
    base, admin, key, dbs = gateway_system
    kipas = key("partner", "yayasan-kipas")
    contacts = [
        {
            "name": "Rina",
            "role": "operator",
            "phone": "081299990000",
            "email": "operator@kipas.example",
            "whatsapp": "081299990000",
        }
    ]
    response = requests.patch(
        f"{base}/api/v1/partners/yayasan-kipas",
        headers=kipas,
        json={"contacts": contacts},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    own = requests.get(f"{base}/api/v1/partners/yayasan-kipas", headers=kipas, timeout=10)
    other = requests.get(
        f"{base}/api/v1/partners/yayasan-kipas",
        headers=key("partner", "yayasan-pesona"),
        timeout=10,
    )
    staff = requests.get(
        f"{base}/api/v1/partners/yayasan-kipas", headers=key("officer"), timeout=10
    )
    assert own.json()["contacts"][0]["name"] == "Rina"
    assert staff.json()["contacts"][0]["phone"] == "081299990000"
    assert "contacts" not in other.json()
    # contacts are people: they are not in any event
    assert all(
        "081299990000" not in json.dumps(e) for e in outbox_events(dbs["mitra"], "partner_updated")
    )


def test_list_filters(gateway_system):
    base, admin, key, dbs = gateway_system

    def ids(**params):
        response = requests.get(f"{base}/api/v1/partners", headers=admin, params=params, timeout=10)
        assert response.status_code == 200, response.text
        return sorted(p["id"] for p in response.json()["items"])

    assert "yayasan-karunia-insani" not in ids(sex="M")
    assert "yayasan-karunia-insani" in ids(sex="F")
    assert ids(service_type="inpatient") == sorted(
        [
            "rsud-hasanuddin-damrah",
            "yayasan-dwin-foundation",
            "yayasan-karunia-insani",
            "yayasan-kipas",
        ]
    )
    assert ids(kabupaten_kota="Kota Bengkulu") == ["yayasan-kipas", "yayasan-pesona"]
    assert ids(service_type="aftercare", has_capacity="true") == sorted(
        ["yayasan-dwin-foundation", "yayasan-kipas", "yayasan-pesona"]
    )
    response = requests.get(
        f"{base}/api/v1/partners", headers=admin, params={"sex": "X"}, timeout=10
    )
    assert response.status_code == 422 and "sex" in response.json()["errors"]


def test_officer_registers_a_partner_signs_renews_and_terminates_agreements(gateway_system):
    base, admin, key, dbs = gateway_system
    officer = key("officer")
    bad = requests.post(
        f"{base}/api/v1/partners",
        headers=officer,
        json={
            "name": "K",
            "kind": "spa",
            "kabupaten_kota": "Kaur",
            "sex_served": "all",
            "services": [
                {"service_type": "inpatient", "capacity": 2},
                {"service_type": "inpatient", "capacity": 3},
            ],
        },
        timeout=10,
    )
    assert bad.status_code == 422
    assert {"name", "kind", "services"} <= set(bad.json()["errors"])

    created = requests.post(
        f"{base}/api/v1/partners",
        headers=officer,
        json={
            "name": "Klinik Pratama Harapan Kaur",
            "kind": "clinic",
            "kabupaten_kota": "Kaur",
            "sex_served": "male",
            "services": [{"service_type": "outpatient", "capacity": 12}],
            "contacts": [{"name": "dr. Andi", "role": "head", "email": "andi@klinik.example"}],
        },
        timeout=10,
    )
    assert created.status_code == 201, created.text
    partner = created.json()
    assert partner["id"] == "klinik-pratama-harapan-kaur"
    again = requests.post(
        f"{base}/api/v1/partners",
        headers=officer,
        json={
            "id": partner["id"],
            "name": "Lain",
            "kind": "clinic",
            "kabupaten_kota": "Kaur",
            "sex_served": "all",
        },
        timeout=10,
    )
    assert (again.status_code, again.json()["code"]) == (409, "CONFLICT")

    agreements = f"{base}/api/v1/partners/{partner['id']}/agreements"
    first = requests.post(
        agreements,
        headers=officer,
        json={
            "number": "PKS/010/KAUR/2026",
            "signed_on": "2026-01-05",
            "valid_from": "2026-01-05",
            "valid_until": "2026-12-31",
            "annual_target": 24,
            "document_ref": "arsip/pks-10.pdf",
        },
        timeout=10,
    )
    assert first.status_code == 201, first.text
    assert first.json()["scope"] == [
        "rehabilitation",
        "capacity_building",
        "reporting",
        "monitoring_evaluation",
    ]
    backwards = requests.post(
        agreements,
        headers=officer,
        json={
            "number": "PKS/011/KAUR/2026",
            "signed_on": "2026-01-05",
            "valid_from": "2027-01-01",
            "valid_until": "2026-12-31",
        },
        timeout=10,
    )
    assert backwards.status_code == 422 and "valid_until" in backwards.json()["errors"]
    renewal = requests.post(
        agreements,
        headers=officer,
        json={
            "number": "PKS/012/KAUR/2027",
            "signed_on": "2026-12-01",
            "valid_from": "2027-01-01",
            "valid_until": "2029-12-31",
            "renews_agreement_id": first.json()["id"],
        },
        timeout=10,
    )
    assert renewal.status_code == 201, renewal.text
    assert renewal.json()["renews_agreement_id"] == first.json()["id"]
    assert renewal.json()["status"] == "draft"  # not yet in force

    terminated = requests.post(
        f"{agreements}/{first.json()['id']}/terminate",
        headers=officer,
        json={"reason": "Izin operasional klinik dicabut."},
        timeout=10,
    )
    assert terminated.status_code == 200, terminated.text
    assert terminated.json()["status"] == "terminated"
    twice = requests.post(
        f"{agreements}/{first.json()['id']}/terminate",
        headers=officer,
        json={"reason": "Lagi."},
        timeout=10,
    )
    assert twice.status_code == 409
    listed = requests.get(agreements, headers=officer, timeout=10).json()["items"]
    assert [a["number"] for a in listed] == ["PKS/010/KAUR/2026", "PKS/012/KAUR/2027"]

    events = {
        t: outbox_events(dbs["mitra"], t)
        for t in ("partner_registered", "agreement_signed", "agreement_terminated")
    }
    mine = {
        t: [e for e in evs if e["data"]["partner_id"] == partner["id"]] for t, evs in events.items()
    }
    assert [len(mine[t]) for t in mine] == [1, 2, 1]
    assert "andi@klinik.example" not in json.dumps(mine)
    # an empty renews_agreement_id names none (it once broke agreement_signed's contract
    # at emit, a 500)
    unrenewed = requests.post(
        agreements,
        headers=officer,
        json={
            "number": "PKS/013/KAUR/2026",
            "signed_on": "2026-01-05",
            "valid_from": "2026-02-01",
            "valid_until": "2026-03-31",
            "renews_agreement_id": "",
        },
        timeout=10,
    )
    assert unrenewed.status_code == 201, unrenewed.text
    assert unrenewed.json()["renews_agreement_id"] is None


def test_supervision_visits_are_scored_and_followed_over_time(gateway_system):
    base, admin, key, dbs = gateway_system
    officer, dwin = key("officer"), key("partner", "yayasan-dwin-foundation")
    activities = f"{base}/api/v1/partners/yayasan-dwin-foundation/activities"
    dimensions = ("availability", "access", "acceptability", "quality", "continuity")
    for held_on, base_score in (("2026-03-10", 60), ("2026-09-14", 72)):
        response = requests.post(
            activities,
            headers=officer,
            json={
                "kind": "supervision_visit",
                "held_on": held_on,
                "title": "Supervisi triwulan",
                "participants": ["Petugas BNNP", "Ketua yayasan"],
                "findings": "Rekam medis belum lengkap.",
                "follow_ups": [{"description": "Lengkapi rekam medis", "due_on": "2026-12-31"}],
                "scores": {d: base_score + i for i, d in enumerate(dimensions)},
            },
            timeout=10,
        )
        assert response.status_code == 201, response.text
    training = requests.post(
        activities,
        headers=officer,
        json={
            "kind": "training",
            "held_on": "2026-05-02",
            "title": "Pelatihan konselor adiksi",
            "participants": ["Konselor 1", "Konselor 2"],
        },
        timeout=10,
    )
    assert training.status_code == 201
    scored_training = requests.post(
        activities,
        headers=officer,
        json={
            "kind": "training",
            "held_on": "2026-05-03",
            "title": "Pelatihan",
            "scores": {d: 50 for d in dimensions},
        },
        timeout=10,
    )
    assert scored_training.status_code == 422 and "scores" in scored_training.json()["errors"]
    partial = requests.post(
        activities,
        headers=officer,
        json={
            "kind": "supervision_visit",
            "held_on": "2026-05-03",
            "title": "Supervisi",
            "scores": {"quality": 101},
        },
        timeout=10,
    )
    assert partial.status_code == 422

    assert (
        requests.post(
            activities,
            headers=dwin,
            json={"kind": "training", "held_on": "2026-05-02", "title": "Pelatihan mandiri"},
            timeout=10,
        ).status_code
        == 403
    )
    scores = requests.get(
        f"{base}/api/v1/partners/yayasan-dwin-foundation/scores", headers=dwin, timeout=10
    ).json()
    assert scores["dimensions"]["availability"] == [60, 72]
    assert scores["dimensions"]["continuity"] == [64, 76]
    listed = requests.get(
        activities, headers=dwin, params={"kind": "supervision_visit"}, timeout=10
    ).json()["items"]
    assert [a["held_on"] for a in listed] == ["2026-09-14", "2026-03-10"]
    assert listed[0]["follow_ups"][0]["status"] == "open"

    other = key("partner", "yayasan-pesona")
    for path in ("activities", "scores", "agreements"):
        response = requests.get(
            f"{base}/api/v1/partners/yayasan-dwin-foundation/{path}", headers=other, timeout=10
        )
        assert (response.status_code, response.json()["code"]) == (404, "NOT_FOUND"), path
