"""Request and response shapes that more than one component validates: the gateway
(which also generates OpenAPI from them) and the service that owns the data. Shapes
only; the rules behind them live in each service's domain. One module per area."""

from __future__ import annotations

from marshmallow import RAISE, Schema

SERVICE_TYPES = ("inpatient", "outpatient", "aftercare")
SEXES = ("M", "F")
SEX_SERVED = ("all", "male", "female")


class StrictSchema(Schema):
    """Unknown fields are refused, never silently dropped."""

    class Meta:
        unknown = RAISE
