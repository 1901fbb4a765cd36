from bersinar.errors import DomainError, Forbidden


class BadRequest(DomainError):
    code = "BAD_REQUEST"
    status = 400
    title = "Permintaan tidak dapat dibaca"


class BodyTooDeep(BadRequest):
    code = "BODY_TOO_DEEP"
    title = "Isi permintaan bersarang terlalu dalam"


class Unauthorized(DomainError):
    code = "UNAUTHORIZED"
    status = 401
    title = "Kunci API tidak ada atau tidak berlaku"


class RoleForbidden(Forbidden):
    code = "FORBIDDEN"


class PayloadTooLarge(DomainError):
    code = "PAYLOAD_TOO_LARGE"
    status = 413
    title = "Isi permintaan terlalu besar"


class UnsupportedMediaType(DomainError):
    code = "UNSUPPORTED_MEDIA_TYPE"
    status = 415
    title = "Jenis isi permintaan tidak didukung"


class ServiceUnavailable(DomainError):
    code = "SERVICE_UNAVAILABLE"
    status = 503
    title = "Layanan tidak menjawab"


class RateLimited(DomainError):
    code = "RATE_LIMITED"
    status = 429
    title = "Terlalu banyak permintaan"

    def __init__(self, retry_after: int):
        super().__init__(f"Batas permintaan terlampaui; coba lagi dalam {retry_after} detik.")
        self.headers = {"Retry-After": str(retry_after)}


class IdempotencyConflict(DomainError):
    code = "IDEMPOTENCY_KEY_REUSED"
    status = 422
    title = "Idempotency-Key sudah dipakai untuk permintaan lain"


class IdempotencyInProgress(DomainError):
    code = "IDEMPOTENCY_IN_PROGRESS"
    status = 409
    title = "Permintaan dengan Idempotency-Key ini sedang diproses"
