"""Who is told of what, through which channel, in which words; how a webhook delivery is
signed and how a failed delivery is retried. Plain Python: no nameko, no SQL.

Routing is data (``ROUTES``, ``DEFAULT_CHANNELS``), overridden per recipient and event
type by the recipient's preferences. Templates are Bahasa Indonesia, rendered by Jinja2 in
a sandbox from an allow-list of event fields: a template cannot print client identity even
if an event carried it (the partner opens the referral in Bersinar for that)."""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from bersinar import codes
from bersinar.contracts import events

# --- what there is ----------------------------------------------------------------------

# Every event there is, with the service that emits it: their declared contracts.
EVENT_SOURCES = events.EVENT_SOURCES
# Deliveries made because of these tell nothing more about themselves (no loop).
OUTCOME_EVENTS = frozenset({"notification_sent", "notification_failed"})

INBOX, EMAIL, SMS, WHATSAPP, WEBHOOK = "inbox", "email", "sms", "whatsapp", "webhook"
# Channels a person (a partner's contacts, officers, admins) can be told through.
PERSON_CHANNELS = codes.PERSON_CHANNELS
CHANNELS = tuple(codes.CHANNELS)

# Channels that reach a person at an address: a partner's contacts in mitra, BNNP staff's
# in configuration. The in-app inbox needs none.
ADDRESSED_CHANNELS = (EMAIL, SMS, WHATSAPP)

# Audiences: "partner" = the contacts of data.partner_id (and of the partner a referral
# was transferred to); "officer" / "admin" = BNNP staff of that role.
AUDIENCES = ("partner", "officer", "admin")

# --- routing: who is told of what (data, not code) ----------------------------------------

ROUTES: dict[str, tuple[str, ...]] = {
    "partner_registered": ("admin",),
    "partner_updated": (),  # webhook subscribers only
    "agreement_signed": ("partner", "admin"),
    "agreement_expiring": ("admin",),
    "agreement_expired": ("partner", "admin"),
    "agreement_terminated": ("partner", "admin"),
    "referral_requested": ("partner",),
    "referral_accepted": ("officer",),
    "referral_rejected": ("officer",),
    "referral_cancelled": ("partner",),
    "referral_admitted": ("officer",),
    "referral_completed": ("officer",),
    "referral_dropped_out": ("officer",),
    "referral_transferred": ("partner", "officer"),
    "referral_response_overdue": ("officer",),  # escalation
    "report_due_soon": ("partner",),
    "report_overdue": ("partner", "officer"),
    "report_submitted": ("officer",),
    "report_approved": ("partner",),
    "report_returned": ("partner",),
    "notification_sent": (),  # webhook subscribers only
    "notification_failed": ("admin",),
}

# Channels used when a recipient has not chosen (SMS and WhatsApp are opted into).
DEFAULT_CHANNELS: tuple[str, ...] = (INBOX, EMAIL)


def recipient_id(kind: str, ident: str) -> str:
    return f"{kind}:{ident}"


def recipient_kind(recipient: str) -> str:
    """``partner:yayasan-kipas`` -> ``partner``; ``role:officer`` -> ``officer``."""
    kind, _, ident = recipient.partition(":")
    return ident if kind == "role" else kind


def audience_recipients(event_type: str, data: Mapping[str, Any]) -> list[str]:
    """The people (by recipient id) an event is meant for, per ``ROUTES``."""
    recipients: list[str] = []
    for audience in ROUTES.get(event_type, ()):
        if audience == "partner":
            recipients.append(recipient_id("partner", str(data["partner_id"])))
            if event_type == "referral_transferred":
                recipients.append(recipient_id("partner", str(data["to_partner_id"])))
        elif audience in ("officer", "admin"):
            recipients.append(recipient_id("role", audience))
    return list(dict.fromkeys(recipients))


