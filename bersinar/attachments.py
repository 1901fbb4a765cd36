"""Attachments of a service's objects (a referral's signed consent, an agreement's signed
PKS, a report's evidence): PDF, JPEG or PNG, judged by their content, never by a name or
a declared type. Each service keeps its own in an ``attachments`` table of its database
(:func:`attachment_table`) beside the object they belong to; whoever may see the object
may see its attachments (the service checks that before calling here).

Content travels over RPC as base64. A service that must keep content unreadable at rest
(rujukan: a consent form carries the client's name and signature) passes ``seal`` and
``unseal`` functions (its cipher)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    select,
)
from sqlalchemy.orm import Session

from bersinar.errors import DomainError, NotFound, ValidationFailed

ATTACHMENTS = "attachments"
# what a file's first bytes say it is: the only types taken
SIGNATURES = (
    (b"%PDF-", "application/pdf"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
)
CONTENT_TYPES = tuple(kind for _, kind in SIGNATURES)
EXTENSIONS = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}
# ATTACHMENT_MAX_BYTES unless configured (docs/configuration.md)
DEFAULT_MAX_BYTES = 5 * 1024 * 1024
# a file name as people give it, kept for the download; anything else is replaced
_UNSAFE_NAME = re.compile(r"[^\w .()-]+")


class AttachmentRefused(DomainError):
    """A file that is not a PDF, JPEG or PNG by its content, or says it is another type
    than its content is."""

    code = "UNSUPPORTED_MEDIA_TYPE"
    status = 415
    title = "Jenis berkas tidak didukung"


class AttachmentTooLarge(DomainError):
    code = "PAYLOAD_TOO_LARGE"
    status = 413
    title = "Berkas terlalu besar"


class AttachmentRemoved(DomainError):
    code = "ATTACHMENT_REMOVED"
    status = 409
    title = "Lampiran sudah dihapus"


def attachment_table(metadata: MetaData) -> Table:
    """Add the attachments table to a service's metadata (idempotent). ``owner_id``
    names the object (a referral's id; an agreement's; ``partner_id/period`` of a
    report)."""
    if ATTACHMENTS in metadata.tables:
        return metadata.tables[ATTACHMENTS]
    table = Table(
        ATTACHMENTS,
        metadata,
        Column("id", String(36), primary_key=True),
        Column("owner_id", String(100), nullable=False),
        Column("kind", String(40), nullable=False),
        Column("filename", String(200), nullable=False),
        Column("content_type", String(40), nullable=False),
        Column("size", Integer, nullable=False),
        Column("sha256", String(64), nullable=False),
        Column("content", LargeBinary, nullable=False),
        Column("uploaded_by", String(120), nullable=False),
        Column("uploaded_at", DateTime(timezone=True), nullable=False),
        Column("removed_by", String(120)),
        Column("removed_at", DateTime(timezone=True)),
        Column("removed_reason", String(1000)),
    )
    Index("ix_attachments_owner", table.c.owner_id, table.c.uploaded_at)
    return table


def max_bytes(config) -> int:
    """The largest attachment a component takes (gateway and services read the same key)."""
    return int(config.get("ATTACHMENT_MAX_BYTES", DEFAULT_MAX_BYTES))


def sniff(content: bytes) -> str | None:
    """The type a file's first bytes say it is, of those taken; None for any other."""
    return next((kind for magic, kind in SIGNATURES if content.startswith(magic)), None)


