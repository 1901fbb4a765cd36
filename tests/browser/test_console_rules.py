"""The console obeys the API's rules: an operator reaches only its own partner's
referrals and reports (another's answers the not-found page), roles close pages, every
form needs its CSRF token, bad input gets a page in Bahasa Indonesia and changes nothing,
repeated failed sign-ins lock an account until the admin resets it; the pages can be
used with the keyboard alone and every field has a label."""

from __future__ import annotations

import re
import subprocess

import pytest
import requests

from harness.system import BIN
from tests.browser.conftest import (
    PASSWORD,
    PERIOD,
    Person,
    csrf_of,
    signed_in_session,
    staff_pages,
    status_of,
)

NIK = "1771054501900002"  # a woman born 1990-01-05
NAME = "Siti Aminah"


def make_account(system, username, role, partner=None):
    args = [str(BIN / "bersinar"), "users", "create", username, "--role", role]
    args += ["--password-stdin", "--name", username.replace(".", " ").title()]
    if partner:
        args += ["--partner", partner]
    made = subprocess.run(
        args, env=system.env, input=PASSWORD + "\n", capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr


@pytest.fixture(scope="module")
def accounts(system):
    make_account(system, "operator.kipas", "partner", "yayasan-kipas")
    make_account(system, "operator.dwin", "partner", "yayasan-dwin-foundation")
    make_account(system, "petugas.uji", "officer")
    return system


def place_by_api(system, partner_id: str) -> str:
    """A referral placed through the API, as machines do."""
    created = system.post(
        "/api/v1/referrals",
        {
            "client": {"nik": NIK, "name": NAME, "birth_date": "1990-01-05", "sex": "F"},
            "source": "TAT",
            "service_type": "outpatient",
            "partner_id": partner_id,
            "consent": {"given": True},
        },
    )
    assert created.status_code == 201, created.text
    return created.json()["id"]


@pytest.fixture(scope="module")
def kipas_referral(accounts):
    return place_by_api(accounts, "yayasan-kipas")


def test_an_operator_typing_another_partners_referral_address_gets_not_found(
    accounts, browser, kipas_referral
):
    other = Person(browser, accounts, "operator-dwin")
    own = Person(browser, accounts, "operator-kipas")
    try:
        other.sign_in("operator.dwin", PASSWORD)
        answer = other.go(f"/console/rujukan/{kipas_referral}")
        assert answer.status == 404
        assert other.page.inner_text("h1") == "Halaman tidak ditemukan"
        assert NAME not in other.page.content() and NIK not in other.page.content()
        other.shot("20-isolasi-rujukan-mitra-lain")
        # nor in its inbox, nor its report, nor its partner page
        other.go("/console/rujukan")
        assert kipas_referral not in other.page.content()
        assert other.go(f"/console/laporan/yayasan-kipas/{PERIOD}").status == 404
        assert other.go("/console/mitra/yayasan-kipas").status == 404
        assert other.go("/console/mitra/yayasan-dwin-foundation").status == 200

        own.sign_in("operator.kipas", PASSWORD)
        assert own.go(f"/console/rujukan/{kipas_referral}").status == 200
        assert NAME in own.page.inner_text("main")
    finally:
        other.close()
        own.close()


def test_acting_on_another_partners_referral_is_not_found_and_changes_nothing(
    accounts, kipas_referral
):
    session = signed_in_session(accounts, "operator.dwin", PASSWORD)
    token = csrf_of(session, f"{accounts.base_url}/console/rujukan")
    answer = session.post(
        f"{accounts.base_url}/console/rujukan/{kipas_referral}/terima",
        data={"csrf": token},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 404
    assert status_of(accounts, kipas_referral) == "requested"


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(accounts, kipas_referral):
    session = signed_in_session(accounts, "operator.kipas", PASSWORD)
    for data in ({}, {"csrf": "palsu"}):
        answer = session.post(
            f"{accounts.base_url}/console/rujukan/{kipas_referral}/terima",
            data=data,
            allow_redirects=False,
            timeout=10,
        )
        assert answer.status_code == 403
        assert "Formulir ini kedaluwarsa" in answer.text
    assert status_of(accounts, kipas_referral) == "requested"


@pytest.mark.parametrize(
    "path, status",
    [
        ("/console/monev", 403),
        ("/console/rujukan/baru", 403),
        ("/console/pengguna", 403),
        ("/console/monev/corong.csv?periode=2027-03", 403),
    ],
)
def test_an_operator_cannot_open_staff_pages(accounts, path, status):
    session = signed_in_session(accounts, "operator.kipas", PASSWORD)
    answer = session.get(accounts.base_url + path, timeout=10)
    assert answer.status_code == status
    assert "Tidak diizinkan" in answer.text


def test_an_officer_cannot_manage_people(accounts):
    session = signed_in_session(accounts, "petugas.uji", PASSWORD)
    assert session.get(accounts.base_url + "/console/pengguna", timeout=10).status_code == 403


def test_pages_ask_for_sign_in_first(accounts, kipas_referral):
    answer = requests.get(
        f"{accounts.base_url}/console/rujukan/{kipas_referral}",
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 303
    assert answer.headers["Location"].startswith("/console/masuk?lanjut=")


@pytest.mark.parametrize(
    "path, status, words",
    [
        ("/console/rujukan?status=hilang", 422, "Status tidak dikenal"),
        ("/console/monev?periode=2027-13", 422, "Periode berbentuk YYYY-MM"),
        ("/console/laporan/yayasan-kipas/2027-13", 404, "Halaman tidak ditemukan"),
        ("/console/rujukan/tidak-ada", 404, "Halaman tidak ditemukan"),
        ("/console/rujukan/bukan%20id", 404, "Halaman tidak ditemukan"),
        ("/console/monev/tidak-ada.csv", 404, "Halaman tidak ditemukan"),
        ("/console/tidak-ada/sama-sekali", 404, "Halaman tidak ditemukan"),
    ],
)
def test_bad_addresses_get_a_page_in_bahasa_indonesia(accounts, path, status, words):
    session = signed_in_session(accounts, "petugas.uji", PASSWORD)
    answer = session.get(accounts.base_url + path, timeout=10)
    assert answer.status_code == status
    assert words in answer.text
    assert '<html lang="id">' in answer.text


def test_bad_form_input_is_refused_at_its_field_and_changes_nothing(accounts):
    session = signed_in_session(accounts, "operator.kipas", PASSWORD)
    token = csrf_of(session, f"{accounts.base_url}/console/mitra/yayasan-kipas")
    before = accounts.get("/api/v1/partners/yayasan-kipas").json()["services"]
    fields = {f"capacity.{s['service_type']}": "banyak" for s in before}
    answer = session.post(
        f"{accounts.base_url}/console/mitra/yayasan-kipas/kapasitas",
        data={"csrf": token, **fields},
        timeout=10,
    )
    assert answer.status_code == 422
    assert "Isi bilangan bulat 0-10000." in answer.text
    assert accounts.get("/api/v1/partners/yayasan-kipas").json()["services"] == before
    # a body over the gateway's limit: 413, as on the API
    huge = session.post(
        f"{accounts.base_url}/console/mitra/yayasan-kipas/kapasitas",
        data={"csrf": token, "x": "a" * 70000},
        timeout=10,
    )
    assert huge.status_code == 413


def test_the_session_cookie_is_httponly_samesite_and_secure_over_tls(accounts):
    def cookie_after_sign_in(headers):
        session = requests.Session()
        form = session.get(f"{accounts.base_url}/console/masuk", headers=headers, timeout=10)
        token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        answer = session.post(
            f"{accounts.base_url}/console/masuk",
            data={"csrf": token, "username": "petugas.uji", "password": PASSWORD},
            # over TLS the form's cookie is Secure too, and requests keeps it off plain
            # HTTP: send it as the browser on https would
            cookies={"bersinar_masuk": token},
            headers=headers,
            allow_redirects=False,
            timeout=10,
        )
        assert answer.status_code == 303
        return answer.headers["Set-Cookie"]

    plain = cookie_after_sign_in({})
    assert "bersinar_sesi=" in plain and "HttpOnly" in plain and "SameSite=Lax" in plain
    assert "Path=/console" in plain and "Secure" not in plain
    assert "Secure" in cookie_after_sign_in({"X-Forwarded-Proto": "https"})


def test_sign_in_without_the_forms_token_is_refused(accounts):
    answer = requests.post(
        f"{accounts.base_url}/console/masuk",
        data={"username": "petugas.uji", "password": PASSWORD},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 400
    assert "bersinar_sesi" not in answer.headers.get("Set-Cookie", "")


def test_repeated_failures_lock_the_account_until_the_admin_resets_it(accounts, browser):
    make_account(accounts, "operator.lupa", "partner", "yayasan-kipas")
    person = Person(browser, accounts, "operator-lupa")
    admin = Person(browser, accounts, "admin-reset")
    try:
        for _ in range(3):  # CONSOLE_LOCK_AFTER of this system
            person.sign_in("operator.lupa", "bukan-sandinya-1")
        assert "terkunci sementara" in person.page.inner_text("main")
        person.sign_in("operator.lupa", PASSWORD)
        assert "terkunci sementara" in person.page.inner_text("main")
        assert person.page.url.endswith("/console/masuk")
        person.shot("21-akun-terkunci")

        admin.sign_in("admin", accounts.console_admin_password)
        admin.go("/console/pengguna")
        row = admin.page.locator("tr", has_text="operator.lupa")
        assert "(terkunci)" in row.inner_text()
        row.locator("input[type=password]").fill("sandi-baru-operator-1")
        admin.submit(row.locator("button", has_text="Atur ulang"))
        assert "tidak terkunci lagi" in admin.page.inner_text("main")

        person.sign_in("operator.lupa", "sandi-baru-operator-1")
        assert person.page.url.endswith("/console/rujukan")
    finally:
        person.close()
        admin.close()


def test_sign_out_ends_the_session(accounts):
    session = signed_in_session(accounts, "petugas.uji", PASSWORD)
    token = csrf_of(session, f"{accounts.base_url}/console/rujukan")
    cookie = session.cookies.get("bersinar_sesi")
    out = session.post(
        f"{accounts.base_url}/console/keluar",
        data={"csrf": token},
        allow_redirects=False,
        timeout=10,
    )
    assert out.status_code == 303
    replayed = requests.get(
        f"{accounts.base_url}/console/rujukan",
        cookies={"bersinar_sesi": cookie},
        allow_redirects=False,
        timeout=10,
    )
    assert replayed.status_code == 303  # back to the sign-in page: the old cookie is dead


UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter(e => e.type !== 'hidden')
  .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
  .map(e => e.name || e.id)"""


def test_keyboard_alone_signs_in_and_every_field_has_a_label(accounts, browser, kipas_referral):
    person = Person(browser, accounts, "keyboard")
    try:
        person.go("/console/masuk")
        keyboard = person.page.keyboard
        for _ in range(6):  # Tab to the name field (past the skip link and the title)
            if person.page.evaluate("document.activeElement.id") == "username":
                break
            keyboard.press("Tab")
        keyboard.type("petugas.uji")
        keyboard.press("Tab")
        keyboard.type(PASSWORD)
        with person.page.expect_navigation():
            keyboard.press("Enter")
        assert person.page.url.endswith("/console/monev")
        keyboard.press("Tab")  # the first stop on every page: past the menu to the content
        assert person.page.evaluate("document.activeElement.textContent") == ("Lewati ke isi utama")
        keyboard.press("Enter")
        person.page.wait_for_function("location.hash === '#isi'")
        for path in staff_pages(kipas_referral):
            assert person.go(path).status == 200, path
            assert person.page.evaluate(UNLABELLED) == [], path
            assert person.page.get_attribute("html", "lang") == "id"
        person.go("/console/mitra")
        person.shot("22-petugas-mitra-pks")
    finally:
        person.close()


def test_an_officer_cancels_and_an_operator_sets_capacity_from_the_console(accounts):
    referral_id = place_by_api(accounts, "yayasan-dwin-foundation")

    def cancel(session, token, note="Klien pindah ke luar provinsi."):
        return session.post(
            f"{accounts.base_url}/console/rujukan/{referral_id}/batal",
            data={"csrf": token, "note": note},
            timeout=10,
        )

    officer = signed_in_session(accounts, "petugas.uji", PASSWORD)
    token = csrf_of(officer, f"{accounts.base_url}/console/rujukan/{referral_id}")
    # a cancellation is explained: without a reason it is refused at its field
    unexplained = cancel(officer, token, note="")
    assert unexplained.status_code == 422 and "Tulis alasan pembatalan." in unexplained.text
    assert status_of(accounts, referral_id) == "requested"
    cancelled = cancel(officer, token)
    assert cancelled.status_code == 200 and "Rujukan dibatalkan." in cancelled.text
    assert status_of(accounts, referral_id) == "cancelled"
    # an operator may not cancel (officers' action): refused, nothing changes
    operator = signed_in_session(accounts, "operator.dwin", PASSWORD)
    token = csrf_of(operator, f"{accounts.base_url}/console/mitra/yayasan-dwin-foundation")
    assert cancel(operator, token).status_code in (403, 409)

    services = accounts.get("/api/v1/partners/yayasan-dwin-foundation").json()["services"]
    fields = {f"capacity.{s['service_type']}": str(s["capacity"] + 2) for s in services}
    saved = operator.post(
        f"{accounts.base_url}/console/mitra/yayasan-dwin-foundation/kapasitas",
        data={"csrf": token, **fields},
        timeout=10,
    )
    assert saved.status_code == 200 and "Kapasitas disimpan." in saved.text
    after = accounts.get("/api/v1/partners/yayasan-dwin-foundation").json()["services"]
    assert {s["service_type"]: s["capacity"] for s in after} == {
        s["service_type"]: s["capacity"] + 2 for s in services
    }