def channels_for(
    recipient: str, event_type: str, preferences: Mapping[tuple[str, str], Iterable[str]]
) -> tuple[str, ...]:
    """A recipient's choice for this event type, else its choice for every event type
    (``*``), else the defaults."""
    for key in ((recipient, event_type), (recipient, "*")):
        if key in preferences:
            return tuple(c for c in PERSON_CHANNELS if c in set(preferences[key]))
    return DEFAULT_CHANNELS


@dataclass(frozen=True)
class PlannedDelivery:
    recipient: str
    channel: str


def plan(
    event: Mapping[str, Any],
    preferences: Mapping[tuple[str, str], Iterable[str]],
    subscriptions: Iterable[tuple[str, Iterable[str]]],
) -> list[PlannedDelivery]:
    """One delivery per recipient and channel: the routed people on their channels, and
    every webhook subscription (id, event types) that asked for this event type."""
    event_type = event["event_type"]
    planned = [
        PlannedDelivery(recipient, channel)
        for recipient in audience_recipients(event_type, event.get("data") or {})
        for channel in channels_for(recipient, event_type, preferences)
    ]
    planned += [
        PlannedDelivery(recipient_id("webhook", sub_id), WEBHOOK)
        for sub_id, event_types in subscriptions
        if event_type in set(event_types)
    ]
    return planned


def without_address(
    planned: Iterable[PlannedDelivery], reachable: Mapping[tuple[str, str], bool | None]
) -> tuple[list[PlannedDelivery], list[PlannedDelivery]]:
    """(deliveries to make, deliveries not planned): a channel known to have no address
    for its recipient is not planned. Unknown (``None`` or absent: the directory did not
    answer) is planned, and the delivery worker finds out when it sends."""
    kept, skipped = [], []
    for item in planned:
        known = reachable.get((item.recipient, item.channel))
        (skipped if item.channel in ADDRESSED_CHANNELS and known is False else kept).append(item)
    return kept, skipped


# --- templates (Bahasa Indonesia) ---------------------------------------------------------


# The only event fields a template may see. Client identity is not among them (nor the
# pseudonym: it means nothing to a reader and is not theirs to keep).
SAFE_KEYS = (
    "referral_id", "partner_id", "partner_name", "to_partner_id", "to_partner_name", "sex",
    "age_group", "service_type", "source", "status", "reason", "report_id", "period", "due_on",
    "agreement_id", "number", "valid_from", "valid_until", "days_left", "terminated_on",
    "kabupaten_kota", "event_type", "channel", "recipient_kind", "attempts",
)  # fmt: skip


@dataclass(frozen=True)
class EventTemplates:
    """The words for one event type: ``title`` and ``body`` for the inbox and the email
    (the email wraps them in ``EMAIL_LAYOUT``), ``short`` for SMS and WhatsApp."""

    title: str
    body: str
    short: str

    def sources(self) -> tuple[str, str, str]:
        return (self.title, self.body, self.short)


_LAYANAN = "{{ service_type | layanan }}"
_MITRA = "{{ partner_name or partner_id }}"

