"""Words people read on the console, in Bahasa Indonesia, for the codes the API uses."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

WIB = ZoneInfo("Asia/Jakarta")

REFERRAL_STATUS = {
    "requested": "Menunggu jawaban",
    "accepted": "Diterima",
    "rejected": "Ditolak",
    "cancelled": "Dibatalkan",
    "admitted": "Dalam layanan",
    "completed": "Selesai",
    "dropped_out": "Putus layanan",
    "transferred": "Dialihkan",
}
SERVICE_TYPE = {
    "inpatient": "Rawat inap",
    "outpatient": "Rawat jalan",
    "aftercare": "Pasca rehabilitasi",
}
SEX = {"M": "Laki-laki", "F": "Perempuan"}
SEX_SERVED = {"all": "Semua", "female": "Perempuan saja", "male": "Laki-laki saja"}
SOURCE = {
    "TAT": "TAT (Tim Asesmen Terpadu)",
    "IPWL": "IPWL (Institusi Penerima Wajib Lapor)",
    "voluntary": "Sukarela",
    "court": "Putusan pengadilan",
    "other": "Lainnya",
}
REJECTION_REASON = {
    "capacity_full": "Kapasitas penuh",
    "not_eligible": "Tidak memenuhi syarat",
    "client_unreachable": "Klien tidak dapat dihubungi",
    "other": "Alasan lain",
}
REPORT_STATUS = {
    "open": "Belum jatuh tempo",
    "missing": "Belum dikirim (terlambat)",
    "submitted_on_time": "Dikirim tepat waktu",
    "submitted_late": "Dikirim terlambat",
    "returned": "Dikembalikan",
    "approved": "Disetujui",
}
TIMELINESS = {
    "submitted_on_time": "Tepat waktu",
    "submitted_late": "Terlambat",
    None: "Belum dikirim",
}
AGREEMENT_STATUS = {
    "active": "Berlaku",
    "expired": "Berakhir",
    "terminated": "Diakhiri",
    "expiring": "Segera berakhir",
    "draft": "Belum berlaku",
}
MEASURES = {
    "start": "Awal bulan",
    "admitted": "Masuk",
    "completed": "Selesai",
    "dropped_out": "Putus",
    "transferred_out": "Dipindahkan",
    "end": "Akhir bulan",
}
# laporan's consistency rules, as the report form names them
REPORT_RULES = {
    "non_negative": "tidak ada angka negatif",
    "balance": "awal + masuk − selesai − putus − dipindahkan = akhir",
    "by_sex_sums_to_total": "jumlah menurut jenis kelamin sama dengan total",
    "by_service_type_sums_to_total": "jumlah menurut jenis layanan sama dengan total",
    "start_equals_previous_end": "klien awal bulan sama dengan akhir bulan laporan lalu",
    "sex_served": "hanya jenis kelamin yang dilayani mitra",
    "service_offered": "hanya jenis layanan yang diberikan mitra",
    "narrative_required": "narasi diisi",
}
GIVEN_BY = {"client": "Klien sendiri", "guardian": "Wali/keluarga"}
CHANNEL = {"inbox": "Kotak masuk", "email": "Email", "sms": "SMS", "whatsapp": "WhatsApp"}
CONTACT_ROLE = {
    "head": "Pimpinan",
    "operator": "Operator",
    "clinician": "Tenaga klinis",
    "counsellor": "Konselor",
    "administration": "Administrasi",
    "other": "Lainnya",
}
MONTHS = (
    "Januari",
    "Februari",
    "Maret",
    "April",
    "Mei",
    "Juni",
    "Juli",
    "Agustus",
    "September",
    "Oktober",
    "November",
    "Desember",
)


def label(mapping: dict, code) -> str:
    return mapping.get(code, code if code is not None else "-")


def period_name(period: str) -> str:
    """``2027-06`` → ``Juni 2027``."""
    try:
        year, month = period.split("-")
        return f"{MONTHS[int(month) - 1]} {year}"
    except (ValueError, IndexError, AttributeError):
        return str(period)


def when(value) -> str:
    """An RFC 3339 instant or a date, as people in Bengkulu read it (WIB)."""
    if not value:
        return "-"
    if isinstance(value, date) and not isinstance(value, datetime):
        return f"{value.day} {MONTHS[value.month - 1]} {value.year}"
    try:
        moment = (
            value
            if isinstance(value, datetime)
            else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        )
    except ValueError:
        return str(value)
    if moment.tzinfo is None:
        return f"{moment.day} {MONTHS[moment.month - 1]} {moment.year}"
    local = moment.astimezone(WIB)
    return f"{local.day} {MONTHS[local.month - 1]} {local.year} {local:%H:%M} WIB"


def day(value) -> str:
    if not value:
        return "-"
    try:
        return when(date.fromisoformat(str(value)[:10]))
    except ValueError:
        return str(value)


def percent(value) -> str:
    if value is None:
        return "-"
    return f"{value * 100:.0f}%".replace(".", ",")


def number(value, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}".replace(".", ",")


FILTERS = {
    "status_label": lambda code: label(REFERRAL_STATUS, code),
    "service_label": lambda code: label(SERVICE_TYPE, code),
    "sex_label": lambda code: label(SEX, code),
    "source_label": lambda code: label(SOURCE, code),
    "reason_label": lambda code: label(REJECTION_REASON, code),
    "report_label": lambda code: label(REPORT_STATUS, code),
    "agreement_label": lambda code: label(AGREEMENT_STATUS, code),
    "channel_label": lambda code: label(CHANNEL, code),
    "contact_role_label": lambda code: label(CONTACT_ROLE, code),
    "period_name": period_name,
    "when": when,
    "day": day,
    "percent": percent,
    "number": number,
}
