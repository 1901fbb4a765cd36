"""Events made by their producers' own code, for the tests of consumers: each builds the
producer's model objects in memory (nothing stored) and calls the function the producer
emits with (or, where the producer assembles the payload inside a handler, runs that
handler on the models in memory), then wraps the payload in an envelope checked against
its declared contract. ``sample(event_type)`` gives an event of any declared type.
A consumer test never hand-writes a payload: when a producer changes what it sends, the
consumers' tests see it."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bersinar.codes import REFERRAL_ACTORS, local_date
from bersinar.contracts.events import EVENT_TYPES, check_payload
from bersinar.envelope import make_event, utcnow
from services.laporan import handlers as laporan_handlers
from services.laporan.models import Report
from services.mitra import domain as mitra_domain
from services.mitra import handlers as mitra_handlers
from services.mitra.models import Agreement, ServiceOffer
from services.notifikasi import handlers as notifikasi_handlers
from services.rujukan import domain as rujukan_domain
from services.rujukan import handlers as rujukan_handlers
from services.rujukan.models import Client, Referral, ReferralDischarge

SEEDS = {seed.id: seed for seed in mitra_domain.SEED_PARTNERS}


def _partner_name(partner_id: str) -> str | None:
    """The name rujukan and laporan know a partner by (from mitra's events)."""
    return SEEDS[partner_id].name if partner_id in SEEDS else None


def envelope(
    event_type: str, source: str, data: dict[str, Any], occurred_at: datetime | None = None
) -> dict[str, Any]:
    """What the producer's unit of work writes to its outbox for this payload."""
    version = check_payload(event_type, source, data)
    return make_event(event_type, source, data, occurred_at=occurred_at, schema_version=version)


# --- mitra --------------------------------------------------------------------------------


def seeded_partner(partner_id: str = "yayasan-kipas", **changes):
    """The model of a seeded partner with its PKS, as mitra builds it (``changes`` to the
    partner's attributes). A partner of another id gets the first seed's data under that
    id, a name made of it and a PKS numbered after it."""
    seed = SEEDS.get(partner_id) or dataclasses.replace(
        mitra_domain.SEED_PARTNERS[0],
        id=partner_id,
        name=partner_id.replace("-", " ").title(),
        agreement=dataclasses.replace(
            mitra_domain.SEED_PARTNERS[0].agreement, number=f"PKS/{partner_id}"
        ),
    )
    partner = mitra_handlers.partner_from_seed(seed, utcnow())
    for agreement in partner.agreements:
        agreement.partner_id = partner.id  # what storing it would fill in
    for name, value in changes.items():
        setattr(partner, name, value)
    return partner


def offers(*offered: tuple) -> list[ServiceOffer]:
    """A partner's offers: ``("inpatient", 10)`` or ``("inpatient", 10, "tempat tidur")``."""
    now = utcnow()
    return [
        ServiceOffer(
            service_type=service_type, capacity=capacity, unit=unit[0] if unit else "klien",
            updated_at=now,
        )
        for service_type, capacity, *unit in offered
    ]  # fmt: skip


def partner_event(
    event_type: str = "partner_registered", partner_id: str = "yayasan-kipas", **changes
) -> dict[str, Any]:
    """partner_registered / partner_updated of a seeded partner (``changes`` to its model,
    e.g. ``status="inactive"``, ``version=2``, ``offers=offers(("aftercare", 4))``)."""
    partner = seeded_partner(partner_id, **changes)
    return envelope(event_type, "mitra", mitra_handlers.partner_snapshot(partner))


def seeded_agreement(partner_id: str = "yayasan-kipas", **changes) -> Agreement:
    """The PKS of a seeded partner (``changes`` to it, e.g. ``id``, ``valid_until``)."""
    agreement = seeded_partner(partner_id).agreements[0]
    for name, value in changes.items():
        setattr(agreement, name, value)
    return agreement


def agreement_signed(partner_id: str = "yayasan-kipas", today: date | None = None, **changes):
    agreement = seeded_agreement(partner_id, **changes)
    data = mitra_handlers.agreement_signed_data(agreement, today or date.today())
    return envelope("agreement_signed", "mitra", data)


def agreement_notice(partner_id: str = "yayasan-kipas", days_left: int = 30, **changes):
    """agreement_expiring ``days_left`` days before the PKS of a seeded partner ends (90,
    30 or 7), or agreement_expired the day after (``days_left=-1``), as mitra's daily
    check emits them (``changes`` to the PKS)."""
    agreement = seeded_agreement(partner_id, **changes)
    today = agreement.valid_until - timedelta(days=days_left)
    event_type = "agreement_expired" if days_left < 0 else "agreement_expiring"
    return envelope(event_type, "mitra", mitra_handlers.agreement_due_data(agreement, today))


def agreement_terminated(
    partner_id: str = "yayasan-kipas", terminated_on: date | None = None, **changes
):
    """agreement_terminated of a seeded partner's PKS, as mitra emits it when an officer
    ends it (``changes`` to the PKS, e.g. ``id``)."""
    agreement = seeded_agreement(partner_id, **changes)
    agreement.terminated_on = terminated_on or date.today()
    data = mitra_handlers.agreement_terminated_data(agreement)
    return envelope("agreement_terminated", "mitra", data)


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
    name = partner_name or _partner_name(model.partner_id)
    data = rujukan_handlers.referral_event_data(model, client, actor, name)
    data.update(extra or {})
    return envelope(event_type, "rujukan", data, occurred_at=model.updated_at)


def referral_requested(**referral_fields) -> dict[str, Any]:
    return referral_event("referral_requested", **referral_fields)


# the statuses a referral passes to reach each one, as rujukan allows them
PATHS = {
    "requested": ("requested",),
    "accepted": ("requested", "accepted"),
    "rejected": ("requested", "rejected"),
    "cancelled": ("requested", "cancelled"),
    "admitted": ("requested", "accepted", "admitted"),
    "completed": ("requested", "accepted", "admitted", "completed"),
    "dropped_out": ("requested", "accepted", "admitted", "dropped_out"),
    "transferred": ("requested", "accepted", "admitted", "transferred"),
}


# the discharge summary an ending step records unless told otherwise (rujukan's rules)
DISCHARGE = {
    "completed": ("improved", ("program_completed",)),
    "dropped_out": ("unchanged", ("lost_contact",)),
    "transferred": ("referred_onward", ("transferred_to_partner",)),
}


def discharge(
    status: str, end: datetime, outcome: str | None = None, follow_up_days: int | None = 30
) -> rujukan_domain.Discharge:
    """The summary of care ending in ``status`` at ``end``, checked by rujukan's rule."""
    default_outcome, reasons = DISCHARGE[status]
    action = next(a for a, (_, enters) in rujukan_domain.TRANSITIONS.items() if enters == status)
    end_day = local_date(end)
    return rujukan_domain.check_discharge(
        action,
        {
            "outcome": outcome or default_outcome,
            "reasons": list(reasons),
            "follow_up_on": end_day + timedelta(days=follow_up_days) if follow_up_days else None,
        },
        end_day,
    )


def referral_story(
    steps: list[tuple[str, datetime]],
    reason: str = "capacity_full",
    transfer_to: str = "yayasan-pesona",
    outcome: str | None = None,
    **referral_fields,
) -> list[dict[str, Any]]:
    """The events of one referral through ``steps`` (``[(status, moment), ...]`` from
    "requested"), as rujukan's transition makes each: the action that enters the status
    and who may take it from rujukan's rules, the referral's times set as rujukan sets
    them, the payload built by rujukan, with the status left (``from_status``) and, for
    a transfer, the partner taking the client over. ``referral_fields`` go to
    ``referral()``."""
    (first, start), *moves = steps
    assert first == "requested", "a referral's story begins with its request"
    model, client = referral(now=start, **referral_fields)
    name = _partner_name(model.partner_id)
    officer = rujukan_domain.Actor("officer", "k1")
    events = [
        envelope(
            "referral_requested",
            "rujukan",
            rujukan_handlers.referral_event_data(model, client, officer, name),
            occurred_at=start,
        )
    ]
    for status, moment in moves:
        before = model.status
        action = next(
            action
            for action, (leaves, enters) in rujukan_domain.TRANSITIONS.items()
            if enters == status and before in leaves
        )
        role = REFERRAL_ACTORS[action]
        if action in ("accept", "reject"):
            model.responded_at = moment
        if action == "reject":
            model.rejection_reason = reason
        if action == "admit":
            model.admitted_at = moment
        if status in rujukan_domain.TERMINAL_STATUSES:
            model.ended_at = moment
        if action == "transfer":
            model.transferred_to_id = str(uuid.uuid4())
        model.status, model.updated_at = status, moment
        actor = rujukan_domain.Actor(role, "k1", model.partner_id if role == "partner" else None)
        data = {
            **rujukan_handlers.referral_event_data(model, client, actor, name),
            "from_status": before,
        }
        if action in rujukan_domain.ENDING_ACTIONS:
            data.update(rujukan_handlers.discharge_event_data(discharge(status, moment, outcome)))
        if action == "transfer":
            data["to_partner_id"] = transfer_to
            data["to_partner_name"] = _partner_name(transfer_to)
        events.append(envelope(f"referral_{status}", "rujukan", data, occurred_at=moment))
    return events


def referral_moved(status: str = "accepted", **story_fields) -> dict[str, Any]:
    """The event of a referral entering ``status`` by the shortest way rujukan allows,
    an hour a step (``story_fields`` to ``referral_story``)."""
    start = utcnow() - timedelta(hours=len(PATHS[status]))
    steps = [(step, start + timedelta(hours=n)) for n, step in enumerate(PATHS[status])]
    return referral_story(steps, **story_fields)[-1]


def referral_overdue(hours_overdue: float = 2.5, **referral_fields) -> dict[str, Any]:
    """referral_response_overdue, as rujukan's deadline check emits it: a request still
    unanswered ``hours_overdue`` hours after its deadline."""
    now = utcnow()
    model, client = referral(now=now - timedelta(hours=48 + hours_overdue), **referral_fields)
    data = rujukan_handlers.referral_event_data(
        model, client, None, _partner_name(model.partner_id)
    )
    data["hours_overdue"] = round((now - model.response_due_at).total_seconds() / 3600, 2)
    return envelope("referral_response_overdue", "rujukan", data, occurred_at=now)


def referral_follow_up_due(
    status: str = "completed", outcome: str | None = None, **referral_fields
) -> dict[str, Any]:
    """referral_follow_up_due, as rujukan's follow-up check emits it: care ended 30 days
    ago with a summary whose follow-up day is today."""
    now = utcnow()
    ended = now - timedelta(days=30)
    model, client = referral(now=ended - timedelta(days=20), **referral_fields)
    model.status, model.ended_at, model.updated_at = status, ended, ended
    summary = discharge(status, ended, outcome, follow_up_days=30)
    row = ReferralDischarge(
        referral_id=model.id,
        outcome=summary.outcome,
        reasons=list(summary.reasons),
        follow_up_on=summary.follow_up_on,
    )
    data = rujukan_handlers.follow_up_event_data(
        model, client, row, _partner_name(model.partner_id)
    )
    return envelope("referral_follow_up_due", "rujukan", data, occurred_at=now)


def _model_of(data: dict[str, Any]) -> tuple[Referral, Client]:
    """The referral and client a referral event's payload was made of (as rujukan holds
    them), to make the next event of that referral with rujukan's code."""
    client = Client(id=data["client_pseudonym"], sex=data["sex"])
    model = Referral(
        id=data["referral_id"],
        client_id=client.id,
        partner_id=data["partner_id"],
        service_type=data["service_type"],
        source=data["source"],
        status=data["status"],
        age_group=data["age_group"],
        previous_referral_id=data["previous_referral_id"],
        transferred_from_id=data["transferred_from_id"],
        transferred_to_id=data["transferred_to_id"],
        rejection_reason=data["reason"],
    )
    for name, key in (
        ("created_at", "requested_at"),
        ("response_due_at", "response_due_at"),
        ("responded_at", "responded_at"),
        ("admitted_at", "admitted_at"),
        ("ended_at", "ended_at"),
    ):
        setattr(model, name, data[key] and datetime.fromisoformat(data[key]))
    return model, client


def referral_undone(
    moved: dict[str, Any] | None = None, status: str = "admitted", **story_fields
) -> dict[str, Any]:
    """referral_transition_undone: an admin undid the step ``moved`` (a referral event
    of a transition, by default one entering ``status`` as ``referral_moved`` makes it),
    as rujukan's undo does it."""
    moved = moved or referral_moved(status, **story_fields)
    model, client = _model_of(moved["data"])
    now = utcnow()
    undone = rujukan_handlers.undo_on(model, moved["data"]["from_status"], now)
    admin = rujukan_domain.Actor("admin", "k1")
    data = rujukan_handlers.undone_event_data(
        model, client, admin, moved["data"]["partner_name"], undone
    )
    return envelope("referral_transition_undone", "rujukan", data, occurred_at=now)


def client_corrected(
    told: dict[str, Any] | None = None,
    sex: str | None = None,
    age_group: str | None = None,
    **referral_fields,
) -> dict[str, Any]:
    """client_corrected for the referral of event ``told`` (by default a new request):
    an admin corrected its client's identity to ``sex`` and an age group ``age_group``
    (unchanged when not given), as rujukan's correction tells it."""
    told = told or referral_requested(**referral_fields)
    model, client = _model_of(told["data"])
    changed = ["name"]
    if sex and sex != client.sex:
        client.sex, changed = sex, ["sex"]
    age_changed = bool(age_group) and age_group != model.age_group
    model.age_group = age_group or model.age_group
    admin = rujukan_domain.Actor("admin", "k1")
    data = rujukan_handlers.corrected_event_data(
        model, client, admin, told["data"]["partner_name"], changed, age_changed
    )
    return envelope("client_corrected", "rujukan", data, occurred_at=utcnow())


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
    return envelope(
        event_type, "laporan", laporan_handlers.event_data(report, _partner_name(partner_id))
    )


# --- notifikasi ---------------------------------------------------------------------------


def notification_outcome(
    told: dict[str, Any], status: str = "failed", recipient: str = "partner:yayasan-kipas"
) -> dict[str, Any]:
    data = notifikasi_handlers.outcome_data(str(uuid.uuid4()), told, recipient, "email", status, 3)
    event_type = "notification_sent" if status == "sent" else "notification_failed"
    return envelope(event_type, "notifikasi", data)


# --- any event ----------------------------------------------------------------------------

REPORT_STATUS = {
    "report_due_soon": "open",
    "report_overdue": "missing",
    "report_submitted": "submitted_on_time",
    "report_approved": "approved",
    "report_returned": "returned",
}


def sample(event_type: str, partner_id: str = "yayasan-kipas") -> dict[str, Any]:
    """An event of any declared type about ``partner_id``, made by its producer."""
    if event_type in ("partner_registered", "partner_updated"):
        return partner_event(event_type, partner_id)
    if event_type == "agreement_signed":
        return agreement_signed(partner_id)
    if event_type in ("agreement_expiring", "agreement_expired"):
        return agreement_notice(partner_id, 30 if event_type == "agreement_expiring" else -1)
    if event_type == "agreement_terminated":
        return agreement_terminated(partner_id)
    if event_type == "referral_response_overdue":
        return referral_overdue(partner_id=partner_id)
    if event_type == "referral_follow_up_due":
        return referral_follow_up_due(partner_id=partner_id)
    if event_type == "referral_transition_undone":
        return referral_undone(partner_id=partner_id)
    if event_type == "client_corrected":
        return client_corrected(sex="F", partner_id=partner_id)
    if event_type.startswith("referral_"):
        return referral_moved(event_type.removeprefix("referral_"), partner_id=partner_id)
    if event_type in REPORT_STATUS:
        status = REPORT_STATUS[event_type]
        submitted = (
            {} if status in ("open", "missing") else {"submitted_at": utcnow(), "version": 1}
        )
        return report_event(event_type, partner_id, status=status, **submitted)
    if event_type in ("notification_sent", "notification_failed"):
        told = referral_requested(partner_id=partner_id)
        status = "sent" if event_type == "notification_sent" else "failed"
        return notification_outcome(told, status, f"partner:{partner_id}")
    raise AssertionError(f"no producer known for {event_type}")


assert set(EVENT_TYPES) <= {*REPORT_STATUS, *(f"referral_{s}" for s in PATHS)} | {
    "partner_registered", "partner_updated", "agreement_signed", "agreement_expiring",
    "agreement_expired", "agreement_terminated", "referral_response_overdue",
    "referral_follow_up_due",
    "notification_sent", "notification_failed", "referral_transition_undone", "client_corrected",
}, "sample() knows every declared event type"  # fmt: skip
