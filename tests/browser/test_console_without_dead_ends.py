"""The console never leaves a person stuck: lists keep their filters from page to page,
every refusal comes back on the form it came from with what was typed, every change of a
referral is asked for first with what it records, a transfer offers only partners that
may take the client, a session that ends keeps the form's values, people read names and
Indonesian words (not codes), a locked report month says why and the officer can open
it, accounts are chosen, disabled and locked without telling who exists, the charts read
on a phone. Desktop (1280) and phone (390) widths, screenshots kept."""

from __future__ import annotations

import http.client
import re
from urllib.parse import urlsplit

import pytest
import requests

from harness.data import referral_body
from harness.wait import eventually
from tests.browser.conftest import (
    PASSWORD,
    PERIOD,
    Person,
    csrf_of,
    set_clock,
    signed_in_session,
    staff_pages,
    status_of,
)
from tests.browser.test_console_rules import make_account

PHONE = {"width": 390, "height": 844}
# the day the clock shows in this module until the report lock test moves it on
TODAY = "2027-04-02"
LIST_PARTNER = "rsud-hasanuddin-damrah"
# notifikasi may still be working through the list test's 52 new referrals (each told by
# inbox, email and message) on a machine shared with other work
INBOX_WAIT = 90.0


@pytest.fixture(scope="module")
def people(system):
    set_clock(system, f"{TODAY}T09:00")
    make_account(system, "petugas.tanpa.buntu", "officer")
    make_account(system, "operator.kipas.dua", "partner", "yayasan-kipas")
    make_account(system, "operator.karunia", "partner", "yayasan-karunia-insani")
    system.kipas_key = system.new_key("partner", "yayasan-kipas", "kipas")
    return system


def place(system, partner_id="yayasan-kipas", sex="M", service_type="outpatient") -> str:
    made = system.post(
        "/api/v1/referrals", referral_body(partner_id, sex=sex, service_type=service_type)
    )
    assert made.status_code == 201, made.text
    return made.json()["id"]


def admitted_at_kipas(system, key: str | None = None) -> str:
    """A referral placed at yayasan-kipas, accepted and admitted with ``key`` (a kipas
    operator's; this module's own by default)."""
    referral_id = place(system)
    for action in ("accept", "admit"):
        moved = system.post(
            f"/api/v1/referrals/{referral_id}/{action}", {}, key=key or system.kipas_key
        )
        assert moved.status_code == 200, moved.text
    return referral_id


def count_listed(system, **filters) -> int:
    """How many referrals the API lists under ``filters``, walked page by page."""
    held, cursor = 0, None
    while True:
        query = {**filters, "limit": 200, **({"cursor": cursor} if cursor else {})}
        answer = system.get("/api/v1/referrals", params=query)
        assert answer.status_code == 200, answer.text
        held += len(answer.json()["items"])
        cursor = answer.json()["next_cursor"]
        if not cursor:
            return held


def status_line(system, path: str, cookie: str) -> str:
    """The raw HTTP status line, as a strict client or a proxy reads it."""
    where = urlsplit(system.base_url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=10)
    try:
        connection.request("GET", path, headers={"Cookie": f"bersinar_sesi={cookie}"})
        answer = connection.getresponse()
        return f"{answer.status} {answer.reason}"
    finally:
        connection.close()


# --- 1. lists: the status filter, filters kept across pages --------------------------


