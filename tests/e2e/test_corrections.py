"""An admin's corrections through the gateway, against the processes of `make run`: the
last step of a referral undone and a client's identity corrected, each refused to every
other role (403), without a reason (422 at the field), against a moved referral or a NIK
of another client (409) with nothing stored changed; what the admin did is in the
referral's history and the audit log (the NIK a correction gives is among those
tests/e2e/test_privacy_logs.py looks for in every log line)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import text

from harness.data import ISSUED_NIKS, nik_for, referral_body
from tests.e2e import test_rujukan_gateway as lifecycle

KIPAS = "yayasan-kipas"
REASON = "Tercatat masuk layanan terlalu dini."


# the referral tests' fixtures: rujukan's database, keys of an officer and two partners
rujukan_db, keys = lifecycle.rujukan_db, lifecycle.keys


def stored(engine):
    """Everything a refused correction could have written in rujukan."""
    with engine.connect() as connection:
        return tuple(
            connection.execute(text(sql)).all()
            for sql in (
                "SELECT id, status, updated_at, admitted_at, age_group FROM referrals ORDER BY id",
                "SELECT COUNT(*) FROM referral_history",
                "SELECT COUNT(*) FROM outbox",
                "SELECT id, nik_digest, name_encrypted, birth_date, sex FROM clients ORDER BY id",
                "SELECT COUNT(*) FROM client_name_tokens",
                "SELECT COUNT(*) FROM access_audit",
            )
        )


def problem(response, status, code):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json()["code"] == code, response.text
    return response.json()


def test_an_admin_undoes_the_last_step_and_everyone_else_is_refused(system, keys, rujukan_db):
    officer, kipas = keys["officer"], keys["kipas"]
    body = referral_body(partner_id=KIPAS, service_type="outpatient")
    rid = system.post("/api/v1/referrals", body, key=officer).json()["id"]
    for action in ("accept", "admit"):
        assert system.post(f"/api/v1/referrals/{rid}/{action}", key=kipas).status_code == 200
    path = f"/api/v1/referrals/{rid}/undo"
    before = stored(rujukan_db)
    for key in (officer, kipas):
        problem(
            system.post(path, {"expected_status": "admitted", "reason": REASON}, key=key),
            403,
            "FORBIDDEN",
        )
    refused = problem(system.post(path, {"expected_status": "admitted"}), 422, "VALIDATION_ERROR")
    assert "reason" in refused["errors"]
    problem(
        system.post(path, {"expected_status": "admitted", "reason": "  "}), 422, "VALIDATION_ERROR"
    )
    moved = problem(
        system.post(path, {"expected_status": "accepted", "reason": REASON}), 409, "STATUS_CHANGED"
    )
    assert "expected_status" in moved["errors"]
    assert stored(rujukan_db) == before

    undone = system.post(path, {"expected_status": "admitted", "reason": REASON})
    assert undone.status_code == 200, undone.text
    assert (undone.json()["status"], undone.json()["undone_status"]) == ("accepted", "admitted")
    assert undone.json()["admitted_at"] is None
    last = system.get(f"/api/v1/referrals/{rid}/history", key=kipas).json()["items"][-1]
    assert (last["from_status"], last["to_status"], last["reason"], last["note"]) == (
        "admitted",
        "accepted",
        "transition_undone",
        REASON,
    )
    # walked back to the request, then nothing is left to undo
    assert system.post(path, {"expected_status": "accepted", "reason": REASON}).status_code == 200
    before = stored(rujukan_db)
    problem(
        system.post(path, {"expected_status": "requested", "reason": REASON}),
        409,
        "NOTHING_TO_UNDO",
    )
    assert stored(rujukan_db) == before


def test_an_admin_corrects_a_clients_identity_and_refusals_change_nothing(system, keys, rujukan_db):
    officer, kipas = keys["officer"], keys["kipas"]
    mine = system.post(
        "/api/v1/referrals",
        referral_body(partner_id=KIPAS, service_type="outpatient", birth_date=date(1994, 3, 17)),
        key=officer,
    ).json()
    other = referral_body(partner_id=KIPAS, service_type="outpatient")
    assert system.post("/api/v1/referrals", other, key=officer).status_code == 201
    client_id = mine["client"]["id"]
    path = f"/api/v1/clients/{client_id}/corrections"
    name = mine_name(system, mine["id"])  # an audited read: before the snapshot
    before = stored(rujukan_db)
    for key in (officer, kipas):
        problem(
            system.post(path, {"name": "Budi", "reason": "Salah ketik."}, key=key), 403, "FORBIDDEN"
        )
    assert (
        "reason" in problem(system.post(path, {"name": "Budi"}), 422, "VALIDATION_ERROR")["errors"]
    )
    taken = problem(
        system.post(path, {"nik": other["client"]["nik"], "reason": "Salah ketik."}),
        409,
        "NIK_IN_USE",
    )
    assert "nik" in taken["errors"]
    problem(
        system.post(path, {"sex": "F", "reason": "Salah pilih."}), 422, "VALIDATION_ERROR"
    )  # the NIK says a man
    problem(
        system.post(path, {"name": name, "reason": "Sama saja."}),
        409,
        "NOTHING_CHANGED",
    )
    problem(
        system.post(
            "/api/v1/clients/00000000-0000-4000-8000-000000000000/corrections",
            {"name": "Budi", "reason": "Salah ketik."},
        ),
        404,
        "NOT_FOUND",
    )
    assert stored(rujukan_db) == before

    # a woman born 17 March 2004: her NIK, birth date and sex together
    nik = nik_for(date(2004, 3, 17), "F")
    ISSUED_NIKS.append(nik)
    fixed = system.post(
        path,
        {"nik": nik, "birth_date": "2004-03-17", "sex": "F", "reason": "Data tertukar."},
    )
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["changed"] == ["nik", "birth_date", "sex"]
    read = system.get(f"/api/v1/referrals/{mine['id']}", key=kipas).json()
    assert (read["client"]["identity"]["nik"], read["client"]["sex"]) == (nik, "F")
    assert read["client"]["age_group"] == "18-24"
    last = system.get(f"/api/v1/referrals/{mine['id']}/history", key=kipas).json()["items"][-1]
    assert (last["reason"], last["note"]) == ("identity_corrected", "Data tertukar.")
    audit = system.get(f"/api/v1/audit?referral_id={mine['id']}").json()["items"]
    assert any(a["purpose"] == "koreksi identitas: Data tertukar." for a in audit)


def mine_name(system, referral_id):
    return system.get(f"/api/v1/referrals/{referral_id}").json()["client"]["identity"]["name"]
