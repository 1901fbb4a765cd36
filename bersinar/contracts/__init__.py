"""Request and response shapes that more than one component validates: the gateway
(which also generates OpenAPI from them) and the service that owns the data. Shapes
only; the rules behind them live in each service's domain. One module per area."""

from __future__ import annotations

from collections.abc import Iterable

from marshmallow import RAISE, Schema, validate


def one_of(codes: Iterable[str]) -> validate.OneOf:
    """One of a code list of ``bersinar.codes``, refused in Indonesian."""
    choices = tuple(codes)
    return validate.OneOf(choices, error=f"Harus salah satu dari: {', '.join(choices)}.")


class StrictSchema(Schema):
    """Unknown fields are refused, never silently dropped."""

    class Meta:
        unknown = RAISE
