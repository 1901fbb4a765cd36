"""Events made by their producers' own code, for the tests of consumers: each builds the
producer's model objects in memory (nothing stored) and calls the function the producer
emits with, then wraps the payload in an envelope checked against its declared contract.
A consumer test never hand-writes a payload: when a producer changes what it sends, the
consumers' tests see it."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bersinar.contracts.events import check_payload
from bersinar.envelope import make_event, utcnow
from services.laporan import handlers as laporan_handlers
from services.laporan.models import Report
from services.mitra import domain as mitra_domain
from services.mitra import handlers as mitra_handlers
from services.notifikasi import handlers as notifikasi_handlers
from services.rujukan import domain as rujukan_domain
from services.rujukan import handlers as rujukan_handlers
from services.rujukan.models import Client, Referral

SEEDS = {seed.id: seed for seed in mitra_domain.SEED_PARTNERS}


def envelope(
    event_type: str, source: str, data: dict[str, Any], occurred_at: datetime | None = None
) -> dict[str, Any]:
    """What the producer's unit of work writes to its outbox for this payload."""
    version = check_payload(event_type, source, data)
    return make_event(event_type, source, data, occurred_at=occurred_at, schema_version=version)


# --- mitra --------------------------------------------------------------------------------


def seeded_partner(partner_id: str = "yayasan-kipas", **changes):
    partner = mitra_handlers.partner_from_seed(SEEDS[partner_id], utcnow())
    for name, value in changes.items():
        setattr(partner, name, value)
    return partner


def partner_event(
    event_type: str = "partner_registered", partner_id: str = "yayasan-kipas", **changes
) -> dict[str, Any]:
    """partner_registered / partner_updated of a seeded partner (``changes`` to its model,
    e.g. ``status="inactive"``, ``version=2``)."""
    partner = seeded_partner(partner_id, **changes)
    return envelope(event_type, "mitra", mitra_handlers.partner_snapshot(partner))


def agreement_signed(partner_id: str = "yayasan-kipas", today: date | None = None, **changes):
    partner = seeded_partner(partner_id)
    agreement = partner.agreements[0]
    agreement.partner_id = partner.id  # what storing it would set
    for name, value in changes.items():
        setattr(agreement, name, value)
    data = mitra_handlers.agreement_signed_data(agreement, today or date.today())
    return envelope("agreement_signed", "mitra", data)


# --- rujukan ------------------------------------------------------------------------------


def referral(
    partner_id: str = "yayasan-kipas",
    sex: str = "M",
    birth_date: date = date(1990, 1, 5),
    service_type: str = "outpatient",
    status: str = "requested",
    now: datetime | None = None,
    **changes,
) -> tuple[Referral, Client]:
    now = now or utcnow()
    client = Client(id=str(uuid.uuid4()), sex=sex, birth_date=birth_date)
    model = Referral(
        id=str(uuid.uuid4()),
        client_id=client.id,
        partner_id=partner_id,
        service_type=service_type,
        source="TAT",
        status=status,
        age_group=rujukan_domain.age_group(birth_date, now.date()),
        created_at=now,
        updated_at=now,
        response_due_at=now + timedelta(hours=48),
    )
    for name, value in changes.items():
        setattr(model, name, value)
    return model, client


def referral_event(
    event_type: str = "referral_requested",
    partner_name: str | None = None,
    actor_role: str = "officer",
    extra: dict[str, Any] | None = None,
    **referral_fields,
) -> dict[str, Any]:
    """A referral event as rujukan builds it (``referral_fields`` go to ``referral()``;
    ``extra`` to the payload where the event type adds fields, e.g. ``from_status``)."""
    model, client = referral(**referral_fields)
    actor = rujukan_domain.Actor(
        actor_role, "k1", model.partner_id if actor_role == "partner" else None
    )
    name = partner_name or (SEEDS[model.partner_id].name if model.partner_id in SEEDS else None)
    data = rujukan_handlers.referral_event_data(model, client, actor, name)
    data.update(extra or {})
    return envelope(event_type, "rujukan", data, occurred_at=model.updated_at)


def referral_requested(**referral_fields) -> dict[str, Any]:
    return referral_event("referral_requested", **referral_fields)


# --- laporan ------------------------------------------------------------------------------


def report_event(
    event_type: str = "report_overdue",
    partner_id: str = "yayasan-kipas",
    period: str = "2026-10",
    status: str = "missing",
    **changes,
) -> dict[str, Any]:
    year, month = map(int, period.split("-"))
    due = date(year + month // 12, month % 12 + 1, 7)
    now = datetime.now(UTC)
    report = Report(
        id=str(uuid.uuid4()),
        partner_id=partner_id,
        period=period,
        due_on=due,
        status=status,
        version=0,
        created_at=now,
        updated_at=now,
    )
    for name, value in changes.items():
        setattr(report, name, value)
    name = SEEDS[partner_id].name if partner_id in SEEDS else None
    return envelope(event_type, "laporan", laporan_handlers.event_data(report, name))


# --- notifikasi ---------------------------------------------------------------------------


def notification_outcome(
    told: dict[str, Any], status: str = "failed", recipient: str = "partner:yayasan-kipas"
) -> dict[str, Any]:
    data = notifikasi_handlers.outcome_data(str(uuid.uuid4()), told, recipient, "email", status, 3)
    event_type = "notification_sent" if status == "sent" else "notification_failed"
    return envelope(event_type, "notifikasi", data)
