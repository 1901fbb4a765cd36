"""The surat rujukan: the letter a referral leaves BNNP with, addressed to the partner
that is to take the client. Drawn from what rujukan answers (the referral with the
client's identity and the letter's number) and mitra's partner (name and address)."""

from __future__ import annotations

from typing import Any

from bersinar import codes
from gateway.console.labels import day, when
from gateway.documents.pdf import FONT, Document, Letterhead

QR_SIZE = 32


def console_url(head: Letterhead, referral_id: str) -> str:
    """Where the receiving partner opens the referral (the console's referral page)."""
    return f"{head.public_base_url}/console/rujukan/{referral_id}"


def render_letter(
    referral: dict[str, Any], partner: dict[str, Any], signatory: str, head: Letterhead
) -> bytes:
    letter = referral["letter"]
    identity = referral["client"].get("identity") or {}
    assessment = referral.get("assessment") or {}
    consent = referral.get("consent") or {}
    service = codes.label(codes.SERVICE_TYPES, referral["service_type"])
    doc = Document(f"Surat Rujukan {letter['number']}", head)

    top = doc.get_y()
    doc.fields(
        [
            ("Nomor", letter["number"]),
            ("Sifat", "Rahasia"),
            ("Lampiran", "-"),
            ("Hal", f"Rujukan rehabilitasi ({service.lower()})"),
        ],
        label_width=22,
    )
    below = doc.get_y()
    doc.set_xy(doc.w - doc.r_margin - 60, top)
    doc.cell(60, doc.LINE, f"{head.city}, {_local_day(letter['issued_at'])}", align="R")
    doc.set_y(below + 4)

    doc.line_of("Kepada Yth.")
    doc.line_of(f"Pimpinan {partner.get('name') or referral['partner_id']}", bold=True)
    for line in (partner.get("address"), partner.get("kabupaten_kota")):
        if line:
            doc.line_of(line)
    doc.line_of("di tempat")
    doc.ln(4)

    doc.line_of("Dengan hormat,")
    doc.line_of(
        "Bersama ini kami rujuk klien berikut untuk mendapatkan layanan rehabilitasi "
        "berkelanjutan sesuai perjanjian kerja sama antara BNN Provinsi Bengkulu dan "
        "lembaga Saudara:"
    )
    doc.ln(1)
    doc.fields(
        [
            ("Nama", identity.get("name") or "-"),
            ("NIK", identity.get("nik") or "-"),
            ("Tanggal lahir", day(identity.get("birth_date"))),
            ("Jenis kelamin", codes.label(codes.SEXES, referral["client"].get("sex"))),
            ("Telepon", identity.get("phone") or "-"),
        ],
        indent=8,
        label_width=44,
    )
    doc.ln(1)
    doc.fields(
        [
            ("Jenis layanan", service),
            ("Dasar rujukan", codes.label(codes.REFERRAL_SOURCES, referral.get("source"))),
            ("Zat utama", assessment.get("primary_substance") or "-"),
            (
                "Rekomendasi asesmen",
                codes.label(codes.SERVICE_TYPES, assessment.get("recommended_level_of_care")),
            ),
            ("Catatan asesmen", assessment.get("notes") or "-"),
            (
                "Persetujuan klien",
                "Diberikan oleh "
                + codes.label(codes.CONSENT_GIVERS, consent.get("given_by")).lower()
                if consent.get("given")
                else "-",
            ),
        ],
        indent=8,
        label_width=44,
    )
    doc.ln(2)
    due = referral.get("response_due_at")
    doc.line_of(
        "Mohon rujukan ini dijawab (diterima atau ditolak) melalui konsol Bersinar"
        + (f" paling lambat {when(due)}." if due else ".")
        + " Rujukan dapat dibuka dengan memindai kode QR di bawah atau memasukkan kode "
        "rujukan pada konsol."
    )
    doc.line_of("Demikian kami sampaikan; atas kerja samanya kami ucapkan terima kasih.")
    doc.ln(6)

    # the QR code and code on the left, the signature on the right
    if doc.get_y() + QR_SIZE + 20 > doc.h - doc.b_margin:
        doc.add_page()
    block = doc.get_y()
    url = console_url(head, referral["id"])
    doc.qr(url, doc.l_margin, block, QR_SIZE)
    doc.set_xy(doc.l_margin, block + QR_SIZE + 1)
    doc.set_font(FONT, "B", 10)
    doc.cell(70, doc.LINE, f"Kode rujukan: {letter['short_code']}")
    doc.set_font(FONT, "", 7)
    doc.set_xy(doc.l_margin, block + QR_SIZE + 1 + doc.LINE)
    doc.multi_cell(75, 3.5, f"ID {referral['id']}\n{url}")
    doc.set_font(FONT, "", 10)

    right = doc.w - doc.r_margin - 70
    doc.set_xy(right, block)
    doc.multi_cell(70, doc.LINE, "a.n. Kepala BNN Provinsi Bengkulu\nPetugas Rehabilitasi,")
    doc.set_xy(right, block + 30)
    doc.set_font(FONT, "B", 10)
    doc.multi_cell(70, doc.LINE, signatory)
    doc.set_font(FONT, "", 10)
    doc.set_y(max(doc.get_y(), block + QR_SIZE + 14) + 4)
    doc.set_font(FONT, "", 7)
    doc.line_of(
        f"Surat ini diterbitkan {when(letter['issued_at'])}; setiap cetak ulang memakai nomor "
        "yang sama dan setiap pembukaannya dicatat di log audit. Berisi data pribadi klien: "
        "simpan sebagai dokumen rahasia.",
        h=3.5,
    )
    return doc.bytes()


def _local_day(instant: str) -> str:
    """``4 Desember 2026`` from an RFC 3339 instant, reckoned in Bengkulu."""
    text = when(instant)
    return " ".join(text.split(" ")[:3])
