"""Who is told of what, through which channel, in which words; how a webhook delivery is
signed, where a webhook may go and how a failed delivery is retried. Plain Python: no
nameko, no SQL, no network.

Routing is data (``ROUTES``, ``DEFAULT_CHANNELS``), overridden per recipient and event
type by the recipient's preferences. Templates are Bahasa Indonesia, rendered by Jinja2 in
a sandbox from an allow-list of event fields: a template cannot print client identity even
if an event carried it (the partner opens the referral in Bersinar for that)."""

from __future__ import annotations

import base64
import functools
import ipaddress
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment
from standardwebhooks import Webhook

from bersinar import codes
from bersinar.contracts import events
from bersinar.contracts.notifications import NATIONAL_EVENT_TYPES

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
    "referral_follow_up_due": ("partner",),  # the aftercare follow-up, once
    # an admin's corrections: the partner holding the referral (a corrected identity:
    # only while the referral is open there, see audience_recipients)
    "referral_transition_undone": ("partner",),
    "client_corrected": ("partner",),
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


# a referral the partner still holds (asked to answer, accepted, in care)
OPEN_REFERRAL_STATUSES = ("requested", "accepted", "admitted")


def recipient_id(kind: str, ident: str) -> str:
    return f"{kind}:{ident}"


def recipient_kind(recipient: str) -> str:
    """``partner:yayasan-kipas`` -> ``partner``; ``role:officer`` -> ``officer``."""
    kind, _, ident = recipient.partition(":")
    return ident if kind == "role" else kind


