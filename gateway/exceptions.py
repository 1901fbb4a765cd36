from bersinar.errors import DomainError, Forbidden


class BadRequest(DomainError):
    code = "BAD_REQUEST"
    status = 400
    title = "Permintaan tidak dapat dibaca"


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


class ServiceUnavailable(DomainError):
    code = "SERVICE_UNAVAILABLE"
    status = 503
    title = "Layanan tidak menjawab"
