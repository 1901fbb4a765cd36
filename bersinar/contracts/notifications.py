"""Shapes of notifications (notifikasi)."""

from __future__ import annotations

from marshmallow import Schema, fields


class Notification(Schema):
    id = fields.String()
    recipient = fields.String()
    event_type = fields.String()
    title = fields.String()
    body = fields.String()
    created_at = fields.String()
    read_at = fields.String(allow_none=True)