TEMPLATES: dict[str, EventTemplates] = {
    "partner_registered": EventTemplates(
        "Mitra baru terdaftar: {{ partner_name or partner_id }}",
        "Lembaga {{ partner_name or partner_id }} ({{ kabupaten_kota }}) telah terdaftar sebagai "
        "mitra di Bersinar. Lengkapi kontak, layanan, dan perjanjian kerja samanya.",
        "Bersinar: mitra baru terdaftar ({{ partner_name or partner_id }}).",
    ),
    "partner_updated": EventTemplates(
        "Data mitra diperbarui: " + _MITRA,
        "Data lembaga " + _MITRA + " di Bersinar telah diperbarui.",
        "Bersinar: data mitra " + _MITRA + " diperbarui.",
    ),
    "agreement_signed": EventTemplates(
        "Perjanjian kerja sama {{ number }} ditandatangani",
        "Perjanjian kerja sama (PKS) nomor {{ number }} dengan " + _MITRA + " berlaku "
        "{{ valid_from | tanggal }} sampai {{ valid_until | tanggal }}.",
        "Bersinar: PKS {{ number }} berlaku s.d. {{ valid_until | tanggal }}.",
    ),
    "agreement_expiring": EventTemplates(
        "PKS {{ number }} segera berakhir ({{ days_left }} hari lagi)",
        "Perjanjian kerja sama (PKS) nomor {{ number }} dengan mitra " + _MITRA + " berakhir "
        "pada {{ valid_until | tanggal }}, {{ days_left }} hari lagi. Mohon siapkan "
        "perpanjangannya agar rujukan ke mitra ini tidak terhenti.",
        "Bersinar: PKS {{ number }} (" + _MITRA + ") berakhir {{ valid_until | tanggal }}.",
    ),
    "agreement_expired": EventTemplates(
        "PKS {{ number }} telah berakhir",
        "Perjanjian kerja sama (PKS) nomor {{ number }} dengan mitra " + _MITRA + " berakhir "
        "pada {{ valid_until | tanggal }}. Rujukan baru ke mitra ini tidak dapat dibuat sampai "
        "ada PKS yang berlaku.",
        "Bersinar: PKS {{ number }} (" + _MITRA + ") telah berakhir.",
    ),
    "agreement_terminated": EventTemplates(
        "PKS mitra " + _MITRA + " diakhiri",
        "Perjanjian kerja sama dengan mitra " + _MITRA + " diakhiri per "
        "{{ terminated_on | tanggal }}. Rujukan baru ke mitra ini tidak dapat dibuat.",
        "Bersinar: PKS mitra " + _MITRA + " diakhiri per {{ terminated_on | tanggal }}.",
    ),
    "referral_requested": EventTemplates(
        "Rujukan baru menunggu tanggapan",
        "Ada rujukan baru untuk layanan " + _LAYANAN + " (rujukan {{ referral_id }}, "
        "klien {{ sex | jenis_kelamin }}, kelompok usia {{ age_group }}). Mohon buka Bersinar "
        "untuk melihat data klien dan menerima atau menolak rujukan ini.",
        "Bersinar: rujukan baru " + _LAYANAN + " menunggu tanggapan. Buka Bersinar.",
    ),
    "referral_accepted": EventTemplates(
        "Rujukan diterima mitra",
        "Mitra "
        + _MITRA
        + " menerima rujukan {{ referral_id }} untuk layanan "
        + _LAYANAN
        + ". Klien dapat diantar atau dijadwalkan masuk.",
        "Bersinar: rujukan {{ referral_id }} diterima " + _MITRA + ".",
    ),
    "referral_rejected": EventTemplates(
        "Rujukan ditolak mitra",
        "Mitra "
        + _MITRA
        + " menolak rujukan {{ referral_id }} untuk layanan "
        + _LAYANAN
        + " (alasan: {{ reason | alasan }}). Mohon carikan mitra lain.",
        "Bersinar: rujukan {{ referral_id }} ditolak " + _MITRA + ".",
    ),
    "referral_cancelled": EventTemplates(
        "Rujukan dibatalkan",
        "Rujukan {{ referral_id }} untuk layanan " + _LAYANAN + " dibatalkan oleh petugas "
        "BNNP. Tidak ada tindakan lanjut yang diperlukan.",
        "Bersinar: rujukan {{ referral_id }} dibatalkan.",
    ),
    "referral_admitted": EventTemplates(
        "Klien mulai menjalani layanan",
        "Klien rujukan {{ referral_id }} telah diterima masuk di "
        + _MITRA
        + " untuk layanan "
        + _LAYANAN
        + ".",
        "Bersinar: klien rujukan {{ referral_id }} masuk layanan di " + _MITRA + ".",
    ),
    "referral_completed": EventTemplates(
        "Layanan rehabilitasi selesai",
        "Klien rujukan {{ referral_id }} telah menyelesaikan layanan "
        + _LAYANAN
        + " di "
        + _MITRA
        + ". Rencanakan pasca rehabilitasi bila diperlukan.",
        "Bersinar: rujukan {{ referral_id }} selesai di " + _MITRA + ".",
    ),
    "referral_dropped_out": EventTemplates(
        "Klien berhenti sebelum layanan selesai",
        "Klien rujukan {{ referral_id }} berhenti dari layanan "
        + _LAYANAN
        + " di "
        + _MITRA
        + " sebelum selesai. Mohon tindak lanjuti.",
        "Bersinar: klien rujukan {{ referral_id }} putus layanan di " + _MITRA + ".",
    ),
    "referral_transferred": EventTemplates(
        "Rujukan dialihkan",
        "Rujukan {{ referral_id }} untuk layanan "
        + _LAYANAN
        + " dialihkan dari mitra "
        + _MITRA
        + " ke mitra {{ to_partner_name or to_partner_id }}. "
        "Buka Bersinar untuk rinciannya.",
        "Bersinar: rujukan {{ referral_id }} dialihkan. Buka Bersinar.",
    ),
    "referral_response_overdue": EventTemplates(
        "Eskalasi: rujukan belum ditanggapi mitra",
        "Mitra "
        + _MITRA
        + " belum menanggapi rujukan {{ referral_id }} untuk layanan "
        + _LAYANAN
        + " dalam batas waktu. Mohon hubungi mitra atau alihkan rujukan.",
        "Bersinar: rujukan {{ referral_id }} belum ditanggapi " + _MITRA + ".",
    ),
    "report_due_soon": EventTemplates(
        "Laporan bulanan {{ period }} segera jatuh tempo",
        "Laporan bulanan periode {{ period }} jatuh tempo pada {{ due_on | tanggal }}. Mohon "
        "lengkapi dan kirim melalui Bersinar sebelum tenggat.",
        "Bersinar: laporan {{ period }} jatuh tempo {{ due_on | tanggal }}.",
    ),
    "report_overdue": EventTemplates(
        "Laporan bulanan {{ period }} terlambat",
        "Laporan bulanan periode {{ period }} dari mitra " + _MITRA + " belum diterima; "
        "tenggatnya {{ due_on | tanggal }}. Mohon segera kirim melalui Bersinar.",
        "Bersinar: laporan {{ period }} " + _MITRA + " terlambat (tenggat {{ due_on | tanggal }}).",
    ),
    "report_submitted": EventTemplates(
        "Laporan bulanan {{ period }} masuk",
        "Mitra " + _MITRA + " mengirim laporan bulanan periode {{ period }}. Mohon periksa "
        "dan setujui atau kembalikan dengan catatan.",
        "Bersinar: laporan {{ period }} dari " + _MITRA + " menunggu pemeriksaan.",
    ),
    "report_approved": EventTemplates(
        "Laporan bulanan {{ period }} disetujui",
        "Laporan bulanan periode {{ period }} telah diperiksa dan disetujui petugas BNNP. "
        "Terima kasih.",
        "Bersinar: laporan {{ period }} disetujui.",
    ),
    "report_returned": EventTemplates(
        "Laporan bulanan {{ period }} dikembalikan",
        "Laporan bulanan periode {{ period }} dikembalikan untuk diperbaiki. Catatan petugas "
        "dapat dibaca di Bersinar; kirim kembali setelah diperbaiki.",
        "Bersinar: laporan {{ period }} dikembalikan untuk diperbaiki.",
    ),
    "notification_sent": EventTemplates(
        "Notifikasi {{ event_type }} terkirim",
        "Notifikasi {{ event_type }} untuk {{ recipient_kind }} terkirim lewat {{ channel }} "
        "pada percobaan ke-{{ attempts }}.",
        "Bersinar: notifikasi {{ event_type }} terkirim lewat {{ channel }}.",
    ),
    "notification_failed": EventTemplates(
        "Notifikasi gagal terkirim: {{ event_type }}",
        "Notifikasi {{ event_type }} untuk {{ recipient_kind }} lewat {{ channel }} gagal "
        "setelah {{ attempts }} percobaan. Periksa log pengiriman di Bersinar dan alamat "
        "penerimanya.",
        "Bersinar: notifikasi {{ event_type }} lewat {{ channel }} gagal terkirim.",
    ),
}

