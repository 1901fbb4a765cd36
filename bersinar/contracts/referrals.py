"""Shapes of referrals (rujukan)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from bersinar.contracts import SERVICE_TYPES, SEXES, StrictSchema

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
