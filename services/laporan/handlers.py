"""One function per command, query or event of ``laporan``, each run inside a unit of work."""

from __future__ import annotations

import logging
import uuid
from collections import Counter, defaultdict
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, func, or_, select

from bersinar import codes
from bersinar.db import UnitOfWork, insert_ignoring_duplicates
from bersinar.envelope import parse_rfc3339, rfc3339
from services.laporan import domain
from services.laporan.domain import ReportPolicy
from services.laporan.exceptions import (
    InvalidPeriod,
    PeriodLocked,
    PeriodNotEnded,
    ReportInconsistent,
    ReportNotFound,
    ReviewNotAllowed,
)
from services.laporan.models import (
    AgreementView,
    PartnerView,
    ReferralRecord,
    Report,
    ReportHistory,
    ReportNotice,
    ReportVersion,
)

log = logging.getLogger(__name__)


# --- what mitra tells: partners and agreements ------------------------------------------


def record_partner(uow: UnitOfWork, event: dict[str, Any]) -> None:
    """partner_registered / partner_updated: an older snapshot than the one held is ignored
    (events of one partner may arrive out of order once retried)."""
    data = event["data"]
    version = int(data.get("version") or 0)
    partner = uow.session.get(PartnerView, data["partner_id"])
    if partner is not None and partner.version > version:
        return
    if partner is None:
        partner = PartnerView(partner_id=data["partner_id"])
        uow.session.add(partner)
    partner.name = data.get("partner_name") or data["partner_id"]
    partner.kabupaten_kota = data.get("kabupaten_kota") or ""
    partner.sex_served = data.get("sex_served") or "all"
    partner.status = data.get("status") or "active"
    partner.version = version
    partner.services = [
        {"service_type": s["service_type"], "capacity": int(s.get("capacity") or 0)}
        for s in data.get("services") or []
    ]


def record_agreement_signed(uow: UnitOfWork, event: dict[str, Any]) -> None:
    data = event["data"]
    agreement = uow.session.get(AgreementView, data["agreement_id"])
    if agreement is None:
        agreement = AgreementView(agreement_id=data["agreement_id"])
        uow.session.add(agreement)
    agreement.partner_id = data["partner_id"]
    agreement.number = data.get("number") or ""
    agreement.valid_from = date.fromisoformat(data["valid_from"])
    agreement.valid_until = date.fromisoformat(data["valid_until"])
    agreement.annual_target = data.get("annual_target")


def record_agreement_terminated(uow: UnitOfWork, event: dict[str, Any]) -> None:
    data = event["data"]
    agreement = uow.session.get(AgreementView, data["agreement_id"])
    terminated_on = date.fromisoformat(data["terminated_on"])
    if agreement is None:  # the termination overtook the signing: keep what is known
        agreement = AgreementView(
            agreement_id=data["agreement_id"],
            partner_id=data["partner_id"],
            number=data.get("number") or "",
            valid_from=terminated_on,
            valid_until=terminated_on,
        )
        uow.session.add(agreement)
    agreement.terminated_on = terminated_on


# --- what rujukan tells: referrals and how they end ---------------------------------------

# the stage each event moves a referral to; a later stage is never overwritten by an
# earlier one arriving late
STAGES = {
    "referral_requested": 0,
    "referral_response_overdue": 1,
    "referral_accepted": 2,
    "referral_rejected": 2,
    "referral_cancelled": 3,
    "referral_admitted": 4,
    "referral_completed": 5,
    "referral_dropped_out": 5,
    "referral_transferred": 5,
}
STATUS_RANK = {
    "requested": 0,
    "accepted": 2,
    "rejected": 2,
    "cancelled": 3,
    "admitted": 4,
    "completed": 5,
    "dropped_out": 5,
    "transferred": 5,
}


def preload_referral_records(uow: UnitOfWork, events: list[dict[str, Any]]) -> None:
    """The records a batch of referral events touches, read in one query (else each
    event costs a read and a flush of the one before)."""
    ids = {event["data"]["referral_id"] for event in events}
    known = uow.memo.setdefault("records", {})
    rows = uow.session.scalars(
        select(ReferralRecord).where(ReferralRecord.referral_id.in_(ids - known.keys()))
    )
    known.update({record.referral_id: record for record in rows})
    known.update({referral_id: None for referral_id in ids - known.keys()})


