"""Errors every service may raise and the gateway knows how to answer.

Plain Python: domain code raises these without knowing about nameko or HTTP. Each
carries a stable upper-snake ``code`` and the HTTP status it maps to; the message
(``detail``) is Indonesian because people read it. A message never names a client.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code = "DOMAIN_ERROR"
    status = 400
    title = "Permintaan tidak dapat diproses"

    def __init__(self, detail: str | None = None, errors: dict[str, Any] | None = None):
        self.detail = detail or self.title
        self.errors = errors or {}
        super().__init__(self.detail)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "code": self.code,
            "status": self.status,
            "title": self.title,
            "detail": self.detail,
        }
        if self.errors:
            body["errors"] = self.errors
        return body


class ValidationFailed(DomainError):
    code = "VALIDATION_ERROR"
    status = 422
    title = "Data tidak valid"


class UnknownCursor(DomainError):
    """A list's cursor of the right shape that names no item of that list (one from
    another list or filter, or an item since removed)."""

    code = "UNKNOWN_CURSOR"
    status = 422
    title = "Kursor tidak dikenal"


class NotFound(DomainError):
    code = "NOT_FOUND"
    status = 404
    title = "Data tidak ditemukan"


class Forbidden(DomainError):
    code = "FORBIDDEN"
    status = 403
    title = "Tidak berwenang"


class Conflict(DomainError):
    code = "CONFLICT"
    status = 409
    title = "Konflik dengan keadaan data"


class InvalidTransition(Conflict):
    code = "INVALID_TRANSITION"
    title = "Perubahan status tidak diizinkan"


class CapacityFull(Conflict):
    code = "CAPACITY_FULL"
    title = "Kapasitas layanan penuh"


class NotEligible(DomainError):
    code = "NOT_ELIGIBLE"
    status = 422
    title = "Mitra tidak memenuhi syarat"


class ConsentRequired(DomainError):
    code = "CONSENT_REQUIRED"
    status = 422
    title = "Persetujuan klien diperlukan"


class WebhookTargetRefused(DomainError):
    """A webhook address this system may not send to: not https, or a name or address
    that leads to this machine, a private network or a cloud metadata service."""

    code = "WEBHOOK_TARGET_REFUSED"
    status = 422
    title = "Alamat webhook tidak boleh dituju"


class Unavailable(DomainError):
    code = "SERVICE_UNAVAILABLE"
    status = 503
    title = "Layanan sementara tidak tersedia"


class PermanentFailure(Exception):
    """Raised by an event handler for a message that no retry can fix (for example a
    payload that breaks the contract): it is parked at once instead of retried."""
