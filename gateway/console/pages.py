"""The console's pages, a mixin of the gateway like the API's route areas. Each action
calls the same RPC with the same caller shape as its API endpoint, after the same role
check (taken from that endpoint's route), so the services apply one set of rules —
partner isolation included — whether a person or a machine asks."""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from marshmallow import ValidationError as MarshmallowValidationError
from werkzeug.security import safe_join
from werkzeug.wrappers import Response

from bersinar import codes
from bersinar.codes import REFERRAL_SOURCES, REFERRAL_STATUSES, REJECTION_REASONS, STAFF
from bersinar.contracts.partners import ActivityInput, AgreementInput, AgreementTermination
from bersinar.contracts.partners import Contact as ContactInput
from bersinar.contracts.referrals import ClientSearch, ReferralCreate, is_plain_id
from bersinar.contracts.reports import PERIOD
from bersinar.entrypoints import RemoteDomainError
from bersinar.envelope import rfc3339
from bersinar.errors import DomainError, ValidationFailed
from gateway import spreadsheets
from gateway.console import accounts, charts, labels
from gateway.console.web import (
    BASE,
    HERE,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    api_roles,
    field_errors,
    login_csrf_token,
    not_found,
    page,
    redirect,
    render,
    require_route,
    set_cookie,
    tokens_match,
)
from gateway.exceptions import ServiceUnavailable
from gateway.routes.notifications import inbox_of

STATIC = HERE / "static"
# console action word → (rujukan's action, the API route whose roles apply)
REFERRAL_ACTIONS = {
    "terima": ("accept", "accept"),
    "tolak": ("reject", "reject"),
    "masuk": ("admit", "admit"),
    "selesai": ("complete", "complete"),
    "putus": ("drop_out", "drop-out"),
    "batal": ("cancel", "cancel"),
    "alihkan": ("transfer", "transfer"),
    "cabut-persetujuan": ("withdraw_consent", "consent/withdraw"),
    "batalkan-langkah": ("undo", "undo"),
}
REFERRAL_ROUTE = "POST /api/v1/referrals/<string:referral_id>/"
# what a confirmation page asks and what its button says
ACTION_WORDING = {
    "accept": ("Terima rujukan?", "Satu tempat layanan dipakai untuk klien ini.", "Ya, terima"),
    "reject": ("Tolak rujukan?", "Petugas BNNP diberi tahu alasannya.", "Ya, tolak"),
    "admit": ("Catat klien masuk layanan?", "Isi tanggal klien mulai dilayani.", "Ya, catat masuk"),
    "complete": (
        "Catat klien selesai layanan?",
        "Episode layanan ditutup dan tidak dapat dibuka lagi.",
        "Ya, catat selesai",
    ),
    "drop_out": (
        "Catat klien putus layanan?",
        "Episode layanan ditutup dan tidak dapat dibuka lagi.",
        "Ya, catat putus layanan",
    ),
    "cancel": (
        "Batalkan rujukan?",
        "Mitra diberi tahu; rujukan yang dibatalkan tidak dapat dipakai lagi.",
        "Ya, batalkan",
    ),
    "transfer": (
        "Alihkan klien ke mitra lain?",
        "Episode di mitra sekarang ditutup dan rujukan baru dikirim ke mitra tujuan.",
        "Ya, alihkan",
    ),
    "withdraw_consent": (
        "Catat pencabutan persetujuan klien?",
        "Catat hanya atas pernyataan klien sendiri. Sejak itu mitra penerima tidak lagi "
        "melihat identitas klien pada semua rujukannya, dan rujukan baru memerlukan "
        "persetujuan baru. Pencabutan tidak dapat dibatalkan.",
        "Ya, catat pencabutan",
    ),
    "undo": (
        "Batalkan langkah terakhir?",
        "Rujukan kembali ke status sebelum langkah terakhirnya, dan yang dicatat langkah itu "
        "(tanggal masuk, tanggal selesai, alasan penolakan) dihapus. Mitra diberi tahu; "
        "riwayat menyimpan langkah itu dan pembatalannya beserta alasannya.",
        "Ya, batalkan langkah terakhir",
    ),
}
NOTE_REQUIRED = {
    "cancel": "Tulis alasan pembatalan.",
    "drop_out": "Tulis alasan klien putus layanan.",
    "transfer": "Tulis alasan pengalihan.",
}
# the discharge summary's fields on the forms of the actions that end care
ENDING_COMMANDS = ("complete", "drop_out", "transfer")
DISCHARGE_FIELDS = ("outcome", "reasons", "aftercare_plan", "follow_up_on")
# the day an action records: (field, action, what to write when it is missing)
DATE_FIELDS = (
    ("admitted_on", "admit", "Isi tanggal masuk (hari ini atau sebelumnya)."),
    ("withdrawn_on", "withdraw_consent", "Isi tanggal pencabutan (hari ini atau sebelumnya)."),
)
ACTION_FIELDS = (
    "reason",
    "note",
    "partner_id",
    "admitted_on",
    "withdrawn_on",
    "consent",
    "given_by",
    "guardian_name",
    "guardian_relationship",
    *DISCHARGE_FIELDS,
)
REPORT_GROUPS = (
    ("total", "Total"),
    ("by_sex.M", "Laki-laki"),
    ("by_sex.F", "Perempuan"),
    ("by_service_type.inpatient", "Rawat inap"),
    ("by_service_type.outpatient", "Rawat jalan"),
    ("by_service_type.aftercare", "Pasca rehabilitasi"),
)
EXTRA_COUNTS = (
    ("services_delivered.counselling_sessions", "Sesi konseling"),
    ("services_delivered.group_sessions", "Sesi kelompok"),
    ("services_delivered.home_visits", "Kunjungan rumah"),
    ("capacity_building.activities", "Kegiatan penguatan kapasitas"),
    ("capacity_building.staff_trained", "Petugas dilatih"),
)
COMPLIANCE_MONTHS = 6
AUDIT_ROUTE = "GET /api/v1/audit"
AUDIT_PAGE = 50
AUDIT_FILTER_ERRORS = {
    "pelaku": "Pilih orang dari daftar.",
    "mitra": "Pilih mitra dari daftar.",
    "rujukan": "Nomor rujukan tidak sah: salin dari halaman rujukan.",
}
REFERRAL_PAGE = 50
SEARCH_PAGE = 20
_NIK = re.compile(r"[0-9]{16}")
NOTIFICATION_PAGE = 50
MAX_PAGES_BACK = 40  # keeps a list's address short; later pages are reached by filtering
CONTACT_ERRORS = {
    "name": "Isi nama kontak (paling banyak 200 huruf).",
    "role": "Pilih peran kontak.",
    "email": "Alamat email tidak valid.",
    "phone": "Nomor telepon tidak valid: 8-15 angka, boleh diawali +.",
    "whatsapp": "Nomor WhatsApp tidak valid: 8-15 angka, boleh diawali +.",
}
MISSING_ADDRESS_DAYS = 7
AGREEMENTS_ROUTE = "POST /api/v1/partners/<string:partner_id>/agreements"
TERMINATE_ROUTE = AGREEMENTS_ROUTE + "/<string:agreement_id>/terminate"
AGREEMENT_ERRORS = {
    "number": "Isi nomor PKS (3-100 huruf).",
    "signed_on": "Isi tanggal penandatanganan, tidak sesudah tanggal berakhir.",
    "valid_from": "Isi tanggal mulai berlaku.",
    "valid_until": "Isi tanggal berakhir, sesudah tanggal mulai berlaku.",
    "scope": "Pilih sedikitnya satu ruang lingkup.",
    "annual_target": "Isi target klien per tahun: bilangan bulat 0-100000.",
    "document_ref": "Rujukan dokumen paling banyak 300 huruf.",
}
TERMINATION_ERRORS = {
    "reason": "Tulis alasan PKS diakhiri (3-1000 huruf).",
    "terminated_on": "Tulis tanggal berakhir yang sah, atau kosongkan untuk hari ini.",
}
ACTIVITIES_ROUTE = "GET /api/v1/partners/<string:partner_id>/activities"
RECORD_ACTIVITY_ROUTE = "POST /api/v1/partners/<string:partner_id>/activities"
ACTIVITY_ERRORS = {
    "kind": "Pilih jenis kegiatan.",
    "held_on": "Isi tanggal kegiatan.",
    "title": "Isi judul kegiatan (3-200 huruf).",
    "participants": "Tulis satu peserta per baris, paling banyak 200 (200 huruf per nama).",
    "findings": "Temuan paling banyak 5000 karakter.",
    "scores": "Kunjungan supervisi: isi kelima skor (0-100) atau kosongkan semuanya.",
}
# statuses of an agreement that may still be ended early
ENDABLE_AGREEMENTS = ("draft", "active", "expiring")
MESSAGES = {
    "dibuat": "Rujukan dibuat dan dikirim ke mitra.",
    "accept": "Rujukan diterima.",
    "reject": "Rujukan ditolak.",
    "admit": "Klien tercatat masuk layanan.",
    "complete": "Klien tercatat selesai layanan.",
    "drop_out": "Klien tercatat putus layanan.",
    "cancel": "Rujukan dibatalkan.",
    "transfer": "Klien dialihkan; rujukan baru dibuat.",
    "undo": "Langkah terakhir dibatalkan; rujukan kembali ke status sebelumnya.",
    "koreksi": "Identitas klien dikoreksi; riwayat setiap rujukannya mencatat koreksi ini.",
    "withdraw_consent": "Pencabutan persetujuan klien tercatat; mitra tidak lagi melihat "
    "identitasnya.",
    "terkirim": "Laporan terkirim.",
    "approve": "Laporan disetujui.",
    "reopen": "Periode dibuka kembali; mitra dapat mengirim laporan (lagi). Pengiriman "
    "setelah jatuh tempo tercatat terlambat.",
    "return": "Laporan dikembalikan ke mitra.",
    "kapasitas": "Kapasitas disimpan.",
    "kontak": "Kontak disimpan.",
    "kontak_dihapus": "Kontak dihapus.",
    "pks": "PKS dicatat.",
    "kegiatan": "Kegiatan dicatat.",
    "pks_diakhiri": "PKS diakhiri; alasannya tercatat.",
    "sandi": "Kata sandi diganti.",
    "pengguna": "Pengguna dibuat.",
    "nonaktifkan": "Akun dinonaktifkan; sesinya diakhiri.",
    "aktifkan": "Akun diaktifkan kembali.",
    "reset": "Kata sandi pengguna diatur ulang; akunnya tidak terkunci lagi.",
}