def _referral_record(uow: UnitOfWork, referral_id: str) -> ReferralRecord | None:
    known = uow.memo.get("records", {})
    if referral_id in known:
        return known[referral_id]
    return uow.session.get(ReferralRecord, referral_id)


def record_referral_event(uow: UnitOfWork, event: dict[str, Any]) -> None:
    """Any referral event of rujukan: the record keeps when the referral was requested,
    answered, admitted and ended (times from the envelope's occurred_at)."""
    data = event["data"]
    kind = event["event_type"]
    occurred = parse_rfc3339(event["occurred_at"])
    record = _referral_record(uow, data["referral_id"])
    if record is None:
        record = ReferralRecord(
            referral_id=data["referral_id"],
            requested_at=occurred,
            period=domain.period_of(occurred),
            status="requested",
            request_seen=False,
        )
        uow.session.add(record)
        uow.memo.setdefault("records", {})[record.referral_id] = record
    record.partner_id = data["partner_id"]
    record.service_type = data["service_type"]
    record.sex = data["sex"]
    record.age_group = data.get("age_group") or ""
    record.source = data.get("source")
    record.updated_at = occurred
    if kind == "referral_requested":
        record.requested_at = occurred
        record.period = domain.period_of(occurred)
        record.request_seen = True
    elif kind in ("referral_accepted", "referral_rejected"):
        record.responded_at = occurred
        record.accepted = kind == "referral_accepted"
    elif kind == "referral_cancelled":
        record.cancelled_at = occurred
    elif kind == "referral_response_overdue":
        record.response_overdue_at = occurred
    elif kind == "referral_admitted":
        record.admitted_at = occurred
    elif kind in ("referral_completed", "referral_dropped_out", "referral_transferred"):
        record.ended_at = occurred
        record.outcome = kind.removeprefix("referral_")
        record_discharge(record, data)
    elif kind == "referral_transition_undone":
        undo_record(record, data["from_status"], data["to_status"])
    status = kind.removeprefix("referral_")
    if status in STATUS_RANK and STATUS_RANK[status] >= STATUS_RANK.get(record.status, 0):
        record.status = status
    log.debug("referral %s: %s recorded for %s", data["referral_id"], kind, data["partner_id"])


def record_discharge(record: ReferralRecord, data: dict[str, Any]) -> None:
    """The codes of the discharge summary an ending event carries (none in events
    emitted before summaries existed: the record keeps none)."""
    record.discharge_outcome = data.get("outcome")
    record.discharge_reasons = list(data.get("discharge_reasons") or []) or None


# what each status set on a record, cleared when an admin undoes that status
UNDONE_FIELDS = {
    "accepted": ("responded_at", "accepted"),
    "rejected": ("responded_at", "accepted"),
    "cancelled": ("cancelled_at",),
    "admitted": ("admitted_at",),
    "completed": ("ended_at", "outcome", "discharge_outcome", "discharge_reasons"),
    "dropped_out": ("ended_at", "outcome", "discharge_outcome", "discharge_reasons"),
    "transferred": ("ended_at", "outcome", "discharge_outcome", "discharge_reasons"),
}


def undo_record(record: ReferralRecord, undone: str, back_to: str) -> None:
    """referral_transition_undone: the record back in the status before (the one event
    that moves a record back), what the undone status set cleared, so the prefill and
    the indicators count the referral as it is again (client_corrected needs no branch:
    every referral event sets sex and age group as they are now)."""
    for name in UNDONE_FIELDS.get(undone, ()):
        setattr(record, name, None)
    record.status = back_to


# kept under its first name: the slice and its tests call it
record_referral_requested = record_referral_event


