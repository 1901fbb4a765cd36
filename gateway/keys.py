"""API keys: random, shown once, stored as a SHA-256 digest (the keys are long random
strings, so a fast digest is enough), revocable at once."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bersinar.db import UnitOfWork
from bersinar.envelope import rfc3339, utcnow
from bersinar.errors import NotFound
from gateway.models import ApiKey

KEY_PREFIX = "bsk_"
LAST_USED_PRECISION = timedelta(minutes=1)


@dataclass(frozen=True)
class Caller:
    key_id: str
    role: str
    partner_id: str | None = None

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.key_id}"

    def as_dict(self) -> dict[str, str | None]:
        """How a service is told who asks (it checks object-level access again)."""
        return {"role": self.role, "key_id": self.key_id, "partner_id": self.partner_id}


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def authenticate(uow: UnitOfWork, presented: str, admin_key: str | None) -> Caller | None:
    if admin_key and hmac.compare_digest(digest(presented), digest(admin_key)):
        return Caller(key_id="env-admin", role="admin")
    row = uow.session.scalars(select(ApiKey).where(ApiKey.key_hash == digest(presented))).first()
    if row is None or row.revoked_at is not None:
        return None
    now = utcnow()
    last = row.last_used_at
    if last is None or now - last > LAST_USED_PRECISION:
        row.last_used_at = now
        uow.commit()
    return Caller(key_id=row.id, role=row.role, partner_id=row.partner_id)


def _view(row: ApiKey) -> dict[str, Any]:
    return {
        "id": row.id,
        "prefix": row.prefix,
        "role": row.role,
        "partner_id": row.partner_id,
        "label": row.label,
        "created_at": rfc3339(row.created_at),
        "last_used_at": rfc3339(row.last_used_at) if row.last_used_at else None,
        "revoked_at": rfc3339(row.revoked_at) if row.revoked_at else None,
    }


def create_key(uow: UnitOfWork, command: dict[str, Any], created_by: str) -> dict[str, Any]:
    key = new_key()
    row = ApiKey(
        id=str(uuid.uuid4()),
        key_hash=digest(key),
        prefix=key[:10],
        role=command["role"],
        partner_id=command.get("partner_id"),
        label=command["label"],
        created_by=created_by,
        created_at=utcnow(),
    )
    uow.session.add(row)
    uow.session.flush()
    return {**_view(row), "key": key}


def list_keys(uow: UnitOfWork) -> list[dict[str, Any]]:
    return [
        _view(row)
        for row in uow.session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id))
    ]


def revoke_key(uow: UnitOfWork, key_id: str) -> dict[str, Any]:
    row = uow.session.get(ApiKey, key_id)
    if row is None:
        raise NotFound("Kunci API tidak ditemukan.")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return _view(row)
