"""Shapes of partners (mitra)."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from bersinar.contracts import SERVICE_TYPES, SEXES, StrictSchema


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
