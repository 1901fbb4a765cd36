"""The printed documents (gateway/documents): the letter number's scheme, and the PDFs
themselves, read back as text and drawn as a picture (tests/support/pdf.py) to show the
words are there and the page is not blank."""

from __future__ import annotations

from datetime import date

import pytest

from gateway.documents.letter import console_url, render_letter
from gateway.documents.pdf import Letterhead
from gateway.documents.report import render_report
from services.rujukan.domain import LetterNumbering, id_prefix_of, short_code
from tests.support.pdf import read_pdf

HEAD = Letterhead(address="Jl. Contoh, Kota Bengkulu", public_base_url="https://bersinar.example")
REFERRAL_ID = "0b9f3c2e-5d1a-4c1e-9f0a-1234567890ab"
PARTNER = {
    "name": "Yayasan Karunia Insani Foundation",
    "address": "Jl. Merdeka No. 5, Curup",
    "kabupaten_kota": "Rejang Lebong",
}
REFERRAL = {
    "id": REFERRAL_ID,
    "status": "requested",
    "partner_id": "yayasan-karunia-insani",
    "service_type": "inpatient",
    "source": "TAT",
    "response_due_at": "2026-12-06T03:00:00Z",
    "created_by": "officer:k1",
    "client": {
        "id": "pseudonym-1",
        "sex": "F",
        "age_group": "25-34",
        "identity": {
            "nik": "1771014503950012",
            "name": "Siti Rahmawati",
            "phone": "081298765432",
            "birth_date": "1995-03-05",
        },
    },
    "consent": {"given": True, "given_by": "guardian"},
    "assessment": {
        "primary_substance": "metamfetamin",
        "recommended_level_of_care": "inpatient",
        "notes": "Keluarga mendampingi sejak asesmen.",
    },
    "letter": {
        "number": "R/7/XII/KA/RH.00/2026/BNNP",
        "short_code": "0B9F-3C2E-5D1A",
        "issued_at": "2026-12-03T18:30:00Z",
        "issued_by": "officer:k1",
        "issued_by_role": "officer",
    },
}
COUNTS = {"start": 3, "admitted": 2, "completed": 1, "dropped_out": 0, "transferred_out": 0}
REPORT = {
    "partner_id": "yayasan-karunia-insani",
    "period": "2026-11",
    "status": "approved",
    "timeliness": "submitted_on_time",
    "due_on": "2026-12-07",
    "submitted_at": "2026-12-02T03:00:00Z",
    "version": 2,
    "content": {
        "counts": {
            "total": {**COUNTS, "end": 4},
            "by_sex": {"F": {**COUNTS, "end": 4}},
            "by_service_type": {"inpatient": {**COUNTS, "end": 4}},
        },
        "services_delivered": {"counselling_sessions": 12},
        "capacity_building": {},
        "narrative": "Dua klien baru masuk rawat inap; satu klien selesai.",
    },
    "prefill": {"total": {**COUNTS, "admitted": 3, "end": 5}},
    "flags": [{"field": "counts.total.admitted", "reported": 2, "recorded": 3}],
    "history": [
        {"action": "submitted", "version": 1, "actor": "partner:k2", "at": "2026-12-01T03:00:00Z"},
        {
            "action": "returned",
            "version": 1,
            "actor": "officer:k1",
            "comment": "Angka masuk belum sesuai.",
            "at": "2026-12-01T05:00:00Z",
        },
        {"action": "approved", "version": 2, "actor": "officer:k1", "at": "2026-12-03T05:00:00Z"},
    ],
}


