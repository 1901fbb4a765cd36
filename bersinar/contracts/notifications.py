"""Shapes of notifications (notifikasi): the inbox, the delivery log, webhook
subscriptions and preferences. Validated by the gateway and again by notifikasi."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates

from bersinar import codes
from bersinar.contracts import (
    FullMatch,
    QueryBoolean,
    StrictBoolean,
    StrictSchema,
    one_of,
    page_limit,
)
from bersinar.contracts.events import EVENT_TYPES

# an http(s) address by name (one label, or several ending in one of 2 or more
# characters) or IPv4, with a port and a path: what the document states, all of it
# taken by marshmallow's URL check too
_LABEL = "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = (
    f"({_LABEL}|{_LABEL}(\\.{_LABEL})*\\.[A-Za-z0-9][A-Za-z0-9-]{{0,61}}[A-Za-z0-9]"
    "|[0-9]{1,3}(\\.[0-9]{1,3}){3})"
)
WEBHOOK_URL = f"^https?://{_HOST}(:[0-9]{{1,5}})?(/|[/?#][!-~]+)?$"

# The events the national role may subscribe to: those that describe no person. A report
# event names a partner, a month and the report's state; a partner event the partner's
# public data, which national reads at GET /api/v1/partners anyway. Never a referral
# event: one record per referral (pseudonym, sex, age group, times), what the monthly
# export's small-cell suppression exists to keep from national. Nor notification_sent /
# _failed: one per delivery of such an event, they tell when a referral moved and at
# which partner. Nor an agreement's: contracts, which national reads nowhere either.
NATIONAL_EVENT_TYPES: tuple[str, ...] = (
    "partner_registered",
    "partner_updated",
    "report_due_soon",
    "report_overdue",
    "report_submitted",
    "report_approved",
    "report_returned",
)


class Notification(Schema):
    id = fields.String()
    recipient = fields.String()
    event_type = fields.String()
    event_id = fields.String()
    title = fields.String()
    body = fields.String()
    created_at = fields.String()
    read_at = fields.String(allow_none=True)


class NotificationPage(Schema):
    items = fields.List(fields.Nested(Notification))
    next_cursor = fields.String(allow_none=True)


class ReadMark(StrictSchema):
    read = StrictBoolean(load_default=True)


class DeliveryQuery(StrictSchema):
    limit = page_limit()
    cursor = fields.String(load_default=None, validate=validate.Length(max=64))
    event_id = fields.String(load_default=None, validate=validate.Length(max=36))
    event_type = fields.String(load_default=None, validate=one_of(EVENT_TYPES))
    channel = fields.String(load_default=None, validate=one_of(codes.CHANNELS))
    status = fields.String(load_default=None, validate=one_of(codes.DELIVERY_STATUSES))
    recipient = fields.String(load_default=None, validate=validate.Length(max=100))


class Attempt(Schema):
    number = fields.Integer()
    attempted_at = fields.String()
    outcome = fields.String()
    error = fields.String(allow_none=True)
    duration_ms = fields.Integer()


class Delivery(Schema):
    id = fields.String()
    event_id = fields.String()
    event_type = fields.String()
    recipient = fields.String()
    recipient_kind = fields.String()
    channel = fields.String()
    status = fields.String()
    attempts = fields.Integer()
    last_error = fields.String(allow_none=True)
    next_attempt_at = fields.String(allow_none=True)
    occurred_at = fields.String()
    created_at = fields.String()
    sent_at = fields.String(allow_none=True)
    attempt_log = fields.List(fields.Nested(Attempt))


class DeliveryPage(Schema):
    items = fields.List(fields.Nested(Delivery))
    next_cursor = fields.String(allow_none=True)


class WebhookCreate(StrictSchema):
    url = fields.Url(
        required=True,
        schemes={"http", "https"},
        require_tld=False,
        error_messages={"invalid": "Alamat http(s) tidak sah."},
        validate=[
            FullMatch(WEBHOOK_URL, error="Alamat http(s) tidak sah."),
            validate.Length(max=500),
        ],
    )
    event_types = fields.List(
        fields.String(validate=one_of(EVENT_TYPES)),
        required=True,
        validate=validate.Length(min=1, max=len(EVENT_TYPES)),
    )


class Webhook(Schema):
    id = fields.String()
    url = fields.String()
    event_types = fields.List(fields.String())
    owner_role = fields.String()
    created_at = fields.String()
    deleted_at = fields.String(allow_none=True)


class WebhookCreated(Webhook):
    secret = fields.String(
        metadata={
            "description": "Rahasia Standard Webhooks (whsec_ dan base64) untuk memeriksa "
            "tanda tangan; ditampilkan sekali saja."
        }
    )


class PreferenceItem(StrictSchema):
    event_type = fields.String(required=True, metadata={"enum": ["*", *EVENT_TYPES]})
    channels = fields.List(fields.String(validate=one_of(codes.PERSON_CHANNELS)), required=True)

    @validates("event_type")
    def _known(self, value, **kwargs):
        if value != "*" and value not in EVENT_TYPES:
            raise ValidationError("Jenis peristiwa tidak dikenal.")


class PreferencesUpdate(StrictSchema):
    recipient = fields.String(load_default=None, validate=validate.Length(min=1, max=100))
    items = fields.List(
        fields.Nested(PreferenceItem),
        required=True,
        validate=validate.Length(min=1, max=len(EVENT_TYPES) + 1),
    )


class PreferencesQuery(StrictSchema):
    recipient = fields.String(load_default=None, validate=validate.Length(min=1, max=100))


class InboxQuery(StrictSchema):
    limit = page_limit()
    cursor = fields.String(load_default=None, validate=validate.Length(max=64))
    partner_id = fields.String(load_default=None, validate=validate.Length(min=1, max=64))
    recipient = fields.String(
        load_default=None,
        validate=validate.OneOf(("role:admin", "role:officer")),
        metadata={"description": "Admin saja: kotak masuk peran (role:admin, role:officer)."},
    )
    unread = QueryBoolean(load_default=None, allow_none=True)