EMAIL_SUBJECT = "[Bersinar] {{ title }}"
EMAIL_LAYOUT = (
    "Yth. {{ audience }},\n\n"
    "{{ body }}\n\n"
    "Buka Bersinar: {{ console_url }}\n\n"
    "--\n"
    "Pesan otomatis Bersinar, BNN Provinsi Bengkulu. Mohon tidak membalas email ini.\n"
)
AUDIENCE_LABELS = {
    "partner": "Pengelola Lembaga Rehabilitasi Mitra",
    "officer": "Petugas Rehabilitasi BNNP Bengkulu",
    "admin": "Administrator Bersinar BNNP Bengkulu",
}


def tanggal(value: Any) -> str:
    """``2026-12-07`` -> ``7 Desember 2026``; anything else as it is."""
    if value in (None, ""):
        return "-"
    try:
        day = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
    except ValueError:
        return str(value)
    return f"{day.day} {codes.MONTHS[day.month - 1]} {day.year}"


_env = SandboxedEnvironment(
    undefined=StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
    finalize=lambda value: "-" if value is None else value,
)
_env.filters["layanan"] = lambda value: codes.label(codes.SERVICE_TYPES, value).lower()
_env.filters["jenis_kelamin"] = lambda value: codes.label(codes.SEXES, value).lower()
_env.filters["tanggal"] = tanggal
_env.filters["alasan"] = lambda value: codes.label(codes.REJECTION_REASONS, value).lower()


