"""Finding a client in the console in one step: an officer types a name or a NIK in the
search box of /console/rujukan and gets the client with links to its referrals (the NIK
never in an address), pages go back and forth keeping the words, a partner's operator
finds only its own clients, and the new-referral form says the client is already
referred before a partner is chosen. Desktop (1280) and phone (390) widths, screenshots
kept, no serious accessibility violation on the result page."""

from __future__ import annotations

from datetime import date

import pytest

from harness.data import referral_body
from tests.browser.conftest import PASSWORD, Person
from tests.browser.test_console_rules import make_account
from tests.browser.test_console_without_dead_ends import PHONE, serious_violations

NAME = "Yohana Sembiring"


@pytest.fixture(scope="module")
def searched(system):
    make_account(system, "petugas.cari", "officer")
    make_account(system, "operator.cari.kipas", "partner", "yayasan-kipas")
    make_account(system, "operator.cari.karunia", "partner", "yayasan-karunia-insani")
    made = []
    for serial in range(3):  # three clients of one family name, at Kipas
        body = referral_body(
            "yayasan-kipas",
            sex="F",
            birth_date=date(1991, 2, 3 + serial),
            service_type="outpatient",
        )
        body["client"]["name"] = f"{NAME} {['Anak', 'Ibu', 'Kakak'][serial]}"
        answer = system.post("/api/v1/referrals", body)
        assert answer.status_code == 201, answer.text
        made.append((body["client"], answer.json()["id"]))
    return system, made


@pytest.mark.parametrize("width, viewport", [("desktop", None), ("ponsel", PHONE)])
def test_an_officer_finds_a_client_by_name_or_nik_in_one_step(searched, browser, width, viewport):
    system, made = searched
    (client, referral_id), *_ = made
    officer = Person(browser, system, f"cari-petugas-{width}", viewport=viewport)
    try:
        officer.sign_in("petugas.cari", PASSWORD)
        page = officer.page
        officer.go("/console/rujukan")
        page.fill("#cari-q", client["nik"])
        officer.submit("button:has-text('Cari')")
        assert page.url.endswith("/console/rujukan/cari")
        assert "1 klien ditemukan" in page.inner_text("#cari-total")
        assert client["name"] in page.inner_text("#hasil-cari")
        assert not [url for url in officer.visited if client["nik"] in url]
        officer.shot(f"60-cari-nik-{width}")
        officer.submit(page.locator(f"#hasil-cari a[href$='/rujukan/{referral_id}']"))
        assert client["nik"] in page.inner_text("main")

        officer.go("/console/rujukan")
        page.fill("#cari-q", "sembiring YOHANA")
        officer.submit("button:has-text('Cari')")
        assert "3 klien ditemukan" in page.inner_text("#cari-total")
        assert page.locator("#hasil-cari tbody tr").count() == 3
        assert serious_violations(page) == []
        officer.shot(f"61-cari-nama-{width}")

        page.fill("#cari-q", "12345")
        officer.submit("button:has-text('Cari')")
        assert "16 digit" in page.inner_text("#err-q")
        assert page.input_value("#cari-q") == "12345"
    finally:
        officer.close()


def test_pages_of_a_search_keep_its_words(searched, browser):
    """Twenty to a page: enough clients of one name make a second page."""
    system, _ = searched
    for serial in range(20):
        body = referral_body("yayasan-kipas", sex="M", service_type="outpatient")
        body["client"]["name"] = f"Halaman Uji {serial}"
        assert system.post("/api/v1/referrals", body).status_code == 201
    body = referral_body("yayasan-kipas", sex="M", service_type="outpatient")
    body["client"]["name"] = "Halaman Uji Terakhir"
    assert system.post("/api/v1/referrals", body).status_code == 201
    officer = Person(browser, system, "cari-halaman", viewport=PHONE)
    try:
        officer.sign_in("petugas.cari", PASSWORD)
        page = officer.page
        officer.go("/console/rujukan")
        page.fill("#cari-q", "halaman uji")
        officer.submit("button:has-text('Cari')")
        assert "21 klien ditemukan; halaman 1 dari 2" in page.inner_text("#cari-total")
        officer.submit("button:has-text('Halaman berikutnya')")
        assert "halaman 2 dari 2" in page.inner_text("#cari-total")
        assert page.locator("#hasil-cari tbody tr").count() == 1
        assert page.input_value("#cari-q") == "halaman uji"
        officer.shot("62-cari-halaman-2-ponsel")
        officer.submit("button:has-text('Halaman sebelumnya')")
        assert page.locator("#hasil-cari tbody tr").count() == 20
    finally:
        officer.close()


def test_a_partner_finds_only_its_own_clients(searched, browser):
    system, _ = searched
    for username, expected in (
        ("operator.cari.kipas", "3 klien"),
        ("operator.cari.karunia", "0 klien"),
    ):
        operator = Person(browser, system, f"cari-{username}")
        try:
            operator.sign_in(username, PASSWORD)
            operator.go("/console/rujukan")
            operator.page.fill("#cari-q", NAME)
            operator.submit("button:has-text('Cari')")
            assert expected in operator.page.inner_text("#cari-total")
        finally:
            operator.close()


def test_the_new_referral_form_says_the_client_is_already_referred(searched, browser):
    system, made = searched
    (client, referral_id), *_ = made
    officer = Person(browser, system, "cari-sudah-dirujuk")
    try:
        officer.sign_in("petugas.cari", PASSWORD)
        page = officer.page
        officer.go("/console/rujukan/baru")
        page.fill("#nik", client["nik"])
        page.fill("#name", client["name"])
        page.fill("#birth_date", client["birth_date"])
        page.check("input[name=sex][value=F]")
        page.select_option("#service_type", "outpatient")
        page.check("input[name=consent]")
        officer.submit("button:has-text('Cari mitra yang sesuai')")
        notice = page.inner_text("#sudah-dirujuk")
        assert "sudah dirujuk" in notice and "Yayasan Kipas" in notice
        assert page.locator(f"#sudah-dirujuk a[href$='/rujukan/{referral_id}']").count() == 1
        officer.shot("63-rujukan-baru-sudah-dirujuk")
    finally:
        officer.close()