def recorded_counts(uow: UnitOfWork, period: str, partner_id: str | None = None) -> dict[str, Any]:
    """Referrals requested in a period, per partner, by sex and by service type."""
    _check_period(period)
    query = (
        select(
            ReferralRecord.partner_id, ReferralRecord.sex, ReferralRecord.service_type, func.count()
        )
        .where(ReferralRecord.period == period, ReferralRecord.request_seen.is_(True))
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


def _check_period(period: str) -> None:
    if not domain.valid_period(period):
        raise InvalidPeriod("Periode harus berbentuk YYYY-MM.", errors={"period": ["YYYY-MM"]})


def episodes(uow: UnitOfWork, period: str, partner_ids=None) -> dict[str, list[domain.Episode]]:
    """The referrals that can count in a period's figures (or in its year so far), per
    partner."""
    year_start, _ = domain.period_bounds(f"{period[:4]}-01")
    query = select(ReferralRecord).where(
        or_(ReferralRecord.ended_at.is_(None), ReferralRecord.ended_at >= year_start)
    )
    if partner_ids is not None:
        query = query.where(ReferralRecord.partner_id.in_(list(partner_ids)))
    found: dict[str, list[domain.Episode]] = defaultdict(list)
    for record in uow.session.scalars(query):
        found[record.partner_id].append(_episode(record))
    return found


def _episode(r: ReferralRecord) -> domain.Episode:
    return domain.Episode(
        partner_id=r.partner_id,
        sex=r.sex,
        service_type=r.service_type,
        age_group=r.age_group,
        source=r.source or "",
        requested_at=r.requested_at if r.request_seen else None,
        responded_at=r.responded_at,
        accepted=r.accepted,
        admitted_at=r.admitted_at,
        ended_at=r.ended_at,
        outcome=r.outcome,
        discharge_outcome=r.discharge_outcome,
        discharge_reasons=tuple(r.discharge_reasons or ()),
    )


# --- expected reports and their deadlines ----------------------------------------------------


def report_id(partner_id: str, period: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"bersinar:laporan:{partner_id}:{period}"))


def agreement_terms(uow: UnitOfWork, partner_id: str | None = None):
    query = select(AgreementView)
    if partner_id:
        query = query.where(AgreementView.partner_id == partner_id)
    terms: dict[str, list[domain.AgreementTerm]] = defaultdict(list)
    for a in uow.session.scalars(query):
        terms[a.partner_id].append(
            domain.AgreementTerm(a.valid_from, a.valid_until, a.terminated_on, a.annual_target)
        )
    return terms


def expected_partners(uow: UnitOfWork, period: str, policy: ReportPolicy, terms=None) -> list[str]:
    if period < policy.start_period:
        return []
    terms = agreement_terms(uow) if terms is None else terms
    return sorted(p for p, ts in terms.items() if domain.owes_report(ts, period))


def _ensure_report(uow: UnitOfWork, partner_id: str, period: str, policy: ReportPolicy, now):
    insert_ignoring_duplicates(
        uow.session,
        Report.__table__,
        {
            "id": report_id(partner_id, period),
            "partner_id": partner_id,
            "period": period,
            "due_on": policy.due_on(period),
            "status": domain.OPEN,
            "version": 0,
            "reconciliation_differences": 0,
            "reopened": False,
            "created_at": now,
            "updated_at": now,
        },
    )


def _emit_report_event(uow: UnitOfWork, event_type: str, report: Report) -> None:
    partner = uow.session.get(PartnerView, report.partner_id)
    data = event_data(report, partner.name if partner is not None else None)
    uow.emit(event_type, data, f"partner:{report.partner_id}")


def event_data(report: Report, partner_name: str | None) -> dict[str, Any]:
    """What report events carry (bersinar.contracts.events.ReportFacts): never a comment
    or the narrative."""
    data: dict[str, Any] = {
        "report_id": report.id,
        "partner_id": report.partner_id,
        "partner_name": partner_name,
        "period": report.period,
        "due_on": report.due_on.isoformat(),
        "status": report.status,
    }
    if report.submitted_at is not None:
        data["submitted_at"] = rfc3339(report.submitted_at)
        data["version"] = report.version
    return data


