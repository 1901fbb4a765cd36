"""Shapes only the gateway uses; shared request shapes are in bersinar.contracts."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from bersinar import codes
from bersinar.contracts import StrictSchema, one_of


class ApiKeyCreate(StrictSchema):
    role = fields.String(required=True, validate=one_of(codes.ROLES))
    partner_id = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(min=1, max=64)
    )
    label = fields.String(required=True, validate=validate.Length(min=1, max=100))

    @validates_schema
    def _partner_goes_with_role(self, data, **kwargs):
        if data["role"] == "partner" and not data.get("partner_id"):
            raise ValidationError("Wajib untuk peran partner.", "partner_id")
        if data["role"] != "partner" and data.get("partner_id"):
            raise ValidationError("Hanya untuk peran partner.", "partner_id")


class ApiKey(StrictSchema):
    id = fields.String()
    prefix = fields.String()
    role = fields.String()
    partner_id = fields.String(allow_none=True)
    label = fields.String()
    created_at = fields.String()
    last_used_at = fields.String(allow_none=True)
    revoked_at = fields.String(allow_none=True)


class ApiKeyCreated(ApiKey):
    key = fields.String(metadata={"description": "Ditampilkan sekali saja."})


class Page(StrictSchema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String(load_default=None, validate=validate.Length(max=64))


class NotificationQuery(Page):
    partner_id = fields.String(load_default=None, validate=validate.Length(min=1, max=64))


class Problem(StrictSchema):
    type = fields.String()
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    code = fields.String()
    errors = fields.Dict()
    correlation_id = fields.String()
