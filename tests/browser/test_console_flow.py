"""The issue's flow, by people in a browser and nothing else: the admin makes the
accounts, an officer places a referral (refused first without consent and with a NIK
that does not match the birth date, before any partner is chosen), the operator accepts
and admits it, submits the prefilled monthly report (refused first for one wrong figure,
shown at its row), the officer approves it and the dashboard shows it."""

from __future__ import annotations

import csv
import io
import re

import openpyxl

from harness.wait import eventually
from tests.browser.conftest import PASSWORD, PERIOD, Person, set_clock

CLIENT_NAME = "Budi Santoso"
NIK = "1771050501900001"  # a man born 1990-01-05
WRONG_NIK = "1771050602900001"  # 06-02-1990: not his birth date


def table_rows(person, selector) -> list[list[str]]:
    """The cells of a table's body, read even where the table is folded away."""
    return person.page.eval_on_selector(
        selector,
        "t => [...t.tBodies[0].rows].map(r => [...r.cells].map(c => c.textContent.trim()))",
    )


def funnel(person) -> dict[str, int]:
    """The referral funnel of the month on the dashboard: stage -> count (0 if absent)."""
    if person.page.locator("#tabel-corong").count() == 0:
        return {"Diminta": 0, "Masuk layanan": 0}
    counts = {stage: int(count) for stage, count in table_rows(person, "#tabel-corong")}
    return {"Diminta": 0, "Masuk layanan": 0, **counts}


def text_of(person, selector) -> str:
    return person.page.inner_text(selector)