def audience_recipients(event_type: str, data: Mapping[str, Any]) -> list[str]:
    """The people (by recipient id) an event is meant for, per ``ROUTES``."""
    recipients: list[str] = []
    if event_type == "client_corrected" and data.get("status") not in OPEN_REFERRAL_STATUSES:
        return recipients  # a partner no longer holding the referral needs no word of it
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
    "kabupaten_kota", "event_type", "channel", "recipient_kind", "attempts", "outcome",
    "follow_up_on", "from_status", "to_status",
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
    "referral_follow_up_due": EventTemplates(
        "Tindak lanjut pasca rehabilitasi hari ini",
        "Hari ini ({{ follow_up_on | tanggal }}) adalah tanggal tindak lanjut pasca "
        "rehabilitasi klien rujukan {{ referral_id }} (layanan "
        + _LAYANAN
        + ", hasil akhir: {{ outcome | hasil }}) di "
        + _MITRA
        + ". Hubungi klien sesuai rencana pasca rehabilitasi dan catat hasilnya.",
        "Bersinar: tindak lanjut pasca rehabilitasi rujukan {{ referral_id }} hari ini.",
    ),
    "referral_transition_undone": EventTemplates(
        "Langkah terakhir rujukan dibatalkan",
        "Admin Bersinar membatalkan langkah terakhir rujukan {{ referral_id }} untuk layanan "
        + _LAYANAN
        + ": status {{ from_status | status_rujukan }} dibatalkan, rujukan kembali berstatus "
        "{{ to_status | status_rujukan }}. Buka Bersinar untuk melihat riwayat dan alasannya.",
        "Bersinar: langkah terakhir rujukan {{ referral_id }} dibatalkan, kini "
        "{{ to_status | status_rujukan }}.",
    ),
    "client_corrected": EventTemplates(
        "Data klien rujukan dikoreksi",
        "Admin Bersinar mengoreksi data identitas klien rujukan {{ referral_id }} untuk "
        "layanan " + _LAYANAN + ". Buka Bersinar untuk melihat data yang benar sebelum "
        "mencetak atau mencocokkan berkas klien.",
        "Bersinar: data klien rujukan {{ referral_id }} dikoreksi. Buka Bersinar.",
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
_env.filters["hasil"] = lambda value: codes.label(codes.DISCHARGE_OUTCOMES, value).lower()
_env.filters["alasan"] = lambda value: codes.label(codes.REJECTION_REASONS, value).lower()
_env.filters["status_rujukan"] = lambda value: codes.label(codes.REFERRAL_STATUSES, value).lower()


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

DELIVERY_HEADER = "X-Bersinar-Delivery"
EVENT_HEADER = "X-Bersinar-Event"
SECRET_PREFIX = "whsec_"


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in standard base64,
    which every receiver's library decodes to the same key."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signed_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers of one request: ``webhook-id`` (the delivery's id,
    the same on every attempt, so a receiver can drop a resend), ``webhook-timestamp``
    (unix seconds, signed too, so a captured request cannot be replayed later) and
    ``webhook-signature`` (``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``)."""
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": Webhook(secret).sign(message_id, moment, body.decode()),
    }


def subscribable(role: str, event_types: Iterable[str]) -> list[str]:
    """What a subscription of ``role`` is told of: ``national`` only the events that
    describe no person (``NATIONAL_EVENT_TYPES``), whatever it asked for before that
    rule; everyone else what it asked for."""
    if role == "national":
        return [t for t in event_types if t in NATIONAL_EVENT_TYPES]
    return list(event_types)


# --- webhook targets ----------------------------------------------------------------------

# Cloud metadata services: never a receiver, even for a host the admin allowed
# (AWS/GCP/Azure/OpenStack's 169.254.169.254, AWS's IPv6 one, Alibaba's).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
# Networks of an organisation (RFC 1918, and IPv6's unique local addresses).
PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")
# What a kind of address is called in a refusal; the kinds a host named in
# WEBHOOK_ALLOW_HOSTS may still reach (a receiver on this machine or the office network).
ADDRESS_KINDS = {
    "metadata": "layanan metadata awan",
    "unspecified": "alamat tak tertentu",
    "loopback": "loopback (mesin ini sendiri)",
    "link-local": "link-local",
    "multicast": "multicast",
    "private": "jaringan privat",
    "reserved": "alamat khusus yang bukan alamat publik internet",
}
ALLOWED_HOST_KINDS = frozenset({"loopback", "private", "reserved"})


def address_kind(address: str) -> str | None:
    """Why an address is no webhook receiver (a key of ``ADDRESS_KINDS``), or None for a
    public internet address. An IPv4 address written as IPv6 (``::ffff:10.0.0.1``, or
    NAT64's ``64:ff9b::a00:1``) is judged as the IPv4 address it is."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    elif ip.version == 6 and ip in NAT64:  # a NAT64 gateway would carry it to that IPv4
        ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in METADATA_ADDRESSES:
        return "metadata"
    for kind, test in (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", any(ip in network for network in PRIVATE_NETWORKS)),
    ):
        if test:
            return kind
    return None if ip.is_global else "reserved"


@dataclass(frozen=True)
class AllowedHost:
    """A host (and, if given, its port) an admin allowed over plain http and to a
    loopback or private address: ``hooks.kantor.local``, ``127.0.0.1:8443``, ``[::1]``."""

    host: str
    port: int | None = None

    @classmethod
    def parse(cls, entry: str) -> AllowedHost:
        parts = urlsplit(f"//{entry.strip()}")
        if not parts.hostname:
            raise ValueError(f"not a host[:port]: {entry!r}")
        return cls(parts.hostname.lower(), parts.port)

    def matches(self, host: str, port: int) -> bool:
        return self.host == host.lower() and self.port in (None, port)


def parse_allowed_hosts(value: Any) -> tuple[AllowedHost, ...]:
    """``WEBHOOK_ALLOW_HOSTS``: a YAML list or a comma-separated text of host[:port]."""
    entries = value if isinstance(value, list | tuple) else str(value or "").split(",")
    return tuple(AllowedHost.parse(str(e)) for e in entries if str(e).strip())


@dataclass(frozen=True)
class TargetPolicy:
    """Where webhooks may go: https to public internet addresses; plain http and
    loopback or private addresses only for a host in ``allowed``; with ``allowed_only``,
    nowhere but those hosts (a closed network, or a test system that must send nothing
    off the machine)."""

    allowed: tuple[AllowedHost, ...] = ()
    allowed_only: bool = False

    def is_allowed(self, host: str, port: int) -> bool:
        return any(a.matches(host, port) for a in self.allowed)

    def refusal_before_resolving(self, scheme: str, host: str, port: int) -> str | None:
        if self.allowed_only and not self.is_allowed(host, port):
            return "Host ini tidak termasuk penerima webhook yang diizinkan admin sistem ini."
        if scheme != "https" and not self.is_allowed(host, port):
            return "Alamat webhook harus memakai https."
        return None

    def refusal(self, host: str, port: int, addresses: Iterable[str]) -> str | None:
        """Why the resolved addresses of a target are refused, or None: every address
        is checked (a name with one private address among public ones is refused)."""
        allowed = self.is_allowed(host, port)
        for address in addresses:
            kind = address_kind(address)
            if kind is not None and not (allowed and kind in ALLOWED_HOST_KINDS):
                return f"Alamat webhook menuju {ADDRESS_KINDS[kind]}, yang tidak boleh dituju."
        return None


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
