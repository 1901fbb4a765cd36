"""Attachments of referrals, agreements and reports (bersinar.attachments): what an upload
names, what a list shows, what a removal says."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from bersinar import codes
from bersinar.attachments import CONTENT_TYPES
from bersinar.contracts import StrictSchema, one_of, reason_field

FILENAME = {"validate": validate.Length(min=1, max=200)}


def upload_query(owner: str) -> type[Schema]:
    """The query of an upload to an object of kind ``owner`` (the body is the file)."""
    return StrictSchema.from_dict(
        {
            "kind": fields.String(required=True, validate=one_of(codes.ATTACHMENT_KINDS[owner])),
            "filename": fields.String(
                load_default=None,
                metadata={"description": "Nama berkas untuk unduhan"},
                **FILENAME,
            ),
        },
        name=f"{owner.capitalize()}AttachmentQuery",
    )


class AttachmentUpload(StrictSchema):
    """What the gateway sends the service that owns the object."""

    kind = fields.String(required=True, validate=validate.Length(min=1, max=40))
    filename = fields.String(load_default=None, allow_none=True, **FILENAME)
    content_type = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=100)
    )
    content = fields.String(required=True, metadata={"description": "Isi berkas, base64"})


class AttachmentRemoval(StrictSchema):
    reason = reason_field()


class Attachment(Schema):
    id = fields.String()
    kind = fields.String()
    filename = fields.String()
    content_type = fields.String(validate=validate.OneOf(CONTENT_TYPES))
    size = fields.Integer()
    sha256 = fields.String()
    uploaded_by = fields.String()
    uploaded_at = fields.String()
    removed_at = fields.String(allow_none=True)
    removed_by = fields.String(allow_none=True)
    removed_reason = fields.String(allow_none=True)


class AttachmentList(Schema):
    items = fields.List(fields.Nested(Attachment))
