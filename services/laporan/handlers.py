"""One function per command or event of ``laporan``, each run inside a unit of work."""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from sqlalchemy import func, select

from bersinar.db import UnitOfWork
from bersinar.envelope import parse_rfc3339
from services.laporan import domain
from services.laporan.exceptions import InvalidPeriod
from services.laporan.models import ReferralRecord

log = logging.getLogger(__name__)


def record_referral_requested(uow: UnitOfWork, event: dict[str, Any]) -> None:
    data = event["data"]
    occurred = parse_rfc3339(event["occurred_at"])
    uow.session.add(
        ReferralRecord(
            referral_id=data["referral_id"],
            partner_id=data["partner_id"],
            period=domain.period_of(occurred),
            service_type=data["service_type"],
            sex=data["sex"],
            age_group=data["age_group"],
            status="requested",
            requested_at=occurred,
            updated_at=occurred,
        )
    )
    log.info("referral %s recorded for %s", data["referral_id"], data["partner_id"])


def recorded_counts(uow: UnitOfWork, period: str, partner_id: str | None = None) -> dict[str, Any]:
    """Referrals requested in a period, per partner, by sex and by service type."""
    if not domain.valid_period(period):
        raise InvalidPeriod("Periode harus berbentuk YYYY-MM.", errors={"period": ["YYYY-MM"]})
    query = (
        select(
            ReferralRecord.partner_id, ReferralRecord.sex, ReferralRecord.service_type, func.count()
        )
        .where(ReferralRecord.period == period)
        .group_by(ReferralRecord.partner_id, ReferralRecord.sex, ReferralRecord.service_type)
    )
    if partner_id:
        query = query.where(ReferralRecord.partner_id == partner_id)
    partners: dict[str, Any] = defaultdict(
        lambda: {"requested": 0, "by_sex": defaultdict(int), "by_service_type": defaultdict(int)}
    )
    for partner, sex, service_type, count in uow.session.execute(query):
        entry = partners[partner]
        entry["requested"] += count
        entry["by_sex"][sex] += count
        entry["by_service_type"][service_type] += count
    return {
        "period": period,
        "partners": {
            partner: {
                "requested": entry["requested"],
                "by_sex": dict(entry["by_sex"]),
                "by_service_type": dict(entry["by_service_type"]),
            }
            for partner, entry in sorted(partners.items())
        },
    }
