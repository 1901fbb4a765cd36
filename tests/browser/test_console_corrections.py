"""An admin's corrections in the console: the last step of a referral undone from its
page after a confirmation that asks why (refused at the field without a reason, the
status unchanged), and a client's identity corrected on a form that keeps what was typed
when rujukan refuses it (a NIK that no longer agrees with the sex); an officer is offered
neither and is refused both pages. Checked with axe at 1280 and 390 px; screenshots
kept."""

from __future__ import annotations

from datetime import date

import pytest

from harness.data import ISSUED_NIKS, nik_for, referral_body
from tests.browser.conftest import PASSWORD, Person, csrf_of, signed_in_session, status_of
from tests.browser.test_console_rules import make_account
from tests.browser.test_console_without_dead_ends import PHONE, serious_violations

BIRTH = date(1991, 2, 11)


@pytest.fixture(scope="module")
def accounts(system):
    make_account(system, "admin.koreksi", "admin")
    make_account(system, "petugas.koreksi", "officer")
    return system


@pytest.fixture(scope="module")
def admitted(accounts):
    """A referral to yayasan-kipas, accepted and admitted (by the admin's API key)."""
    body = referral_body("yayasan-kipas", sex="M", birth_date=BIRTH, service_type="outpatient")
    made = accounts.post("/api/v1/referrals", body)
    assert made.status_code == 201, made.text
    referral = made.json()
    for action in ("accept", "admit"):
        moved = accounts.post(f"/api/v1/referrals/{referral['id']}/{action}")
        assert moved.status_code == 200, moved.text
    return referral, body["client"]


def test_an_admin_undoes_the_admission_after_saying_why(accounts, browser, admitted):
    referral, _ = admitted
    rid = referral["id"]
    admin = Person(browser, accounts, "koreksi-admin")
    try:
        admin.sign_in("admin.koreksi", PASSWORD)
        page = admin.page
        admin.go(f"/console/rujukan/{rid}")
        admin.submit("a:has-text('Batalkan langkah terakhir')")
        assert page.inner_text("h1") == "Batalkan langkah terakhir?"
        assert "Status sekarang Dalam layanan" in page.inner_text("main")
        assert serious_violations(page) == []
        admin.shot("80-batalkan-langkah-konfirmasi")
        admin.submit("button:has-text('Ya, batalkan langkah terakhir')")  # no reason
        assert "Tulis alasan pembatalan" in page.inner_text("#err-reason")
        assert page.get_attribute("#reason", "aria-invalid") == "true"
        assert status_of(accounts, rid) == "admitted"
        assert serious_violations(page) == []
        admin.shot("81-batalkan-langkah-tanpa-alasan")
        page.fill("#reason", "Klien belum datang; tercatat masuk karena salah klik.")
        admin.submit("button:has-text('Ya, batalkan langkah terakhir')")
        assert "Langkah terakhir dibatalkan" in page.inner_text("main")
        assert status_of(accounts, rid) == "accepted"
        history = page.inner_text(".history")
        assert "Langkah terakhir dibatalkan" in history and "salah klik" in history
        admin.shot("82-langkah-dibatalkan")
    finally:
        admin.close()


def test_an_admin_corrects_the_identity_on_a_phone_with_refusals_at_their_fields(
    accounts, browser, admitted
):
    referral, client = admitted
    rid = referral["id"]
    admin = Person(browser, accounts, "koreksi-admin-ponsel", viewport=PHONE)
    try:
        admin.sign_in("admin.koreksi", PASSWORD)
        page = admin.page
        admin.go(f"/console/rujukan/{rid}")
        admin.submit("a:has-text('Koreksi identitas klien')")
        assert page.inner_text("h1") == "Koreksi identitas klien"
        assert page.input_value("#nik") == client["nik"]
        assert page.input_value("#name") == client["name"]
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        assert serious_violations(page) == []
        admin.shot("83-koreksi-identitas-ponsel")

        # a woman, not a man: the sex alone no longer agrees with the NIK
        page.check("input[name=sex][value=F]")
        page.fill("#reason", "Jenis kelamin salah dipilih saat rujukan dibuat.")
        admin.submit("button:has-text('Simpan koreksi')")
        assert "jenis kelamin" in page.inner_text("#err-nik").lower()
        assert page.is_checked("input[name=sex][value=F]")  # what was typed is kept
        assert "Jenis kelamin salah" in page.input_value("#reason")
        assert serious_violations(page) == []
        admin.shot("84-koreksi-nik-tidak-sesuai-ponsel")
        assert accounts.get(f"/api/v1/referrals/{rid}").json()["client"]["sex"] == "M"

        nik = nik_for(BIRTH, "F")
        ISSUED_NIKS.append(nik)
        page.fill("#nik", nik)
        admin.submit("button:has-text('Simpan koreksi')")
        assert "Identitas klien dikoreksi" in page.inner_text("main")
        assert nik in page.inner_text("main")
        assert "Identitas klien dikoreksi" in page.inner_text(".history")
        admin.shot("85-identitas-dikoreksi-ponsel")
    finally:
        admin.close()


