"""Issue 3 end to end, through the gateway against the processes of `make run`: an
officer registers a partner and its PKS, the PKS moves to expiring and expired with
exactly one event each, a supervision visit is scored, and a partner keeps its own
capacity current but can touch nothing of another's."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text

from bersinar.envelope import rfc3339, utcnow


def set_clock(system, day: str) -> None:
    system.clock_file.write_text(rfc3339(datetime.fromisoformat(day).replace(hour=3, tzinfo=UTC)))


@pytest.fixture
def restore_clock(system):
    yield
    system.clock_file.write_text(rfc3339(utcnow()))


def events(system, event_type, agreement_id):
    engine = create_engine(system.urls["mitra"])
    try:
        with engine.connect() as connection:
            return connection.execute(
                text("SELECT COUNT(*) FROM outbox WHERE event_type = :t AND payload LIKE :a"),
                {"t": event_type, "a": f"%{agreement_id}%"},
            ).scalar()
    finally:
        engine.dispose()


def wait_status(system, officer, partner_id, agreement_id, status, timeout=15):
    deadline = time.monotonic() + timeout
    current = None
    while time.monotonic() < deadline:
        items = system.get(f"/api/v1/partners/{partner_id}/agreements", key=officer).json()
        current = next(a for a in items["items"] if a["id"] == agreement_id)["status"]
        if current == status:
            return
        time.sleep(0.2)
    pytest.fail(f"agreement is {current}, not {status}")


def test_an_officer_follows_a_partner_from_registration_to_expiry(system, restore_clock):
    officer = system.new_key("officer")
    partner = system.post(
        "/api/v1/partners",
        {
            "name": "Yayasan Harapan Mukomuko",
            "kind": "foundation",
            "kabupaten_kota": "Mukomuko",
            "sex_served": "all",
            "services": [{"service_type": "outpatient", "capacity": 8}],
        },
        key=officer,
    )
    assert partner.status_code == 201, partner.text
    partner_id = partner.json()["id"]

    set_clock(system, "2026-06-01")
    agreement = system.post(
        f"/api/v1/partners/{partner_id}/agreements",
        {
            "number": "PKS/E2E/MKM/2026",
            "signed_on": "2026-05-20",
            "valid_from": "2026-06-01",
            "valid_until": "2026-12-31",
            "annual_target": 20,
        },
        key=officer,
    )
    assert agreement.status_code == 201, agreement.text
    agreement_id = agreement.json()["id"]
    wait_status(system, officer, partner_id, agreement_id, "active")

    set_clock(system, "2026-12-01")  # 30 days before the end
    wait_status(system, officer, partner_id, agreement_id, "expiring")
    deadline = time.monotonic() + 15
    while events(system, "agreement_expiring", agreement_id) < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    set_clock(system, "2027-01-01")  # the day after the last valid day
    wait_status(system, officer, partner_id, agreement_id, "expired")
    deadline = time.monotonic() + 15
    while events(system, "agreement_expired", agreement_id) < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2.0)  # several more checks by the timer: still one of each
    expiring = events(system, "agreement_expiring", agreement_id)
    expired = events(system, "agreement_expired", agreement_id)
    print(f"\n[mitra e2e] agreement_expiring={expiring} agreement_expired={expired}")
    assert (expiring, expired) == (1, 1)

    visit = system.post(
        f"/api/v1/partners/{partner_id}/activities",
        {
            "kind": "supervision_visit",
            "held_on": "2026-10-10",
            "title": "Supervisi",
            "scores": {
                "availability": 70,
                "access": 65,
                "acceptability": 80,
                "quality": 60,
                "continuity": 55,
            },
        },
        key=officer,
    )
    assert visit.status_code == 201, visit.text
    scores = system.get(f"/api/v1/partners/{partner_id}/scores", key=officer).json()
    assert scores["dimensions"]["quality"] == [60]


def test_a_partner_keeps_its_capacity_current_and_nothing_of_another(system):
    kipas = system.new_key("partner", "yayasan-kipas")
    own = system.session_patch(
        "/api/v1/partners/yayasan-kipas",
        {"services": [{"service_type": "outpatient", "capacity": 35}]},
        key=kipas,
    )
    assert own.status_code == 200, own.text
    other = system.session_patch(
        "/api/v1/partners/yayasan-pesona",
        {"services": [{"service_type": "outpatient", "capacity": 1}]},
        key=kipas,
    )
    assert (other.status_code, other.json()["code"]) == (404, "NOT_FOUND")
    status = system.session_patch(
        "/api/v1/partners/yayasan-kipas", {"status": "inactive"}, key=kipas
    )
    assert (status.status_code, status.json()["code"]) == (403, "FORBIDDEN")
    pesona = system.get("/api/v1/partners/yayasan-pesona").json()
    assert {s["service_type"]: s["capacity"] for s in pesona["services"]}["outpatient"] == 40