@dataclass(frozen=True)
class Pager:
    """Keyset pages with a way back: ``cursor`` starts the page after an item, and
    ``sebelumnya`` lists the cursors of the pages before it (empty: the first page), so a
    previous link is the last of them, the page number their count plus one."""

    cursor: str | None
    before: tuple[str, ...]
    size: int

    @classmethod
    def of(cls, args, size: int) -> Pager:
        cursor = args.get("cursor") or None
        before = tuple((args.get("sebelumnya") or "").split(",")) if "sebelumnya" in args else ()
        if cursor is not None and not is_plain_id(cursor):
            raise ValidationFailed("Kursor tidak sah.", errors={"cursor": ["Tidak sah."]})
        if len(before) > MAX_PAGES_BACK or any(b and not is_plain_id(b) for b in before):
            raise ValidationFailed("Kursor tidak sah.", errors={"sebelumnya": ["Tidak sah."]})
        return cls(cursor, before if cursor else (), size)

    def params(self) -> dict[str, str]:
        return {"cursor": self.cursor} if self.cursor else {}

    def links(self, path: str, filters: dict[str, str], next_cursor: str | None) -> dict:
        def address(cursor: str | None, before: tuple[str, ...]) -> str:
            query = dict(filters)
            if cursor:
                query.update(cursor=cursor, sebelumnya=",".join(before))
            return f"{path}?{urlencode(query)}" if query else path

        number = len(self.before) + 1 if self.cursor else 1
        previous = None
        if self.cursor:
            previous = address(self.before[-1] or None, self.before[:-1])
        following = None
        if next_cursor and number <= MAX_PAGES_BACK:
            following = address(next_cursor, (*self.before, self.cursor or ""))
        return {
            "number": number,
            "first": (number - 1) * self.size + 1,
            "previous": previous,
            "next": following,
        }


# a form's POST address → the page that shows that form (``lanjut`` after signing in
# again never names a POST-only address)
FORM_PAGES = (
    (re.compile(r"^/console/laporan/([^/]+)/([^/]+)/[^/]+$"), r"/console/laporan/\1/\2"),
    (re.compile(r"^/console/rujukan/baru/ubah$"), "/console/rujukan/baru"),
    (re.compile(r"^/console/rujukan/cari$"), "/console/rujukan"),
    (
        re.compile(r"^/console/mitra/([^/]+)/pks/([^/]+)/akhiri$"),
        r"/console/mitra/\1/pks/\2/akhiri",
    ),
    (re.compile(r"^/console/mitra/([^/]+)/kegiatan$"), r"/console/mitra/\1/kegiatan"),
    (re.compile(r"^/console/mitra/([^/]+)/.+$"), r"/console/mitra/\1"),
    (re.compile(r"^/console/pengguna/.+$"), "/console/pengguna"),
    (re.compile(r"^/console/notifikasi/.+$"), "/console/notifikasi"),
    (re.compile(r"^/console/keluar$"), "/console/"),
)
# fields never carried through a sign-in: secrets, and the old session's token
NOT_CARRIED = {"csrf", "password", "current", "new", "repeat", "lanjut", "username"}
DRAFT = "draft."
MAX_DRAFT_FIELDS = 200
RESTORED = "Sesi Anda sempat berakhir. Isian Anda dikembalikan: periksa lalu kirim lagi."


def form_page(path: str) -> str:
    for pattern, page_path in FORM_PAGES:
        if pattern.match(path):
            return pattern.sub(page_path, path)
    return path


def draft_of(form, prefix: str = "") -> dict[str, str]:
    """The fields of a form worth carrying through a sign-in (``prefix``: as the sign-in
    form holds them)."""
    draft = {}
    for name, value in form.items():
        if not name.startswith(prefix):
            continue
        name = name[len(prefix) :]
        if name not in NOT_CARRIED and len(draft) < MAX_DRAFT_FIELDS:
            draft[name] = value[:5000]
    return draft


def safe_back(value: str | None) -> str:
    """Where a referral action returns: the list it was started from, or the referral."""
    return "daftar" if value == "daftar" else ""


def transition_payload(command: str, form) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The body of rujukan's transition from an action's confirmation form, and what the
    person must still fill in, by field (the console asks a reason where the API leaves
    it optional: a cancellation, a drop-out and a transfer are explained)."""
    payload: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    note = (form.get("note") or "").strip()
    if len(note) > 1000:
        errors["note"] = ["Paling banyak 1000 karakter."]
    if command == "reject":
        reason = form.get("reason") or ""
        if reason not in REJECTION_REASONS:
            errors["reason"] = ["Pilih alasan penolakan."]
        elif reason == "other" and not note:
            errors["note"] = ["Tulis alasannya bila memilih Alasan lain."]
        payload["reason"] = reason
    if command == "transfer":
        payload["partner_id"] = form.get("partner_id") or ""
        if not is_plain_id(payload["partner_id"]):
            errors["partner_id"] = ["Pilih mitra tujuan."]
        if note:
            payload["reason"] = note
        payload["consent"] = consent_payload(form)
        if not payload["consent"]["given"]:
            errors["consent"] = [
                "Pengalihan hanya dapat dilakukan dengan persetujuan klien atau walinya "
                "agar datanya diberikan kepada mitra tujuan."
            ]
    elif note:
        payload["note"] = note
    if command == "undo":
        # the status the admin saw: rujukan refuses (STATUS_CHANGED) if it moved since
        payload["expected_status"] = form.get("expected_status") or ""
        reason = (form.get("reason") or "").strip()
        if len(reason) < 3:
            errors["reason"] = ["Tulis alasan pembatalan (sedikitnya 3 huruf)."]
        payload["reason"] = reason
    if command in NOTE_REQUIRED and not note:
        errors.setdefault("note", [NOTE_REQUIRED[command]])
    if command in ENDING_COMMANDS:
        payload["discharge"] = discharge_payload(form, errors)
    for field, command_of, wrong in DATE_FIELDS:
        if command != command_of:
            continue
        value = form.get(field) or ""
        try:
            date.fromisoformat(value)
            payload[field] = value
        except ValueError:
            errors[field] = [wrong]
    return payload, errors


def consent_payload(form) -> dict[str, Any]:
    """The consent box of a form (a new referral, a transfer) as rujukan takes it."""
    consent = {"given": form.get("consent") == "ya", "given_by": form.get("given_by") or "client"}
    for field in ("guardian_name", "guardian_relationship"):
        if (form.get(field) or "").strip():
            consent[field] = form[field].strip()
    return consent


def discharge_payload(form, errors: dict[str, list[str]]) -> dict[str, Any]:
    """The discharge summary from an ending action's form; what is missing goes to
    ``errors`` by field (rujukan checks the codes and the follow-up day again)."""
    summary: dict[str, Any] = {"outcome": form.get("outcome") or ""}
    if summary["outcome"] not in codes.DISCHARGE_OUTCOMES:
        errors["outcome"] = ["Pilih hasil akhir layanan."]
    summary["reasons"] = [r for r in form.getlist("reasons") if r in codes.DISCHARGE_REASONS]
    if not summary["reasons"]:
        errors["reasons"] = ["Pilih sedikitnya satu alasan layanan berakhir."]
    plan = (form.get("aftercare_plan") or "").strip()
    if len(plan) > 2000:
        errors["aftercare_plan"] = ["Paling banyak 2000 karakter."]
    if plan:
        summary["aftercare_plan"] = plan
    follow_up = (form.get("follow_up_on") or "").strip()
    if follow_up:
        try:
            date.fromisoformat(follow_up)
            summary["follow_up_on"] = follow_up
        except ValueError:
            errors["follow_up_on"] = ["Tulis tanggal tindak lanjut yang sah, atau kosongkan."]
    return summary


CORRECTION_ROUTE = "POST /api/v1/clients/<string:client_id>/corrections"
CORRECTION_FIELDS = ("name", "nik", "birth_date", "sex", "phone", "reason")


def correction_payload(form) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The body of a correction from its form: every identity field as the admin left it
    (rujukan finds what changed) and the reason, which the console asks for first."""
    payload: dict[str, Any] = {
        name: (form.get(name) or "").strip() for name in ("name", "nik", "birth_date", "sex")
    }
    payload["phone"] = (form.get("phone") or "").strip() or None
    payload["reason"] = (form.get("reason") or "").strip()
    errors: dict[str, list[str]] = {}
    if len(payload["reason"]) < 3:
        errors["reason"] = ["Tulis alasan koreksi (sedikitnya 3 huruf)."]
    for name, wrong in (
        ("name", "Isi nama klien."),
        ("nik", "Isi NIK klien (16 angka)."),
        ("birth_date", "Isi tanggal lahir klien."),
        ("sex", "Pilih jenis kelamin klien."),
    ):
        if not payload[name]:
            errors[name] = [wrong]
    return payload, errors