def check_reports(uow: UnitOfWork, policy: ReportPolicy, now: datetime) -> list[tuple[str, str]]:
    """Create the expected reports of ended periods and emit report_due_soon and
    report_overdue when due, each once per report: the notice row and the event are
    written in one transaction, and the row's key refuses a second writer."""
    today = domain.local_date(now)
    terms = agreement_terms(uow)
    sent = []
    for period in policy.periods_to_check(today):
        for partner_id in expected_partners(uow, period, policy, terms):
            _ensure_report(uow, partner_id, period, policy, now)
    pending = uow.session.scalars(
        select(Report)
        .where(Report.status.in_((domain.OPEN, domain.MISSING)))
        .order_by(Report.period, Report.partner_id)
    ).all()
    for report in pending:
        notice = policy.notice_due(report.period, today, submitted=False)
        if notice is None:
            continue
        first = insert_ignoring_duplicates(
            uow.session,
            ReportNotice.__table__,
            {"report_id": report.id, "notice": notice, "sent_at": now},
        )
        if notice == "overdue":
            report.status = domain.MISSING
            report.updated_at = now
        if not first:
            continue
        if notice == "overdue":  # too late for a due-soon notice now
            insert_ignoring_duplicates(
                uow.session,
                ReportNotice.__table__,
                {"report_id": report.id, "notice": "due_soon", "sent_at": now},
            )
        _emit_report_event(uow, f"report_{notice}", report)
        log.info("report_%s for %s %s", notice, report.partner_id, report.period)
        sent.append((report.id, notice))
    return sent


def report_figures(uow: UnitOfWork, policy: ReportPolicy, today: date) -> dict[str, Any]:
    """For the gauges: reports by status (as of today), overdue, reconciliation differences."""
    by_status: dict[str, int] = dict.fromkeys(domain.REPORT_STATUSES, 0)
    differences = 0
    for period, status, diff in uow.session.execute(
        select(Report.period, Report.status, Report.reconciliation_differences)
    ):
        by_status[policy.status_today(status, period, today)] += 1
        differences += diff
    return {
        "by_status": by_status,
        "overdue": by_status[domain.MISSING],
        "differences": differences,
    }


# --- reading reports ---------------------------------------------------------------------------


def _can_see(caller: dict[str, Any], partner_id: str) -> None:
    if caller.get("role") == "partner" and caller.get("partner_id") != partner_id:
        raise ReportNotFound("Laporan tidak ditemukan.")
    if caller.get("role") not in codes.PEOPLE:
        raise ReportNotFound("Laporan tidak ditemukan.")


def _actor(caller: dict[str, Any]) -> str:
    return f"{caller.get('role')}:{caller.get('key_id')}"


def _summary(report: Report | None, partner_id: str, period: str, policy, today) -> dict[str, Any]:
    stored = report.status if report else domain.OPEN
    return {
        "id": report.id if report else report_id(partner_id, period),
        "partner_id": partner_id,
        "period": period,
        "due_on": policy.due_on(period).isoformat(),
        "locks_after": policy.locks_after(period).isoformat(),
        "locked": policy.locked(period, today, bool(report and report.reopened)),
        "reopened": bool(report and report.reopened),
        "status": policy.status_today(stored, period, today),
        "timeliness": report.timeliness if report else None,
        "version": report.version if report else 0,
        "submitted_at": rfc3339(report.submitted_at) if report and report.submitted_at else None,
        "reconciliation_differences": report.reconciliation_differences if report else 0,
    }


def list_reports(
    uow: UnitOfWork, filters: dict[str, Any], caller: dict[str, Any], policy, today: date
) -> list[dict[str, Any]]:
    """The reports expected in a period (stored or not yet), a partner's own only."""
    period = filters["period"]
    _check_period(period)
    partner_id = filters.get("partner_id")
    if caller.get("role") == "partner":
        if partner_id and partner_id != caller.get("partner_id"):
            # another partner's reports are as if absent (a filter like a read)
            raise ReportNotFound("Laporan tidak ditemukan.")
        partner_id = caller.get("partner_id")
    stored = {
        r.partner_id: r for r in uow.session.scalars(select(Report).where(Report.period == period))
    }
    expected = set(expected_partners(uow, period, policy)) | set(stored)
    items = [
        _summary(stored.get(p), p, period, policy, today)
        for p in sorted(expected)
        if not partner_id or p == partner_id
    ]
    if filters.get("status"):
        items = [i for i in items if i["status"] == filters["status"]]
    return items


