"""Consent withdrawn in the console: the officer's action on the referral page asks for
confirmation and the day, then the referral says who recorded it and when; the receiving
partner's operator no longer sees who the client is; the history says why. A minor's
referral asks for the guardian at its fields. Screenshots kept."""

from __future__ import annotations

from datetime import date

import pytest

from harness.data import nik_for, referral_body
from tests.browser.conftest import PASSWORD, Person
from tests.browser.test_console_rules import make_account
from tests.browser.test_console_without_dead_ends import PHONE, serious_violations


@pytest.fixture(scope="module")
def accounts(system):
    make_account(system, "petugas.persetujuan", "officer")
    make_account(system, "operator.persetujuan", "partner", "yayasan-kipas")
    return system


def test_an_officer_withdraws_consent_and_the_partner_sees_no_identity(accounts, browser):
    system = accounts
    body = referral_body("yayasan-kipas", sex="M", service_type="outpatient")
    made = system.post("/api/v1/referrals", body)
    assert made.status_code == 201, made.text
    referral_id, nik = made.json()["id"], body["client"]["nik"]
    officer = Person(browser, system, "persetujuan-petugas", viewport=PHONE)
    operator = Person(browser, system, "persetujuan-operator")
    try:
        officer.sign_in("petugas.persetujuan", PASSWORD)
        page = officer.page
        officer.go(f"/console/rujukan/{referral_id}")
        officer.submit("a:has-text('Cabut persetujuan klien')")
        assert "Catat pencabutan persetujuan klien?" in page.inner_text("h1")
        assert serious_violations(page) == []
        officer.shot("70-cabut-persetujuan-konfirmasi-ponsel")
        page.fill("#withdrawn_on", "2099-01-01")
        page.fill("#note", "Klien menyatakan mencabut persetujuan di kantor BNNP.")
        officer.submit("button:has-text('Ya, catat pencabutan')")
        assert "tidak boleh setelah hari ini" in page.inner_text("#err-withdrawn_on")
        assert "Klien menyatakan" in page.input_value("#note")
        page.fill("#withdrawn_on", "")
        page.locator("#withdrawn_on").evaluate("e => e.value = e.max")
        officer.submit("button:has-text('Ya, catat pencabutan')")
        assert "Pencabutan persetujuan klien tercatat" in page.inner_text("main")
        assert "Dicabut" in page.inner_text("#persetujuan")
        assert "Persetujuan klien dicabut" in page.inner_text(".history")
        assert nik in page.inner_text("main")  # staff still see who it is
        assert page.locator("a:has-text('Cabut persetujuan klien')").count() == 0
        officer.shot("71-persetujuan-dicabut-petugas-ponsel")

        operator.sign_in("operator.persetujuan", PASSWORD)
        operator.go(f"/console/rujukan/{referral_id}")
        text = operator.page.inner_text("main")
        assert "identitasnya tidak ditampilkan" in text
        assert nik not in text and body["client"]["name"] not in text
        operator.shot("72-persetujuan-dicabut-mitra")
    finally:
        officer.close()
        operator.close()


def test_a_minors_referral_asks_for_the_guardian(accounts, browser):
    system = accounts
    birth = date(2013, 5, 6)
    officer = Person(browser, system, "persetujuan-wali")
    try:
        officer.sign_in("petugas.persetujuan", PASSWORD)
        page = officer.page
        officer.go("/console/rujukan/baru")
        page.fill("#nik", nik_for(birth, "M"))
        page.fill("#name", "Anak Uji")
        page.fill("#birth_date", birth.isoformat())
        page.check("input[name=sex][value=M]")
        page.select_option("#service_type", "outpatient")
        page.check("input[name=consent]")
        officer.submit("button:has-text('Cari mitra yang sesuai')")
        page.check("#p-yayasan-kipas")
        officer.submit("button:has-text('Buat rujukan')")
        assert "wali" in page.inner_text("#err-guardian_name")
        assert page.input_value("#name") == "Anak Uji"
        officer.shot("73-rujukan-anak-tanpa-wali")
        page.select_option("#given_by", "guardian")
        page.fill("#guardian_name", "Rusli Effendi")
        page.select_option("#guardian_relationship", "parent")
        officer.submit("button:has-text('Cari mitra yang sesuai')")
        page.check("#p-yayasan-kipas")
        officer.submit("button:has-text('Buat rujukan')")
        assert "Rujukan dibuat" in page.inner_text("main")
        assert "Rusli Effendi, Orang tua" in page.inner_text("main")
    finally:
        officer.close()