def test_an_officer_is_offered_neither_and_refused_both(accounts, browser, admitted):
    referral, _ = admitted
    rid, client_id = referral["id"], referral["client"]["id"]
    officer = Person(browser, accounts, "koreksi-petugas")
    try:
        officer.sign_in("petugas.koreksi", PASSWORD)
        officer.go(f"/console/rujukan/{rid}")
        main = officer.page.inner_text("main")
        assert "Batalkan langkah terakhir" not in main and "Koreksi identitas" not in main
        assert officer.go(f"/console/rujukan/{rid}/batalkan-langkah").status == 403
        assert officer.go(f"/console/klien/{client_id}/koreksi?rujukan={rid}").status == 403
    finally:
        officer.close()


def test_the_console_forms_over_plain_http_refuse_at_their_fields_and_keep_what_was_typed(
    accounts,
):
    """The same forms as a person's browser posts them (no Chromium): the undo without a
    reason, the undo with one, a correction whose NIK no longer agrees, nothing changed,
    all refused to an officer."""
    system = accounts
    body = referral_body("yayasan-kipas", sex="M", birth_date=BIRTH, service_type="outpatient")
    referral = system.post("/api/v1/referrals", body).json()
    rid, client_id = referral["id"], referral["client"]["id"]
    assert system.post(f"/api/v1/referrals/{rid}/accept").status_code == 200
    admin = signed_in_session(system, "admin.koreksi", PASSWORD)
    base = system.base_url + "/console"
    detail = admin.get(f"{base}/rujukan/{rid}", timeout=10).text
    assert "Batalkan langkah terakhir" in detail and "Koreksi identitas klien" in detail

    undo_page = f"{base}/rujukan/{rid}/batalkan-langkah"
    token = csrf_of(admin, undo_page)
    form = {"csrf": token, "expected_status": "accepted", "reason": ""}
    refused = admin.post(undo_page, data=form, timeout=10)
    assert refused.status_code == 422
    assert 'id="err-reason"' in refused.text and "Tulis alasan pembatalan" in refused.text
    moved = admin.post(
        undo_page, data={**form, "expected_status": "admitted", "reason": "Uji."}, timeout=10
    )
    assert moved.status_code == 409 and "Rujukan kini berstatus Diterima" in moved.text
    assert status_of(system, rid) == "accepted"
    done = admin.post(
        undo_page, data={**form, "reason": "Salah klik terima."}, allow_redirects=False, timeout=10
    )
    assert done.status_code == 303, done.text
    assert status_of(system, rid) == "requested"

    fix_page = f"{base}/klien/{client_id}/koreksi?rujukan={rid}"
    shown = admin.get(fix_page, timeout=10)
    assert shown.status_code == 200 and body["client"]["nik"] in shown.text
    token = csrf_of(admin, fix_page)
    fields = {
        "csrf": token,
        "rujukan": rid,
        "nik": body["client"]["nik"],
        "name": body["client"]["name"],
        "birth_date": BIRTH.isoformat(),
        "sex": "F",
        "phone": body["client"]["phone"],
        "reason": "Jenis kelamin salah.",
    }
    wrong = admin.post(f"{base}/klien/{client_id}/koreksi", data=fields, timeout=10)
    assert wrong.status_code == 422 and 'id="err-nik"' in wrong.text
    assert 'value="F" checked' in wrong.text and "Jenis kelamin salah." in wrong.text
    same = admin.post(f"{base}/klien/{client_id}/koreksi", data={**fields, "sex": "M"}, timeout=10)
    assert same.status_code == 409 and "tidak ada yang dikoreksi" in same.text
    officer = signed_in_session(system, "petugas.koreksi", PASSWORD)
    assert officer.get(fix_page, timeout=10).status_code == 403
    assert officer.get(undo_page, timeout=10).status_code == 403
