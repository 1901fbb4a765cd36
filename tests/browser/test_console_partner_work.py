"""The work with partners beyond referrals, in the console: the admin reads the access
audit (who read which client's identity, by name, with filters kept from page to page;
nobody else may), an officer records a PKS and ends it with its reason (asked first,
refused without it at its field, what was typed kept), and records a supervision visit
and a training on the partner's activities page (the visit's scores at their fields).
Desktop (1280) and phone (390) widths, screenshots kept, axe-core on every new page."""

from __future__ import annotations

import re
import uuid

import pytest
import requests

from harness.data import referral_body
from tests.browser.conftest import PASSWORD, Person, csrf_of, signed_in_session
from tests.browser.test_console_rules import make_account
from tests.browser.test_console_without_dead_ends import PHONE, serious_violations

OFFICER = "petugas.kerja.mitra"
OFFICER_NAME = "Petugas Kerja Mitra"
PARTNER = "yayasan-kipas"


@pytest.fixture(scope="module")
def people(system):
    make_account(system, OFFICER, "officer")
    make_account(system, "operator.kerja.mitra", "partner", PARTNER)
    return system


def new_agreement(system, number: str) -> str:
    body = {
        "number": number,
        "signed_on": "2027-01-10",
        "valid_from": "2027-02-01",
        "valid_until": "2029-01-31",
        "annual_target": 12,
    }
    made = system.post(f"/api/v1/partners/{PARTNER}/agreements", body)
    assert made.status_code == 201, made.text
    return made.json()["id"]


def test_the_admin_reads_the_audit_by_name_with_filters_kept_from_page_to_page(people, browser):
    system = people
    made = system.post("/api/v1/referrals", referral_body(PARTNER, sex="M"))
    assert made.status_code == 201, made.text
    referral_id = made.json()["id"]
    officer = Person(browser, system, "audit-petugas")
    admin = Person(browser, system, "audit-admin")
    try:
        officer.sign_in(OFFICER, PASSWORD)
        officer.go(f"/console/rujukan/{referral_id}")  # a read of the client's identity
        for _ in range(51):  # machines read it too: 52 entries of this referral
            assert system.get(f"/api/v1/referrals/{referral_id}").status_code == 200

        admin.sign_in("admin", system.console_admin_password)
        page = admin.page
        assert page.locator("nav a:has-text('Log audit')").count() == 1
        admin.submit("nav a:has-text('Log audit')")
        assert "Log audit" in page.inner_text("h1")
        page.select_option("#pelaku", f"officer:user:{OFFICER}")
        admin.submit("form.filters button")
        rows = page.locator("table.audit tbody tr")
        assert rows.count() == 1
        row = rows.first.inner_text()
        assert f"{OFFICER_NAME} (Petugas BNNP)" in row
        assert "Konsol: membuka rincian rujukan" in row and "BNNP Bengkulu" in row
        assert rows.first.locator(f"a[href='/console/rujukan/{referral_id}']").count() == 1
        admin.shot("86-audit-saring-orang")

        admin.go(f"/console/audit?rujukan={referral_id}")
        assert page.locator("table.audit tbody tr").count() == 50
        assert "Halaman 1" in page.inner_text("nav.pager")
        admin.submit("a[rel=next]")
        assert f"rujukan={referral_id}" in page.url
        assert page.input_value("#rujukan") == referral_id
        assert page.locator("table.audit tbody tr").count() == 2
        assert "Halaman 2" in page.inner_text("nav.pager")
        # the oldest read is the officer's, on the last page
        assert OFFICER_NAME in page.locator("table.audit tbody tr").last.inner_text()
        admin.shot("87-audit-halaman-2")
        admin.submit("a[rel=prev]")
        assert f"rujukan={referral_id}" in page.url and "cursor" not in page.url
        assert page.locator("table.audit tbody tr").count() == 50

        admin.go("/console/audit?rujukan=bukan%20nomor")
        assert "Nomor rujukan tidak sah" in page.inner_text("#err-rujukan")
        assert page.input_value("#rujukan") == "bukan nomor"

        refused = officer.go("/console/audit")
        assert refused.status == 403
        assert "Tidak diizinkan" in officer.page.inner_text("main")
        assert officer.page.locator("nav a:has-text('Log audit')").count() == 0
    finally:
        officer.close()
        admin.close()


