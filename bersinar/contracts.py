"""Request and response shapes that more than one component validates: the gateway
(which also generates OpenAPI from them) and the service that owns the data. Shapes
only; the rules behind them live in each service's domain."""

from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

SERVICE_TYPES = ("inpatient", "outpatient", "aftercare")
SEXES = ("M", "F")
SEX_SERVED = ("all", "male", "female")
REFERRAL_SOURCES = ("TAT", "IPWL", "voluntary", "court", "other")
REFERRAL_STATUSES = (
    "requested",
    "accepted",
    "rejected",
    "cancelled",
    "admitted",
    "completed",
    "dropped_out",
    "transferred",
)


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class ClientInput(StrictSchema):
    nik = fields.String(
        required=True, validate=validate.Regexp(r"^\d{16}$", error="NIK harus 16 digit angka.")
    )
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    birth_date = fields.Date(required=True)
    sex = fields.String(required=True, validate=validate.OneOf(SEXES))
    phone = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Regexp(r"^\+?[0-9]{8,15}$", error="Nomor telepon tidak valid."),
    )


class ConsentInput(StrictSchema):
    given = fields.Boolean(required=True)
    given_by = fields.String(load_default="client", validate=validate.OneOf(("client", "guardian")))
    given_at = fields.AwareDateTime(load_default=None, allow_none=True)
    scope = fields.List(
        fields.String(validate=validate.Length(max=64)),
        load_default=lambda: ["treatment", "data_sharing"],
    )


class SubstanceScore(StrictSchema):
    substance = fields.String(required=True, validate=validate.Length(min=1, max=64))
    score = fields.Integer(required=True, validate=validate.Range(min=0, max=39))


class AssessmentInput(StrictSchema):
    primary_substance = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=64)
    )
    assist_scores = fields.List(fields.Nested(SubstanceScore), load_default=list)
    recommended_level_of_care = fields.String(
        load_default=None, allow_none=True, validate=validate.OneOf(SERVICE_TYPES)
    )
    notes = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))


class ReferralCreate(StrictSchema):
    client = fields.Nested(ClientInput, required=True)
    source = fields.String(required=True, validate=validate.OneOf(REFERRAL_SOURCES))
    service_type = fields.String(required=True, validate=validate.OneOf(SERVICE_TYPES))
    partner_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    consent = fields.Nested(ConsentInput, required=True)
    assessment = fields.Nested(AssessmentInput, load_default=None, allow_none=True)


class ClientSummary(Schema):
    id = fields.String()
    sex = fields.String()
    age_group = fields.String()
    previous_referrals = fields.Integer()


class Referral(Schema):
    id = fields.String()
    status = fields.String(validate=validate.OneOf(REFERRAL_STATUSES))
    partner_id = fields.String()
    service_type = fields.String()
    source = fields.String()
    client = fields.Nested(ClientSummary)
    created_at = fields.String()
    updated_at = fields.String()


class ServiceOffer(Schema):
    service_type = fields.String()
    capacity = fields.Integer()
    unit = fields.String()


class Partner(Schema):
    id = fields.String()
    name = fields.String()
    kind = fields.String()
    kabupaten_kota = fields.String()
    address = fields.String()
    sex_served = fields.String()
    status = fields.String()
    services = fields.List(fields.Nested(ServiceOffer))


class PartnerFilter(StrictSchema):
    sex = fields.String(validate=validate.OneOf(SEXES))
    service_type = fields.String(validate=validate.OneOf(SERVICE_TYPES))
    kabupaten_kota = fields.String(validate=validate.Length(max=100))

    @validates_schema
    def _no_empty(self, data, **kwargs):
        for key, value in data.items():
            if value == "":
                raise ValidationError("Tidak boleh kosong.", key)


class Notification(Schema):
    id = fields.String()
    recipient = fields.String()
    event_type = fields.String()
    title = fields.String()
    body = fields.String()
    created_at = fields.String()
    read_at = fields.String(allow_none=True)