def test_the_letter_carries_number_date_recipient_client_and_signatory():
    printed = read_pdf(render_letter(REFERRAL, PARTNER, "Dewi Anggraini", HEAD))
    flat = printed.text
    assert printed.pages == 1
    for expected in (
        "BADAN NARKOTIKA NASIONAL PROVINSI BENGKULU",
        "Nomor : R/7/XII/KA/RH.00/2026/BNNP",
        # 18:30 UTC on 3 December is 4 December in Bengkulu
        "Bengkulu, 4 Desember 2026",
        "Pimpinan Yayasan Karunia Insani Foundation",
        "Jl. Merdeka No. 5, Curup",
        "Siti Rahmawati",
        "1771014503950012",
        "5 Maret 1995",
        "Rawat inap",
        "TAT (Tim Asesmen Terpadu)",
        "Diberikan oleh wali/keluarga",
        "Dewi Anggraini",
        "Kode rujukan: 0B9F-3C2E-5D1A",
        "6 Desember 2026 10:00 WIB",
    ):
        assert expected in flat, expected
    assert 0.01 < printed.inked < 0.5  # words and a QR code on white, not an empty page


def test_the_letter_points_to_the_referral_in_the_console():
    assert (
        console_url(HEAD, REFERRAL_ID) == f"https://bersinar.example/console/rujukan/{REFERRAL_ID}"
    )
    assert short_code(REFERRAL_ID) == "0B9F-3C2E-5D1A"
    # typed back however a person types it, it names the start of the id
    for typed in ("0B9F-3C2E-5D1A", "0b9f 3c2e 5d1a", "0b9f3c2e5d1a"):
        assert id_prefix_of(typed) == REFERRAL_ID[:13]
    for not_a_code in ("0B9F-3C2E", "0B9F-3C2E-5D1G", "0B9F-3C2E-5D1A-1", "%", ""):
        assert id_prefix_of(not_a_code) is None
    printed = read_pdf(render_letter(REFERRAL, PARTNER, "Dewi", HEAD))
    assert REFERRAL_ID in printed.text.replace(" ", "")


def test_the_report_prints_counts_flags_narrative_trail_and_signatures():
    people = {"officer:k1": "Dewi Anggraini", "partner:k2": "Operator Karunia"}
    printed = read_pdf(render_report(REPORT, PARTNER, HEAD, people))
    flat = printed.text
    for expected in (
        "LAPORAN BULANAN LEMBAGA REHABILITASI MITRA",
        "Periode November 2026",
        "Yayasan Karunia Insani Foundation",
        "Status : Disetujui",
        "Masuk 2 3 -1",
        "Masuk (total) 2 3 -1",
        "Dua klien baru masuk rawat inap; satu klien selesai.",
        "Dikembalikan",
        "Angka masuk belum sesuai.",
        "Disetujui",
        "Pimpinan Yayasan Karunia Insani Foundation",
        "Diperiksa dan disetujui",
        "Operator Karunia",
    ):
        assert expected in flat, expected
    # the officer who approved signs under the approval
    assert "Diperiksa dan disetujui, Petugas BNNP Bengkulu Dewi Anggraini" in flat
    assert "bukan laporan final" not in flat
    assert 0.01 < printed.inked < 0.5


def test_a_report_not_yet_sent_prints_what_was_recorded_and_says_it_is_not_final():
    due = {**REPORT, "status": "open", "content": None, "flags": [], "history": []}
    flat = read_pdf(render_report(due, PARTNER, HEAD)).text
    assert "Laporan bulan ini belum dikirim" in flat
    assert "bukan laporan final" in flat
    assert "Akhir bulan - 5 -" in flat


@pytest.mark.parametrize(
    ("scheme", "number"),
    [
        ("", "R/12/XII/KA/RH.00/2026/BNNP"),
        ("{seq:04d}/BNNP-BKL/{month}/{year}", "0012/BNNP-BKL/12/2026"),
    ],
)
def test_letter_numbers_follow_the_configured_scheme(scheme, number):
    assert LetterNumbering.from_config(scheme).number(12, date(2026, 12, 4)) == number


@pytest.mark.parametrize(
    "scheme",
    [
        "R/{seq}/BNNP",
        "R/{month_roman}/{year}",
        "R/{seq}/{yaer}",
        "R/{seq}/{year",
        "{}/{seq}/{year}",
    ],
)
def test_a_scheme_that_could_repeat_a_number_or_does_not_format_is_refused(scheme):
    with pytest.raises(ValueError):
        LetterNumbering.from_config(scheme)
