"""Issue 5 end to end, through the gateway against the processes of `make run`: a
partner's June 2027 report becomes due soon and overdue on the shared clock (one event
each), is refused while inconsistent, submitted late, returned, resubmitted and
approved with every version kept; indicators and the national export answer by role."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text

from bersinar.envelope import rfc3339, utcnow
from harness.wait import eventually
from tests.support.pdf import read_pdf

PERIOD = "2027-06"


def set_clock(system, day: str) -> None:
    system.clock_file.write_text(
        rfc3339(datetime.fromisoformat(day).replace(hour=3, tzinfo=UTC))  # 10:00 WIB
    )


@pytest.fixture
def restore_clock(system):
    yield
    system.clock_file.write_text(rfc3339(utcnow()))


def laporan_events(system, event_type, partner_id):
    engine = create_engine(system.urls["laporan"])
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT payload FROM outbox WHERE event_type = :t AND payload LIKE :p"),
                {"t": event_type, "p": f"%{partner_id}%"},
            ).all()
    finally:
        engine.dispose()
    return [json.loads(r[0])["data"] for r in rows]


def put(system, path, body, key):
    import requests

    return requests.put(system.base_url + path, json=body, headers=system.headers(key), timeout=10)


def counts(start, admitted, completed, dropped_out, transferred_out, end):
    return dict(
        start=start,
        admitted=admitted,
        completed=completed,
        dropped_out=dropped_out,
        transferred_out=transferred_out,
        end=end,
    )


def test_a_report_from_due_to_approved(system, restore_clock):
    officer, national = system.new_key("officer"), system.new_key("national")
    created = system.post(
        "/api/v1/partners",
        {
            "name": "Yayasan Laporan Kaur",
            "kind": "foundation",
            "kabupaten_kota": "Kaur",
            "sex_served": "all",
            "services": [{"service_type": "outpatient", "capacity": 10}],
        },
        key=officer,
    )
    assert created.status_code == 201, created.text
    partner_id = created.json()["id"]
    operator = system.new_key("partner", partner_id)
    stranger = system.new_key("partner", "yayasan-kipas")
    signed = system.post(
        f"/api/v1/partners/{partner_id}/agreements",
        {
            "number": "PKS/E2E/LAPORAN/2027",
            "signed_on": "2027-05-20",
            "valid_from": "2027-06-01",
            "valid_until": "2028-01-31",
            "annual_target": 20,
        },
        key=officer,
    )
    assert signed.status_code == 201, signed.text
    path = f"/api/v1/reports/{partner_id}/{PERIOD}"

    def listed():
        response = system.get(
            f"/api/v1/reports?period={PERIOD}&partner_id={partner_id}", key=officer
        )
        assert response.status_code == 200, response.text
        return response.json()["items"]

    report = eventually(listed, "laporan to learn the agreement")[0]
    assert (report["due_on"], report["status"]) == ("2027-07-07", "open")

    set_clock(system, "2027-07-04")  # 3 days before the due date
    eventually(lambda: laporan_events(system, "report_due_soon", partner_id), "report_due_soon")
    set_clock(system, "2027-07-08")
    eventually(lambda: laporan_events(system, "report_overdue", partner_id), "report_overdue")
    assert system.get(path, key=operator).json()["status"] == "missing"

    # nobody else's operator sees it; the national system reads exports only
    assert system.get(path, key=stranger).status_code == 404
    assert system.get(path, key=national).status_code == 403

    prefill = system.get(path, key=operator).json()["prefill"]
    assert prefill["total"] == counts(0, 0, 0, 0, 0, 0)  # no referral reached it

    inconsistent = {
        "counts": {"total": counts(0, 2, 0, 0, 0, 1), "by_sex": {"M": counts(0, 1, 0, 0, 0, 1)}},
        "narrative": "Dua klien rawat jalan.",
    }
    refused = put(system, path, inconsistent, operator)
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["code"] == "REPORT_INCONSISTENT"
    assert set(problem["errors"]) == {"balance", "by_sex_sums_to_total"}
    assert system.get(path, key=operator).json()["version"] == 0

    set_clock(system, "2027-07-09")
    first = {
        "counts": {
            "total": counts(0, 2, 0, 0, 0, 2),
            "by_sex": {"M": counts(0, 1, 0, 0, 0, 1), "F": counts(0, 1, 0, 0, 0, 1)},
            "by_service_type": {"outpatient": counts(0, 2, 0, 0, 0, 2)},
        },
        "services_delivered": {"counselling_sessions": 8},
        "narrative": "Dua klien rawat jalan (rujukan mandiri).",
    }
    submitted = put(system, path, first, operator)
    assert submitted.status_code == 200, submitted.text
    assert (submitted.json()["status"], submitted.json()["version"]) == ("submitted_late", 1)
    # differs from what the referral events recorded: flagged with both numbers
    assert {"field": "counts.total.admitted", "reported": 2, "recorded": 0} in (
        submitted.json()["flags"]
    )

    assert system.post(f"{path}/approve", key=operator).status_code == 403
    no_comment = system.post(f"{path}/return", {}, key=officer)
    assert no_comment.status_code == 422
    returned = system.post(
        f"{path}/return", {"comment": "Lampirkan jumlah sesi kelompok."}, key=officer
    )
    assert returned.status_code == 200, returned.text
    assert returned.json()["status"] == "returned"

    second = {**first, "services_delivered": {"counselling_sessions": 8, "group_sessions": 2}}
    resubmitted = put(system, path, second, operator)
    assert resubmitted.status_code == 200, resubmitted.text
    assert (resubmitted.json()["status"], resubmitted.json()["version"]) == ("submitted_late", 2)
    approved = system.post(f"{path}/approve", key=officer)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    assert put(system, path, second, operator).status_code == 409  # final once approved

    final = system.get(path, key=operator).json()
    assert [v["content"]["services_delivered"]["group_sessions"] for v in final["versions"]] == [
        0,
        2,
    ]
    assert [(h["action"], h["version"]) for h in final["history"]] == [
        ("submitted", 1),
        ("returned", 1),
        ("submitted", 2),
        ("approved", 2),
    ]
    assert final["history"][1]["comment"] == "Lampirkan jumlah sesi kelompok."

    # the approved report prints for its partner and the officers, as one PDF
    printed = system.get(f"{path}.pdf", key=operator)
    assert printed.status_code == 200, printed.text
    assert printed.headers["Content-Type"] == "application/pdf"
    report = read_pdf(printed.content)
    for expected in (
        "Yayasan Laporan Kaur",
        "Periode Juni 2027",
        "Status : Disetujui",
        "Dua klien rawat jalan (rujukan mandiri).",
        "Lampirkan jumlah sesi kelompok.",
        "Diperiksa dan disetujui",
    ):
        assert expected in report.text, expected
    assert 0.01 < report.inked < 0.5
    assert system.get(f"{path}.pdf", key=officer).status_code == 200
    stranger_pdf = system.get(f"{path}.pdf", key=stranger)
    assert (stranger_pdf.status_code, stranger_pdf.json()["code"]) == (404, "NOT_FOUND")

    events = {
        t: laporan_events(system, f"report_{t}", partner_id)
        for t in ("due_soon", "overdue", "submitted", "returned", "approved")
    }
    print("\n[report events] " + " ".join(f"{t}={len(e)}" for t, e in events.items()))
    assert {t: len(e) for t, e in events.items()} == {
        "due_soon": 1,
        "overdue": 1,
        "submitted": 2,
        "returned": 1,
        "approved": 1,
    }
    # events carry no free text: the comment and the narrative stay in laporan
    assert "sesi kelompok" not in json.dumps(events)
    assert "rujukan mandiri" not in json.dumps(events)

    indicators = system.get(f"/api/v1/indicators?period={PERIOD}", key=officer)
    assert indicators.status_code == 200, indicators.text
    mine = next(p for p in indicators.json()["partners"] if p["partner_id"] == partner_id)
    assert (mine["reporting_rate"], mine["on_time_rate"], mine["occupancy"]) == (1.0, 0.0, 0.0)
    assert system.get(f"/api/v1/indicators?period={PERIOD}", key=national).status_code == 403

    recap = system.get(f"/api/v1/exports/monthly?period={PERIOD}&format=json", key=national)
    assert recap.status_code == 200, recap.text
    assert any(p["partner_id"] == partner_id for p in recap.json()["partners"])
    as_csv = system.get(f"/api/v1/exports/monthly?period={PERIOD}&format=csv", key=national)
    assert as_csv.status_code == 200
    assert as_csv.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert {"period", "partner_id", "measure", "category", "value", "suppressed"} <= set(rows[0])
    assert any(r["partner_id"] == partner_id and r["measure"] == "admitted" for r in rows)
    assert system.get("/api/v1/exports/monthly?period=2027-13", key=national).status_code == 422
