"""Reads of laporan that count in the database: a period's indicators at any number of
referral records. ``handlers.indicators`` loads every record of the year and counts in
Python; at a million referrals that alone took seconds. Here each figure is one
``GROUP BY partner_id`` over the index of the moment it depends on (migration lap0003),
to the definitions of ``domain.referral_figures``; only the answers of the month are
fetched, for the medians."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select

from bersinar.db import UnitOfWork
from services.laporan import domain, handlers
from services.laporan.domain import ReportPolicy
from services.laporan.models import ReferralRecord

R = ReferralRecord


def _count_by_partner(uow: UnitOfWork, *where, by=None) -> dict[tuple, int]:
    columns = (R.partner_id,) if by is None else (R.partner_id, by)
    query = select(*columns, func.count()).where(*where).group_by(*columns)
    return {tuple(row[:-1]): int(row[-1]) for row in uow.session.execute(query)}


def referral_figures(uow: UnitOfWork, period: str) -> dict[str, dict[str, Any]]:
    """Per partner, what ``domain.referral_figures`` counts from its episodes."""
    start, end = domain.period_bounds(period)
    begins = domain.year_start(period)
    figures: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"counts": Counter(), "response_hours": []}
    )
    answered = select(R.partner_id, R.accepted, R.request_seen, R.requested_at, R.responded_at)
    for partner_id, accepted, seen, requested_at, responded_at in uow.session.execute(
        answered.where(R.responded_at >= start, R.responded_at < end, R.accepted.is_not(None))
    ):
        entry = figures[partner_id]
        entry["counts"]["accepted" if accepted else "rejected"] += 1
        if seen:
            entry["response_hours"].append((responded_at - requested_at) / timedelta(hours=1))

    def add(key: str, counted: dict[tuple, int]) -> None:
        for (partner_id,), n in counted.items():
            figures[partner_id]["counts"][key] += n

    # a record's period is the month of its request (index ``period``)
    add("requested", _count_by_partner(uow, R.period == period, R.request_seen.is_(True)))
    add("admitted", _count_by_partner(uow, R.admitted_at >= start, R.admitted_at < end))
    ended = _count_by_partner(
        uow, R.ended_at >= start, R.ended_at < end, R.outcome.is_not(None), by=R.outcome
    )
    for (partner_id, outcome), n in ended.items():
        figures[partner_id]["counts"][domain.OUTCOMES[outcome]] += n
    summaries = _count_by_partner(
        uow,
        R.ended_at >= start,
        R.ended_at < end,
        R.outcome.is_not(None),
        R.discharge_outcome.is_not(None),
        by=R.discharge_outcome,
    )
    for (partner_id, outcome), n in summaries.items():
        figures[partner_id]["counts"][domain.discharge_figure(outcome)] += n
    # in care at the end: admitted before it and not ended by then; the two halves each
    # read one index (the open ones: a partial index of records with no end)
    in_care = Counter(_count_by_partner(uow, R.admitted_at < end, R.ended_at.is_(None)))
    in_care.update(_count_by_partner(uow, R.admitted_at < end, R.ended_at >= end))
    add("in_care_at_end", in_care)
    add(
        "admitted_this_year",
        _count_by_partner(uow, R.admitted_at >= begins, R.admitted_at < end),
    )
    return dict(figures)


def indicators(uow: UnitOfWork, period: str, policy: ReportPolicy, today: date) -> dict[str, Any]:
    """What ``handlers.indicators`` answers, counted in SQL. One difference: a partner
    laporan does not know (no mitra event), owing no report and with no figure in the
    period, has no row here (there it had a row of noughts)."""
    handlers._check_period(period)
    figures = referral_figures(uow, period)
    months = handlers.partner_months(uow, period, policy, today, figures_of=figures)
    return domain.indicators(months, period)
