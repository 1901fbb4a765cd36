"""``Idempotency-Key`` on POST: the first answer is stored per API key; the same key
with the same request gets that answer again, with a different request 422."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from bersinar.db import UnitOfWork
from bersinar.envelope import utcnow
from gateway.exceptions import BadRequest, IdempotencyConflict, IdempotencyInProgress
from gateway.models import IdempotencyRecord

HEADER = "Idempotency-Key"
_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")


@dataclass(frozen=True)
class Stored:
    status: int
    body: str


def request_hash(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


def begin(
    uow: UnitOfWork, api_key_id: str, key: str, method: str, path: str, digest: str
) -> Stored | None:
    """Claim the key for this request, or return the answer already given to it."""
    if not _VALID.match(key):
        raise BadRequest(f"{HEADER} harus 1-100 karakter huruf, angka atau ._:-")
    record = uow.session.get(IdempotencyRecord, (api_key_id, key))
    if record is None:
        uow.session.add(
            IdempotencyRecord(
                api_key_id=api_key_id,
                idempotency_key=key,
                method=method,
                path=path,
                request_hash=digest,
                created_at=utcnow(),
            )
        )
        try:
            uow.commit()
        except IntegrityError:
            raise IdempotencyInProgress(
                "Permintaan yang sama sedang diproses; ulangi sebentar lagi."
            ) from None
        return None
    if record.request_hash != digest:
        raise IdempotencyConflict(
            f"{HEADER} ini sudah dipakai untuk permintaan dengan isi atau alamat lain."
        )
    if record.status is None:
        raise IdempotencyInProgress("Permintaan yang sama sedang diproses; ulangi sebentar lagi.")
    return Stored(record.status, record.response_body or "")


def finish(uow: UnitOfWork, api_key_id: str, key: str, status: int, body: str) -> None:
    """Keep a definite answer; forget the claim after a server-side failure so that a
    retry is tried again."""
    record = uow.session.get(IdempotencyRecord, (api_key_id, key))
    if record is None:
        return
    if status >= 500:
        uow.session.delete(record)
    else:
        record.status = status
        record.response_body = body
    uow.commit()
