"""Words people read on the console, in Bahasa Indonesia, for the codes the API uses."""

from __future__ import annotations

from datetime import date, datetime

from bersinar import codes
from bersinar.codes import LOCAL_TZ as WIB
from bersinar.codes import MONTHS

# the code lists of bersinar.codes, by the names the templates use
REFERRAL_STATUS = codes.REFERRAL_STATUSES
SERVICE_TYPE = codes.SERVICE_TYPES
SEX = codes.SEXES
SEX_SERVED = codes.SEX_SERVED
SOURCE = codes.REFERRAL_SOURCES
REJECTION_REASON = codes.REJECTION_REASONS
REPORT_STATUS = codes.REPORT_STATUSES
AGREEMENT_STATUS = codes.AGREEMENT_STATUSES
MEASURES = codes.MEASURES
GIVEN_BY = codes.CONSENT_GIVERS
CHANNEL = codes.CHANNELS
CONTACT_ROLE = codes.CONTACT_ROLES
TIMELINESS = {
    "submitted_on_time": "Tepat waktu",
    "submitted_late": "Terlambat",
    None: "Belum dikirim",
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


def label(mapping: dict, code) -> str:
    return codes.label(mapping, code)


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
