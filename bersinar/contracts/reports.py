"""Shapes of monthly partner reports (laporan), indicators and the national export.
Validated by the gateway and again by laporan. Shapes only: the consistency rules of a
report (balance, sums) live in laporan's domain and answer with the rule named."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from bersinar import codes
from bersinar.contracts import NOT_BLANK, FullMatch, StrictSchema, one_of, reason_field

# a month from 2000-01 to 2099-12: the range the system serves
PERIOD_PATTERN = r"^20[0-9]{2}-(0[1-9]|1[0-2])$"
PERIOD = FullMatch(PERIOD_PATTERN, error="Periode berbentuk YYYY-MM (tahun 2000-2099).")


# Negative numbers pass the shape on purpose: the rule `non_negative` names them (the
# document states the minimum all the same).
def _count(**kwargs) -> fields.Integer:
    if not kwargs.get("required"):
        kwargs.setdefault("load_default", 0)
    return fields.Integer(
        strict=True, validate=validate.Range(max=100000), metadata={"minimum": 0}, **kwargs
    )


class Counts(StrictSchema):
    start = _count(required=True)
    admitted = _count(required=True)
    completed = _count(required=True)
    dropped_out = _count(required=True)
    transferred_out = _count(required=True)
    end = _count(required=True)


class ReportCounts(StrictSchema):
    total = fields.Nested(Counts, required=True)
    by_sex = fields.Dict(
        keys=fields.String(validate=one_of(codes.SEXES)),
        values=fields.Nested(Counts),
        load_default=dict,
    )
    by_service_type = fields.Dict(
        keys=fields.String(validate=one_of(codes.SERVICE_TYPES)),
        values=fields.Nested(Counts),
        load_default=dict,
    )


class ServicesDelivered(StrictSchema):
    counselling_sessions = _count()
    group_sessions = _count()
    home_visits = _count()


class CapacityBuilding(StrictSchema):
    activities = _count()
    staff_trained = _count()


class ReportInput(StrictSchema):
    """What a partner submits for a month (PUT; each submission is a new version)."""

    counts = fields.Nested(ReportCounts, required=True)
    services_delivered = fields.Nested(ServicesDelivered, load_default=dict)
    capacity_building = fields.Nested(CapacityBuilding, load_default=dict)
    narrative = fields.String(load_default="", validate=validate.Length(max=5000))

    # the rule `narrative_required`
    OPENAPI = {
        "required": ["counts", "narrative"],
        "properties": {"narrative": {"pattern": NOT_BLANK, "default": None}},
    }


class ReviewInput(StrictSchema):
    """An officer's review: a comment is required to return a report."""

    comment = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))


class ReopenInput(StrictSchema):
    """An officer reopens a locked or approved report: why is required (kept in the
    report's history)."""

    comment = reason_field(metadata={"description": "Alasan membuka kembali"})


class ReportQuery(StrictSchema):
    period = fields.String(required=True, validate=PERIOD)
    partner_id = fields.String(load_default=None, validate=validate.Length(min=1, max=64))
    status = fields.String(load_default=None, validate=one_of(codes.REPORT_STATUSES))


class PeriodQuery(StrictSchema):
    period = fields.String(required=True, validate=PERIOD)


class ExportQuery(StrictSchema):
    period = fields.String(required=True, validate=PERIOD)
    format = fields.String(
        load_default=None,
        validate=one_of(("json", "csv", "xlsx")),
        metadata={"description": "json (bawaan), csv atau xlsx (juga lewat Accept)"},
    )


class Flag(StrictSchema):
    field = fields.String()
    reported = fields.Integer()
    recorded = fields.Integer()


class DischargeCounts(StrictSchema):
    """How care ended at the partner in the month, from the discharge summaries."""

    total = fields.Integer(metadata={"description": "Klien keluar (selesai, putus, dialihkan)"})
    by_outcome = fields.Dict(
        keys=fields.String(validate=one_of(codes.DISCHARGE_OUTCOMES)), values=fields.Integer()
    )
    by_reason = fields.Dict(
        keys=fields.String(validate=one_of(codes.DISCHARGE_REASONS)),
        values=fields.Integer(),
        metadata={"description": "Satu klien keluar dapat menyebut beberapa alasan"},
    )
    without_summary = fields.Integer(
        metadata={"description": "Keluar sebelum ringkasan akhir layanan dicatat"}
    )


class Report(StrictSchema):
    """A report as the API shows it (``prefill`` and ``flags`` on the single report)."""

    id = fields.String()
    partner_id = fields.String()
    period = fields.String()
    due_on = fields.Date()
    locks_after = fields.Date()
    locked = fields.Boolean()
    reopened = fields.Boolean()
    reconciliation_differences = fields.Integer()
    status = fields.String(validate=one_of(codes.REPORT_STATUSES))
    timeliness = fields.String(allow_none=True)
    version = fields.Integer()
    submitted_at = fields.String(allow_none=True)
    content = fields.Nested(ReportInput, allow_none=True)
    prefill = fields.Nested(ReportCounts)
    discharges = fields.Nested(DischargeCounts)
    flags = fields.List(fields.Nested(Flag))
    history = fields.List(fields.Dict())
    versions = fields.List(fields.Dict())


def _rate(description: str) -> fields.Float:
    return fields.Float(allow_none=True, metadata={"description": description})


class IndicatorValues(Schema):
    """The indicators; each field's description is its definition. A rate without a
    denominator (nothing expected, nothing answered) is null."""

    reporting_rate = _rate(
        "Laporan terkirim (tepat waktu, terlambat, dikembalikan atau disetujui) / laporan "
        "yang diharapkan pada periode itu."
    )
    on_time_rate = _rate(
        "Laporan yang pertama dikirim paling lambat tanggal jatuh tempo / laporan diharapkan."
    )
    acceptance_rate = _rate(
        "Rujukan diterima / rujukan dijawab (diterima + ditolak), jawaban pada bulan itu."
    )
    median_response_hours = _rate(
        "Median jam dari permintaan rujukan sampai jawaban (terima atau tolak) pada bulan itu."
    )
    completion_rate = _rate(
        "Klien selesai / klien keluar (selesai + putus + dipindahkan) pada bulan itu."
    )
    dropout_rate = _rate(
        "Klien putus / klien keluar (selesai + putus + dipindahkan) pada bulan itu."
    )
    occupancy = _rate("Klien dalam perawatan pada akhir bulan / jumlah kapasitas layanan mitra.")
    target_reached = _rate(
        "Klien masuk sejak 1 Januari sampai akhir bulan / target tahunan PKS yang berlaku."
    )
    figures = fields.Dict(metadata={"description": "Pembilang dan penyebut setiap indikator."})


class PartnerIndicators(IndicatorValues):
    partner_id = fields.String()


class Indicators(Schema):
    """Per partner and for the province (sums of numerators over sums of denominators;
    the province's median over all responses)."""

    period = fields.String()
    partners = fields.List(fields.Nested(PartnerIndicators))
    province = fields.Nested(IndicatorValues)
    definitions = fields.Dict()


class MonthlyExport(Schema):
    """De-identified: counts only, per partner; a count from 1 to threshold − 1 is null
    (and, where a total would reveal it, the next smallest cell too)."""

    period = fields.String()
    suppression_threshold = fields.Integer()
    partners = fields.List(fields.Dict())
    rows = fields.List(fields.Dict())