@functools.lru_cache(maxsize=256)
def _compiled(source: str):
    # templates are a fixed set: compile each once, not for every event
    return _env.from_string(source)


def _render(source: str, context: Mapping[str, Any]) -> str:
    return _compiled(source).render(**context)


def template_context(data: Mapping[str, Any]) -> dict[str, Any]:
    """The allow-listed fields of an event's data; missing ones are None (printed "-")."""
    return {key: data.get(key) for key in SAFE_KEYS}


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


def render(
    event_type: str,
    channel: str,
    data: Mapping[str, Any],
    audience: str = "partner",
    console_url: str = "",
) -> Rendered:
    """The words of one event for one channel (the webhook carries the envelope instead)."""
    templates = TEMPLATES[event_type]
    context = template_context(data)
    title = _render(templates.title, context)
    if channel == INBOX:
        return Rendered(title, _render(templates.body, context))
    if channel == EMAIL:
        body = _render(templates.body, context)
        return Rendered(
            _render(EMAIL_SUBJECT, {"title": title}),
            _render(
                EMAIL_LAYOUT,
                {
                    "audience": AUDIENCE_LABELS.get(audience, "Bapak/Ibu"),
                    "body": body,
                    "console_url": console_url or "-",
                },
            ),
        )
    if channel in (SMS, WHATSAPP):
        return Rendered(title, _render(templates.short, context))
    raise ValueError(f"no template for channel {channel}")


@dataclass(frozen=True)
class Message:
    recipient: str
    title: str
    body: str


def messages_for(event: Mapping[str, Any]) -> list[Message]:
    """The in-app inbox messages an event gives, one per routed recipient."""
    event_type = event["event_type"]
    if event_type not in TEMPLATES:
        return []
    recipients = audience_recipients(event_type, event.get("data") or {})
    if not recipients:
        return []
    rendered = render(event_type, INBOX, event["data"])
    return [Message(r, rendered.subject, rendered.body) for r in recipients]


# --- a recipient without an address ------------------------------------------------------

ADDRESS_WORDS = {EMAIL: "alamat email", SMS: "nomor telepon", WHATSAPP: "nomor WhatsApp"}
STAFF_NAMES = {"officer": "petugas rehabilitasi BNNP", "admin": "administrator Bersinar"}
# Where staff addresses are set (services/notifikasi/config.yaml, docs/configuration.md).
STAFF_SETTINGS = {EMAIL: "EMAILS", SMS: "PHONES", WHATSAPP: "PHONES"}
ADDRESS_NOTICE = "address_missing"  # event_type of the admins' notice in the inbox


