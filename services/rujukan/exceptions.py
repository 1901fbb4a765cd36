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


class ClientNotFound(NotFound):
    title = "Klien tidak ditemukan"


class NothingToUndo(Conflict):
    """A referral with no transition to undo (still as it was requested)."""

    code = "NOTHING_TO_UNDO"
    title = "Tidak ada langkah yang dapat dibatalkan"


class UndoNotPossible(Conflict):
    """A transition whose consequences have moved on (a transfer whose new referral has
    been answered)."""

    code = "UNDO_NOT_POSSIBLE"
    title = "Langkah ini tidak dapat dibatalkan"


class StatusChanged(Conflict):
    """The referral is no longer in the status the admin saw."""

    code = "STATUS_CHANGED"
    title = "Status rujukan sudah berubah"


class NikInUse(Conflict):
    code = "NIK_IN_USE"
    title = "NIK sudah dipakai klien lain"


class NothingChanged(Conflict):
    """A correction equal to what is stored."""

    code = "NOTHING_CHANGED"
    title = "Tidak ada yang berubah"
