from bersinar.errors import Conflict, InvalidTransition, NotFound, ValidationFailed


class InvalidPeriod(ValidationFailed):
    title = "Periode tidak valid"


class ReportInconsistent(ValidationFailed):
    """A report that breaks validation rules: ``errors`` names each rule broken."""

    code = "REPORT_INCONSISTENT"
    title = "Laporan tidak konsisten"


class ReportNotFound(NotFound):
    title = "Laporan tidak ditemukan"


class PeriodLocked(Conflict):
    code = "PERIOD_LOCKED"
    title = "Periode laporan sudah dikunci"


class PeriodNotEnded(Conflict):
    code = "PERIOD_NOT_ENDED"
    title = "Periode laporan belum berakhir"


class ReviewNotAllowed(InvalidTransition):
    title = "Langkah peninjauan tidak diizinkan"