def decode(content_b64: str) -> bytes:
    try:
        return base64.b64decode(content_b64, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise ValidationFailed(
            "Isi berkas tidak terbaca.", errors={"content": ["Bukan base64 yang sah."]}
        ) from None


def check(content: bytes, declared: str | None, max_bytes: int) -> str:
    """The content type of an upload, judged by its content: refused if too large,
    empty, not a PDF, JPEG or PNG, or declared as another type than it is."""
    if len(content) > max_bytes:
        raise AttachmentTooLarge(f"Berkas paling besar {max_bytes // 1024} KiB.")
    found = sniff(content)
    if found is None:
        raise AttachmentRefused("Hanya berkas PDF, JPEG atau PNG yang diterima.")
    if declared and declared.split(";")[0].strip().lower() not in (
        found,
        "application/octet-stream",
    ):
        raise AttachmentRefused(f"Isi berkas adalah {found}, bukan {declared}.")
    return found


def clean_filename(name: str | None, content_type: str) -> str:
    stem = _UNSAFE_NAME.sub("_", (name or "").strip())[:150].strip(" ._") or "lampiran"
    extension = EXTENSIONS[content_type]
    return stem if stem.lower().endswith("." + extension) else f"{stem}.{extension}"


def describe(row: Any) -> dict[str, Any]:
    """An attachment as listed (never its content)."""
    return {
        "id": row.id,
        "kind": row.kind,
        "filename": row.filename,
        "content_type": row.content_type,
        "size": row.size,
        "sha256": row.sha256,
        "uploaded_by": row.uploaded_by,
        "uploaded_at": row.uploaded_at.isoformat(),
        "removed_at": row.removed_at.isoformat() if row.removed_at else None,
        "removed_by": row.removed_by,
        "removed_reason": row.removed_reason,
    }


def add(
    session: Session,
    table: Table,
    owner_id: str,
    upload: dict[str, Any],
    actor: str,
    now: datetime,
    max_bytes: int,
    seal: Callable[[bytes], bytes] = bytes,
) -> dict[str, Any]:
    """Store one upload (``kind``, ``filename``, ``content_type`` as declared,
    ``content`` in base64) of the object ``owner_id``."""
    content = decode(upload["content"])
    content_type = check(content, upload.get("content_type"), max_bytes)
    values = {
        "id": str(uuid.uuid4()),
        "owner_id": owner_id,
        "kind": upload["kind"],
        "filename": clean_filename(upload.get("filename"), content_type),
        "content_type": content_type,
        "size": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
        "content": seal(content),
        "uploaded_by": actor,
        "uploaded_at": now,
    }
    session.execute(table.insert().values(**values))
    return describe(session.execute(select(table).where(table.c.id == values["id"])).one())


def listing(session: Session, table: Table, owner_id: str) -> list[dict[str, Any]]:
    rows = session.execute(
        select(*[c for c in table.c if c.name != "content"])
        .where(table.c.owner_id == owner_id)
        .order_by(table.c.uploaded_at, table.c.id)
    )
    return [describe(row) for row in rows]


def _one(session: Session, table: Table, owner_id: str, attachment_id: str, lock=False):
    query = select(table).where(table.c.id == attachment_id, table.c.owner_id == owner_id)
    row = session.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound("Lampiran tidak ditemukan.")
    return row


def fetch(
    session: Session,
    table: Table,
    owner_id: str,
    attachment_id: str,
    unseal: Callable[[bytes], bytes] = bytes,
) -> dict[str, Any]:
    """One attachment with its content (base64); a removed one is gone (409)."""
    row = _one(session, table, owner_id, attachment_id)
    if row.removed_at is not None:
        raise AttachmentRemoved("Lampiran ini sudah dihapus oleh admin.")
    return {**describe(row), "content": base64.b64encode(unseal(row.content)).decode()}


def remove(
    session: Session,
    table: Table,
    owner_id: str,
    attachment_id: str,
    reason: str,
    actor: str,
    now: datetime,
) -> dict[str, Any]:
    """An admin removes an attachment with a reason: its content is erased, the record
    of it (who uploaded and removed it, when, why) stays."""
    row = _one(session, table, owner_id, attachment_id, lock=True)
    if row.removed_at is not None:
        raise AttachmentRemoved("Lampiran ini sudah dihapus.")
    session.execute(
        table.update()
        .where(table.c.id == attachment_id)
        .values(content=b"", removed_by=actor, removed_at=now, removed_reason=reason)
    )
    return describe(_one(session, table, owner_id, attachment_id))
