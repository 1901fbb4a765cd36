"""The event envelope of docs/architecture.md and the rules every payload obeys."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

SCHEMA_VERSION = 1

# Keys that would carry a client's identity. An event is refused if its payload holds
# any of them, at any depth: events travel to every subscriber and into national systems.
FORBIDDEN_KEYS = frozenset({"nik", "name", "nama", "phone", "telepon", "nik_hmac", "birth_date"})

ENVELOPE_KEYS = (
    "event_id",
    "event_type",
    "source",
    "occurred_at",
    "schema_version",
    "correlation_id",
    "data",
)


class EnvelopeError(ValueError):
    pass


def utcnow() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_rfc3339(text: str) -> datetime:
    """A full RFC 3339 timestamp with an offset; a date alone or a local time is refused
    (it would be read in whatever zone the host happens to be in)."""
    if "T" not in text and " " not in text:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None or "-" not in text[:10]:
        raise ValueError(f"not an RFC 3339 timestamp with an offset: {text!r}")
    return moment.astimezone(UTC)


def _identity_keys(value: Any, path: str = "data") -> list[str]:
    found = []
    if isinstance(value, dict):
        for key, inner in value.items():
            if str(key).lower() in FORBIDDEN_KEYS:
                found.append(f"{path}.{key}")
            found.extend(_identity_keys(inner, f"{path}.{key}"))
    elif isinstance(value, list | tuple):
        for index, inner in enumerate(value):
            found.extend(_identity_keys(inner, f"{path}[{index}]"))
    return found


def make_event(
    event_type: str,
    source: str,
    data: dict[str, Any],
    correlation_id: str | None = None,
    occurred_at: datetime | None = None,
    schema_version: int = SCHEMA_VERSION,
) -> dict[str, Any]:
    leaked = _identity_keys(data)
    if leaked:
        raise EnvelopeError(f"event {event_type} would carry client identity: {leaked}")
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "source": source,
        "occurred_at": rfc3339(occurred_at or utcnow()),
        "schema_version": schema_version,
        "correlation_id": correlation_id or str(uuid.uuid4()),
        "data": data,
    }


def check_envelope(event: Any) -> dict[str, Any]:
    """Return the envelope if it is whole, else raise EnvelopeError naming what is wrong."""
    if not isinstance(event, dict):
        raise EnvelopeError("event is not a JSON object")
    missing = [key for key in ENVELOPE_KEYS if key not in event]
    if missing:
        raise EnvelopeError(f"envelope lacks {', '.join(missing)}")
    try:
        uuid.UUID(str(event["event_id"]))
        parse_rfc3339(str(event["occurred_at"]))
    except ValueError as exc:
        raise EnvelopeError(f"envelope has a malformed field: {exc}") from exc
    if not isinstance(event["data"], dict):
        raise EnvelopeError("envelope data is not an object")
    return event