def _load(uow, partner_id, period, policy, lock=False) -> Report | None:
    query = select(Report).where(Report.partner_id == partner_id, Report.period == period)
    if lock:
        query = query.with_for_update()
    return uow.session.scalars(query).first()


def _expected_or_404(uow, partner_id, period, policy) -> None:
    if partner_id not in expected_partners(uow, period, policy, agreement_terms(uow, partner_id)):
        raise ReportNotFound(
            f"Mitra {partner_id} tidak wajib melapor untuk periode {period} "
            "(tidak ada PKS yang berlaku)."
        )


def month_episodes(uow: UnitOfWork, period: str, partner_id: str) -> list[domain.Episode]:
    """The partner's episodes that can change a figure of the month: in care at some
    moment of it, admitted in it, or ended in it. Referrals never admitted and still
    open (the bulk, as years pass) count in none of them, so they are not read."""
    start, end = domain.period_bounds(period)
    r = ReferralRecord
    query = select(r).where(
        r.partner_id == partner_id,
        or_(
            and_(r.admitted_at < end, or_(r.ended_at.is_(None), r.ended_at >= start)),
            and_(r.admitted_at >= start, r.admitted_at < end),
            and_(r.ended_at >= start, r.ended_at < end),
        ),
    )
    return [_episode(record) for record in uow.session.scalars(query)]


def prefill(uow: UnitOfWork, partner_id: str, period: str) -> dict[str, Any]:
    return domain.recorded_report_counts(month_episodes(uow, period, partner_id), period)


def month_discharges(uow: UnitOfWork, partner_id: str, period: str) -> dict[str, Any]:
    """How care ended at the partner in the month, by outcome and reason (the discharge
    summaries recorded with the ending events)."""
    return domain.discharge_counts(month_episodes(uow, period, partner_id), period)


def get_report(
    uow: UnitOfWork, partner_id: str, period: str, caller: dict[str, Any], policy, today: date
) -> dict[str, Any]:
    _check_period(period)
    _can_see(caller, partner_id)
    report = _load(uow, partner_id, period, policy)
    if report is None:
        _expected_or_404(uow, partner_id, period, policy)
    recorded = prefill(uow, partner_id, period)
    view = _summary(report, partner_id, period, policy, today)
    view["discharges"] = month_discharges(uow, partner_id, period)
    latest = report.versions[-1] if report and report.versions else None
    view.update(
        prefill=recorded,
        content=latest.content if latest else None,
        flags=domain.reconciliation_flags(latest.content["counts"], recorded) if latest else [],
        versions=[
            {
                "version": v.version,
                "status": v.status,
                "submitted_by": v.submitted_by,
                "submitted_at": rfc3339(v.submitted_at),
                "content": v.content,
                "flags": v.flags,
            }
            for v in (report.versions if report else [])
        ],
        history=[
            {
                "action": h.action,
                "version": h.version,
                "status": h.status,
                "actor": h.actor,
                "comment": h.comment,
                "at": rfc3339(h.at),
            }
            for h in (report.history if report else [])
        ],
    )
    return view


# --- submitting and reviewing ------------------------------------------------------------------


def _normalised(command: dict[str, Any]) -> dict[str, Any]:
    counts = command["counts"]
    return {
        "counts": {
            "total": dict(counts["total"]),
            "by_sex": {k: dict(v) for k, v in sorted(counts.get("by_sex", {}).items())},
            "by_service_type": {
                k: dict(v) for k, v in sorted(counts.get("by_service_type", {}).items())
            },
        },
        "services_delivered": {
            k: int((command.get("services_delivered") or {}).get(k, 0))
            for k in domain.SERVICES_DELIVERED
        },
        "capacity_building": {
            k: int((command.get("capacity_building") or {}).get(k, 0))
            for k in domain.CAPACITY_BUILDING
        },
        "narrative": command.get("narrative") or "",
    }