def safe_next(value: str | None) -> str:
    if value and value.startswith(BASE + "/") and "//" not in value and "\\" not in value:
        return value
    return BASE + "/"


def is_period(value: str | None) -> bool:
    try:
        PERIOD(value or "")
        return True
    except MarshmallowValidationError:
        return False


def last_month(today: date) -> str:
    previous = today.replace(day=1) - timedelta(days=1)
    return f"{previous:%Y-%m}"


def months_back(period: str, count: int) -> list[str]:
    year, month = (int(part) for part in period.split("-"))
    out = []
    for _ in range(count):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return list(reversed(out))


# a whole number as the API takes it: ASCII digits, a minus at most (Python's int() also
# reads "+5", "1_000" and the digits of every script)
_WHOLE = re.compile(r"-?[0-9]{1,9}")


def _int_field(form, name: str, errors: dict[str, list[str]]) -> int:
    raw = (form.get(name) or "0").strip()
    if not _WHOLE.fullmatch(raw):
        errors[name] = ["Isi dengan bilangan bulat (angka 0-9)."]
        return 0
    value = int(raw)
    if abs(value) > 100000:
        errors[name] = ["Angka terlalu besar."]
    return value


def report_content(form) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The report as laporan takes it, from the form's fields; typing errors by field."""
    errors: dict[str, list[str]] = {}
    counts: dict[str, Any] = {"total": {}, "by_sex": {}, "by_service_type": {}}
    for group, _ in REPORT_GROUPS:
        values = {m: _int_field(form, f"{group}.{m}", errors) for m in labels.MEASURES}
        if group == "total":
            counts["total"] = values
        else:
            dimension, key = group.split(".")
            counts[dimension][key] = values
    content: dict[str, Any] = {
        "counts": counts,
        "services_delivered": {},
        "capacity_building": {},
        "narrative": form.get("narrative") or "",
    }
    for name, _ in EXTRA_COUNTS:
        section, key = name.split(".")
        content[section][key] = _int_field(form, name, errors)
    if len(content["narrative"]) > 5000:
        errors["narrative"] = ["Narasi paling banyak 5000 karakter."]
    return content, errors


def report_values(content: dict[str, Any] | None) -> dict[str, Any]:
    """Form values (``by_sex.M.start`` → 3) from a report's content or its prefill."""
    values: dict[str, Any] = {}
    if not content:
        return values
    counts = content.get("counts", content)
    for group, _ in REPORT_GROUPS:
        node: Any = counts
        for part in group.split("."):
            node = (node or {}).get(part) if isinstance(node, dict) else None
        for measure in labels.MEASURES:
            values[f"{group}.{measure}"] = (node or {}).get(measure, 0)
    for name, _ in EXTRA_COUNTS:
        section, key = name.split(".")
        values[name] = (content.get(section) or {}).get(key, 0)
    values["narrative"] = content.get("narrative", "")
    return values


def place_rule_messages(errors: dict[str, Any]) -> dict[str, list[str]]:
    """laporan names the rules a report breaks; each message is put at the row of the
    form it speaks of (the row's words are in the message), else at its section."""
    placed: dict[str, list[str]] = {}
    rows = [(g, name.lower()) for g, name in REPORT_GROUPS if g != "total"]
    for rule, messages in errors.items():
        for message in messages if isinstance(messages, list) else [str(messages)]:
            where = "summary"
            lowered = message.lower()
            if rule == "narrative_required":
                where = "narrative"
            elif rule == "by_sex_sums_to_total" or rule == "sex_served":
                where = "by_sex"
            elif rule in ("by_service_type_sums_to_total", "service_offered"):
                where = "by_service_type"
            elif rule in ("balance", "non_negative", "start_equals_previous_end"):
                where = next((g for g, name in rows if name in lowered), "total")
            placed.setdefault(where, []).append(message)
    return placed


def schema_errors(
    schema, payload: dict[str, Any], messages: dict[str, str], prefix: str = ""
) -> dict[str, list[str]]:
    """What ``schema`` refuses in ``payload``, by the form's field (``prefix`` + name),
    each in the console's own Indonesian words."""
    try:
        schema.load(payload)
    except MarshmallowValidationError as exc:
        return {
            prefix + field: [messages.get(field, "Isian tidak valid.")]
            for field in exc.normalized_messages()
        }
    return {}


def agreement_payload(form) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """A new PKS from the partner page's form (fields ``pks.*``), and what to fix, by
    field."""
    payload: dict[str, Any] = {
        name: (form.get(f"pks.{name}") or "").strip()
        for name in ("number", "signed_on", "valid_from", "valid_until")
    }
    payload["scope"] = form.getlist("pks.scope")
    target = (form.get("pks.annual_target") or "0").strip()
    payload["annual_target"] = int(target) if _WHOLE.fullmatch(target) else target
    payload["document_ref"] = (form.get("pks.document_ref") or "").strip() or None
    return payload, schema_errors(AgreementInput(), payload, AGREEMENT_ERRORS, "pks.")


def activity_payload(form) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """A capacity-building activity or supervision visit from its form; the visit's
    scores only for a visit (all five or none), what to fix by field."""
    payload: dict[str, Any] = {
        name: (form.get(name) or "").strip() for name in ("kind", "held_on", "title")
    }
    payload["participants"] = [
        line.strip() for line in (form.get("participants") or "").splitlines() if line.strip()
    ]
    payload["findings"] = (form.get("findings") or "").strip()
    errors: dict[str, list[str]] = {}
    raw = {d: (form.get(f"score.{d}") or "").strip() for d in codes.SCORE_DIMENSIONS}
    if any(raw.values()):
        if payload["kind"] != "supervision_visit":
            errors["scores"] = ["Skor hanya untuk kunjungan supervisi: kosongkan skornya."]
        for dimension, value in raw.items() if not errors else ():
            if not _WHOLE.fullmatch(value) or not 0 <= int(value) <= 100:
                errors[f"score.{dimension}"] = ["Isi skor 0-100."]
        if not errors:
            payload["scores"] = {d: int(v) for d, v in raw.items()}
    for field, messages in schema_errors(ActivityInput(), payload, ACTIVITY_ERRORS).items():
        errors.setdefault(field, messages)
    return payload, errors


def termination_payload(form) -> tuple[dict[str, Any], dict[str, list[str]]]:
    payload: dict[str, Any] = {"reason": (form.get("reason") or "").strip()}
    payload["terminated_on"] = (form.get("terminated_on") or "").strip() or None
    return payload, schema_errors(AgreementTermination(), payload, TERMINATION_ERRORS)


def attempt(call, known, prefix: str = "", summary: str = "form"):
    """``call()``, a service's change; ``None`` when it is made, else the refusal to show
    on the form: ``(errors, status)``, the errors at the fields ``known`` (named with
    ``prefix`` on the form) and the service's words at ``summary``. A missing object and
    a failure are not the form's business: they are raised."""
    try:
        call()
        return None
    except (DomainError, RemoteDomainError) as exc:
        if exc.status >= 500 or exc.status == 404:
            raise
        errors = {prefix + k: v for k, v in field_errors(exc).items() if k in known}
        errors[summary] = [exc.detail]
        return errors, exc.status


