"""The indicators counted in SQL (services/laporan/queries.py) equal the ones counted in
Python from every episode (handlers.indicators), on PostgreSQL, for records on and
around every boundary the definitions use."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest

from bersinar.codes import LOCAL_TZ
from services.laporan import domain, handlers, queries
from services.laporan.domain import ReportPolicy
from services.laporan.models import AgreementView, PartnerView, ReferralRecord, Report

POLICY = ReportPolicy(start_period="2026-01", due_day=7, due_soon_days=3, lock_after_days=30)
PARTNERS = ("mitra-satu", "mitra-dua", "mitra-tiga")
# boundaries of the periods compared: the start of 2025 and 2026, and of their months
EDGES = [
    datetime(y, m, 1, tzinfo=LOCAL_TZ).astimezone(UTC)
    for y in (2025, 2026)
    for m in (1, 2, 10, 11, 12)
]


def moment(rng: random.Random) -> datetime:
    """Often exactly on a boundary or a second either side of it, else anywhere."""
    if rng.random() < 0.4:
        return rng.choice(EDGES) + timedelta(seconds=rng.choice((-1, 0, 1)))
    return datetime(2024, 11, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(1_200_000))


def records(count: int, seed: int = 7) -> list[ReferralRecord]:
    rng = random.Random(seed)
    made = []
    for i in range(count):
        times = sorted(moment(rng) for _ in range(4))
        requested, responded, admitted, ended = times
        fate = rng.random()
        accepted = None if fate < 0.15 else fate > 0.3
        made.append(
            ReferralRecord(
                referral_id=f"r-{i}",
                partner_id=PARTNERS[i % len(PARTNERS)],
                period=requested.astimezone(LOCAL_TZ).strftime("%Y-%m"),
                service_type=rng.choice(("inpatient", "outpatient", "aftercare")),
                sex=rng.choice("MF"),
                age_group="25-34",
                source="TAT",
                status="requested",
                requested_at=requested,
                request_seen=rng.random() > 0.1,
                responded_at=responded if accepted is not None else None,
                accepted=accepted,
                admitted_at=admitted if accepted and rng.random() > 0.2 else None,
                ended_at=ended if accepted and rng.random() > 0.4 else None,
                outcome=rng.choice(("completed", "dropped_out", "transferred")),
                updated_at=requested,
            )
        )
        if made[-1].ended_at is None:
            made[-1].outcome = None
    return made


@pytest.fixture
def filled(clean_databases):
    factory = clean_databases["laporan"]
    with factory() as uow:
        for n, partner_id in enumerate(PARTNERS):
            uow.session.add(
                PartnerView(
                    partner_id=partner_id,
                    name=partner_id,
                    kabupaten_kota="Kota Bengkulu",
                    sex_served="all",
                    status="active",
                    version=1,
                    services=[{"service_type": "inpatient", "capacity": 10 + n}],
                )
            )
            uow.session.add(
                AgreementView(
                    agreement_id=f"a-{n}",
                    partner_id=partner_id,
                    number=f"PKS/{n}",
                    valid_from=date(2025, 6, 1),
                    valid_until=date(2027, 5, 31),
                    annual_target=30,
                )
            )
        now = datetime(2026, 11, 3, tzinfo=UTC)
        uow.session.add(
            Report(
                id="rep-1",
                partner_id=PARTNERS[0],
                period="2026-10",
                due_on=date(2026, 11, 7),
                status="submitted_on_time",
                timeliness="submitted_on_time",
                first_submitted_at=now,
                submitted_at=now,
                version=1,
                reconciliation_differences=0,
                reopened=False,
                created_at=now,
                updated_at=now,
            )
        )
        uow.session.add_all(records(600))
        uow.commit()
    return factory


@pytest.mark.parametrize("period", ["2025-01", "2025-11", "2026-01", "2026-02", "2026-10"])
def test_indicators_counted_in_sql_equal_the_ones_counted_from_episodes(filled, period):
    today = date(2026, 11, 28)
    with filled() as uow:
        in_python = handlers.indicators(uow, period, POLICY, today)
        in_sql = queries.indicators(uow, period, POLICY, today)
    assert in_sql == in_python
    assert in_sql["province"]["figures"]["answered"] > 0


@pytest.mark.parametrize("period", ["2025-01", "2025-11", "2026-01", "2026-02", "2026-10"])
def test_the_prefill_reads_only_the_months_episodes_and_counts_the_same(filled, period):
    with filled() as uow:
        for partner_id in PARTNERS:
            everything = handlers.episodes(uow, period, [partner_id]).get(partner_id, [])
            month = handlers.month_episodes(uow, period, partner_id)
            assert handlers.prefill(uow, partner_id, period) == (
                domain.recorded_report_counts(everything, period)
            )
            assert len(month) < len(everything)