def test_an_officer_records_a_pks_and_ends_it_with_its_reason(people, browser):
    system = people
    number = f"PKS/UJI/{uuid.uuid4().hex[:8]}"
    officer = Person(browser, system, "pks-petugas", viewport=PHONE)
    try:
        officer.sign_in(OFFICER, PASSWORD)
        page = officer.page
        officer.go(f"/console/mitra/{PARTNER}")
        page.fill("#pks\\.number", number)
        page.fill("#pks\\.signed_on", "2027-01-10")
        page.fill("#pks\\.valid_from", "2027-02-01")
        page.fill("#pks\\.valid_until", "2027-01-31")
        page.fill("#pks\\.annual_target", "40")
        page.uncheck("input[name='pks.scope'][value='reporting']")
        officer.submit("button:has-text('Catat PKS')")
        assert "sesudah tanggal mulai berlaku" in page.inner_text("#err-pks-valid_until")
        assert page.input_value("#pks\\.number") == number
        assert page.input_value("#pks\\.annual_target") == "40"
        assert not page.is_checked("input[name='pks.scope'][value='reporting']")
        assert page.is_checked("input[name='pks.scope'][value='rehabilitation']")
        officer.shot("88-pks-ditolak-ponsel")
        page.fill("#pks\\.valid_until", "2029-01-31")
        officer.submit("button:has-text('Catat PKS')")
        assert "PKS dicatat." in page.inner_text("main")
        row = page.locator("#pks tbody tr", has_text=number)
        assert "Berlaku" in row.inner_text()

        officer.submit(row.locator("a:has-text('Akhiri PKS')"))
        assert "Akhiri PKS sebelum waktunya?" in page.inner_text("h1")
        assert number in page.inner_text("main")
        assert serious_violations(page) == []
        page.fill("#terminated_on", "2027-03-01")
        officer.submit("button:has-text('Ya, akhiri PKS')")
        assert "Tulis alasan PKS diakhiri" in page.inner_text("#err-reason")
        assert page.input_value("#terminated_on") == "2027-03-01"
        officer.shot("89-pks-akhiri-tanpa-alasan-ponsel")
        page.fill("#reason", "Yayasan pindah alamat dan berhenti menerima klien.")
        officer.submit("button:has-text('Ya, akhiri PKS')")
        assert "PKS diakhiri" in page.inner_text("main")
        row = page.locator("#pks tbody tr", has_text=number)
        assert "Diakhiri" in row.inner_text() and "pindah alamat" in row.inner_text()
        assert row.locator("a:has-text('Akhiri PKS')").count() == 0
        officer.shot("90-pks-diakhiri-ponsel")
    finally:
        officer.close()
    stored = system.get(f"/api/v1/partners/{PARTNER}/agreements").json()
    ended = [a for a in stored["items"] if a["number"] == number]
    assert ended[0]["status"] == "terminated"
    assert ended[0]["terminated_on"] == "2027-03-01"
    assert ended[0]["termination_reason"].startswith("Yayasan pindah alamat")


