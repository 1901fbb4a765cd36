"""Ending care with a discharge summary: rujukan stores it and shows it where the
referral is read, its codes (never the plan) travel in the ending event to laporan's
month, and the follow-up day reminds the partner once. rujukan's handlers on its
migrated database; then the whole system on the real broker and databases."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import eventlet
import pytest
import requests
from cryptography.fernet import Fernet
from nameko.standalone.events import event_dispatcher
from nameko.testing.services import entrypoint_hook
from sqlalchemy import func, select, text

from bersinar.codes import local_date
from bersinar.db import UnitOfWorkFactory
from bersinar.errors import ValidationFailed
from harness.data import referral_body
from services.laporan.models import ReferralRecord
from services.notifikasi.models import Notification
from services.rujukan import handlers
from services.rujukan.crypto import ClientCipher
from services.rujukan.exceptions import DateOutOfRange
from services.rujukan.models import Base, ReferralDischarge
from tests.integration.conftest import partners_known, wait_until
from tests.integration.test_referral_slice import SERVICES
from tests.integration.test_rujukan_lifecycle import (
    KARUNIA,
    NATIONAL,
    OFFICER,
    agreement,
    body,
    snapshot,
)

NOW = datetime(2026, 6, 15, 3, 0, tzinfo=UTC)  # 10:00 WIB
PLAN = "Konseling keluarga tiap pekan di puskesmas"


@pytest.fixture
def partners(empty_database):
    factory = UnitOfWorkFactory(empty_database("rujukan"), "rujukan", Base.metadata)
    with factory() as uow:
        handlers.apply_partner_snapshot(uow, snapshot("yayasan-karunia-insani", "female"))
        handlers.apply_agreement(uow, agreement("yayasan-karunia-insani"))
        uow.commit()
    yield factory
    factory.dispose()


def admitted_referral(factory, cipher) -> str:
    with factory() as uow:
        rid = handlers.create_referral(uow, cipher, body(), OFFICER, NOW)["id"]
        uow.commit()
    for action in ("accept", "admit"):
        with factory() as uow:
            handlers.transition(uow, KARUNIA, rid, action, {}, NOW)
            uow.commit()
    return rid


def complete(factory, rid, summary, now=NOW):
    with factory() as uow:
        result = handlers.transition(uow, KARUNIA, rid, "complete", {"discharge": summary}, now)
        uow.commit()
    return result


def outbox(factory, event_type):
    with factory() as uow:
        rows = uow.session.execute(
            text("SELECT payload FROM outbox WHERE event_type = :t ORDER BY id"), {"t": event_type}
        ).all()
    return [json.loads(row[0]) for row in rows]


def stored(factory):
    with factory() as uow:
        return (
            uow.session.execute(text("SELECT id, status, ended_at FROM referrals")).all(),
            uow.session.scalar(select(func.count()).select_from(ReferralDischarge)),
            uow.session.scalar(text("SELECT COUNT(*) FROM outbox")),
            uow.session.scalar(text("SELECT COUNT(*) FROM referral_history")),
        )


def test_a_completion_records_its_summary_shows_it_and_tells_only_its_codes(partners):
    cipher = ClientCipher(f"k1:{Fernet.generate_key().decode()}", "k" * 32)
    rid = admitted_referral(partners, cipher)
    before = stored(partners)
    refusals = [
        ({"outcome": "improved", "reasons": []}, ValidationFailed, "reasons"),
        (
            {"outcome": "improved", "reasons": ["program_completed"], "follow_up_on": NOW.date()},
            DateOutOfRange,
            "follow_up_on",
        ),
        (
            {
                "outcome": "improved",
                "reasons": ["program_completed"],
                "follow_up_on": local_date(NOW) + timedelta(days=366),
            },
            DateOutOfRange,
            "follow_up_on",
        ),
    ]
    for summary, refusal, field in refusals:
        with pytest.raises(refusal) as refused:
            complete(partners, rid, summary)
        assert field in refused.value.errors["discharge"]
        assert stored(partners) == before  # refused: nothing written

    follow_up = date(2026, 7, 15)
    summary = {
        "outcome": "recovered",
        "reasons": ["program_completed", "relocation"],
        "aftercare_plan": PLAN,
        "follow_up_on": follow_up,
    }
    assert complete(partners, rid, summary)["status"] == "completed"

    with partners() as uow:
        read = handlers.get_referral(uow, cipher, KARUNIA, rid)
        history = handlers.referral_history(uow, OFFICER, rid)["items"]
        national = handlers.referral_history(uow, NATIONAL, rid)["items"]
        overview = handlers.referral_overview(uow, NATIONAL, rid)
    assert read["discharge"]["outcome"] == "recovered"
    assert read["discharge"]["reasons"] == ["program_completed", "relocation"]
    assert read["discharge"]["aftercare_plan"] == PLAN
    assert read["discharge"]["follow_up_on"] == "2026-07-15"
    assert read["discharge"]["follow_up_reminded_at"] is None
    assert [h["discharge"] is not None for h in history] == [False, False, False, True]
    assert history[-1]["discharge"]["aftercare_plan"] == PLAN
    # a national system sees the codes, never the plan nor who wrote it
    assert national[-1]["discharge"]["outcome"] == "recovered"
    assert national[-1]["discharge"]["aftercare_plan"] is None
    assert national[-1]["discharge"]["recorded_by"] is None
    assert "discharge" not in overview

    [event] = outbox(partners, "referral_completed")
    assert event["data"]["outcome"] == "recovered"
    assert event["data"]["discharge_reasons"] == ["program_completed", "relocation"]
    assert event["data"]["follow_up_on"] == "2026-07-15"
    assert "Konseling" not in json.dumps(event)


def test_the_follow_up_day_reminds_once_whatever_the_runs(partners):
    cipher = ClientCipher(f"k1:{Fernet.generate_key().decode()}", "k" * 32)
    rid = admitted_referral(partners, cipher)
    complete(
        partners,
        rid,
        {
            "outcome": "improved",
            "reasons": ["program_completed"],
            "follow_up_on": date(2026, 6, 20),
        },
    )

    def run(moment):
        with partners() as uow:
            emitted = handlers.emit_follow_up_reminders(uow, moment)
            uow.commit()
        return emitted

    assert run(datetime(2026, 6, 19, 16, 59, tzinfo=UTC)) == 0  # 23:59 WIB the day before
    assert outbox(partners, "referral_follow_up_due") == []
    assert run(datetime(2026, 6, 19, 17, 0, tzinfo=UTC)) == 1  # 00:00 WIB on the day
    assert run(datetime(2026, 6, 19, 17, 1, tzinfo=UTC)) == 0
    assert run(datetime(2026, 6, 25, tzinfo=UTC)) == 0
    [event] = outbox(partners, "referral_follow_up_due")
    assert event["data"]["referral_id"] == rid
    assert event["data"]["follow_up_on"] == "2026-06-20"
    assert event["data"]["outcome"] == "improved"
    with partners() as uow:
        read = handlers.get_referral(uow, cipher, OFFICER, rid)
    assert read["discharge"]["follow_up_reminded_at"] == "2026-06-19T17:00:00Z"


# --- the whole system: laporan's month and the partner's reminder ----------------------


@pytest.fixture
def system(container_factory, make_config, relays, seeded, clock_file):
    containers = {}
    for name, cls in SERVICES.items():
        config = make_config(name, CLOCK_FILE=str(clock_file.path))
        if name == "rujukan":
            config["FOLLOW_UP_CHECK_SECONDS"] = 0.2
        container = container_factory(cls, config)
        container.start()
        containers[name] = container
    relays("mitra", "rujukan", "laporan", "notifikasi")
    wait_until(lambda: partners_known(seeded), message="rujukan's partner read model")
    base = f"http://{containers['gateway'].config['WEB_SERVER_ADDRESS']}"
    return base, containers, seeded


def test_a_summary_reaches_the_month_and_the_partner_is_reminded_once(
    system, clock_file, make_config
):
    base, containers, dbs = system
    admin = containers["gateway"].config["ADMIN_KEY"]
    today = local_date(datetime.now(UTC))
    clock_file.set(today)

    def call(method, path, key=admin, json_body=None):
        return requests.request(
            method,
            base + path,
            headers={"Authorization": f"Bearer {key}"},
            json=json_body,
            timeout=15,
        )

    kipas = call(
        "POST",
        "/api/v1/api-keys",
        json_body={"role": "partner", "partner_id": "yayasan-kipas", "label": "Kipas"},
    ).json()["key"]
    created = call("POST", "/api/v1/referrals", json_body=referral_body(partner_id="yayasan-kipas"))
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    for action in ("accept", "admit"):
        assert call("POST", f"/api/v1/referrals/{rid}/{action}", kipas, {}).status_code == 200

    # a bad summary: refused at its fields, in Indonesian; nothing changes
    refused = call(
        "POST",
        f"/api/v1/referrals/{rid}/complete",
        kipas,
        {"discharge": {"outcome": "sembuh", "reasons": []}},
    )
    assert refused.status_code == 422, refused.text
    assert refused.headers["Content-Type"].startswith("application/problem+json")
    errors = refused.json()["errors"]["discharge"]
    assert set(errors) == {"outcome", "reasons"}
    assert errors["outcome"][0].startswith("Harus salah satu dari")
    assert call("GET", f"/api/v1/referrals/{rid}", kipas).json()["status"] == "admitted"

    follow_up = today + timedelta(days=3)
    summary = {
        "outcome": "improved",
        "reasons": ["program_completed"],
        "aftercare_plan": PLAN,
        "follow_up_on": follow_up.isoformat(),
    }
    done = call("POST", f"/api/v1/referrals/{rid}/complete", kipas, {"discharge": summary})
    assert (done.status_code, done.json()["status"]) == (200, "completed"), done.text
    assert call("GET", f"/api/v1/referrals/{rid}", kipas).json()["discharge"]["aftercare_plan"] == (
        PLAN
    )

    def recorded():
        with dbs["laporan"]() as uow:
            record = uow.session.get(ReferralRecord, rid)
            if record is None or record.discharge_outcome is None:
                return None
            return record.outcome, record.discharge_outcome, record.discharge_reasons

    record = wait_until(recorded, message="laporan's record of the discharge")
    assert record == ("completed", "improved", ["program_completed"])
    period = today.strftime("%Y-%m")
    report = call("GET", f"/api/v1/reports/yayasan-kipas/{period}", kipas)
    assert report.status_code == 200, report.text
    month = report.json()
    assert month["prefill"]["total"]["completed"] >= 1
    assert month["discharges"]["by_outcome"]["improved"] == 1
    assert month["discharges"]["by_reason"]["program_completed"] == 1
    indicators = call("GET", f"/api/v1/indicators?period={period}").json()
    [kipas_row] = [p for p in indicators["partners"] if p["partner_id"] == "yayasan-kipas"]
    assert kipas_row["figures"]["discharged_improved"] == 1

    def reminders():
        with dbs["notifikasi"]() as uow:
            return uow.session.scalars(
                select(Notification.body).where(
                    Notification.event_type == "referral_follow_up_due",
                    Notification.recipient == "partner:yayasan-kipas",
                )
            ).all()

    eventlet.sleep(1.0)  # several follow-up checks before the day
    assert reminders() == []
    clock_file.set(follow_up)
    [reminder] = wait_until(reminders, message="the partner's follow-up reminder")
    assert rid in reminder and "pasca rehabilitasi" in reminder
    assert "Konseling" not in reminder
    # more checks, a check run by hand, and the event delivered again: still one reminder
    with entrypoint_hook(containers["rujukan"], "check_follow_ups") as check:
        assert check() == 0
    [event] = outbox(dbs["rujukan"], "referral_follow_up_due")
    event_dispatcher(make_config("rujukan"))("rujukan", event["event_type"], event)
    eventlet.sleep(1.5)
    assert len(reminders()) == 1
    inbox = call("GET", "/api/v1/notifications", kipas).json()["items"]
    assert [n["event_type"] for n in inbox].count("referral_follow_up_due") == 1
