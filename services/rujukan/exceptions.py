from bersinar.errors import Conflict, NotEligible, NotFound


class ReferralNotFound(NotFound):
    title = "Rujukan tidak ditemukan"


class UnknownPartner(NotEligible):
    title = "Mitra tidak dikenal"


class RequestKeyReused(Conflict):
    code = "IDEMPOTENCY_KEY_REUSED"
    title = "Idempotency-Key sudah dipakai untuk rujukan lain"


class ConsentAlreadyWithdrawn(Conflict):
    code = "CONSENT_WITHDRAWN"
    title = "Persetujuan klien sudah dicabut"