def test_an_officer_records_a_supervision_visit_and_a_training(people, browser):
    system = people
    title = f"Kunjungan supervisi {uuid.uuid4().hex[:6]}"
    officer = Person(browser, system, "kegiatan-petugas")
    try:
        officer.sign_in(OFFICER, PASSWORD)
        page = officer.page
        officer.go(f"/console/mitra/{PARTNER}")
        officer.submit("a:has-text('Lihat kegiatan penguatan kapasitas')")
        assert "Kegiatan dan kunjungan supervisi" in page.inner_text("h1")
        page.select_option("#kind", "supervision_visit")
        page.fill("#held_on", "2027-03-10")
        page.fill("#title", title)
        page.fill("#findings", "Rekam medis belum lengkap.")
        for dimension in ("availability", "access", "acceptability", "quality"):
            page.fill(f"#score\\.{dimension}", "70")
        officer.submit("button:has-text('Catat kegiatan')")
        assert "Isi skor 0-100." in page.inner_text("#err-score-continuity")
        assert page.input_value("#title") == title
        assert page.input_value("#score\\.quality") == "70"
        officer.shot("91-kunjungan-tanpa-skor")
        page.fill("#score\\.continuity", "85")
        officer.submit("button:has-text('Catat kegiatan')")
        assert "Kegiatan dicatat." in page.inner_text("main")
        row = page.locator("table.list tbody tr", has_text=title)
        assert "Kunjungan supervisi" in row.inner_text()
        assert "Rekam medis belum lengkap." in row.inner_text()
        assert "Kesinambungan 85" in row.inner_text()

        page.select_option("#kind", "training")
        page.fill("#title", "Pelatihan konselor adiksi")
        page.fill("#participants", "Andi Saputra\nSari Wulandari")
        page.fill("#score\\.quality", "50")
        officer.submit("button:has-text('Catat kegiatan')")
        assert "Skor hanya untuk kunjungan supervisi" in page.inner_text("#err-scores")
        page.fill("#score\\.quality", "")
        officer.submit("button:has-text('Catat kegiatan')")
        assert "Kegiatan dicatat." in page.inner_text("main")

        page.select_option("#jenis", "training")
        officer.submit("form.filters button")
        listed = page.inner_text("table.list tbody")
        assert "Pelatihan konselor adiksi" in listed and "Andi Saputra, Sari Wulandari" in listed
        assert title not in listed
        assert page.locator("#jenis").input_value() == "training"
        officer.shot("92-kegiatan-pelatihan")
    finally:
        officer.close()
    kinds = {
        a["kind"] for a in system.get(f"/api/v1/partners/{PARTNER}/activities").json()["items"]
    }
    assert {"supervision_visit", "training"} <= kinds


def test_an_operator_reads_its_partners_work_but_changes_none_of_it(people):
    system = people
    agreement_id = new_agreement(system, f"PKS/OPS/{uuid.uuid4().hex[:8]}")
    before_agreements = system.get(f"/api/v1/partners/{PARTNER}/agreements").json()["items"]
    before_activities = system.get(f"/api/v1/partners/{PARTNER}/activities").json()["items"]
    operator = signed_in_session(system, "operator.kerja.mitra", PASSWORD)
    base = system.base_url + f"/console/mitra/{PARTNER}"
    csrf = csrf_of(operator, base)
    own = operator.get(base, timeout=10)
    assert own.status_code == 200 and "Catat PKS baru" not in own.text
    assert "Akhiri PKS" not in own.text
    listed = operator.get(base + "/kegiatan", timeout=10)
    assert listed.status_code == 200 and "Catat kegiatan" not in listed.text
    visit = {"csrf": csrf, "kind": "training", "held_on": "2027-03-10", "title": "Pelatihan"}
    agreement = {
        "csrf": csrf,
        "pks.number": "PKS/OPERATOR/1",
        "pks.signed_on": "2027-01-10",
        "pks.valid_from": "2027-02-01",
        "pks.valid_until": "2029-01-31",
        "pks.scope": "reporting",
    }
    for path, form in (
        ("/pks", agreement),
        (f"/pks/{agreement_id}/akhiri", {"csrf": csrf, "reason": "Tidak boleh."}),
        ("/kegiatan", visit),
    ):
        refused = operator.post(base + path, data=form, timeout=10, allow_redirects=False)
        assert refused.status_code == 403, path
        assert "Tidak diizinkan" in refused.text
    assert operator.get(base + f"/pks/{agreement_id}/akhiri", timeout=10).status_code == 403
    other = system.base_url + "/console/mitra/yayasan-dwin-foundation/kegiatan"
    assert operator.get(other, timeout=10).status_code == 404
    assert operator.get(system.base_url + "/console/audit", timeout=10).status_code == 403
    after = system.get(f"/api/v1/partners/{PARTNER}/agreements").json()["items"]
    assert after == before_agreements
    assert system.get(f"/api/v1/partners/{PARTNER}/activities").json()["items"] == (
        before_activities
    )


