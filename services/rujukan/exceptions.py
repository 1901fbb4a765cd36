from bersinar.errors import Conflict, NotEligible, NotFound, ValidationFailed


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


class DateOutOfRange(ValidationFailed):
    """A day a person names that today or the referral's own dates rule out (an
    admission or a withdrawal after today, or before the referral was accepted or made)."""

    code = "DATE_OUT_OF_RANGE"
    title = "Tanggal di luar rentang yang diizinkan"
