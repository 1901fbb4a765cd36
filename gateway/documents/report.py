"""A partner's monthly report as it is printed, signed and archived: its counts beside
what laporan recorded from referral events, the differences flagged, the narrative,
status and approval trail, and a signature block. Drawn from laporan's report and mitra's
partner."""

from __future__ import annotations

from typing import Any

from bersinar import codes
from gateway.console.labels import REPORT_RULES, TIMELINESS, day, period_name, when
from gateway.documents.pdf import FONT, Document, Letterhead

ACTIONS = {
    "submitted": "Dikirim",
    "approved": "Disetujui",
    "returned": "Dikembalikan",
    "reopened": "Dibuka kembali",
}
SERVICES_DELIVERED = {
    "counselling_sessions": "Sesi konseling",
    "group_sessions": "Sesi kelompok",
    "home_visits": "Kunjungan rumah",
}
CAPACITY_BUILDING = {
    "activities": "Kegiatan peningkatan kapasitas",
    "staff_trained": "Staf yang dilatih",
}


def _flag_label(field: str) -> str:
    """``counts.by_sex.F.admitted`` → ``Masuk (Perempuan)``."""
    parts = field.split(".")
    measure = codes.label(codes.MEASURES, parts[-1])
    if len(parts) == 4 and parts[1] == "by_sex":
        return f"{measure} ({codes.label(codes.SEXES, parts[2])})"
    if len(parts) == 4 and parts[1] == "by_service_type":
        return f"{measure} ({codes.label(codes.SERVICE_TYPES, parts[2])})"
    return f"{measure} (total)"


def render_report(
    report: dict[str, Any],
    partner: dict[str, Any],
    head: Letterhead,
    people: dict[str, str] | None = None,
) -> bytes:
    """``people``: the names of the actors of the report's history (``officer:<key>``),
    as the gateway knows them; an actor without one is printed as it is."""
    people = people or {}
    name = partner.get("name") or report["partner_id"]
    period = period_name(report["period"])
    doc = Document(f"Laporan Bulanan {name} {report['period']}", head)
    doc.set_font(FONT, "B", 12)
    doc.line_of("LAPORAN BULANAN LEMBAGA REHABILITASI MITRA", align="C")
    doc.line_of(f"Periode {period}", align="C")
    doc.set_font(FONT, "", 10)
    doc.ln(2)

    status = report.get("status")
    doc.fields(
        [
            ("Mitra", name),
            ("Kabupaten/kota", partner.get("kabupaten_kota") or "-"),
            ("Alamat", partner.get("address") or "-"),
            ("Status", codes.label(codes.REPORT_STATUSES, status)),
            ("Ketepatan waktu", TIMELINESS.get(report.get("timeliness"), "-")),
            ("Jatuh tempo", day(report.get("due_on"))),
            ("Dikirim", when(report.get("submitted_at"))),
            ("Versi", str(report.get("version") or "-")),
        ],
        label_width=40,
    )
    if status != "approved":
        doc.ln(1)
        doc.line_of(
            "Laporan ini belum disetujui petugas BNNP Bengkulu; cetakan ini bukan laporan final.",
            bold=True,
        )

    content = report.get("content")
    recorded = (report.get("prefill") or {}).get("total") or {}
    doc.heading("1. Jumlah klien")
    if content is None:
        doc.line_of("Laporan bulan ini belum dikirim. Angka yang tercatat dari rujukan:")
    reported = (content or {}).get("counts", {}).get("total") or {}
    doc.grid(
        ("Ukuran", "Dilaporkan", "Tercatat dari rujukan", "Selisih"),
        [
            (
                words,
                str(reported.get(measure, "-")) if content else "-",
                str(recorded.get(measure, 0)),
                str(reported.get(measure, 0) - recorded.get(measure, 0)) if content else "-",
            )
            for measure, words in codes.MEASURES.items()
        ],
        widths=(40, 25, 35, 20),
    )
    if content:
        counts = content["counts"]
        for key, names, title in (
            ("by_sex", codes.SEXES, "jenis kelamin"),
            ("by_service_type", codes.SERVICE_TYPES, "jenis layanan"),
        ):
            groups = counts.get(key) or {}
            if not groups:
                continue
            doc.ln(2)
            doc.line_of(f"Menurut {title} (dilaporkan):")
            doc.grid(
                ("", *codes.MEASURES.values()),
                [
                    (codes.label(names, code), *(str(group.get(m, 0)) for m in codes.MEASURES))
                    for code, group in groups.items()
                ],
                widths=(26, 22, 20, 20, 20, 28, 24),
            )

    doc.heading("2. Selisih dengan catatan rujukan")
    flags = report.get("flags") or []
    if content is None:
        doc.line_of("-")
    elif not flags:
        doc.line_of("Tidak ada selisih: setiap angka sama dengan yang tercatat dari rujukan.")
    else:
        doc.grid(
            ("Angka", "Dilaporkan", "Tercatat", "Selisih"),
            [
                (
                    _flag_label(f["field"]),
                    str(f["reported"]),
                    str(f["recorded"]),
                    str(f["reported"] - f["recorded"]),
                )
                for f in flags
            ],
            widths=(60, 25, 25, 20),
        )

    if content:
        doc.heading("3. Layanan dan peningkatan kapasitas")
        delivered = content.get("services_delivered") or {}
        building = content.get("capacity_building") or {}
        doc.fields(
            [(words, str(delivered.get(key, 0))) for key, words in SERVICES_DELIVERED.items()]
            + [(words, str(building.get(key, 0))) for key, words in CAPACITY_BUILDING.items()],
            label_width=70,
        )
        doc.heading("4. Narasi")
        doc.line_of(content.get("narrative") or "-")

    doc.heading("5. Riwayat dan persetujuan")
    history = report.get("history") or []
    if history:
        doc.grid(
            ("Waktu", "Tindakan", "Versi", "Oleh", "Komentar"),
            [
                (
                    when(h.get("at")),
                    ACTIONS.get(h.get("action"), str(h.get("action"))),
                    str(h.get("version") or "-"),
                    people.get(h.get("actor") or "", h.get("actor") or "-"),
                    h.get("comment") or "-",
                )
                for h in history
            ],
            widths=(38, 26, 14, 40, 52),
        )
    else:
        doc.line_of("Belum ada.")
    doc.ln(2)
    doc.set_font(FONT, "", 7)
    doc.line_of(
        "Aturan yang diperiksa: " + "; ".join(REPORT_RULES.values()) + ".",
        h=3.5,
    )
    doc.set_font(FONT, "", 10)

    # the signature block: the partner's head who reports, the officer who approves
    approvals = [h for h in history if h.get("action") == "approved"]
    approver = people.get(approvals[-1]["actor"], "") if approvals else ""
    if doc.get_y() + 45 > doc.h - doc.b_margin:
        doc.add_page()
    doc.ln(6)
    top = doc.get_y()
    width = (doc.w - doc.l_margin - doc.r_margin) / 2
    for column, lines in enumerate(
        (
            ("Dibuat oleh,", f"Pimpinan {name}"),
            (
                f"{head.city}, ....................",
                "Diperiksa dan disetujui,",
                "Petugas BNNP Bengkulu",
            ),
        )
    ):
        x = doc.l_margin + column * width
        doc.set_xy(x, top)
        doc.multi_cell(width - 4, doc.LINE, "\n".join(lines), align="C")
        doc.set_xy(x, top + 38)
        signed = approver if column == 1 and approver else "(..............................)"
        doc.multi_cell(width - 4, doc.LINE, signed, align="C")
    return doc.bytes()
