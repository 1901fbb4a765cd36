"""Who is told of what, and in which words. Routing is data; templates are Bahasa
Indonesia and never print client identity (the partner opens the referral for that)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

SERVICE_TYPE_LABELS = {
    "inpatient": "rawat inap",
    "outpatient": "rawat jalan",
    "aftercare": "pasca rehabilitasi",
}

# event type -> recipients; "partner" means the contacts of data.partner_id.
ROUTES: dict[str, tuple[str, ...]] = {
    "referral_requested": ("partner",),
}

TEMPLATES: dict[str, tuple[str, str]] = {
    "referral_requested": (
        "Rujukan baru menunggu tanggapan",
        "Ada rujukan baru untuk layanan {{ service_type | layanan }} (rujukan {{ referral_id }}, "
        "klien {{ sex | jenis_kelamin }}, kelompok usia {{ age_group }}). Mohon buka Bersinar "
        "untuk melihat data klien dan menerima atau menolak rujukan ini.",
    ),
}

_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
_env.filters["layanan"] = lambda value: SERVICE_TYPE_LABELS.get(value, value)
_env.filters["jenis_kelamin"] = lambda value: {"M": "laki-laki", "F": "perempuan"}.get(value, "-")


@dataclass(frozen=True)
class Message:
    recipient: str
    title: str
    body: str


def recipients_for(event_type: str, data: dict[str, Any]) -> list[str]:
    recipients = []
    for route in ROUTES.get(event_type, ()):
        if route == "partner" and data.get("partner_id"):
            recipients.append(f"partner:{data['partner_id']}")
        elif route in ("officer", "admin"):
            recipients.append(f"role:{route}")
    return recipients


def render(event_type: str, data: dict[str, Any]) -> tuple[str, str]:
    title, body = TEMPLATES[event_type]
    return _env.from_string(title).render(**data), _env.from_string(body).render(**data)


def messages_for(event: dict[str, Any]) -> list[Message]:
    event_type = event["event_type"]
    if event_type not in TEMPLATES:
        return []
    title, body = render(event_type, event["data"])
    return [Message(r, title, body) for r in recipients_for(event_type, event["data"])]