def test_a_referral_from_placement_to_the_dashboard(system, browser):
    admin = Person(browser, system, "admin")
    officer = Person(browser, system, "petugas")
    operator = Person(browser, system, "operator")
    try:
        # --- the admin makes an officer and an operator of Yayasan Pesona ------------
        admin.sign_in("admin", system.console_admin_password)
        admin.go("/console/pengguna")
        for username, name, role, partner in (
            ("petugas.rina", "Rina Marlina", "officer", ""),
            ("operator.pesona", "Sari Operator Pesona", "partner", "yayasan-pesona"),
        ):
            admin.page.fill("#username", username)
            admin.page.fill("#full_name", name)
            admin.page.select_option("#role", role)
            admin.page.select_option("#partner_id", partner)
            admin.page.fill("#password", PASSWORD)
            admin.submit("button:has-text('Tambah pengguna')")
            assert "Pengguna dibuat." in text_of(admin, "main")
        assert "operator.pesona" in text_of(admin, "main table")
        admin.shot("01-admin-pengguna")

        # --- the officer places a referral --------------------------------------------
        officer.sign_in("petugas.rina", PASSWORD)
        assert officer.page.url.endswith("/console/monev")
        # other suites of this system may have placed referrals in the month: this one's
        # are counted on top of theirs
        officer.go(f"/console/monev?periode={PERIOD}")
        before = funnel(officer)
        officer.go("/console/rujukan/baru")
        officer.shot("02-petugas-rujukan-baru")
        page = officer.page
        page.fill("#nik", WRONG_NIK)
        page.fill("#name", CLIENT_NAME)
        page.fill("#birth_date", "1990-01-05")
        page.check("input[name=sex][value=M]")
        page.select_option("#service_type", "outpatient")
        page.select_option("#kabupaten_kota", "Kota Bengkulu")
        officer.submit("button:has-text('Cari mitra yang sesuai')")
        # no consent: refused at the consent field, nothing sent to rujukan
        assert "persetujuan klien" in page.inner_text("#err-consent")
        page.check("input[name=consent]")
        officer.submit("button:has-text('Cari mitra yang sesuai')")
        # rujukan checks the NIK against the birth date before a partner is chosen: the
        # form comes back, at the field
        assert "NIK tidak sesuai dengan tanggal lahir" in page.inner_text("#err-nik")
        assert page.input_value("#name") == CLIENT_NAME
        officer.shot("03-petugas-nik-salah")
        page.fill("#nik", NIK)
        officer.submit("button:has-text('Cari mitra yang sesuai')")
        officer.shot("04-petugas-pilih-mitra")
        page.check("#p-yayasan-pesona")
        officer.submit("button:has-text('Buat rujukan')")
        assert "Rujukan dibuat" in text_of(officer, "main")
        referral_id = re.search(r"/console/rujukan/([^/?]+)", page.url).group(1)
        assert NIK in text_of(officer, "main")  # the officer who placed it sees who it is
        officer.shot("05-petugas-rincian-rujukan")

        # --- the operator answers it from the inbox, each step confirmed ----------------
        operator.sign_in("operator.pesona", PASSWORD)
        assert operator.page.url.endswith("/console/rujukan")
        row = operator.page.locator("tr", has=operator.page.locator(f"a[href$='{referral_id}']"))
        assert "Menunggu jawaban" in row.inner_text()
        operator.shot("06-operator-rujukan-masuk")
        operator.submit(row.locator("a", has_text="Terima"))
        assert "Terima rujukan?" in text_of(operator, "h1")
        operator.submit("button:has-text('Ya, terima')")
        assert "Rujukan diterima." in text_of(operator, "main")
        row = operator.page.locator("tr", has=operator.page.locator(f"a[href$='{referral_id}']"))
        operator.submit(row.locator("a", has_text="Klien masuk"))
        assert operator.page.input_value("#admitted_on") == "2027-03-15"  # today, by default
        operator.submit("button:has-text('Ya, catat masuk')")
        assert "Klien tercatat masuk layanan." in text_of(operator, "main")
        row = operator.page.locator("tr", has=operator.page.locator(f"a[href$='{referral_id}']"))
        assert "Dalam layanan" in row.inner_text()
        operator.shot("07-operator-klien-masuk")

        # the same inbox on a phone
        phone = Person(browser, system, "operator-hp", viewport={"width": 390, "height": 844})
        try:
            phone.sign_in("operator.pesona", PASSWORD)
            assert "Dalam layanan" in text_of(phone, "main")
            phone.shot("08-operator-rujukan-di-ponsel")
            phone.go("/console/notifikasi")
            assert "Notifikasi" in text_of(phone, "h1")
            phone.shot("09-operator-notifikasi-di-ponsel")
        finally:
            phone.close()

        # --- after the month: the prefilled report, one mistake, then sent -------------
        eventually(
            lambda: (
                system.get(f"/api/v1/reports/yayasan-pesona/{PERIOD}")
                .json()["prefill"]["total"]
                .get("admitted")
                == 1
            ),
            "laporan to count the admission",
        )
        set_clock(system, "2027-04-02T09:00")
        operator.go(f"/console/laporan?periode={PERIOD}")
        operator.shot("10-operator-daftar-laporan")
        operator.submit("a:has-text('Isi / kirim')")
        page = operator.page
        assert page.input_value("[name='total.admitted']") == "1"
        assert page.input_value("[name='total.end']") == "1"
        assert page.input_value("[name='by_sex.M.admitted']") == "1"
        operator.shot("11-operator-laporan-terisi")
        page.fill("[name='total.end']", "2")  # the mistake
        page.fill("#narrative", "Satu klien rawat jalan masuk bulan ini; konseling berjalan.")
        operator.submit("button:has-text('Kirim laporan')")
        total_error = page.inner_text("#err-total")
        assert "bukan akhir 2" in total_error
        assert "Laporan belum dapat dikirim" in page.inner_text("#ringkasan-galat")
        assert page.get_attribute("[name='total.end']", "aria-invalid") == "true"
        operator.shot("12-operator-laporan-galat")
        page.fill("[name='total.end']", "1")
        operator.submit("button:has-text('Kirim laporan')")
        assert "Laporan terkirim." in text_of(operator, "main")
        assert "Dikirim tepat waktu" in text_of(operator, "main")
        operator.shot("13-operator-laporan-terkirim")

        # --- the officer approves; the dashboard shows it -----------------------------
        officer.go(f"/console/laporan?periode={PERIOD}")
        row = officer.page.locator("tr", has_text="Yayasan Pesona")
        assert "Dikirim tepat waktu" in row.inner_text()
        officer.shot("14-petugas-daftar-laporan")
        officer.submit(row.locator("text=Periksa"))
        officer.submit("button:has-text('Setujui laporan')")
        assert "Laporan disetujui." in text_of(officer, "main")
        officer.shot("15-petugas-laporan-disetujui")

        officer.go(f"/console/monev?periode={PERIOD}")
        after = funnel(officer)
        assert after["Diminta"] == before["Diminta"] + 1
        assert after["Masuk layanan"] == before["Masuk layanan"] + 1
        grid = officer.page.locator("#tabel-kepatuhan tr", has_text="Yayasan Pesona")
        assert "Disetujui (tepat waktu)" in grid.inner_text()
        for drawn in ("corong", "waktu-respons", "okupansi"):
            assert officer.page.locator(f"#{drawn} figure svg").count() == 1, drawn
        # the rates of leaving care: drawn once someone left care in the month (other
        # browser suites end care on this system), else said in words
        exits = officer.page.eval_on_selector_all(
            "#tabel-hasil tbody td:nth-child(4)", "cells => cells.map(c => c.textContent)"
        )
        if any(int(n) > 0 for n in exits):
            assert officer.page.locator("#hasil figure svg").count() == 1
        else:
            assert "Belum ada angka untuk digambar" in text_of(officer, "#hasil")
        officer.shot("16-petugas-monev")
        download = officer.context.request.get(
            f"{system.base_url}/console/monev/corong.csv?periode={PERIOD}"
        )
        assert download.status == 200
        assert download.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(download.text())))
        assert rows[0] == ["Tahap", "Jumlah"] and ["Diminta", str(after["Diminta"])] in rows
        # the same table as a workbook: a number is a number there
        workbook = officer.context.request.get(
            f"{system.base_url}/console/monev/corong.xlsx?periode={PERIOD}"
        )
        assert workbook.status == 200
        sheet = openpyxl.load_workbook(io.BytesIO(workbook.body())).worksheets[0]
        assert [c.value for c in sheet[1]] == ["Tahap", "Jumlah"]
        assert ("Diminta", after["Diminta"]) in list(sheet.iter_rows(min_row=2, values_only=True))

        # no client identity in any address any of them visited, nor in any log line
        for person in (admin, officer, operator):
            for url in person.visited:
                assert NIK not in url and WRONG_NIK not in url
                assert "Budi" not in url and "Santoso" not in url
        for log in system.log_dir.glob("*.log"):
            written = log.read_text(errors="replace")
            assert NIK not in written and WRONG_NIK not in written, log.name
            assert CLIENT_NAME not in written, log.name
    finally:
        for person in (admin, officer, operator):
            person.close()