def submit_report(
    uow: UnitOfWork,
    partner_id: str,
    period: str,
    command: dict[str, Any],
    caller: dict[str, Any],
    policy: ReportPolicy,
    now: datetime,
) -> dict[str, Any]:
    """A partner submits its month (or resubmits, until approved). An inconsistent
    report is refused naming every rule broken, and nothing is stored."""
    _check_period(period)
    _can_see(caller, partner_id)
    today = domain.local_date(now)
    _expected_or_404(uow, partner_id, period, policy)
    if today <= domain.last_day(period):
        raise PeriodNotEnded(
            f"Periode {period} belum berakhir; laporan dikirim setelah akhir bulan."
        )
    _ensure_report(uow, partner_id, period, policy, now)
    report = _load(uow, partner_id, period, policy, lock=True)
    assert report is not None
    if policy.locked(period, today, report.reopened):
        raise PeriodLocked(
            f"Periode {period} terkunci sejak {policy.locks_after(period).isoformat()}; "
            "minta petugas membukanya kembali."
        )
    content = _normalised(command)
    previous = _load(uow, partner_id, domain.previous_period(period), policy)
    previous_counts = (
        previous.versions[-1].content["counts"] if previous and previous.versions else None
    )
    partner = uow.session.get(PartnerView, partner_id)
    breaches = domain.validate_report(
        content,
        previous_end=previous_counts,
        sex_served=partner.sex_served if partner else None,
        services_offered=[s["service_type"] for s in partner.services] if partner else None,
    )
    if breaches:
        raise ReportInconsistent(
            "Laporan ditolak karena melanggar aturan: "
            + ", ".join(sorted({b.rule for b in breaches}))
            + ".",
            errors=domain.breaches_by_rule(breaches),
        )
    timeliness = report.timeliness or policy.timeliness(period, today)
    try:
        status = domain.after_submission(report.status, timeliness)
    except domain.ReviewRefused as exc:
        raise ReviewNotAllowed(str(exc)) from exc
    flags = domain.reconciliation_flags(content["counts"], prefill(uow, partner_id, period))
    report.version += 1
    report.status = status
    report.timeliness = timeliness
    report.first_submitted_at = report.first_submitted_at or now
    report.submitted_at = now
    report.reconciliation_differences = len(flags)
    report.updated_at = now
    actor = _actor(caller)
    report.versions.append(
        ReportVersion(
            version=report.version,
            content=content,
            flags=flags,
            status=status,
            submitted_by=actor,
            submitted_at=now,
        )
    )
    report.history.append(
        ReportHistory(
            action="submitted", version=report.version, status=status, actor=actor, at=now
        )
    )
    uow.session.flush()
    _emit_report_event(uow, "report_submitted", report)
    log.info("report %s %s v%d submitted (%s)", partner_id, period, report.version, status)
    return get_report(uow, partner_id, period, caller, policy, today)


def review_report(
    uow: UnitOfWork,
    partner_id: str,
    period: str,
    decision: str,
    command: dict[str, Any],
    caller: dict[str, Any],
    policy: ReportPolicy,
    now: datetime,
) -> dict[str, Any]:
    """An officer approves a submitted report or returns it with a comment."""
    _check_period(period)
    comment = (command.get("comment") or "").strip() or None
    if decision == "return" and not comment:
        raise ReportInconsistent(
            "Laporan dikembalikan dengan komentar.",
            errors={"comment": ["Komentar wajib diisi saat mengembalikan laporan."]},
        )
    report = _load(uow, partner_id, period, policy, lock=True)
    if report is None:
        _expected_or_404(uow, partner_id, period, policy)
        raise ReviewNotAllowed("Laporan belum dikirim oleh mitra.")
    try:
        report.status = domain.after_review(report.status, decision)
    except domain.ReviewRefused as exc:
        raise ReviewNotAllowed(str(exc)) from exc
    report.updated_at = now
    if report.status == domain.APPROVED:
        report.reopened = False
    report.history.append(
        ReportHistory(
            action="approved" if decision == "approve" else "returned",
            version=report.version,
            status=report.status,
            actor=_actor(caller),
            comment=comment,
            at=now,
        )
    )
    uow.session.flush()
    _emit_report_event(uow, f"report_{report.history[-1].action}", report)
    log.info("report %s %s v%d %s", partner_id, period, report.version, report.status)
    return get_report(uow, partner_id, period, caller, policy, domain.local_date(now))


