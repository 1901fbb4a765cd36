"""Request and response shapes that more than one component validates: the gateway
(which also generates OpenAPI from them) and the service that owns the data. Shapes
only; the rules behind them live in each service's domain. One module per area."""

from __future__ import annotations

import re
from collections.abc import Iterable

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from bersinar.contracts.messages import SCHEMA_MESSAGES, indonesian

# a text without NUL that is not blank: it holds a character ``str.strip()`` keeps
# (spelt out, since ``\s`` differs between Python and the document's regular expressions)
NOT_BLANK = (
    r"^[^\x00]*"
    r"[^\x00\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    r"[^\x00]*$"
)


def reason_field(**kwargs) -> fields.String:
    """Why a person changes what is recorded (a correction, an undo, a reopening):
    required, not blank, kept in the history and never sent in an event."""
    return fields.String(
        required=True,
        validate=[validate.Length(min=3, max=1000), FullMatch(NOT_BLANK)],
        **kwargs,
    )


def one_of(codes: Iterable[str]) -> validate.OneOf:
    """One of a code list of ``bersinar.codes``, refused in Indonesian."""
    choices = tuple(codes)
    return validate.OneOf(choices, error=f"Harus salah satu dari: {', '.join(choices)}.")


class StrictSchema(Schema):
    """Unknown fields are refused, never silently dropped; every error is in Indonesian
    (bersinar.contracts.messages)."""

    error_messages = SCHEMA_MESSAGES

    class Meta:
        unknown = RAISE

    def on_bind_field(self, field_name: str, field_obj: fields.Field) -> None:
        indonesian(field_obj)


class QueryInteger(fields.Integer):
    """An integer of a query string: ASCII digits, a minus at most (Python's ``int()``
    also reads "+5", " 5 ", "1_000" and the digits of every script). Over RPC the value
    may already be an int."""

    default_error_messages = {"invalid": "Harus bilangan bulat, ditulis dengan angka 0-9."}

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not (
            isinstance(value, int)
            or (isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,9}", value))
        ):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class QueryBoolean(fields.Boolean):
    """A yes/no of a query string: ``true`` or ``false`` as the document says
    (marshmallow's Boolean also reads "yes", "on", "1", "T")."""

    default_error_messages = {"invalid": "Harus true atau false."}

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            return value
        if value not in ("true", "false"):
            raise self.make_error("invalid")
        return value == "true"


def page_limit() -> QueryInteger:
    """How many items one page of a list holds: 50 unless asked, 200 at most."""
    return QueryInteger(load_default=50, validate=validate.Range(min=1, max=200))


class FullMatch(validate.Regexp):
    """A pattern the whole text matches. OpenAPI states it (``pattern``); Python's ``$``
    alone would also let a trailing newline through, which the document's does not."""

    def __call__(self, value):
        if not isinstance(value, str) or self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


class StrictBoolean(fields.Boolean):
    """JSON ``true`` or ``false`` only, as the document says (marshmallow's Boolean also
    takes 1, "yes", "on")."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


_FULL_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# RFC 3339's date-time, of the years 1900-2099: near the ends of Python's calendar an
# offset cannot be carried to UTC
DATE_TIME_PATTERN = (
    r"^(19|20)[0-9]{2}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


class Date(fields.Date):
    """RFC 3339's full-date, what the document's ``format: date`` means (Python also
    reads 20260105 and week dates)."""

    default_error_messages = {"invalid": "Tanggal tidak sah; tulis YYYY-MM-DD."}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not _FULL_DATE.fullmatch(value):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class AwareDateTime(fields.AwareDateTime):
    """RFC 3339's date-time with its offset, what ``format: date-time`` means (Python
    also reads a space for the T, a time without seconds, the basic format), in the years
    the document states."""

    default_error_messages = {
        "invalid": "Waktu tidak sah; tulis YYYY-MM-DDThh:mm:ss dengan zona (Z atau +07:00), "
        "tahun 1900-2099."
    }

    def __init__(self, **kwargs):
        kwargs["metadata"] = {"pattern": DATE_TIME_PATTERN, **kwargs.get("metadata", {})}
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not re.fullmatch(DATE_TIME_PATTERN, value):
            raise self.make_error("invalid")
        return super()._deserialize(value.upper(), attr, data, **kwargs)
