"""Shapes only the gateway uses; shared request shapes are in bersinar.contracts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import swagger_ui_bundle
from marshmallow import ValidationError, fields, validate, validates_schema

from bersinar import codes
from bersinar.contracts import NOT_BLANK, FullMatch, StrictSchema, one_of, page_limit
from bersinar.contracts.referrals import ReferralFilter
from bersinar.contracts.reports import PERIOD, ReviewInput

# what mitra makes a partner's id of (a chosen slug, or one made of the name), never a
# reserved word (bersinar.contracts.partners.RESERVED_IDS)
PARTNER_ID = r"^(?!match$)[a-z0-9][a-z0-9-]{0,62}$"
UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
# the files of the API viewer (/docs) served, by kind: their content type is stated
# here, not guessed from the machine's MIME tables
VIEWER = Path(swagger_ui_bundle.swagger_ui_path)
VIEWER_TYPES = {".css": "text/css", ".js": "text/javascript", ".png": "image/png"}
VIEWER_FILES = tuple(
    sorted(f.name for f in VIEWER.iterdir() if f.is_file() and f.suffix in VIEWER_TYPES)
)


@dataclass(frozen=True)
class PathParameter:
    """A segment of a route's path: what OpenAPI states and the gateway checks before
    anything else. An id that cannot exist is 404 (there is no such thing); anything
    else that breaks its shape is 422."""

    field: fields.Field
    not_found: bool = True


def _uuid(description: str) -> PathParameter:
    metadata = {
        "format": "uuid",
        "description": description,
        "example": "0f8fad5b-d9cb-469f-a165-70867728950e",
    }
    return PathParameter(fields.String(validate=FullMatch(UUID), metadata=metadata))


PATH_PARAMETERS = {
    "partner_id": PathParameter(
        fields.String(
            validate=FullMatch(PARTNER_ID),
            metadata={"description": "Id mitra", "example": "yayasan-pesona"},
        )
    ),
    "period": PathParameter(
        fields.String(
            validate=PERIOD,
            metadata={"description": "Bulan laporan, YYYY-MM", "example": "2026-10"},
        ),
        not_found=False,
    ),
    "key_id": _uuid("Id kunci API"),
    "referral_id": _uuid("Id rujukan"),
    "client_id": _uuid("Pseudonim klien"),
    "agreement_id": _uuid("Id PKS"),
    "notification_id": _uuid("Id notifikasi"),
    "delivery_id": _uuid("Id pengiriman"),
    "subscription_id": _uuid("Id langganan webhook"),
    "attachment_id": _uuid("Id lampiran"),
    "filename": PathParameter(fields.String(validate=validate.OneOf(VIEWER_FILES))),
}


class ApiKeyCreate(StrictSchema):
    role = fields.String(required=True, validate=one_of(codes.ROLES))
    partner_id = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(min=1, max=64)
    )
    label = fields.String(required=True, validate=validate.Length(min=1, max=100))

    # a partner's key names its partner; no other key does
    OPENAPI = {
        "oneOf": [
            {
                "properties": {"role": {"enum": ["partner"]}, "partner_id": {"type": "string"}},
                "required": ["role", "partner_id"],
            },
            {
                "properties": {
                    "role": {"enum": [r for r in codes.ROLES if r != "partner"]},
                    "partner_id": {"type": "string", "nullable": True, "enum": [None]},
                }
            },
        ]
    }

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
    limit = page_limit()
    cursor = fields.String(
        load_default=None,
        validate=FullMatch(r"^[0-9]{1,6}$", error="Kursor tidak sah."),
        metadata={"description": "next_cursor halaman sebelumnya"},
    )


class NotificationQuery(Page):
    partner_id = fields.String(load_default=None, validate=validate.Length(min=1, max=64))


def list_format(*formats: str) -> fields.String:
    """How a list is answered: JSON unless asked (``Accept`` may ask for XLSX too)."""
    return fields.String(
        load_default=None,
        validate=one_of(("json", *formats)),
        metadata={"description": "json (bawaan) atau " + ", ".join(formats)},
    )


class ReferralListQuery(ReferralFilter):
    format = list_format("xlsx")


class Problem(StrictSchema):
    type = fields.String()
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    code = fields.String()
    errors = fields.Dict()
    correlation_id = fields.String()


class ReturnInput(ReviewInput):
    """Returning a report: the same body, with the comment laporan requires."""

    OPENAPI = {
        "required": ["comment"],
        "properties": {"comment": {"pattern": NOT_BLANK, "nullable": None, "default": None}},
    }