def reopen_report(
    uow: UnitOfWork,
    partner_id: str,
    period: str,
    command: dict[str, Any],
    caller: dict[str, Any],
    policy: ReportPolicy,
    now: datetime,
) -> dict[str, Any]:
    """An officer reopens a locked period, or an approved report, for the partner to
    submit again, saying why (``comment``, required: ReopenInput)."""
    _check_period(period)
    _expected_or_404(uow, partner_id, period, policy)
    _ensure_report(uow, partner_id, period, policy, now)
    report = _load(uow, partner_id, period, policy, lock=True)
    assert report is not None
    report.status = domain.after_reopen(report.status)
    report.reopened = True
    report.updated_at = now
    report.history.append(
        ReportHistory(
            action="reopened",
            version=report.version,
            status=report.status,
            actor=_actor(caller),
            comment=(command.get("comment") or "").strip() or None,
            at=now,
        )
    )
    uow.session.flush()
    return get_report(uow, partner_id, period, caller, policy, domain.local_date(now))


# --- monitoring and evaluation; the national recap ------------------------------------------


def partner_months(
    uow: UnitOfWork,
    period: str,
    policy: ReportPolicy,
    today: date,
    episodes_of: dict[str, list[domain.Episode]] | None = None,
    figures_of: dict[str, dict[str, Any]] | None = None,
) -> list[domain.PartnerMonth]:
    """Every partner's month as the indicators see it, its referrals given either as
    episodes (counted in Python) or as figures the database counted."""
    _check_period(period)
    terms = agreement_terms(uow)
    expected = set(expected_partners(uow, period, policy, terms))
    partners = {p.partner_id: p for p in uow.session.scalars(select(PartnerView))}
    reports = {
        r.partner_id: r for r in uow.session.scalars(select(Report).where(Report.period == period))
    }
    referrals = set(episodes_of or {}) | set(figures_of or {})
    months = []
    for partner_id in sorted(set(partners) | expected | referrals):
        partner = partners.get(partner_id)
        report = reports.get(partner_id)
        in_force = domain.agreement_in_force(terms.get(partner_id, []), period)
        months.append(
            domain.PartnerMonth(
                partner_id=partner_id,
                expected=partner_id in expected,
                report_status=(
                    policy.status_today(report.status, period, today) if report else None
                ),
                report_on_time=bool(report and report.timeliness == domain.SUBMITTED_ON_TIME),
                capacity=sum(s["capacity"] for s in partner.services) if partner else 0,
                annual_target=in_force.annual_target if in_force else None,
                episodes=(episodes_of or {}).get(partner_id, []),
                figures=None
                if figures_of is None
                else figures_of.get(partner_id) or {"counts": Counter(), "response_hours": []},
            )
        )
    return months


def indicators(uow: UnitOfWork, period: str, policy: ReportPolicy, today: date) -> dict[str, Any]:
    """The indicators counted in Python from every episode of the year: the reference
    the SQL counting of ``queries.indicators`` (what the service answers) is tested
    against."""
    months = partner_months(uow, period, policy, today, episodes_of=episodes(uow, period))
    return domain.indicators(months, period)


def monthly_export(uow: UnitOfWork, period: str, threshold: int) -> dict[str, Any]:
    """The de-identified recap for the national system."""
    _check_period(period)
    partners = {p.partner_id: p for p in uow.session.scalars(select(PartnerView))}
    found = episodes(uow, period)
    rows = []
    for partner_id in sorted(set(partners) | set(found)):
        partner = partners.get(partner_id)
        rows.append(
            {
                "partner_id": partner_id,
                "partner_name": partner.name if partner else partner_id,
                "kabupaten_kota": partner.kabupaten_kota if partner else "",
                **domain.export_partner(found.get(partner_id, []), period, threshold),
            }
        )
    return {
        "period": period,
        "suppression_threshold": threshold,
        "partners": rows,
        "rows": domain.export_rows(rows, period),
    }


def report_for_attachments(
    uow: UnitOfWork, caller: dict[str, Any], partner_id: str, period: str, policy
) -> str:
    """A report's evidence is kept under ``partner_id/period``: a month the partner owes
    a report for, which a partner's operator reaches only for its own partner."""
    _check_period(period)
    _can_see(caller, partner_id)
    _expected_or_404(uow, partner_id, period, policy)
    return f"{partner_id}/{period}"
