"""The referral lifecycle through the gateway, against the processes of `make run`: an
officer refers a woman to Yayasan Karunia Insani, its operator accepts, admits and
completes; a male client, a full service, a refused consent and an illegal move are each
refused with their code and change nothing; another partner's key sees none of it; the
audit log shows every read of identity; no process logged the identity."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import requests
from sqlalchemy import create_engine, text

from harness.data import CLIENT_NAME, ISSUED_NIKS, referral_body
from tests.e2e.edge import PDF

KARUNIA = "yayasan-karunia-insani"
KARUNIA_INPATIENT_PLACES = 12  # the seeded capacity


@pytest.fixture(scope="module")
def rujukan_db(system):
    engine = create_engine(system.urls["rujukan"])
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def keys(system):
    def make(role, partner_id=None):
        response = system.post(
            "/api/v1/api-keys", {"role": role, "partner_id": partner_id, "label": f"e2e {role}"}
        )
        assert response.status_code == 201, response.text
        return response.json()["key"]

    return {
        "officer": make("officer"),
        "karunia": make("partner", KARUNIA),
        "kipas": make("partner", "yayasan-kipas"),
    }


def stored(engine):
    """Everything a refused request could have written in rujukan."""
    with engine.connect() as connection:
        return tuple(
            connection.execute(text(sql)).all()
            for sql in (
                "SELECT id, status, updated_at FROM referrals ORDER BY id",
                "SELECT COUNT(*) FROM referral_history",
                "SELECT COUNT(*) FROM referral_discharges",
                "SELECT COUNT(*) FROM outbox",
                "SELECT COUNT(*) FROM clients",
            )
        )


def woman(**overrides):
    return referral_body(partner_id=KARUNIA, sex="F", birth_date=date(1993, 7, 9), **overrides)


DISCHARGE = {
    "discharge": {
        "outcome": "recovered",
        "reasons": ["program_completed"],
        "aftercare_plan": "Kelompok dukungan sebaya tiap Sabtu.",
    }
}


def test_lifecycle_refusals_privacy_and_audit_through_the_gateway(system, keys, rujukan_db):
    officer, karunia, kipas = keys["officer"], keys["karunia"], keys["kipas"]

    def act(key, rid, action, body=None):
        return system.post(f"/api/v1/referrals/{rid}/{action}", body, key=key)

    created = system.post("/api/v1/referrals", woman(), key=officer)
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    for action in ("accept", "admit"):
        response = act(karunia, rid, action)
        assert response.status_code == 200, response.text
    # care ends with its discharge summary: a bad one is refused at its fields, in
    # Indonesian, and changes nothing
    before = stored(rujukan_db)
    bad = act(
        karunia,
        rid,
        "complete",
        {"discharge": {"outcome": "sembuh", "reasons": [], "aftercare_plan": "x" * 2001}},
    )
    assert (bad.status_code, bad.json()["code"]) == (422, "VALIDATION_ERROR"), bad.text
    assert bad.headers["Content-Type"].startswith("application/problem+json")
    assert set(bad.json()["errors"]["discharge"]) == {"outcome", "reasons", "aftercare_plan"}
    assert bad.json()["errors"]["discharge"]["outcome"][0].startswith("Harus salah satu dari")
    too_late = act(
        karunia,
        rid,
        "complete",
        {
            "discharge": {
                "outcome": "improved",
                "reasons": ["program_completed"],
                "follow_up_on": "2099-01-01",
            }
        },
    )
    assert (too_late.status_code, too_late.json()["code"]) == (422, "DATE_OUT_OF_RANGE")
    assert "paling lama 365 hari" in too_late.json()["errors"]["discharge"]["follow_up_on"][0]
    assert stored(rujukan_db) == before
    response = act(karunia, rid, "complete", DISCHARGE)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "completed"
    history = system.get(f"/api/v1/referrals/{rid}/history", key=karunia).json()["items"]
    # the summary, on the entry that ended care (read without opening the identity)
    assert [h["discharge"] is not None for h in history] == [False, False, False, True]
    assert history[-1]["discharge"]["outcome"] == "recovered"
    assert history[-1]["discharge"]["aftercare_plan"] == DISCHARGE["discharge"]["aftercare_plan"]
    assert [(h["from_status"], h["to_status"]) for h in history] == [
        (None, "requested"),
        ("requested", "accepted"),
        ("accepted", "admitted"),
        ("admitted", "completed"),
    ]
    assert all(h["at"] and h["actor"] for h in history)

    # each refusal answers its code and changes nothing
    open_referral = system.post("/api/v1/referrals", woman(), key=officer).json()["id"]
    refusals = {
        "male client": (
            lambda: system.post(
                "/api/v1/referrals", referral_body(partner_id=KARUNIA, sex="M"), key=officer
            ),
            (422, "NOT_ELIGIBLE"),
        ),
        "consent refused": (
            lambda: system.post("/api/v1/referrals", woman(consent={"given": False}), key=officer),
            (422, "CONSENT_REQUIRED"),
        ),
        "illegal transition": (
            lambda: act(karunia, open_referral, "complete", DISCHARGE),
            (409, "INVALID_TRANSITION"),
        ),
        "completed again": (
            lambda: act(karunia, rid, "drop-out", DISCHARGE),
            (409, "INVALID_TRANSITION"),
        ),
    }
    for case, (request, expected) in refusals.items():
        before = stored(rujukan_db)
        response = request()
        assert (response.status_code, response.json()["code"]) == expected, (case, response.text)
        assert response.headers["Content-Type"].startswith("application/problem+json")
        assert stored(rujukan_db) == before, case

    # a full service: every inpatient place of Karunia Insani taken
    taken = [open_referral] + [
        system.post("/api/v1/referrals", woman(), key=officer).json()["id"]
        for _ in range(KARUNIA_INPATIENT_PLACES)
    ]
    for place in taken[:KARUNIA_INPATIENT_PLACES]:
        assert act(karunia, place, "accept").status_code == 200
    for case, request in {
        "accepting one more": lambda: act(karunia, taken[-1], "accept"),
        "referring one more": lambda: system.post("/api/v1/referrals", woman(), key=officer),
    }.items():
        before = stored(rujukan_db)
        response = request()
        assert (response.status_code, response.json()["code"]) == (409, "CAPACITY_FULL"), case
        assert stored(rujukan_db) == before, case
    match = system.get("/api/v1/partners/match?sex=F&service_type=inpatient", key=officer).json()
    assert KARUNIA not in [m["partner_id"] for m in match["items"]]
    for place in taken:  # give the places back
        assert act(officer, place, "cancel").status_code == 200

    # another partner's key sees none of it
    for method, path in (
        ("GET", f"/api/v1/referrals/{rid}"),
        ("GET", f"/api/v1/referrals/{rid}/history"),
        ("POST", f"/api/v1/referrals/{open_referral}/accept"),
        ("POST", f"/api/v1/referrals/{open_referral}/reject"),
        ("GET", f"/api/v1/referrals?partner_id={KARUNIA}"),
    ):
        body = {"reason": "capacity_full"} if path.endswith("reject") else None
        call = system.get if method == "GET" else system.post
        response = call(path, key=kipas) if method == "GET" else call(path, body, key=kipas)
        assert (response.status_code, response.json()["code"]) == (404, "NOT_FOUND"), path
    theirs = system.get("/api/v1/referrals?limit=200", key=kipas).json()["items"]
    assert {r["partner_id"] for r in theirs} <= {"yayasan-kipas"}
    assert rid not in {r["id"] for r in theirs}

    # every read of identity is in the audit log
    reads = [
        (officer, "verifikasi"),
        (karunia, "penerimaan klien"),
        (system.admin_key, "pemeriksaan"),
    ]
    for key, purpose in reads:
        read = system.get(f"/api/v1/referrals/{rid}", key=key, params={"purpose": purpose})
        assert read.status_code == 200, read.text
        assert read.json()["client"]["identity"]["name"] == CLIENT_NAME
        assert read.json()["discharge"]["outcome"] == "recovered"  # staff and the partner
    assert "identity" not in system.get("/api/v1/referrals", key=karunia).text
    audit = system.get("/api/v1/audit", params={"referral_id": rid}).json()["items"]
    assert [(a["actor_role"], a["purpose"]) for a in reversed(audit)] == [
        ("officer", "verifikasi"),
        ("partner", "penerimaan klien"),
        ("admin", "pemeriksaan"),
    ]
    assert system.get("/api/v1/audit", key=officer).status_code == 403

    # and no process wrote a client's identity into its log
    niks = set(ISSUED_NIKS)
    leaks, lines = [], 0
    for path in sorted(system.log_dir.glob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            lines += 1
            if CLIENT_NAME in line or "081234567890" in line or any(n in line for n in niks):
                leaks.append(line)
    print(f"\n[privacy] {lines} log lines checked for {len(niks)} NIKs: {len(leaks)} leaks")
    assert leaks == []


def test_a_client_is_found_by_nik_or_name_through_the_api(system, keys):
    officer, karunia, kipas = keys["officer"], keys["karunia"], keys["kipas"]
    body = woman()
    body["client"]["name"] = "Rahmawati Kusumadewi-Putri"
    nik = body["client"]["nik"]
    created = system.post("/api/v1/referrals", body, key=officer)
    assert created.status_code == 201, created.text
    rid = created.json()["id"]

    def search(query, key=officer):
        return system.post("/api/v1/clients/search", query, key=key)

    for query in ({"name": "putri KUSUMADEWI rahmawati"}, {"nik": nik}):
        found = search(query)
        assert found.status_code == 200, found.text
        answer = found.json()
        assert (answer["total"], answer["page"], answer["pages"]) == (1, 1, 1)
        (client,) = answer["items"]
        assert client["identity"] == {"nik": nik, "name": "Rahmawati Kusumadewi-Putri"}
        assert [r["id"] for r in client["referrals"]] == [rid]
    assert search({"name": "rahmawati", "status": "admitted"}).json()["total"] == 0
    assert search({"name": "rahmawati"}, karunia).json()["total"] == 1
    assert search({"name": "rahmawati"}, kipas).json()["total"] == 0
    refused = search({"name": "rahmawati", "partner_id": KARUNIA}, kipas)
    assert (refused.status_code, refused.json()["code"]) == (404, "NOT_FOUND")
    for wrong in ({}, {"name": "?!"}, {"nik": "123"}, {"name": "budi", "page": 0}):
        response = search(wrong)
        assert (response.status_code, response.json()["code"]) == (422, "VALIDATION_ERROR"), wrong
    audit = system.get("/api/v1/audit", params={"referral_id": rid}).json()["items"]
    assert sorted((a["actor_role"], a["purpose"]) for a in audit) == [
        ("officer", "pencarian klien (NIK)"),
        ("officer", "pencarian klien (nama)"),
        ("partner", "pencarian klien (nama)"),
    ]
    # the NIK travelled in bodies only: no log line of any process holds it or the name
    for path in sorted(system.log_dir.glob("*.log")):
        text_of_log = path.read_text(errors="replace")
        assert nik not in text_of_log and "Kusumadewi" not in text_of_log, path.name


def test_withdrawn_consent_hides_the_client_from_the_partner_through_the_api(system, keys):
    officer, karunia = keys["officer"], keys["karunia"]
    body = woman()
    created = system.post("/api/v1/referrals", body, key=officer)
    assert created.status_code == 201, created.text
    rid, client_id = created.json()["id"], created.json()["client"]["id"]
    assert system.post(f"/api/v1/referrals/{rid}/accept", key=karunia).status_code == 200
    patient = system.get(f"/fhir/R4/Patient/{client_id}", key=karunia).json()
    assert patient["name"][0]["text"] == CLIENT_NAME

    attachments = f"/api/v1/referrals/{rid}/attachments"
    form = requests.post(
        system.base_url + attachments,
        params={"kind": "consent_form"},
        data=PDF,
        headers={**system.headers(officer), "Content-Type": "application/pdf"},
        timeout=10,
    )
    assert form.status_code == 201, form.text
    form_path = f"{attachments}/{form.json()['id']}"
    assert system.get(form_path, key=karunia).status_code == 200

    refused = system.post(f"/api/v1/referrals/{rid}/consent/withdraw", {}, key=karunia)
    assert (refused.status_code, refused.json()["code"]) == (403, "FORBIDDEN")
    withdrawn = system.post(
        f"/api/v1/referrals/{rid}/consent/withdraw",
        {"note": "Klien mencabut persetujuan lewat telepon."},
        key=officer,
    )
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["referrals_affected"] == [rid]
    again = system.post(f"/api/v1/referrals/{rid}/consent/withdraw", {}, key=officer)
    assert (again.status_code, again.json()["code"]) == (409, "CONSENT_WITHDRAWN")

    seen = system.get(f"/api/v1/referrals/{rid}", key=karunia).json()
    assert seen["client"]["identity"] is None
    assert seen["consent"]["withdrawn_by"].startswith("officer:")
    patient = system.get(f"/fhir/R4/Patient/{client_id}", key=karunia)
    assert "name" not in patient.json() and body["client"]["nik"] not in patient.text
    closed = system.get(form_path, key=karunia)
    assert (closed.status_code, closed.json()["code"]) == (409, "CONSENT_WITHDRAWN")
    assert system.get(form_path, key=officer).content == PDF
    staff = system.get(f"/api/v1/referrals/{rid}", key=officer).json()
    assert staff["client"]["identity"]["name"] == CLIENT_NAME
    history = system.get(f"/api/v1/referrals/{rid}/history", key=karunia).json()["items"]
    assert (history[-1]["reason"], history[-1]["to_status"]) == ("consent_withdrawn", "accepted")

    # a new referral of the client: refused without consent given after the withdrawal
    renewed = system.post("/api/v1/referrals", body, key=officer)
    assert (renewed.status_code, renewed.json()["code"]) == (422, "CONSENT_REQUIRED")
    body["consent"] = {"given": True, "given_at": datetime.now(UTC).isoformat()}
    renewed = system.post("/api/v1/referrals", body, key=officer)
    assert renewed.status_code == 201, renewed.text
    assert system.post(f"/api/v1/referrals/{renewed.json()['id']}/cancel", key=officer)
