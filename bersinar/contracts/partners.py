"""Shapes of partners (mitra): the registry, agreements (PKS) and capacity-building
activities. Validated by the gateway and again by mitra."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from bersinar import codes
from bersinar.contracts import Date, FullMatch, QueryBoolean, StrictSchema, one_of

# /api/v1/partners/match is a route: no partner is called so
RESERVED_IDS = ("match",)
_slug = FullMatch(
    r"^(?!match$)[a-z0-9][a-z0-9-]{1,62}$",
    error="Hanya huruf kecil, angka dan tanda hubung (2-63), bukan 'match'.",
)
_phone = FullMatch(r"^\+?[0-9]{8,15}$", error="Nomor telepon tidak valid.")


class Contact(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    role = fields.String(required=True, validate=one_of(codes.CONTACT_ROLES))
    email = fields.Email(load_default=None, allow_none=True)
    phone = fields.String(load_default=None, allow_none=True, validate=_phone)
    whatsapp = fields.String(load_default=None, allow_none=True, validate=_phone)


class ServiceOfferInput(StrictSchema):
    service_type = fields.String(required=True, validate=one_of(codes.SERVICE_TYPES))
    capacity = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=10000))
    unit = fields.String(load_default="klien", validate=validate.Length(min=1, max=32))


def _distinct_services(services, field="services"):
    # with skip_on_field_errors=False an offer that failed its own checks may lack a type
    kinds = [s["service_type"] for s in services or [] if "service_type" in s]
    if len(kinds) != len(set(kinds)):
        raise ValidationError("Setiap jenis layanan hanya sekali.", field)


class PartnerCreate(StrictSchema):
    id = fields.String(load_default=None, validate=_slug)
    name = fields.String(required=True, validate=validate.Length(min=2, max=200))
    kind = fields.String(required=True, validate=one_of(codes.PARTNER_KINDS))
    address = fields.String(load_default="", validate=validate.Length(max=500))
    kabupaten_kota = fields.String(required=True, validate=validate.Length(min=2, max=100))
    sex_served = fields.String(required=True, validate=one_of(codes.SEX_SERVED))
    age_groups = fields.List(
        fields.String(validate=one_of(codes.SERVED_AGE_GROUPS)),
        load_default=lambda: ["adolescent", "adult"],
    )
    services = fields.List(fields.Nested(ServiceOfferInput), load_default=list)
    contacts = fields.List(
        fields.Nested(Contact), load_default=list, validate=validate.Length(max=20)
    )
    accreditation = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=100)
    )
    status = fields.String(load_default="active", validate=one_of(codes.PARTNER_STATUSES))

    @validates_schema(skip_on_field_errors=False)
    def _services_once(self, data, **kwargs):
        _distinct_services(data.get("services"))


class PartnerPatch(StrictSchema):
    """Every field optional; what is given replaces what was there (services are merged
    by service type)."""

    name = fields.String(validate=validate.Length(min=2, max=200))
    kind = fields.String(validate=one_of(codes.PARTNER_KINDS))
    address = fields.String(validate=validate.Length(max=500))
    kabupaten_kota = fields.String(validate=validate.Length(min=2, max=100))
    sex_served = fields.String(validate=one_of(codes.SEX_SERVED))
    age_groups = fields.List(fields.String(validate=one_of(codes.SERVED_AGE_GROUPS)))
    services = fields.List(fields.Nested(ServiceOfferInput))
    contacts = fields.List(fields.Nested(Contact), validate=validate.Length(max=20))
    accreditation = fields.String(allow_none=True, validate=validate.Length(max=100))
    status = fields.String(validate=one_of(codes.PARTNER_STATUSES))

    OPENAPI = {"minProperties": 1}

    @validates_schema
    def _not_empty(self, data, **kwargs):
        if not data:
            raise ValidationError("Tidak ada yang diubah.", "_schema")
        _distinct_services(data.get("services"))


class ServiceOffer(Schema):
    service_type = fields.String()
    capacity = fields.Integer()
    unit = fields.String()
    updated_at = fields.String()


class AgreementInput(StrictSchema):
    number = fields.String(required=True, validate=validate.Length(min=3, max=100))
    signed_on = Date(required=True)
    valid_from = Date(required=True)
    valid_until = Date(required=True)
    scope = fields.List(
        fields.String(validate=one_of(codes.AGREEMENT_SCOPE)),
        load_default=lambda: list(codes.AGREEMENT_SCOPE),
        validate=validate.Length(min=1),
    )
    annual_target = fields.Integer(
        load_default=0, strict=True, validate=validate.Range(min=0, max=100000)
    )
    document_ref = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=300)
    )
    renews_agreement_id = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=36)
    )

    @validates_schema
    def _dates_in_order(self, data, **kwargs):
        if data["valid_until"] < data["valid_from"]:
            raise ValidationError("Harus sesudah valid_from.", "valid_until")
        if data["signed_on"] > data["valid_until"]:
            raise ValidationError("Tidak boleh sesudah valid_until.", "signed_on")


class AgreementTermination(StrictSchema):
    reason = fields.String(required=True, validate=validate.Length(min=3, max=1000))
    terminated_on = Date(load_default=None, allow_none=True)


class Agreement(Schema):
    id = fields.String()
    partner_id = fields.String()
    number = fields.String()
    signed_on = fields.String()
    valid_from = fields.String()
    valid_until = fields.String()
    scope = fields.List(fields.String())
    annual_target = fields.Integer()
    document_ref = fields.String(allow_none=True)
    renews_agreement_id = fields.String(allow_none=True)
    status = fields.String(validate=one_of(codes.AGREEMENT_STATUSES))
    days_to_expiry = fields.Integer()
    terminated_on = fields.String(allow_none=True)
    termination_reason = fields.String(allow_none=True)


class FollowUpInput(StrictSchema):
    description = fields.String(required=True, validate=validate.Length(min=3, max=1000))
    due_on = Date(required=True)


class ActivityInput(StrictSchema):
    kind = fields.String(required=True, validate=one_of(codes.ACTIVITY_KINDS))
    held_on = Date(required=True)
    title = fields.String(required=True, validate=validate.Length(min=3, max=200))
    participants = fields.List(
        fields.String(validate=validate.Length(min=1, max=200)),
        load_default=list,
        validate=validate.Length(max=200),
    )
    findings = fields.String(load_default="", validate=validate.Length(max=5000))
    follow_ups = fields.List(
        fields.Nested(FollowUpInput), load_default=list, validate=validate.Length(max=50)
    )
    scores = fields.Dict(
        keys=fields.String(validate=one_of(codes.SCORE_DIMENSIONS)),
        values=fields.Integer(strict=True, validate=validate.Range(0, 100)),
        load_default=None,
        allow_none=True,
        metadata={"required": list(codes.SCORE_DIMENSIONS)},
    )

    # scores belong to a supervision visit, and to nothing else
    OPENAPI = {
        "oneOf": [
            {"properties": {"kind": {"enum": ["supervision_visit"]}}},
            {
                "properties": {
                    "kind": {"enum": [k for k in codes.ACTIVITY_KINDS if k != "supervision_visit"]},
                    "scores": {"type": "object", "nullable": True, "enum": [None]},
                }
            },
        ]
    }

    @validates_schema
    def _scores_on_visits(self, data, **kwargs):
        scores = data.get("scores")
        if scores is None:
            return
        if data["kind"] != "supervision_visit":
            raise ValidationError("Skor hanya untuk kunjungan supervisi.", "scores")
        missing = [d for d in codes.SCORE_DIMENSIONS if d not in scores]
        if missing:
            raise ValidationError(f"Skor wajib untuk: {', '.join(missing)}.", "scores")


class FollowUp(Schema):
    id = fields.String()
    description = fields.String()
    due_on = fields.String()
    status = fields.String()


class Activity(Schema):
    id = fields.String()
    partner_id = fields.String()
    kind = fields.String()
    held_on = fields.String()
    title = fields.String()
    participants = fields.List(fields.String())
    findings = fields.String()
    follow_ups = fields.List(fields.Nested(FollowUp))
    scores = fields.Dict(keys=fields.String(), values=fields.Integer(), allow_none=True)
    created_at = fields.String()


class Partner(Schema):
    id = fields.String()
    name = fields.String()
    kind = fields.String()
    kabupaten_kota = fields.String()
    address = fields.String()
    sex_served = fields.String(validate=one_of(codes.SEX_SERVED))
    age_groups = fields.List(fields.String())
    status = fields.String(validate=one_of(codes.PARTNER_STATUSES))
    accreditation = fields.String(allow_none=True)
    version = fields.Integer()
    services = fields.List(fields.Nested(ServiceOffer))
    contacts = fields.List(fields.Nested(Contact))
    agreements = fields.List(fields.Nested(Agreement))
    updated_at = fields.String(metadata={"description": "Perubahan terakhir data mitra."})


class PartnerFilter(StrictSchema):
    sex = fields.String(validate=one_of(codes.SEXES))
    service_type = fields.String(validate=one_of(codes.SERVICE_TYPES))
    kabupaten_kota = fields.String(validate=validate.Length(min=1, max=100))
    has_capacity = QueryBoolean()
    status = fields.String(validate=one_of(codes.PARTNER_STATUSES))
