"""``Idempotency-Key`` on POST: the first answer is stored per API key; the same key
with the same request gets that answer again, with a different request 422."""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from bersinar.db import UnitOfWork
from bersinar.envelope import utcnow
from gateway.exceptions import BadRequest, IdempotencyConflict, IdempotencyInProgress
from gateway.models import IdempotencyRecord

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")


@dataclass(frozen=True)
class Stored:
    status: int
    body: str


def request_hash(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


def begin(
    uow: UnitOfWork,
    api_key_id: str,
    key: str,
    method: str,
    path: str,
    digest: str,
    stale_after: float = 15.0,
) -> Stored | None:
    """Claim the key for this request, or return the answer already given to it.

    A claim still without an answer after ``stale_after`` seconds (longer than any
    request may take) was left by a request whose answer could not be recorded (the
    database went away, the gateway died): it is taken over, or the key would answer
    "in progress" for ever."""
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
        if _take_over_stale(uow, record, stale_after):
            return None
        raise IdempotencyInProgress("Permintaan yang sama sedang diproses; ulangi sebentar lagi.")
    return Stored(record.status, record.response_body or "")


def _take_over_stale(uow: UnitOfWork, record: IdempotencyRecord, stale_after: float) -> bool:
    claimed_at = record.created_at
    if utcnow() - claimed_at < timedelta(seconds=stale_after):
        return False
    # compare and set: of two retries arriving together, one takes the claim
    taken = uow.session.execute(
        update(IdempotencyRecord)
        .where(
            IdempotencyRecord.api_key_id == record.api_key_id,
            IdempotencyRecord.idempotency_key == record.idempotency_key,
            IdempotencyRecord.status.is_(None),
            IdempotencyRecord.created_at == record.created_at,
        )
        .values(created_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    uow.commit()
    if taken == 1:
        log.warning("an unanswered Idempotency-Key claim older than %gs taken over", stale_after)
    return taken == 1


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


def request_key(request, caller) -> str:
    """What names this request to the service that acts on it: the API key and its
    Idempotency-Key, so that a retry names the same request even after a 503 (when the
    first attempt may still be carried out); without the header one key per request, so
    that the same RPC delivered twice still makes one thing."""
    key = request.headers.get(HEADER)
    if key and _VALID.match(key):
        return f"{caller.key_id}:{key}"
    return f"request:{uuid.uuid4()}"