def recipient_name(recipient: str, name: str | None = None) -> str:
    """How a person reads a recipient: ``mitra Yayasan Kipas``, ``petugas rehabilitasi
    BNNP``. A partner mitra does not know keeps its id."""
    kind, _, ident = recipient.partition(":")
    if kind == "partner":
        return f"mitra {name or ident}"
    return STAFF_NAMES.get(recipient_kind(recipient), recipient)


def address_notice(recipient: str, channel: str, name: str | None = None) -> Rendered:
    """The admins' notice that a recipient has no address for a channel: who, what it
    costs (they are not told there) and how to put it right."""
    who = recipient_name(recipient, name)
    address = ADDRESS_WORDS.get(channel, f"alamat {channel}")
    via = codes.label(codes.CHANNELS, channel)
    via = via if channel in (SMS, WHATSAPP) else via.lower()
    kind, _, ident = recipient.partition(":")
    if kind == "partner":
        title = f"{address[0].upper()}{address[1:]} {who} belum diisi"
        remedy = (
            f"Isi kontak {who} (nama, peran, dan {address}) di konsol Bersinar, halaman "
            f"Mitra & PKS → {name or ident} → Kontak, atau lewat API: PATCH "
            f"/api/v1/partners/{ident} dengan kolom contacts."
        )
        inbox = f"Notifikasinya tetap masuk ke kotak masuk {who} di Bersinar."
    else:
        setting = f"NOTIFIKASI_{recipient_kind(recipient).upper()}_{STAFF_SETTINGS[channel]}"
        title = f"{address[0].upper()}{address[1:]} {who} belum diatur"
        remedy = (
            f"Isi {setting} (beberapa alamat dipisah koma) di konfigurasi Bersinar, lalu "
            "mulai ulang layanan notifikasi."
        )
        inbox = f"Notifikasinya tetap masuk ke kotak masuk {who} di konsol Bersinar."
    body = (
        f"Notifikasi untuk {who} tidak dikirim lewat {via} karena {address} penerimanya "
        f"belum ada. {inbox} {remedy} Setelah itu notifikasi berikutnya terkirim lewat "
        f"{via}. Pemberitahuan ini muncul paling banyak sekali sehari untuk penerima dan "
        "kanal yang sama."
    )
    return Rendered(title, body)


# --- webhooks ---------------------------------------------------------------------------

SIGNATURE_HEADER = "X-Bersinar-Signature"
DELIVERY_HEADER = "X-Bersinar-Delivery"
EVENT_HEADER = "X-Bersinar-Event"
SECRET_PREFIX = "whsec_"


def new_webhook_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``: the timestamp is signed
    too, so a captured delivery cannot be replayed later with a new time."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(secret: str, header: str, body: bytes, now: int, tolerance: int = 300) -> bool:
    """What a receiver does: recompute, compare in constant time, refuse stale ones."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body)
    return hmac.compare_digest(expected, f"t={timestamp},v1={parts.get('v1', '')}")


# --- retries ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Attempt n (1-based) that fails waits ``base * factor**(n-1)`` (at most ``cap``)
    before the next; after ``max_attempts`` failures the delivery is given up."""

    max_attempts: int = 6
    base: float = 30.0
    factor: float = 2.0
    cap: float = 3600.0

    def delay(self, attempt: int) -> float:
        return min(self.cap, self.base * self.factor ** max(0, attempt - 1))

    def after_failure(self, attempt: int, now: datetime) -> datetime | None:
        """When to try again after failed attempt ``attempt``; None: give up."""
        if attempt >= self.max_attempts:
            return None
        return now + timedelta(seconds=self.delay(attempt))


class PermanentDeliveryError(Exception):
    """A delivery that no retry can make succeed (no address, channel not configured)."""

    def __init__(self, code: str, detail: str):
        super().__init__(f"{code}: {detail}")
        self.code = code