class ConsoleRoutes:
    # --- session --------------------------------------------------------------------

    @property
    def console_policy(self) -> accounts.Policy:
        return accounts.Policy(
            lock_after=int(self.config.get("CONSOLE_LOCK_AFTER", 5)),
            lock_minutes=int(self.config.get("CONSOLE_LOCK_MINUTES", 15)),
            session_hours=int(self.config.get("CONSOLE_SESSION_HOURS", 8)),
        )

    @property
    def cookie_setting(self) -> str:
        return str(self.config.get("CONSOLE_SECURE_COOKIES", "auto")).lower()

    def console_session(self, request) -> accounts.SignedIn | None:
        token = request.cookies.get(SESSION_COOKIE, "")
        if not token or len(token) > 100:
            return None
        with self.uow() as uow:
            return accounts.session_of(uow, token)

    def people_names(self) -> dict[str, str]:
        """Username → full name of every console account: histories name people."""
        with self.uow() as uow:
            return {p["username"]: p["full_name"] for p in accounts.list_users(uow)}

    def partner_names(self, user) -> dict[str, str]:
        partners = self.rpc("mitra", "list_partners", {}, user.caller.as_dict())
        return {p["id"]: p["name"] for p in partners}

    @staticmethod
    def _home(user) -> Response:
        if user is None:
            return redirect(f"{BASE}/masuk")
        return redirect(f"{BASE}/monev" if user.role in STAFF else f"{BASE}/rujukan")

    @page("GET", "/console", roles=None)
    def console_home(self, request, user):
        return self._home(user)

    @page("GET", "/console/", roles=None)
    def console_home_slash(self, request, user):
        return self._home(user)

    @page("GET", "/console/masuk", roles=None)
    def console_sign_in_form(self, request, user):
        if user is not None:
            return redirect(BASE + "/")
        return self._sign_in_page(request, {}, 200)

    def session_ended(self, request, method: str) -> Response:
        """No session (never signed in, or it ended): a page asks for a sign-in, then
        comes back. A form sent meanwhile is not lost: the sign-in page carries its
        values and, once signed in, the same form is shown filled in with them."""
        if method != "POST":
            query = request.query_string.decode("latin-1")
            target = request.path + (f"?{query}" if query else "")
            return redirect(f"{BASE}/masuk?{urlencode({'lanjut': target})}")
        draft = draft_of(request.form)
        notice = "Sesi Anda sudah berakhir. Masuk lagi untuk melanjutkan"
        notice += "; isian Anda tidak hilang." if draft else "."
        return self._sign_in_page(
            request, {}, 401, next_page=form_page(request.path), draft=draft, notice=notice
        )

    def _sign_in_page(
        self, request, errors, status, username="", next_page=None, draft=None, notice=None
    ):
        token = login_csrf_token(request)
        reply = render(
            "masuk.html",
            http_status=status,
            user=None,
            csrf=token,
            next=safe_next(next_page or request.args.get("lanjut") or request.form.get("lanjut")),
            username=username,
            errors=errors,
            draft=draft if draft is not None else draft_of(request.form, DRAFT),
            notice=notice,
        )
        set_cookie(reply, request, self.cookie_setting, LOGIN_CSRF_COOKIE, token, max_age=3600)
        return reply

    @page("POST", "/console/masuk", roles=None)
    def console_sign_in(self, request, user):
        form = request.form
        if not tokens_match(request.cookies.get(LOGIN_CSRF_COOKIE, ""), form.get("csrf", "")):
            errors = {"form": ["Formulir kedaluwarsa. Silakan coba masuk lagi."]}
            return self._sign_in_page(request, errors, 400)
        username = (form.get("username") or "").strip().lower()[:64]
        password = (form.get("password") or "")[:200]
        if not username or not password:
            errors = {"form": ["Isi nama pengguna dan kata sandi."]}
            return self._sign_in_page(request, errors, 422, username)
        with self.uow() as uow:
            try:
                token = accounts.sign_in(uow, username, password, self.console_policy)
            except accounts.SignInRefused as refused:
                uow.commit()  # the failure is counted
                if refused.disabled:
                    errors = {"form": ["Akun ini dinonaktifkan. Hubungi admin BNNP Bengkulu."]}
                    return self._sign_in_page(request, errors, 403, username)
                # one answer for a wrong name, a wrong password and a locked account: the
                # page never tells whether an account of that name exists
                policy = self.console_policy
                errors = {
                    "form": [
                        "Nama pengguna atau kata sandi salah, atau akun terkunci sementara: "
                        f"setelah {policy.lock_after} kali gagal berturut-turut akun dikunci "
                        f"{policy.lock_minutes} menit. Minta admin mengatur ulang kata sandi "
                        "bila perlu lebih cepat."
                    ]
                }
                return self._sign_in_page(request, errors, 401, username)
            uow.commit()
        target = safe_next(form.get("lanjut"))
        draft = draft_of(form, DRAFT)
        reply = redirect(target)
        if draft:
            with self.uow() as uow:
                signed_in = accounts.session_of(uow, token)
            reply = self._restore_draft(request, signed_in, target, draft) or reply
        set_cookie(reply, request, self.cookie_setting, SESSION_COOKIE, token)
        reply.delete_cookie(LOGIN_CSRF_COOKIE, path=BASE)
        return reply

    def _restore_draft(self, request, user, target: str, draft: dict[str, str]):
        """The form a draft came from, filled in with it (None: a form that keeps no
        draft, whose page is simply shown again)."""
        path = target.split("?", 1)[0]
        parts = path.removeprefix(BASE + "/").split("/")
        try:
            if parts[0] == "laporan" and len(parts) == 3:
                return self._report_page(
                    request, user, parts[1], parts[2], values=draft, notice=RESTORED
                )
            if parts[0] == "rujukan" and parts[1:] == ["baru"] and user.role in STAFF:
                return self._client_form(user, {}, draft, notice=RESTORED)
            if parts[0] == "rujukan" and len(parts) == 3:
                return self._action_page(
                    request, user, parts[1], parts[2], values=draft, notice=RESTORED
                )
            if parts[0] == "mitra" and parts[2:] == ["kegiatan"]:
                return self._activities_page(request, user, parts[1], {}, draft, 200, RESTORED)
            if parts[0] == "mitra" and len(parts) == 5 and parts[2::2] == ["pks", "akhiri"]:
                if user.role not in api_roles(TERMINATE_ROUTE):
                    return None
                return self._termination_page(
                    request, user, parts[1], parts[3], {}, draft, 200, RESTORED
                )
        except (DomainError, RemoteDomainError):
            return None  # not theirs, or gone: the page itself says why
        return None

    @page("POST", "/console/keluar")
    def console_sign_out(self, request, user):
        with self.uow() as uow:
            accounts.sign_out(uow, user.token_hash)
            uow.commit()
        reply = redirect(f"{BASE}/masuk")
        reply.delete_cookie(SESSION_COOKIE, path=BASE)
        return reply

    @page("GET", "/console/sandi")
    def console_password_form(self, request, user):
        return render("sandi.html", user=user, errors={}, message=self._message(request))

    @page("POST", "/console/sandi")
    def console_change_password(self, request, user):
        form = request.form
        new = form.get("new") or ""
        errors = accounts.check_password(new, "new")
        if new != (form.get("repeat") or ""):
            errors["repeat"] = ["Kata sandi baru tidak sama."]
        if not errors:
            try:
                with self.uow() as uow:
                    accounts.change_own_password(uow, user.user_id, form.get("current") or "", new)
                    uow.commit()
            except ValidationFailed as exc:
                errors = dict(exc.errors)
        if errors:
            return render("sandi.html", http_status=422, user=user, errors=errors, message=None)
        # a new password ends every session, this one too: sign in again with it
        reply = redirect(f"{BASE}/masuk")
        reply.delete_cookie(SESSION_COOKIE, path=BASE)
        return reply

    @staticmethod
    def _message(request) -> str | None:
        return MESSAGES.get(request.args.get("pesan", ""))

    # --- referrals ------------------------------------------------------------------

    @page("GET", "/console/rujukan")
    def console_referrals(self, request, user):
        require_route(user, "GET /api/v1/referrals")
        args = request.args
        filters: dict[str, str] = {}
        status = args.get("status") or None
        if status is not None and status not in REFERRAL_STATUSES:
            raise ValidationFailed("Status tidak dikenal.", errors={"status": ["Tidak dikenal."]})
        if status:
            filters["status"] = status
        names = self.partner_names(user)
        partner_id = args.get("mitra") or None
        if partner_id is not None and (user.role not in STAFF or partner_id not in names):
            raise ValidationFailed("Mitra tidak dikenal.", errors={"mitra": ["Tidak dikenal."]})
        if partner_id:
            filters["mitra"] = partner_id
        pages = Pager.of(args, REFERRAL_PAGE)
        params: dict[str, Any] = {"limit": REFERRAL_PAGE, "with_total": True, **pages.params()}
        if status:
            params["status"] = status
        if partner_id:
            params["partner_id"] = partner_id
        found = self.rpc("rujukan", "list_referrals", params, user.caller.as_dict())
        return render(
            "rujukan_daftar.html",
            user=user,
            referrals=found["items"],
            pages=pages.links(f"{BASE}/rujukan", filters, found.get("next_cursor")),
            total=found["total"],
            page_count=max(1, -(-found["total"] // REFERRAL_PAGE)),
            status=status,
            partner_id=partner_id,
            statuses=REFERRAL_STATUSES,
            names=names,
            message=self._message(request),
        )

    @page("POST", "/console/rujukan/cari")
    def console_search_clients(self, request, user):
        """A client by NIK (16 digits) or name in one box, in the form's body so that a
        NIK never reaches an address or an access log; rujukan writes each client shown
        to the access audit. Pages go by POST too, keeping the words and filters."""
        require_route(user, "POST /api/v1/clients/search")
        form = request.form
        words = " ".join((form.get("q") or "").split())
        names = self.partner_names(user)
        status = form.get("status") or None
        partner_id = (form.get("mitra") or None) if user.role in STAFF else None
        query: dict[str, Any] = {"limit": SEARCH_PAGE}
        query["nik" if _NIK.fullmatch(words) else "name"] = words
        if status:
            query["status"] = status
        if partner_id:
            query["partner_id"] = partner_id
        page_asked = form.get("halaman") or "1"
        query["page"] = int(page_asked) if page_asked.isdigit() and len(page_asked) < 6 else 1
        errors: dict[str, Any] = {}
        if words.isdigit() and "nik" not in query:
            errors["q"] = ["NIK harus 16 digit angka; nama ditulis dengan huruf."]
        else:
            try:
                ClientSearch().load(query)
            except MarshmallowValidationError as exc:
                messages = exc.normalized_messages()
                errors["q"] = [
                    m for field in ("nik", "name", "_schema") for m in messages.get(field, [])
                ] or ["Isian pencarian tidak valid."]
        found = None
        if not errors:
            found = self.rpc("rujukan", "search_clients", query, user.caller.as_dict())
        return render(
            "rujukan_cari.html",
            http_status=422 if errors else 200,
            user=user,
            found=found,
            names=names,
            statuses=REFERRAL_STATUSES,
            search_q=words,
            search_status=status,
            search_partner=partner_id,
            search_errors=errors,
        )

    @page("GET", "/console/rujukan/baru", roles=STAFF)
    def console_new_referral(self, request, user):
        require_route(user, "POST /api/v1/referrals")
        return self._client_form(user, {}, {"source": "TAT", "given_by": "client"})

    def _client_form(self, user, errors, values, status=200, notice=None):
        return render(
            "rujukan_baru.html",
            http_status=status,
            message=notice,
            user=user,
            errors=errors,
            values=values,
            sources=REFERRAL_SOURCES,
            kabupaten=self._kabupaten(user),
        )

    def _kabupaten(self, user) -> list[str]:
        partners = self.rpc("mitra", "list_partners", {}, user.caller.as_dict())
        return sorted({p["kabupaten_kota"] for p in partners})

    @staticmethod
    def _referral_payload(form) -> dict[str, Any]:
        client = {
            "nik": (form.get("nik") or "").strip(),
            "name": (form.get("name") or "").strip(),
            "birth_date": form.get("birth_date") or "",
            "sex": form.get("sex") or "",
        }
        if (form.get("phone") or "").strip():
            client["phone"] = form.get("phone").strip()
        payload = {
            "client": client,
            "source": form.get("source") or "",
            "service_type": form.get("service_type") or "",
            "consent": consent_payload(form),
        }
        if form.get("partner_id"):
            payload["partner_id"] = form["partner_id"]
        return payload

    @page("POST", "/console/rujukan/baru", roles=STAFF)
    def console_place_referral(self, request, user):
        require_route(user, "POST /api/v1/referrals")
        form = request.form
        values = form.to_dict()
        payload = self._referral_payload(form)
        errors: dict[str, Any] = {}
        try:
            ReferralCreate().load(payload, partial=("partner_id",))
        except MarshmallowValidationError as exc:
            errors = field_errors(ValidationFailed(errors=exc.normalized_messages()))
        if not payload["consent"]["given"]:
            errors["consent"] = ["Rujukan hanya dapat dibuat dengan persetujuan klien atau wali."]
        kabupaten = form.get("kabupaten_kota") or None
        if errors:
            return self._client_form(user, errors, values, 422)
        if form.get("step") != "buat":
            try:  # NIK against birth date and sex, and referrals still open, before a
                # partner is chosen
                checked = self.rpc(
                    "rujukan", "check_client", payload["client"], user.caller.as_dict()
                )
            except (DomainError, RemoteDomainError) as exc:
                if exc.status >= 500:
                    raise
                return self._client_form(user, field_errors(exc), values, exc.status)
            query = {"sex": payload["client"]["sex"], "service_type": payload["service_type"]}
            if kabupaten:
                query["kabupaten_kota"] = kabupaten
            require_route(user, "GET /api/v1/partners/match")
            matches = self.rpc("rujukan", "match_partners", query)
            return render(
                "rujukan_pilih.html",
                user=user,
                values=values,
                matches=matches,
                errors={},
                open_referrals=checked.get("open_referrals") or [],
            )
        if not payload.get("partner_id"):
            query = {"sex": payload["client"]["sex"], "service_type": payload["service_type"]}
            matches = self.rpc("rujukan", "match_partners", query)
            errors = {"partner_id": ["Pilih satu mitra."]}
            return render(
                "rujukan_pilih.html",
                http_status=422,
                user=user,
                values=values,
                matches=matches,
                errors=errors,
            )
        # the box ticked on this form is the consent, given now (after any earlier
        # withdrawal: the client's new consent)
        payload["consent"]["given_at"] = rfc3339(self.clock.now())
        try:
            referral = self.rpc("rujukan", "create_referral", payload, user.caller.as_dict())
        except (DomainError, RemoteDomainError) as exc:
            if exc.status >= 500:
                raise
            errors = field_errors(exc) or {"form": [exc.detail]}
            errors.setdefault("form", [exc.detail])
            return self._client_form(user, errors, values, exc.status)
        return redirect(f"{BASE}/rujukan/{referral['id']}?pesan=dibuat")

    @page("POST", "/console/rujukan/baru/ubah", roles=STAFF)
    def console_edit_new_referral(self, request, user):
        """Back from the partner list to the client form, with what was typed (kept in
        the form's body, never in an address)."""
        require_route(user, "POST /api/v1/referrals")
        return self._client_form(user, {}, request.form.to_dict())

    @page("GET", "/console/rujukan/<string:referral_id>")
    def console_referral(self, request, user, referral_id):
        referral, history = self._referral_with_history(
            user, referral_id, "Konsol: membuka rincian rujukan"
        )
        return render(
            "rujukan_detail.html",
            user=user,
            referral=referral,
            history=history,
            names=self.partner_names(user),
            people=self.people_names(),
            message=self._message(request),
        )

    def _referral_with_history(self, user, referral_id, purpose):
        require_route(user, "GET /api/v1/referrals/<string:referral_id>")
        if not is_plain_id(referral_id):
            raise not_found()
        caller = user.caller.as_dict()
        referral = self.rpc("rujukan", "get_referral", referral_id, caller, purpose)
        history = self.rpc("rujukan", "referral_history", referral_id, caller)
        return referral, history["items"]

    def _transfer_targets(self, referral) -> list[dict[str, Any]]:
        """Partners a client in care may move to today: eligible, with a free place, not
        the partner caring for them now (rujukan's own matching)."""
        query = {"sex": referral["client"]["sex"], "service_type": referral["service_type"]}
        matches = self.rpc("rujukan", "match_partners", query)
        return [m for m in matches if m["partner_id"] != referral["partner_id"]]

    def _action_page(
        self, request, user, referral_id, action, errors=None, values=None, code=200, notice=None
    ):
        if action not in REFERRAL_ACTIONS:
            raise not_found()
        command, route = REFERRAL_ACTIONS[action]
        require_route(user, REFERRAL_ROUTE + route)
        referral, history = self._referral_with_history(
            user, referral_id, "Konsol: konfirmasi tindakan rujukan"
        )
        return render(
            "rujukan_tindakan.html",
            http_status=code,
            user=user,
            referral=referral,
            action=action,
            command=command,
            wording=ACTION_WORDING[command],
            reasons=REJECTION_REASONS,
            outcomes=codes.DISCHARGE_OUTCOMES,
            discharge_reasons=codes.DISCHARGE_REASONS,
            follow_up_min=(self._today() + timedelta(days=1)).isoformat(),
            follow_up_max=(self._today() + timedelta(days=codes.FOLLOW_UP_MAX_DAYS)).isoformat(),
            targets=self._transfer_targets(referral) if command == "transfer" else [],
            names=self.partner_names(user),
            today=self._today().isoformat(),
            back=safe_back(request.values.get("kembali")),
            errors=errors or {},
            values=values or {},
            message=notice,
        )

    @page("GET", "/console/rujukan/<string:referral_id>/<string:action>")
    def console_referral_confirm(self, request, user, referral_id, action):
        """Every change of a referral is asked for first, with what it records."""
        return self._action_page(request, user, referral_id, action)

    @page("POST", "/console/rujukan/<string:referral_id>/<string:action>")
    def console_referral_action(self, request, user, referral_id, action):
        if action not in REFERRAL_ACTIONS or not is_plain_id(referral_id):
            raise not_found()
        command, route = REFERRAL_ACTIONS[action]
        require_route(user, REFERRAL_ROUTE + route)
        form = request.form
        values = {k: v for k, v in form.to_dict().items() if k != "csrf"}
        values["reasons"] = form.getlist("reasons")  # checkboxes: every one ticked
        payload, errors = transition_payload(command, form)
        if "consent" in payload:  # the box ticked on this form: consent given now
            payload["consent"]["given_at"] = rfc3339(self.clock.now())
        if not errors:
            try:
                if command in ("withdraw_consent", "undo"):
                    method = "undo_transition" if command == "undo" else command
                    result = self.rpc(
                        "rujukan", method, referral_id, payload, user.caller.as_dict()
                    )
                else:
                    result = self.rpc(
                        "rujukan",
                        "transition_referral",
                        referral_id,
                        command,
                        payload,
                        user.caller.as_dict(),
                    )
            except (DomainError, RemoteDomainError) as exc:
                if exc.status >= 500 or exc.status == 404:
                    raise
                errors = field_errors(exc)
                errors = {k: v for k, v in errors.items() if k in ACTION_FIELDS} or {
                    "form": [exc.detail]
                }
                return self._action_page(
                    request, user, referral_id, action, errors, values, exc.status
                )
        if errors:
            return self._action_page(request, user, referral_id, action, errors, values, 422)
        if safe_back(form.get("kembali")) == "daftar":
            return redirect(f"{BASE}/rujukan?pesan={command}")
        return redirect(f"{BASE}/rujukan/{result['id']}?pesan={command}")

    # --- an admin's correction of a client's identity ---------------------------------

    def _correction_page(self, request, user, client_id, errors=None, values=None, code=200):
        require_route(user, CORRECTION_ROUTE)
        referral_id = request.values.get("rujukan") or ""
        if not is_plain_id(client_id) or not is_plain_id(referral_id):
            raise not_found()
        referral, _ = self._referral_with_history(
            user, referral_id, "Konsol: koreksi identitas klien"
        )
        identity = referral["client"].get("identity")
        if referral["client"]["id"] != client_id or not identity:
            raise not_found()
        return render(
            "klien_koreksi.html",
            http_status=code,
            user=user,
            referral=referral,
            values=values or {**identity, "sex": referral["client"]["sex"]},
            errors=errors or {},
        )

    @page("GET", "/console/klien/<string:client_id>/koreksi")
    def console_client_correction(self, request, user, client_id):
        """The client's identity as stored, to correct with a reason (admin)."""
        return self._correction_page(request, user, client_id)

    @page("POST", "/console/klien/<string:client_id>/koreksi")
    def console_correct_client(self, request, user, client_id):
        require_route(user, CORRECTION_ROUTE)
        values = {k: v for k, v in request.form.to_dict().items() if k != "csrf"}
        payload, errors = correction_payload(request.form)
        if not errors:
            try:
                self.rpc("rujukan", "correct_client", client_id, payload, user.caller.as_dict())
            except (DomainError, RemoteDomainError) as exc:
                if exc.status >= 500 or exc.status == 404:
                    raise
                errors = {k: v for k, v in field_errors(exc).items() if k in CORRECTION_FIELDS} or {
                    "form": [exc.detail]
                }
                return self._correction_page(request, user, client_id, errors, values, exc.status)
        if errors:
            return self._correction_page(request, user, client_id, errors, values, 422)
        return redirect(f"{BASE}/rujukan/{request.values.get('rujukan')}?pesan=koreksi")

    # --- partners -------------------------------------------------------------------

    @page("GET", "/console/mitra")
    def console_partners(self, request, user):
        require_route(user, "GET /api/v1/partners")
        if user.role == "partner":
            return redirect(f"{BASE}/mitra/{user.partner_id}")
        partners = self.rpc("mitra", "list_partners", {}, user.caller.as_dict())
        return render("mitra_daftar.html", user=user, partners=partners)

    @page("GET", "/console/mitra/<string:partner_id>")
    def console_partner(self, request, user, partner_id):
        return self._partner_page(request, user, partner_id, {}, 200)

    def _partner_page(self, request, user, partner_id, errors, status, values=None):
        require_route(user, "GET /api/v1/partners/<string:partner_id>")
        if not is_plain_id(partner_id):
            raise not_found()
        if user.role == "partner" and partner_id != user.partner_id:
            raise not_found()  # the same answer mitra gives to another partner's object
        partner = self.rpc("mitra", "get_partner", partner_id, user.caller.as_dict())
        occupancy = []
        if user.role in api_roles("GET /api/v1/occupancy"):
            occupancy = [
                o for o in self.rpc("rujukan", "occupancy") if o["partner_id"] == partner_id
            ]
        return render(
            "mitra_detail.html",
            http_status=status,
            user=user,
            partner=partner,
            occupancy={o["service_type"]: o for o in occupancy},
            may_edit=user.role in STAFF or user.partner_id == partner_id,
            may_sign=user.role in api_roles(AGREEMENTS_ROUTE),
            may_end=user.role in api_roles(TERMINATE_ROUTE),
            endable=ENDABLE_AGREEMENTS,
            scopes=codes.AGREEMENT_SCOPE,
            errors=errors,
            values=values or {},
            message=self._message(request),
        )

    # --- activities and supervision visits --------------------------------------------

    def _activities_page(self, request, user, partner_id, errors, values, status, notice=None):
        require_route(user, ACTIVITIES_ROUTE)
        if not is_plain_id(partner_id):
            raise not_found()
        if user.role == "partner" and partner_id != user.partner_id:
            raise not_found()
        kind = request.args.get("jenis") or None
        if kind is not None and kind not in codes.ACTIVITY_KINDS:
            raise ValidationFailed("Jenis kegiatan tidak dikenal.", errors={"jenis": ["?"]})
        partner = self.rpc("mitra", "get_partner", partner_id, user.caller.as_dict())
        activities = self.rpc("mitra", "list_activities", partner_id, user.caller.as_dict(), kind)
        return render(
            "mitra_kegiatan.html",
            http_status=status,
            user=user,
            partner=partner,
            activities=activities,
            kind=kind,
            kinds=codes.ACTIVITY_KINDS,
            dimensions=codes.SCORE_DIMENSIONS,
            may_record=user.role in api_roles(RECORD_ACTIVITY_ROUTE),
            today=self._today().isoformat(),
            errors=errors,
            values=values,
            message=notice or self._message(request),
        )

    @page("GET", "/console/mitra/<string:partner_id>/kegiatan")
    def console_activities(self, request, user, partner_id):
        """A partner's capacity-building activities and supervision visits, newest first,
        filtered by kind; staff record new ones on the same page."""
        return self._activities_page(request, user, partner_id, {}, {}, 200)

    @page("POST", "/console/mitra/<string:partner_id>/kegiatan")
    def console_record_activity(self, request, user, partner_id):
        require_route(user, RECORD_ACTIVITY_ROUTE)
        if not is_plain_id(partner_id):
            raise not_found()
        payload, errors = activity_payload(request.form)
        values = {k: v for k, v in request.form.to_dict().items() if k != "csrf"}
        status = 422
        if not errors:
            refused = attempt(
                lambda: self.rpc(
                    "mitra", "record_activity", partner_id, payload, user.caller.actor
                ),
                ACTIVITY_ERRORS,
            )
            if refused is None:
                return redirect(f"{BASE}/mitra/{partner_id}/kegiatan?pesan=kegiatan")
            errors, status = refused
        return self._activities_page(request, user, partner_id, errors, values, status)

    # --- agreements (PKS) -----------------------------------------------------------

    @page("POST", "/console/mitra/<string:partner_id>/pks")
    def console_sign_agreement(self, request, user, partner_id):
        """A new PKS (or its renewal) from the form on the partner page; a refusal comes
        back on that form, at its field, with what was typed."""
        require_route(user, AGREEMENTS_ROUTE)
        if not is_plain_id(partner_id):
            raise not_found()
        payload, errors = agreement_payload(request.form)
        values = {k: v for k, v in request.form.to_dict().items() if k != "csrf"}
        values["pks.scope"] = request.form.getlist("pks.scope")
        status = 422
        if not errors:

            def sign():
                self.rpc("mitra", "sign_agreement", partner_id, payload, user.caller.actor)
                self.refresh_partner(partner_id)

            refused = attempt(sign, AGREEMENT_ERRORS, "pks.", "pks.form")
            if refused is None:
                return redirect(f"{BASE}/mitra/{partner_id}?pesan=pks#pks")
            errors, status = refused
        return self._partner_page(request, user, partner_id, errors, status, values)

    def _termination_page(
        self, request, user, partner_id, agreement_id, errors, values, code, notice=None
    ):
        require_route(user, TERMINATE_ROUTE)
        if not is_plain_id(partner_id) or not is_plain_id(agreement_id):
            raise not_found()
        partner = self.rpc("mitra", "get_partner", partner_id, user.caller.as_dict())
        agreement = next((a for a in partner["agreements"] if a["id"] == agreement_id), None)
        if agreement is None:
            raise not_found()
        return render(
            "mitra_pks_akhiri.html",
            http_status=code,
            user=user,
            partner=partner,
            agreement=agreement,
            today=self._today().isoformat(),
            ended=agreement["status"] not in ENDABLE_AGREEMENTS,
            errors=errors,
            values=values,
            message=notice,
        )

    @page("GET", "/console/mitra/<string:partner_id>/pks/<string:agreement_id>/akhiri")
    def console_agreement_end_form(self, request, user, partner_id, agreement_id):
        """Ending a PKS early cannot be undone: it is asked for first, with its reason."""
        return self._termination_page(request, user, partner_id, agreement_id, {}, {}, 200)

    @page("POST", "/console/mitra/<string:partner_id>/pks/<string:agreement_id>/akhiri")
    def console_end_agreement(self, request, user, partner_id, agreement_id):
        require_route(user, TERMINATE_ROUTE)
        if not is_plain_id(partner_id) or not is_plain_id(agreement_id):
            raise not_found()
        payload, errors = termination_payload(request.form)
        values = {k: v for k, v in request.form.to_dict().items() if k != "csrf"}
        status = 422
        if not errors:

            def end():
                self.rpc(
                    "mitra",
                    "terminate_agreement",
                    partner_id,
                    agreement_id,
                    payload,
                    user.caller.actor,
                )
                self.refresh_partner(partner_id)

            refused = attempt(end, TERMINATION_ERRORS)
            if refused is None:
                return redirect(f"{BASE}/mitra/{partner_id}?pesan=pks_diakhiri#pks")
            errors, status = refused
        return self._termination_page(
            request, user, partner_id, agreement_id, errors, values, status
        )

    def _update_partner(self, user, partner_id: str, patch: dict[str, Any]) -> None:
        """mitra's change of a partner, then the gateway's copy of its directory entry
        (the API's PATCH does the same), so the next read shows the change."""
        self.rpc("mitra", "update_partner", partner_id, patch, user.caller.as_dict())
        self.refresh_partner(partner_id)

    @page("POST", "/console/mitra/<string:partner_id>/kapasitas")
    def console_partner_capacity(self, request, user, partner_id):
        require_route(user, "PATCH /api/v1/partners/<string:partner_id>")
        if not is_plain_id(partner_id):
            raise not_found()
        partner = self.rpc("mitra", "get_partner", partner_id, user.caller.as_dict())
        errors: dict[str, list[str]] = {}
        services = []
        for offer in partner["services"]:
            name = f"capacity.{offer['service_type']}"
            raw = (request.form.get(name) or "").strip()
            if not _WHOLE.fullmatch(raw) or not 0 <= int(raw) <= 10000:
                errors[name] = ["Isi bilangan bulat 0-10000."]
                continue
            services.append(
                {"service_type": offer["service_type"], "capacity": int(raw), "unit": offer["unit"]}
            )
        if errors:
            return self._partner_page(
                request, user, partner_id, errors, 422, request.form.to_dict()
            )
        try:
            self._update_partner(user, partner_id, {"services": services})
        except (DomainError, RemoteDomainError) as exc:
            if exc.status >= 500 or exc.status == 404:
                raise
            errors = {"form": [exc.detail]}
            return self._partner_page(
                request, user, partner_id, errors, exc.status, request.form.to_dict()
            )
        return redirect(f"{BASE}/mitra/{partner_id}?pesan=kapasitas")

    CONTACT_FIELDS = ("name", "role", "email", "phone", "whatsapp")

    def _change_contacts(self, request, user, partner_id, change) -> Response | None:
        """Save the partner's contacts as ``change(current)`` gives them back (mitra keeps
        the whole list: the API's PATCH with ``contacts``)."""
        require_route(user, "PATCH /api/v1/partners/<string:partner_id>")
        if not is_plain_id(partner_id):
            raise not_found()
        partner = self.rpc("mitra", "get_partner", partner_id, user.caller.as_dict())
        current = [
            {k: c.get(k) for k in self.CONTACT_FIELDS} for c in partner.get("contacts") or []
        ]
        contacts, errors = change(current)
        status = 422
        if not errors:
            try:
                self._update_partner(user, partner_id, {"contacts": contacts})
                return None
            except (DomainError, RemoteDomainError) as exc:
                if exc.status >= 500 or exc.status == 404:
                    raise
                errors, status = {"form": [exc.detail]}, exc.status
        values = request.form.to_dict()
        return self._partner_page(request, user, partner_id, errors, status, values)

    @page("POST", "/console/mitra/<string:partner_id>/kontak")
    def console_add_contact(self, request, user, partner_id):
        raw = {k: (request.form.get(f"contact.{k}") or "").strip() for k in self.CONTACT_FIELDS}

        def add(current):
            try:
                new = ContactInput().load({k: v or None for k, v in raw.items()})
            except MarshmallowValidationError as exc:
                return None, {f"contact.{k}": [CONTACT_ERRORS[k]] for k in exc.messages}
            if len(current) >= 20:
                return None, {"form": ["Paling banyak 20 kontak per mitra."]}
            return [*current, new], {}

        refused = self._change_contacts(request, user, partner_id, add)
        if refused is not None:
            return refused
        return redirect(f"{BASE}/mitra/{partner_id}?pesan=kontak#kontak")

    @page("POST", "/console/mitra/<string:partner_id>/kontak/<int:position>/hapus")
    def console_remove_contact(self, request, user, partner_id, position):
        def remove(current):
            if not 0 <= position < len(current):
                raise not_found()
            return current[:position] + current[position + 1 :], {}

        refused = self._change_contacts(request, user, partner_id, remove)
        if refused is not None:
            return refused
        return redirect(f"{BASE}/mitra/{partner_id}?pesan=kontak_dihapus#kontak")

    # --- reports --------------------------------------------------------------------

    def _today(self) -> date:
        return self.clock.today()

    @page("GET", "/console/laporan")
    def console_reports(self, request, user):
        require_route(user, "GET /api/v1/reports")
        period = request.args.get("periode") or last_month(self._today())
        if not is_period(period):
            raise ValidationFailed("Periode berbentuk YYYY-MM.", errors={"periode": ["YYYY-MM"]})
        reports = self.rpc("laporan", "list_reports", {"period": period}, user.caller.as_dict())
        return render(
            "laporan_daftar.html",
            user=user,
            period=period,
            periods=months_back(last_month(self._today()), 12)[::-1],
            reports=reports,
            names=self.partner_names(user),
        )

    @page("GET", "/console/laporan/<string:partner_id>/<string:period>")
    def console_report(self, request, user, partner_id, period):
        return self._report_page(request, user, partner_id, period)

    def _report_page(
        self,
        request,
        user,
        partner_id,
        period,
        status=200,
        errors=None,
        values=None,
        notice=None,
        reopen_comment="",
    ):
        require_route(user, "GET /api/v1/reports/<string:partner_id>/<string:period>")
        if not is_plain_id(partner_id) or not is_period(period):
            raise not_found()
        report = self.rpc("laporan", "get_report", partner_id, period, user.caller.as_dict())
        may_submit = (
            user.role in api_roles("PUT /api/v1/reports/<string:partner_id>/<string:period>")
            and report["status"] != "approved"
            and not report.get("locked")
        )
        return render(
            "laporan_detail.html",
            http_status=status,
            user=user,
            report=report,
            partner_name=self.partner_names(user).get(partner_id, partner_id),
            groups=REPORT_GROUPS,
            extra=EXTRA_COUNTS,
            values=values or report_values(report.get("content") or report.get("prefill")),
            prefilled=report.get("content") is None,
            errors=errors or {},
            may_submit=may_submit,
            may_review=user.role in STAFF
            and report["status"] in ("submitted_on_time", "submitted_late"),
            may_reopen=user.role
            in api_roles("POST /api/v1/reports/<string:partner_id>/<string:period>/reopen"),
            people=self.people_names(),
            message=notice or self._message(request),
            reopen_comment=reopen_comment,
        )

    @page("POST", "/console/laporan/<string:partner_id>/<string:period>")
    def console_submit_report(self, request, user, partner_id, period):
        require_route(user, "PUT /api/v1/reports/<string:partner_id>/<string:period>")
        if not is_plain_id(partner_id) or not is_period(period):
            raise not_found()
        content, errors = report_content(request.form)
        values = request.form.to_dict()
        if errors:
            return self._report_page(request, user, partner_id, period, 422, errors, values)
        try:
            self.rpc("laporan", "submit_report", partner_id, period, content, user.caller.as_dict())
        except (DomainError, RemoteDomainError) as exc:
            if exc.status >= 500 or exc.status == 404:
                raise
            placed = place_rule_messages(exc.errors or {}) if exc.errors else {}
            rules = [labels.REPORT_RULES[r] for r in exc.errors or {} if r in labels.REPORT_RULES]
            summary = (
                "Aturan yang belum dipenuhi: " + "; ".join(rules) + "." if rules else exc.detail
            )
            placed.setdefault("summary", []).insert(0, summary)
            return self._report_page(request, user, partner_id, period, exc.status, placed, values)
        return redirect(f"{BASE}/laporan/{partner_id}/{period}?pesan=terkirim")

    @page("POST", "/console/laporan/<string:partner_id>/<string:period>/<string:decision>")
    def console_review_report(self, request, user, partner_id, period, decision):
        choices = {"setujui": "approve", "kembalikan": "return", "buka": "reopen"}
        if decision not in choices or not is_plain_id(partner_id) or not is_period(period):
            raise not_found()
        command = choices[decision]
        require_route(user, f"POST /api/v1/reports/<string:partner_id>/<string:period>/{command}")
        comment = (request.form.get("comment") or "").strip()
        payload = {"comment": comment} if comment else {}
        caller = user.caller.as_dict()
        try:
            if command == "reopen":
                self.rpc("laporan", "reopen_report", partner_id, period, payload, caller)
            else:
                self.rpc("laporan", "review_report", partner_id, period, command, payload, caller)
        except (DomainError, RemoteDomainError) as exc:
            if exc.status >= 500 or exc.status == 404:
                raise
            errors = {"summary": [exc.detail], **field_errors(exc)}
            if command != "reopen":
                return self._report_page(request, user, partner_id, period, exc.status, errors)
            # the reopening's reason, at its own field (the return form has a comment too)
            errors["reopen_comment"] = errors.pop("comment", [])
            return self._report_page(
                request, user, partner_id, period, exc.status, errors, reopen_comment=comment
            )
        return redirect(f"{BASE}/laporan/{partner_id}/{period}?pesan={command}")

    # --- notifications --------------------------------------------------------------

    def _inbox(self, user) -> str | None:
        if user.role == "admin":
            return inbox_of(user.caller, None, "role:admin")
        return inbox_of(user.caller)

    @page("GET", "/console/notifikasi")
    def console_notifications(self, request, user):
        require_route(user, "GET /api/v1/notifications")
        pages = Pager.of(request.args, NOTIFICATION_PAGE)
        found = self.rpc(
            "notifikasi",
            "list_notifications",
            self._inbox(user),
            NOTIFICATION_PAGE,
            pages.cursor,
            None,
        )
        return render(
            "notifikasi.html",
            user=user,
            notifications=found["items"],
            pages=pages.links(f"{BASE}/notifikasi", {}, found.get("next_cursor")),
            names=self.partner_names(user),
        )

    @page("POST", "/console/notifikasi/<string:notification_id>/dibaca")
    def console_notification_read(self, request, user, notification_id):
        require_route(user, "POST /api/v1/notifications/<string:notification_id>/read")
        if not is_plain_id(notification_id):
            raise not_found()
        recipient = None if user.role == "admin" else self._inbox(user)
        self.rpc("notifikasi", "mark_read", notification_id, recipient, {"read": True})
        return redirect(f"{BASE}/notifikasi")

    # --- monitoring -----------------------------------------------------------------

    def _datasets(self, user, period: str) -> list[charts.Dataset]:
        require_route(user, "GET /api/v1/indicators")
        names = self.partner_names(user)
        indicators = self.rpc("laporan", "indicators", period)
        rows = [r for r in indicators["partners"] if r["partner_id"] in names]
        reports = {
            month: self.rpc("laporan", "list_reports", {"period": month}, user.caller.as_dict())
            for month in months_back(period, COMPLIANCE_MONTHS)
        }
        return [
            charts.funnel(indicators["province"]["figures"], period),
            charts.response_times(rows, names, period),
            charts.occupancy(self.rpc("rujukan", "occupancy"), names),
            charts.compliance(reports, names),
            charts.outcomes(rows, names, period),
        ]

    def _period_arg(self, request) -> str:
        period = request.args.get("periode") or f"{self._today():%Y-%m}"
        if not is_period(period):
            raise ValidationFailed("Periode berbentuk YYYY-MM.", errors={"periode": ["YYYY-MM"]})
        return period

    def _missing_addresses(self) -> dict[str, Any] | None:
        """Who notifikasi could not tell for want of an address; None if notifikasi does
        not answer (the rest of the dashboard is still worth showing)."""
        try:
            return self.rpc("notifikasi", "missing_addresses", MISSING_ADDRESS_DAYS)
        except ServiceUnavailable:
            return None

    @page("GET", "/console/monev", roles=STAFF)
    def console_dashboard(self, request, user):
        period = self._period_arg(request)
        return render(
            "monev.html",
            user=user,
            period=period,
            periods=months_back(f"{self._today():%Y-%m}", 12)[::-1],
            datasets=self._datasets(user, period),
            compliance_class=charts.compliance_class,
            missing=self._missing_addresses(),
            missing_days=MISSING_ADDRESS_DAYS,
        )

    @page("GET", "/console/monev/<string:key>.csv", roles=STAFF)
    def console_dashboard_csv(self, request, user, key):
        period = self._period_arg(request)
        dataset = self._dataset(user, period, key)
        return Response(
            charts.to_csv(dataset),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{key}-{period}.csv"'},
        )

    @page("GET", "/console/monev/<string:key>.xlsx", roles=STAFF)
    def console_dashboard_xlsx(self, request, user, key):
        period = self._period_arg(request)
        dataset = self._dataset(user, period, key)
        sheet, rows = spreadsheets.table_sheet(
            dataset.title[:31], dataset.columns, dataset.rows, dataset.note
        )
        return spreadsheets.xlsx_response(sheet, rows, f"{key}-{period}")

    def _dataset(self, user, period: str, key: str):
        for dataset in self._datasets(user, period):
            if dataset.key == key:
                return dataset
        raise not_found()

    # --- people (admin) -------------------------------------------------------------

    @page("GET", "/console/pengguna", roles=("admin",))
    def console_users(self, request, user):
        return self._users_page(request, user, {}, {}, 200)

    def _users_page(self, request, user, errors, values, status):
        with self.uow() as uow:
            people = accounts.list_users(uow)
        partners = self.rpc("mitra", "list_partners", {}, user.caller.as_dict())
        return render(
            "pengguna.html",
            http_status=status,
            user=user,
            people=people,
            partners=partners,
            partner_names={p["id"]: p["name"] for p in partners},
            errors=errors,
            values=values,
            roles=codes.PEOPLE,
            message=self._message(request),
        )

    @page("POST", "/console/pengguna", roles=("admin",))
    def console_create_user(self, request, user):
        form = request.form
        data = {
            "username": (form.get("username") or "").strip(),
            "full_name": form.get("full_name") or "",
            "role": form.get("role") or "",
            "partner_id": form.get("partner_id") or None,
            "password": form.get("password") or "",
        }
        values = {k: v for k, v in data.items() if k != "password"}
        errors = accounts.check_new_user(data)
        if data["role"] == "partner" and "partner_id" not in errors:
            known = self.partner_names(user)
            if data["partner_id"] not in known:
                errors["partner_id"] = ["Mitra tidak dikenal."]
        if not errors:
            try:
                with self.uow() as uow:
                    accounts.create_user(uow, data, f"{user.role}:{user.caller.key_id}")
                    uow.commit()
            except DomainError as exc:
                errors = dict(exc.errors or {"form": [exc.detail]})
        if errors:
            return self._users_page(request, user, errors, values, 422)
        return redirect(f"{BASE}/pengguna?pesan=pengguna")

    @page("POST", "/console/pengguna/<string:user_id>/status", roles=("admin",))
    def console_disable_user(self, request, user, user_id):
        change = request.form.get("ubah")
        if change not in ("nonaktifkan", "aktifkan"):
            raise ValidationFailed("Pilih nonaktifkan atau aktifkan.", errors={"ubah": ["?"]})
        try:
            with self.uow() as uow:
                accounts.set_disabled(uow, user_id, change == "nonaktifkan", user.user_id)
                uow.commit()
        except DomainError as exc:
            if exc.status == 404:
                raise
            errors = {f"status.{user_id}": [exc.detail]}
            return self._users_page(request, user, errors, {}, exc.status)
        return redirect(f"{BASE}/pengguna?pesan={change}")

    @page("POST", "/console/pengguna/<string:user_id>/sandi", roles=("admin",))
    def console_reset_password(self, request, user, user_id):
        try:
            with self.uow() as uow:
                accounts.set_password(uow, user_id, request.form.get("password") or "")
                uow.commit()
        except ValidationFailed as exc:
            errors = {f"reset.{user_id}": exc.errors.get("password", [exc.detail])}
            return self._users_page(request, user, errors, {}, 422)
        return redirect(f"{BASE}/pengguna?pesan=reset")

    # --- the access audit (admin) ----------------------------------------------------

    @page("GET", "/console/audit")
    def console_audit(self, request, user):
        """Who read which client's identity, when and why: newest first, by pages that
        keep the filters (the API's: the person, the partner they act for, a referral)."""
        require_route(user, AUDIT_ROUTE)
        args = request.args
        people = self._people_by_actor()
        names = self.partner_names(user)
        filters: dict[str, str] = {}
        query: dict[str, Any] = {}
        errors: dict[str, list[str]] = {}
        for field, api_field, known in (
            ("pelaku", "actor", people),
            ("mitra", "partner_id", names),
            ("rujukan", "referral_id", None),
        ):
            value = (args.get(field) or "").strip()
            if not value:
                continue
            if (known is not None and value not in known) or (
                known is None and not is_plain_id(value)
            ):
                errors[field] = [AUDIT_FILTER_ERRORS[field]]
                continue
            filters[field] = value
            query[api_field] = value
        pages = Pager.of(args, AUDIT_PAGE)
        found: dict[str, Any] = {"items": [], "next_cursor": None}
        if not errors:
            query.update(limit=AUDIT_PAGE, **pages.params())
            found = self.rpc("rujukan", "list_audit", query, user.caller.as_dict())
        return render(
            "audit.html",
            http_status=422 if errors else 200,
            user=user,
            entries=found["items"],
            pages=pages.links(f"{BASE}/audit", filters, found.get("next_cursor")),
            filters={k: (args.get(k) or "").strip() for k in AUDIT_FILTER_ERRORS},
            people=people,
            usernames=self.people_names(),
            names=names,
            errors=errors,
        )

    def _people_by_actor(self) -> dict[str, str]:
        """Every console account as the audit names its reads (``officer:user:rina``) →
        the person's name and role."""
        with self.uow() as uow:
            users = accounts.list_users(uow)
        known = {u["username"]: u["full_name"] for u in users}
        return {
            f"{u['role']}:user:{u['username']}": labels.actor_name(
                f"{u['role']}:user:{u['username']}", known
            )
            for u in users
        }

    @page("GET", "/console/<path:rest>", roles=None)
    def console_unknown(self, request, user, rest):
        """Any other address under /console: the console's own not-found page."""
        raise not_found()

    # --- files ----------------------------------------------------------------------

    @page("GET", "/console/static/<string:filename>", roles=None)
    def console_static(self, request, user, filename):
        path = safe_join(str(STATIC), filename)
        if path is None or not Path(path).is_file():
            raise not_found()
        mimetype = mimetypes.guess_type(path)[0] or "application/octet-stream"
        response = Response(Path(path).read_bytes(), mimetype=mimetype)
        response.headers["Cache-Control"] = "public, max-age=3600"
        return response
