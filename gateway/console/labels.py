"""Words people read on the console, in Bahasa Indonesia, for the codes the API uses."""

from __future__ import annotations

import re
from datetime import date, datetime

from markupsafe import Markup, escape

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
# why a history entry was written: a rejection's reason, or a change of no status
HISTORY_REASON = {**codes.REJECTION_REASONS, **codes.HISTORY_REASONS}
GUARDIAN = codes.GUARDIAN_RELATIONSHIPS
REPORT_STATUS = codes.REPORT_STATUSES
AGREEMENT_STATUS = codes.AGREEMENT_STATUSES
MEASURES = codes.MEASURES
GIVEN_BY = codes.CONSENT_GIVERS
CHANNEL = codes.CHANNELS
CONTACT_ROLE = codes.CONTACT_ROLES
DISCHARGE_OUTCOME = codes.DISCHARGE_OUTCOMES
DISCHARGE_REASON = codes.DISCHARGE_REASONS
# what happened to a report, as its history names it
REPORT_ACTION = {
    "submitted": "Dikirim",
    "returned": "Dikembalikan ke mitra",
    "approved": "Disetujui",
    "reopened": "Dibuka kembali",
}
ROLE = codes.ROLES
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


def thousands(value: int) -> str:
    """1223 → "1.223", as Indonesian readers group digits."""
    return f"{value:,}".replace(",", ".")


def actor_name(actor: str | None, people: dict[str, str]) -> str:
    """``officer:user:rina`` → the person's name (``people``: username → full name); a
    machine's key → what it is, never its id."""
    role, _, key = str(actor or "").partition(":")
    kind, _, username = key.partition(":")
    role_name = ROLE.get(role, "Sistem")
    if kind == "user" and username:
        return f"{people.get(username, username)} ({role_name})"
    if role == "system" or not role:
        return "Sistem Bersinar"
    return f"Sistem lain lewat kunci API ({role_name})"


_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
_PERIOD = re.compile(r"(?<![-0-9])(20[0-9]{2}-(?:0[1-9]|1[0-2]))(?![-0-9])")
_PARTNER = re.compile(r"\bmitra ([a-z0-9][a-z0-9-]{1,63})\b")


def inbox_text(text: str | None, names: dict[str, str], base: str) -> Markup:
    """A notification's words for people: partners by name, months by name, referrals as
    links (the text was written by notifikasi, which knows ids)."""
    out = str(escape(text or ""))
    out = _PARTNER.sub(lambda m: f"mitra {escape(names.get(m.group(1), m.group(1)))}", out)
    out = _PERIOD.sub(lambda m: period_name(m.group(1)), out)
    out = _UUID.sub(lambda m: f'<a href="{base}/rujukan/{m.group(0)}">{m.group(0)[:8]}</a>', out)
    return Markup(out)


FILTERS = {
    "status_label": lambda code: label(REFERRAL_STATUS, code),
    "service_label": lambda code: label(SERVICE_TYPE, code),
    "sex_label": lambda code: label(SEX, code),
    "source_label": lambda code: label(SOURCE, code),
    "reason_label": lambda code: label(HISTORY_REASON, code),
    "report_label": lambda code: label(REPORT_STATUS, code),
    "report_action": lambda code: label(REPORT_ACTION, code),
    "agreement_label": lambda code: label(AGREEMENT_STATUS, code),
    "channel_label": lambda code: label(CHANNEL, code),
    "contact_role_label": lambda code: label(CONTACT_ROLE, code),
    "outcome_label": lambda code: label(DISCHARGE_OUTCOME, code),
    "discharge_reason_label": lambda code: label(DISCHARGE_REASON, code),
    "period_name": period_name,
    "when": when,
    "day": day,
    "percent": percent,
    "number": number,
    "thousands": thousands,
}