@pytest.mark.parametrize("width, viewport", [("desktop", None), ("ponsel", PHONE)])
def test_the_new_pages_have_no_serious_accessibility_violation(people, browser, width, viewport):
    agreement_id = new_agreement(people, f"PKS/AXE/{uuid.uuid4().hex[:8]}")
    pages = {
        ("admin", people.console_admin_password): ["/console/audit"],
        (OFFICER, PASSWORD): [
            f"/console/mitra/{PARTNER}",
            f"/console/mitra/{PARTNER}/pks/{agreement_id}/akhiri",
            f"/console/mitra/{PARTNER}/kegiatan",
        ],
        ("operator.kerja.mitra", PASSWORD): [f"/console/mitra/{PARTNER}/kegiatan"],
    }
    found: dict[str, list[str]] = {}
    for (username, password), paths in pages.items():
        person = Person(browser, people, f"axe-kerja-{username}-{width}", viewport=viewport)
        try:
            person.sign_in(username, password)
            for path in paths:
                assert person.go(path).status == 200, path
                found[f"{username} {path}"] = serious_violations(person.page)
                name = path.strip("/").replace("/", "-")[:60]
                person.shot(f"93-{username}-{name}-{width}")
        finally:
            person.close()
    assert {page: v for page, v in found.items() if v} == {}


def sign_in_with_draft(system, username: str, answer) -> requests.Response:
    """Sign in from the page a form sent without a session answered, as a person does:
    its hidden fields (the form's place and values) go back with the name and password."""
    session = requests.Session()
    session.cookies.update(answer.cookies)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', answer.text))
    fields.update(username=username, password=PASSWORD)
    return session.post(system.base_url + "/console/masuk", data=fields, timeout=10)


def test_a_form_sent_after_the_session_ended_comes_back_filled_in(people):
    system = people
    agreement_id = new_agreement(system, f"PKS/DRAF/{uuid.uuid4().hex[:8]}")
    before = system.get(f"/api/v1/partners/{PARTNER}/activities").json()["items"]
    base = f"/console/mitra/{PARTNER}"
    for posted, form, kept in (
        (
            f"{base}/kegiatan",
            {"kind": "facilitation", "title": "Fasilitasi draf", "findings": "Catatan draf"},
            ('value="Fasilitasi draf"', "Catatan draf", 'value="facilitation" selected'),
        ),
        (f"{base}/pks/{agreement_id}/akhiri", {"reason": "Alasan draf"}, ("Alasan draf",)),
    ):
        answer = requests.post(system.base_url + posted, data=form, timeout=10)
        assert answer.status_code == 401 and "Sesi Anda sudah berakhir" in answer.text
        assert f'name="lanjut" value="{posted}"' in answer.text
        restored = sign_in_with_draft(system, OFFICER, answer)
        assert restored.status_code == 200, restored.text
        assert "Isian Anda dikembalikan" in restored.text
        for words in kept:
            assert words in restored.text, (posted, words)
    assert system.get(f"/api/v1/partners/{PARTNER}/activities").json()["items"] == before
    stored = system.get(f"/api/v1/partners/{PARTNER}/agreements").json()["items"]
    assert [a["status"] for a in stored if a["id"] == agreement_id] == ["active"]