def test_a_filtered_list_keeps_its_filters_from_page_to_page(people, browser):
    for _ in range(52):
        place(people, LIST_PARTNER)
    session = signed_in_session(people, "petugas.tanpa.buntu", PASSWORD)
    cookie = session.cookies.get("bersinar_sesi")
    # the page's status filter once became the HTTP status: "HTTP/1.1 0 admitted"
    assert status_line(people, "/console/rujukan?status=admitted", cookie) == "200 OK"
    assert status_line(people, "/console/rujukan?status=requested", cookie) == "200 OK"

    for width, viewport in (("desktop", None), ("ponsel", PHONE)):
        officer = Person(browser, people, f"petugas-daftar-{width}", viewport=viewport)
        try:
            officer.sign_in("petugas.tanpa.buntu", PASSWORD)
            page = officer.page
            officer.go("/console/rujukan")
            page.select_option("#status", "requested")
            page.select_option("#mitra", LIST_PARTNER)
            officer.submit("button:has-text('Tampilkan')")
            rows = page.locator("table.list tbody tr")
            assert rows.count() == 50
            assert "Halaman 1" in page.inner_text(".pager")
            held = count_listed(people, status="requested", partner_id=LIST_PARTNER)
            assert held >= 52
            pages = -(-held // 50)
            total = f"{held:,}".replace(",", ".")
            shown = f"Rujukan 1–50 dari {total}; halaman 1 dari {pages}"
            assert shown in page.inner_text("#rujukan-total")
            officer.shot(f"30-daftar-tersaring-hal-1-{width}")
            officer.submit("a:has-text('Halaman berikutnya')")
            assert "status=requested" in page.url and f"mitra={LIST_PARTNER}" in page.url
            assert page.input_value("#status") == "requested"
            assert page.input_value("#mitra") == LIST_PARTNER
            assert "Halaman 2" in page.inner_text(".pager")
            assert f"Rujukan 51–{min(held, 100)} dari {total}" in page.inner_text("#rujukan-total")
            assert rows.count() >= 2
            for text in rows.all_inner_texts():
                assert "Menunggu jawaban" in text
                if width == "desktop":
                    assert "RSUD Hasanuddin Damrah" in text
            officer.shot(f"31-daftar-tersaring-hal-2-{width}")
            officer.submit("a:has-text('Halaman sebelumnya')")
            assert "Halaman 1" in page.inner_text(".pager")
            assert page.input_value("#status") == "requested" and rows.count() == 50
        finally:
            officer.close()


# --- 2. and 3. every refusal on its form; every change asked for first -------------------


def test_a_rejection_is_confirmed_and_each_refusal_stays_on_its_form(people, browser):
    referral_id = place(people)
    operator = Person(browser, people, "operator-tolak", viewport=PHONE)
    try:
        operator.sign_in("operator.kipas.dua", PASSWORD)
        page = operator.page
        row = page.locator("tr", has=page.locator(f"a[href$='{referral_id}']"))
        operator.submit(row.locator("a", has_text="Tolak"))
        assert page.inner_text("h1") == "Tolak rujukan?"
        assert status_of(people, referral_id) == "requested"  # asking changes nothing
        operator.shot("32-konfirmasi-tolak-ponsel")

        answer = None
        with page.expect_navigation() as navigation:
            page.click("button:has-text('Ya, tolak')")
        answer = navigation.value
        assert answer.status == 422
        assert page.inner_text("h1") == "Tolak rujukan?"  # the form, not an error page
        assert "Pilih alasan penolakan." in page.inner_text("#err-reason")
        assert "Isian tidak valid" not in page.inner_text("main")

        page.select_option("#reason", "other")
        operator.submit("button:has-text('Ya, tolak')")
        assert "Tulis alasannya bila memilih Alasan lain." in page.inner_text("#err-note")
        assert page.input_value("#reason") == "other"  # what was chosen is kept
        assert page.get_attribute("#note", "aria-invalid") == "true"
        operator.shot("33-tolak-tanpa-alasan-ponsel")
        assert status_of(people, referral_id) == "requested"

        page.fill("#note", "Klien meminta dirujuk ke tempat yang lebih dekat.")
        operator.submit("button:has-text('Ya, tolak')")
        assert "Rujukan ditolak." in page.inner_text("main")
        assert page.url.endswith("/console/rujukan?pesan=reject")  # back to the list
        assert status_of(people, referral_id) == "rejected"
        operator.go(f"/console/rujukan/{referral_id}")
        history = page.inner_text(".history")
        assert "Alasan lain" in history and "lebih dekat" in history
        assert "Operator Kipas Dua (Operator mitra)" in history
        assert "partner:user:" not in history
    finally:
        operator.close()


def test_the_admission_asks_its_date_and_refuses_a_day_to_come(people, browser):
    referral_id = place(people)
    accepted = people.post(f"/api/v1/referrals/{referral_id}/accept", {}, key=people.kipas_key)
    assert accepted.status_code == 200
    # the API takes the same day, refused at its field
    future = people.post(
        f"/api/v1/referrals/{referral_id}/admit",
        {"admitted_on": "2027-04-03"},
        key=people.kipas_key,
    )
    assert future.status_code == 422
    assert "admitted_on" in future.json()["errors"]

    operator = Person(browser, people, "operator-masuk")
    try:
        operator.sign_in("operator.kipas.dua", PASSWORD)
        page = operator.page
        operator.go(f"/console/rujukan/{referral_id}")
        operator.submit("a:has-text('Klien masuk')")
        assert page.inner_text("h1") == "Catat klien masuk layanan?"
        assert page.input_value("#admitted_on") == TODAY
        page.fill("#admitted_on", "2027-04-03")
        operator.submit("button:has-text('Ya, catat masuk')")
        assert "setelah hari ini" in page.inner_text("#err-admitted_on")
        assert page.input_value("#admitted_on") == "2027-04-03"
        operator.shot("34-masuk-tanggal-salah")
        assert status_of(people, referral_id) == "accepted"
        page.fill("#admitted_on", TODAY)
        operator.submit("button:has-text('Ya, catat masuk')")
        assert "Klien tercatat masuk layanan." in page.inner_text("main")
        assert "2 April 2027" in page.inner_text("main")  # Masuk layanan
        # a drop-out says why, or is refused at the reason
        operator.submit("a:has-text('Putus layanan')")
        assert page.inner_text("h1") == "Catat klien putus layanan?"
        operator.submit("button:has-text('Ya, catat putus layanan')")
        assert "Tulis alasan klien putus layanan." in page.inner_text("#err-note")
        operator.submit("a:has-text('Tidak, kembali')")
        assert page.url.endswith(f"/console/rujukan/{referral_id}")
        assert status_of(people, referral_id) == "admitted"
    finally:
        operator.close()


# --- 4. a transfer offers only eligible partners; a refused one stays on its form --------


def test_a_transfer_offers_only_partners_that_may_take_the_client(people, browser):
    referral_id = admitted_at_kipas(people)
    matches = people.get(
        "/api/v1/partners/match", params={"sex": "M", "service_type": "outpatient"}
    ).json()["items"]
    eligible = {m["partner_id"] for m in matches} - {"yayasan-kipas"}
    officer = Person(browser, people, "petugas-alihkan")
    try:
        officer.sign_in("petugas.tanpa.buntu", PASSWORD)
        page = officer.page
        officer.go(f"/console/rujukan/{referral_id}")
        officer.submit("a:has-text('Alihkan')")
        offered = set(page.eval_on_selector_all("#partner_id option", "o => o.map(x => x.value)"))
        assert offered - {""} == eligible
        assert "yayasan-karunia-insani" not in offered  # serves women only
        officer.shot("35-alihkan-mitra-layak")
    finally:
        officer.close()

    # a partner that may not take him, sent anyway: the form again, at the partner field
    session = signed_in_session(people, "petugas.tanpa.buntu", PASSWORD)
    address = f"{people.base_url}/console/rujukan/{referral_id}/alihkan"
    refused = session.post(
        address,
        data={
            "csrf": csrf_of(session, address),
            "partner_id": "yayasan-karunia-insani",
            "note": "Dekat rumah keluarga.",
            "consent": "ya",
            "outcome": "referred_onward",
            "reasons": ["relocation", "transferred_to_partner"],
        },
        timeout=10,
    )
    assert 400 <= refused.status_code < 500
    assert "Alihkan klien ke mitra lain?" in refused.text
    assert "tidak melayani klien dengan jenis kelamin ini" in refused.text
    assert 'id="err-partner_id"' in refused.text
    assert "Dekat rumah keluarga." in refused.text  # the reason typed is kept
    assert 'value="relocation" checked' in refused.text  # and the summary ticked
    assert status_of(people, referral_id) == "admitted"


def test_a_transfer_asks_consent_to_disclose_to_the_new_partner(people, browser):
    referral_id = admitted_at_kipas(people)
    target = next(
        m["partner_id"]
        for m in people.get(
            "/api/v1/partners/match", params={"sex": "M", "service_type": "outpatient"}
        ).json()["items"]
        if m["partner_id"] != "yayasan-kipas"
    )
    for width, viewport in (("desktop", None), ("ponsel", PHONE)):
        officer = Person(browser, people, f"petugas-alihkan-setuju-{width}", viewport=viewport)
        try:
            officer.sign_in("petugas.tanpa.buntu", PASSWORD)
            page = officer.page
            officer.go(f"/console/rujukan/{referral_id}/alihkan")
            page.select_option("#partner_id", target)
            page.fill("#note", "Dekat rumah keluarga.")
            page.select_option("#outcome", "referred_onward")
            page.check("input[name=reasons][value=relocation]")
            if width == "desktop":  # without the box: refused at the box, values kept
                officer.submit("button:has-text('Ya, alihkan')")
                assert "persetujuan klien atau walinya" in page.inner_text("#err-consent")
                assert page.input_value("#partner_id") == target
                assert page.input_value("#note") == "Dekat rumah keluarga."
                officer.shot("36-alihkan-tanpa-persetujuan")
                assert status_of(people, referral_id) == "admitted"
                continue
            page.check("input[name=consent]")
            page.select_option("#given_by", "guardian")  # the family speaks for him
            page.fill("#guardian_name", "Budi Wali")
            page.select_option("#guardian_relationship", "sibling")
            officer.shot("37-alihkan-dengan-persetujuan-ponsel")
            officer.submit("button:has-text('Ya, alihkan')")
            assert status_of(people, referral_id) == "transferred"
        finally:
            officer.close()
    moved = people.get(f"/api/v1/referrals/{referral_id}").json()
    successor = people.get(f"/api/v1/referrals/{moved['transferred_to_id']}").json()
    assert successor["partner_id"] == target
    # the new partner holds the consent given on the transfer form, not a copy of the old
    assert moved["consent"]["given_by"] == "client"
    assert successor["consent"]["given_by"] == "guardian"
    assert successor["consent"]["guardian_name"] == "Budi Wali"


# --- 4. a session that ends keeps the form; lanjut= never names a POST-only address -----


def test_a_post_after_the_session_ended_asks_to_sign_in_and_names_the_forms_page(people):
    referral_id = place(people)
    for posted, page_address in (
        (
            f"/console/laporan/yayasan-kipas/{PERIOD}/kembalikan",
            f"/console/laporan/yayasan-kipas/{PERIOD}",
        ),
        (f"/console/rujukan/{referral_id}/terima", f"/console/rujukan/{referral_id}/terima"),
        ("/console/mitra/yayasan-kipas/kapasitas", "/console/mitra/yayasan-kipas"),
    ):
        answer = requests.post(people.base_url + posted, data={"note": "x"}, timeout=10)
        assert answer.status_code == 401
        assert "Sesi Anda sudah berakhir" in answer.text
        assert f'name="lanjut" value="{page_address}"' in answer.text
    session = signed_in_session(people, "operator.kipas.dua", PASSWORD)
    assert session.get(f"{people.base_url}/console/rujukan/{referral_id}/terima").status_code == 200
    assert status_of(people, referral_id) == "requested"


# --- 6. and 4. and 5. a locked month: why, the officer reopens it, a late report whose
# session ended on the way, returned with a banner; histories in words --------------------


def test_a_locked_month_is_explained_reopened_and_sent_late_after_signing_in_again(people, browser):
    partner, report = "yayasan-karunia-insani", f"/console/laporan/yayasan-karunia-insani/{PERIOD}"
    set_clock(people, "2027-05-03T09:00")  # March locked after 30 April
    operator = Person(browser, people, "operator-karunia", viewport=PHONE)
    officer = Person(browser, people, "petugas-buka")
    try:
        operator.sign_in("operator.karunia", PASSWORD)
        page = operator.page
        operator.go(f"/console/laporan?periode={PERIOD}")
        operator.submit("a:has-text('Lihat (terkunci)')")
        assert "Periode ini terkunci" in page.inner_text("#terkunci")
        assert "minta petugas BNNP membuka kembali" in page.inner_text("#terkunci")
        assert page.locator("button:has-text('Kirim laporan')").count() == 0
        operator.shot("36-laporan-terkunci-ponsel")

        officer.sign_in("petugas.tanpa.buntu", PASSWORD)
        officer.go(f"/console/laporan?periode={PERIOD}")
        row = officer.page.locator("tr", has_text="Yayasan Karunia Insani")
        officer.submit(row.locator("a", has_text="Lihat / buka kembali"))
        officer.page.fill("#reopen-comment", "Mitra terkendala listrik padam.")
        officer.submit("button:has-text('Buka kembali periode ini')")
        assert "Periode dibuka kembali" in officer.page.inner_text("main")
        officer.shot("37-petugas-buka-kembali")

        operator.go(report)
        assert page.locator("#terkunci").count() == 0
        # the report form fits a phone, its table of counts too (no sideways scrolling)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        table = page.eval_on_selector("table.counts", "t => [t.scrollWidth, t.clientWidth]")
        assert table[0] <= table[1], table
        assert (
            page.eval_on_selector("table.counts", "t => t.getBoundingClientRect().right")
            <= (PHONE["width"])
        )
        page.fill("#narrative", "Laporan terlambat karena listrik padam seminggu.")
        page.fill("[name='services_delivered.counselling_sessions']", "4")
        # the session ends while the form is being filled in
        operator.context.clear_cookies()
        with page.expect_navigation() as navigation:
            page.click("button:has-text('Kirim laporan')")
        assert navigation.value.status == 401
        assert "isian Anda tidak hilang" in page.inner_text("#sesi-berakhir")
        operator.shot("38-sesi-berakhir-ponsel")
        page.fill("#username", "operator.karunia")
        page.fill("#password", PASSWORD)
        operator.submit("button[type=submit]")
        assert "Isian Anda dikembalikan" in page.inner_text("main")
        assert page.input_value("#narrative").startswith("Laporan terlambat karena listrik")
        assert page.input_value("[name='services_delivered.counselling_sessions']") == "4"
        operator.shot("39-isian-dikembalikan-ponsel")
        operator.submit("button:has-text('Kirim laporan')")
        assert "Laporan terkirim." in page.inner_text("main")
        assert "Dikirim terlambat" in page.inner_text("main")

        officer.go(report)
        officer.page.fill("#return-comment", "Jumlah sesi konseling mohon dicek ulang.")
        officer.submit("button:has-text('Kembalikan ke mitra')")

        operator.go(report)
        banner = page.inner_text("#catatan-pengembalian")
        assert "Jumlah sesi konseling mohon dicek ulang." in banner
        assert "Petugas Tanpa Buntu" in banner
        history = page.inner_text(".history")
        for word in ("Dibuka kembali", "Dikirim", "Dikembalikan ke mitra", "Operator Karunia"):
            assert word in history
        for code in ("submitted", "returned", "reopened", "officer:", "partner:user"):
            assert code not in history
        operator.shot("40-laporan-dikembalikan-ponsel")

        # the inbox: months and partners by name
        def inbox_names_the_month():
            operator.go("/console/notifikasi")
            return "Maret 2027" in page.inner_text("main")

        eventually(inbox_names_the_month, "a notification about the March report", INBOX_WAIT)
        inbox = page.inner_text(".inbox")
        assert PERIOD not in inbox and "Maret 2027" in inbox
        assert partner not in inbox
        operator.shot("41-notifikasi-ponsel")
    finally:
        set_clock(people, f"{TODAY}T09:00")
        operator.close()
        officer.close()


def test_referrals_in_the_inbox_are_links(people, browser):
    place(people)
    operator = Person(browser, people, "operator-kotak-masuk")
    try:
        operator.sign_in("operator.kipas.dua", PASSWORD)
        links = operator.page.locator(".inbox a[href^='/console/rujukan/']")

        def inbox_has_a_referral():
            operator.go("/console/notifikasi")
            return links.count() > 0

        eventually(inbox_has_a_referral, "the new referral in the operator's inbox", INBOX_WAIT)
        link = links.first
        assert re.fullmatch(r"[0-9a-f]{8}", link.inner_text())
        operator.submit(link)
        assert operator.page.inner_text("h1") == "Rincian rujukan"
    finally:
        operator.close()


# --- 7. accounts ------------------------------------------------------------------------


def test_the_role_of_a_new_account_is_chosen_not_defaulted(people, browser):
    admin = Person(browser, people, "admin-peran")
    try:
        admin.sign_in("admin", people.console_admin_password)
        admin.go("/console/pengguna")
        page = admin.page
        assert page.input_value("#role") == ""
        page.fill("#username", "pengguna.tanpa.peran")
        page.fill("#full_name", "Tanpa Peran")
        page.fill("#password", PASSWORD)
        admin.submit("button:has-text('Tambah pengguna')")
        assert "Pilih peran." in page.inner_text("#err-role")
        assert page.input_value("#username") == "pengguna.tanpa.peran"
        assert "pengguna.tanpa.peran" not in page.inner_text("main table")
        admin.shot("42-pengguna-tanpa-peran")
    finally:
        admin.close()


def test_an_account_can_be_disabled_and_enabled_again(people, browser):
    make_account(people, "operator.cuti", "partner", "yayasan-kipas")
    person = Person(browser, people, "operator-cuti")
    admin = Person(browser, people, "admin-nonaktif")
    try:
        person.sign_in("operator.cuti", PASSWORD)
        assert person.page.url.endswith("/console/rujukan")

        admin.sign_in("admin", people.console_admin_password)
        admin.go("/console/pengguna")
        row = admin.page.locator("tr", has_text="operator.cuti")
        admin.submit(row.locator("button", has_text="Nonaktifkan"))
        assert "Akun dinonaktifkan" in admin.page.inner_text("main")
        assert "(nonaktif)" in admin.page.locator("tr", has_text="operator.cuti").inner_text()
        admin.shot("43-pengguna-nonaktif")

        person.go("/console/rujukan")  # its session ended with it
        assert "/console/masuk" in person.page.url
        person.sign_in("operator.cuti", PASSWORD)
        assert "dinonaktifkan" in person.page.inner_text("main")

        admin.go("/console/pengguna")
        row = admin.page.locator("tr", has_text="operator.cuti")
        admin.submit(row.locator("button", has_text="Aktifkan"))
        person.sign_in("operator.cuti", PASSWORD)
        assert person.page.url.endswith("/console/rujukan")
    finally:
        person.close()
        admin.close()


def test_a_locked_account_and_an_unknown_name_get_the_same_answer(people):
    make_account(people, "operator.terkunci", "partner", "yayasan-kipas")

    def attempt(username):
        session = requests.Session()
        form = session.get(f"{people.base_url}/console/masuk", timeout=10)
        token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        answer = session.post(
            f"{people.base_url}/console/masuk",
            data={"csrf": token, "username": username, "password": "bukan-sandinya-9"},
            timeout=10,
        )
        message = re.search(r'<div class="error-box" role="alert">(.*?)</div>', answer.text, re.S)
        return answer.status_code, message.group(1).strip()

    for _ in range(3):  # CONSOLE_LOCK_AFTER of this system
        attempt("operator.terkunci")
    assert attempt("operator.terkunci") == attempt("tidak.ada.orangnya")


CONTRAST = """([a, b]) => {
  const lum = c => { const v = c.match(/[0-9.]+/g).slice(0, 3).map(Number).map(x => x / 255)
    .map(x => x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4);
    return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; };
  const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}"""


@pytest.mark.parametrize("width, viewport", [("desktop", None), ("ponsel", PHONE)])
def test_focus_is_seen_and_the_menu_marks_the_current_page(people, browser, width, viewport):
    officer = Person(browser, people, f"petugas-fokus-{width}", viewport=viewport)
    try:
        officer.sign_in("petugas.tanpa.buntu", PASSWORD)
        page = officer.page
        officer.go("/console/rujukan/baru")
        current = page.locator("nav a[aria-current=page]")
        assert current.count() == 1 and current.inner_text() == "Rujukan baru"
        officer.go("/console/rujukan")
        assert page.locator("nav a[aria-current=page]").inner_text() == "Rujukan"
        # the focus ring against the page (white) and against the menu bar (dark blue)
        page.focus("#status")
        ring = page.eval_on_selector("#status", "e => getComputedStyle(e).outlineColor")
        assert page.evaluate(CONTRAST, [ring, "rgb(255, 255, 255)"]) >= 3
        page.focus("nav a[aria-current=page]")
        halo = page.eval_on_selector(
            "nav a[aria-current=page]", "e => getComputedStyle(e).boxShadow"
        )
        header = page.eval_on_selector("header.top", "e => getComputedStyle(e).backgroundColor")
        assert page.evaluate(CONTRAST, [halo, header]) >= 3
        officer.shot(f"44-menu-dan-fokus-{width}")
    finally:
        officer.close()


# --- 8. charts ------------------------------------------------------------------------

# the value axis of each chart: its labels, left to right, [left, right] in px
VALUE_AXES = """() => [...document.querySelectorAll('figure svg')].map(svg =>
  [...svg.querySelectorAll('.axis.x text')].filter(t => t.textContent.trim())
    .map(t => { const r = t.getBoundingClientRect(); return [r.left, r.right]; })
    .sort((a, b) => a[0] - b[0]))"""
TEXT_SIZES = """() => [...document.querySelectorAll('figure svg')].flatMap(svg => {
  const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
  return [...svg.querySelectorAll('text')].filter(t => t.textContent.trim())
    .map(t => parseFloat(getComputedStyle(t).fontSize) * scale);
})"""


@pytest.mark.parametrize("width, viewport", [("desktop", None), ("ponsel", PHONE)])
def test_charts_read_at_both_widths(people, browser, width, viewport):
    officer = Person(browser, people, f"petugas-grafik-{width}", viewport=viewport)
    try:
        officer.sign_in("petugas.tanpa.buntu", PASSWORD)
        officer.go(f"/console/monev?periode={TODAY[:7]}")
        page = officer.page
        sizes = page.evaluate(TEXT_SIZES)
        assert sizes and min(sizes) >= 11, min(sizes)
        assert (
            page.evaluate("document.documentElement.scrollWidth")
            <= (viewport or {"width": 1280})["width"]
        )
        for axis in page.evaluate(VALUE_AXES):  # no tick label runs into the next
            assert all(a[1] <= b[0] for a, b in zip(axis, axis[1:], strict=False)), axis
        times = page.inner_text("#waktu-respons")
        assert "0,0" not in times
        # the funnel's bars run top-down in the order of its table
        labels = page.eval_on_selector_all(
            "#corong svg .axis.y text",
            "ts => ts.map(t => [t.getBoundingClientRect().top, t.textContent])",
        )
        drawn = [name for _, name in sorted(labels)]
        assert drawn == ["Diminta", "Diterima", "Masuk layanan", "Selesai", "Putus layanan"]
        officer.shot(f"45-monev-grafik-{width}")
    finally:
        officer.close()


def test_an_action_overtaken_by_another_is_refused_on_its_form(people):
    referral_id = place(people)
    session = signed_in_session(people, "operator.kipas.dua", PASSWORD)
    address = f"{people.base_url}/console/rujukan/{referral_id}/terima"
    token = csrf_of(session, address)  # the confirmation page is open...
    cancelled = people.post(f"/api/v1/referrals/{referral_id}/cancel", {"note": "Batal."})
    assert cancelled.status_code == 200  # ...when an officer cancels the referral
    refused = session.post(address, data={"csrf": token, "note": "Siap."}, timeout=10)
    assert refused.status_code == 409
    assert "Terima rujukan?" in refused.text and 'class="error-box"' in refused.text
    assert "Siap." in refused.text
    assert status_of(people, referral_id) == "cancelled"


# --- every page: axe-core finds nothing serious -------------------------------------------

SERIOUS = ("serious", "critical")


def serious_violations(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page).response["violations"]
    return [
        f"{v['id']}: {[n['target'] for n in v['nodes']][:3]}"
        for v in found
        if v.get("impact") in SERIOUS
    ]


@pytest.mark.parametrize("width, viewport", [("desktop", None), ("ponsel", PHONE)])
def test_no_page_has_a_serious_accessibility_violation(people, browser, width, viewport):
    referral_id = admitted_at_kipas(people)
    requested_id = place(people)
    pages = {
        ("admin", people.console_admin_password): ["/console/pengguna", "/console/audit"],
        ("petugas.tanpa.buntu", PASSWORD): [
            *staff_pages(referral_id),
            f"/console/monev?periode={PERIOD}",
            f"/console/rujukan/{referral_id}/alihkan",
            f"/console/rujukan/{requested_id}/batal",
            "/console/mitra/yayasan-kipas/kegiatan",
            "/console/tidak-ada",
        ],
        ("operator.kipas.dua", PASSWORD): [
            "/console/rujukan",
            f"/console/rujukan/{requested_id}/terima",
            f"/console/rujukan/{requested_id}/tolak",
            f"/console/rujukan/{referral_id}/selesai",
            f"/console/laporan/yayasan-kipas/{PERIOD}",
            "/console/mitra/yayasan-kipas/kegiatan",
            "/console/notifikasi",
        ],
    }
    found: dict[str, list[str]] = {}
    anonymous = Person(browser, people, f"axe-masuk-{width}", viewport=viewport)
    try:
        anonymous.go("/console/masuk")
        found["/console/masuk"] = serious_violations(anonymous.page)
    finally:
        anonymous.close()
    for (username, password), paths in pages.items():
        person = Person(browser, people, f"axe-{username}-{width}", viewport=viewport)
        try:
            person.sign_in(username, password)
            for path in paths:
                person.go(path)
                found[f"{username} {path}"] = serious_violations(person.page)
        finally:
            person.close()
    assert {page: v for page, v in found.items() if v} == {}
