"""One function per command or query of ``mitra``, each run inside a unit of work."""

from __future__ import annotations

import logging
import uuid
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from bersinar import codes, directory
from bersinar.contracts.partners import RESERVED_IDS
from bersinar.db import UnitOfWork, insert_ignoring_duplicates
from bersinar.envelope import rfc3339, utcnow
from bersinar.errors import Conflict, Forbidden, ValidationFailed
from services.mitra import domain
from services.mitra.exceptions import AgreementNotFound, PartnerNotFound
from services.mitra.models import (
    Activity,
    Agreement,
    AgreementNotice,
    Contact,
    FollowUp,
    Partner,
    ServiceOffer,
)

log = logging.getLogger(__name__)


# --- how a partner looks to events and to the API ----------------------------------


def partner_snapshot(partner: Partner) -> dict[str, Any]:
    """Public partner data, as partner_registered / partner_updated carry it. Contacts
    (people) stay in mitra."""
    return {
        "partner_id": partner.id,
        "partner_name": partner.name,
        "kind": partner.kind,
        "kabupaten_kota": partner.kabupaten_kota,
        "address": partner.address,
        "sex_served": partner.sex_served,
        "age_groups": list(partner.age_groups or []),
        "status": partner.status,
        "accreditation": partner.accreditation,
        "version": partner.version,
        "services": [
            {"service_type": o.service_type, "capacity": o.capacity, "unit": o.unit}
            for o in partner.offers
        ],
    }


def agreement_snapshot(agreement: Agreement, today: date) -> dict[str, Any]:
    """The agreement as events carry it: its status of the day, no free text."""
    shown = agreement_resource(agreement, today)
    return {
        "agreement_id": shown["id"],
        **{field: shown[field] for field in directory.AGREEMENT_FIELDS[1:]},
        "status": shown["status"],
    }


def agreement_signed_data(agreement: Agreement, today: date) -> dict[str, Any]:
    """agreement_signed: the agreement and the name of its partner, for people told."""
    return {**agreement_snapshot(agreement, today), "partner_name": agreement.partner.name}


def agreement_terminated_data(agreement: Agreement) -> dict[str, Any]:
    return {
        "agreement_id": agreement.id,
        "partner_id": agreement.partner_id,
        "partner_name": agreement.partner.name,
        "terminated_on": agreement.terminated_on.isoformat(),
    }


def agreement_due_data(agreement: Agreement, today: date) -> dict[str, Any]:
    """agreement_expiring / agreement_expired."""
    return {
        "agreement_id": agreement.id,
        "partner_id": agreement.partner_id,
        "partner_name": agreement.partner.name,
        "number": agreement.number,
        "valid_until": agreement.valid_until.isoformat(),
        "days_left": domain.days_to_expiry(agreement.valid_until, today),
    }


def agreement_entry(agreement: Agreement) -> dict[str, Any]:
    """An agreement as a directory entry holds it: its dates, not a status of one day."""
    return {
        "id": agreement.id,
        "partner_id": agreement.partner_id,
        "number": agreement.number,
        "signed_on": agreement.signed_on.isoformat(),
        "valid_from": agreement.valid_from.isoformat(),
        "valid_until": agreement.valid_until.isoformat(),
        "scope": list(agreement.scope or []),
        "annual_target": agreement.annual_target,
        "renews_agreement_id": agreement.renews_agreement_id,
        "document_ref": agreement.document_ref,
        "terminated_on": agreement.terminated_on.isoformat() if agreement.terminated_on else None,
        "termination_reason": agreement.termination_reason,
    }


def agreement_resource(agreement: Agreement, today: date) -> dict[str, Any]:
    return directory.render_agreement(agreement_entry(agreement), today)


def directory_entry(partner: Partner) -> dict[str, Any]:
    """All the directory shows of a partner (bersinar.directory), for the API's reads here
    and for the gateway's read model (``directory_snapshot``, ``directory_entry``)."""
    snapshot = partner_snapshot(partner)
    return {
        "id": snapshot.pop("partner_id"),
        "name": snapshot.pop("partner_name"),
        **snapshot,
        "services": [
            {
                "service_type": o.service_type,
                "capacity": o.capacity,
                "unit": o.unit,
                "updated_at": rfc3339(o.updated_at),
            }
            for o in partner.offers
        ],
        "agreements": [agreement_entry(a) for a in partner.agreements],
        "updated_at": rfc3339(partner.updated_at),
        "contacts": [
            {
                "name": c.name,
                "role": c.role,
                "email": c.email,
                "phone": c.phone,
                "whatsapp": c.whatsapp,
            }
            for c in partner.contacts
        ],
    }


def partner_resource(partner: Partner, today: date, show_contacts: bool) -> dict[str, Any]:
    """The partner as the API shows it. Contacts only to BNNP staff and the partner itself."""
    return directory.render_partner(directory_entry(partner), today, show_contacts)


def _load_partner(uow: UnitOfWork, partner_id: str, for_update: bool = False) -> Partner:
    query = (
        select(Partner)
        .where(Partner.id == partner_id)
        .options(
            selectinload(Partner.offers),
            selectinload(Partner.agreements),
            selectinload(Partner.contacts),
        )
    )
    if for_update and uow.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=Partner)
    partner = uow.session.scalars(query).first()
    if partner is None:
        raise PartnerNotFound(f"Mitra {partner_id} tidak ditemukan.")
    return partner


def _own_partner_only(caller: dict[str, Any], partner_id: str) -> None:
    """A partner's operator reaches only its own partner: any other answers 404."""
    if caller.get("role") == "partner" and caller.get("partner_id") != partner_id:
        raise PartnerNotFound(f"Mitra {partner_id} tidak ditemukan.")


# --- partners -------------------------------------------------------------------------


def _contacts(items: list[dict[str, Any]]) -> list[Contact]:
    return [
        Contact(
            position=i,
            name=c["name"],
            role=c["role"],
            email=c.get("email"),
            phone=c.get("phone"),
            whatsapp=c.get("whatsapp"),
        )
        for i, c in enumerate(items)
    ]


def seed_partners(uow: UnitOfWork, today: date | None = None) -> int:
    """Register the five partners of 2023 and their PKS once. Returns how many were new;
    a second run changes nothing and emits nothing."""
    today = today or date.today()
    now = utcnow()
    created = 0
    for seed in domain.SEED_PARTNERS:
        if uow.session.get(Partner, seed.id) is not None:
            continue
        partner = partner_from_seed(seed, now)
        uow.session.add(partner)
        uow.session.flush()
        key = f"partner:{partner.id}"
        uow.emit("partner_registered", partner_snapshot(partner), key)
        for agreement in partner.agreements:
            uow.emit("agreement_signed", agreement_signed_data(agreement, today), key)
        created += 1
    return created


def partner_from_seed(seed: domain.SeedPartner, now) -> Partner:
    """One partner of 2023 with its offers and its PKS, not yet stored."""
    return Partner(
        id=seed.id,
        name=seed.name,
        kind=seed.kind,
        kabupaten_kota=seed.kabupaten_kota,
        address=seed.address,
        sex_served=seed.sex_served,
        status="active",
        age_groups=list(seed.age_groups),
        version=1,
        created_at=now,
        updated_at=now,
        offers=[
            ServiceOffer(
                service_type=o.service_type, capacity=o.capacity, unit=o.unit, updated_at=now
            )
            for o in seed.offers
        ],
        agreements=[
            Agreement(
                id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"bersinar:pks:{seed.agreement.number}")),
                number=seed.agreement.number,
                signed_on=seed.agreement.signed_on,
                valid_from=seed.agreement.valid_from,
                valid_until=seed.agreement.valid_until,
                annual_target=seed.agreement.annual_target,
                scope=list(codes.AGREEMENT_SCOPE),
                created_at=now,
            )
        ],
        contacts=[],
    )


def register_partner(
    uow: UnitOfWork, command: dict[str, Any], actor: str, today: date
) -> dict[str, Any]:
    partner_id = command.get("id") or _free_slug(uow, domain.slug_for(command["name"]))
    if uow.session.get(Partner, partner_id) is not None:
        raise Conflict(
            f"Mitra dengan id {partner_id} sudah ada.", errors={"id": ["Sudah dipakai."]}
        )
    now = utcnow()
    partner = Partner(
        id=partner_id,
        name=command["name"],
        kind=command["kind"],
        address=command.get("address", ""),
        kabupaten_kota=command["kabupaten_kota"],
        sex_served=command["sex_served"],
        age_groups=command["age_groups"],
        accreditation=command.get("accreditation"),
        status=command["status"],
        version=1,
        created_at=now,
        updated_at=now,
        offers=[
            ServiceOffer(
                service_type=s["service_type"],
                capacity=s["capacity"],
                unit=s["unit"],
                updated_at=now,
            )
            for s in command["services"]
        ],
        contacts=_contacts(command["contacts"]),
        agreements=[],
    )
    uow.session.add(partner)
    uow.session.flush()
    uow.emit("partner_registered", partner_snapshot(partner), f"partner:{partner.id}")
    log.info("partner %s registered by %s", partner.id, actor)
    return partner_resource(partner, today, show_contacts=True)


def _free_slug(uow: UnitOfWork, base: str) -> str:
    candidate, n = base, 1
    while candidate in RESERVED_IDS or uow.session.get(Partner, candidate) is not None:
        n += 1
        candidate = f"{base[:58]}-{n}"
    return candidate


def update_partner(
    uow: UnitOfWork, partner_id: str, changes: dict[str, Any], caller: dict[str, Any], today: date
) -> dict[str, Any]:
    _own_partner_only(caller, partner_id)
    partner = _load_partner(uow, partner_id, for_update=True)
    if caller.get("role") == "partner":
        refused = domain.fields_partner_may_not_change(
            changes, {o.service_type for o in partner.offers}
        )
        if refused:
            raise Forbidden(
                "Operator mitra hanya dapat mengubah kontak dan kapasitas layanan.",
                errors={field: ["Tidak boleh diubah oleh mitra."] for field in refused},
            )
    now = utcnow()
    for field in (
        "name",
        "kind",
        "address",
        "kabupaten_kota",
        "sex_served",
        "age_groups",
        "accreditation",
        "status",
    ):
        if field in changes:
            setattr(partner, field, changes[field])
    if "contacts" in changes:
        partner.contacts = _contacts(changes["contacts"])
    offers = {o.service_type: o for o in partner.offers}
    for item in changes.get("services", []):
        offer = offers.get(item["service_type"])
        if offer is None:
            partner.offers.append(
                ServiceOffer(
                    service_type=item["service_type"],
                    capacity=item["capacity"],
                    unit=item["unit"],
                    updated_at=now,
                )
            )
        else:
            offer.capacity = item["capacity"]
            offer.unit = item["unit"]
            offer.updated_at = now
    partner.version += 1
    partner.updated_at = now
    uow.session.flush()
    # every change the directory shows is told, a change of contacts too (the gateway's
    # read model takes the entry by RPC): the event carries no contacts, they are people
    uow.emit("partner_updated", partner_snapshot(partner), f"partner:{partner.id}")
    log.info(
        "partner %s updated (%s) by %s:%s",
        partner.id,
        ", ".join(sorted(changes)),
        caller.get("role"),
        caller.get("key_id"),
    )
    return partner_resource(partner, today, show_contacts=True)


def _directory_query():
    return select(Partner).options(
        selectinload(Partner.offers),
        selectinload(Partner.agreements),
        selectinload(Partner.contacts),
    )


def list_partners(
    uow: UnitOfWork, filters: dict[str, Any], today: date, caller: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    query = _directory_query()
    if filters.get("kabupaten_kota"):
        query = query.where(Partner.kabupaten_kota == filters["kabupaten_kota"])
    if filters.get("status"):
        query = query.where(Partner.status == filters["status"])
    entries = [directory_entry(partner) for partner in uow.session.scalars(query)]
    return directory.list_view(entries, filters, today, caller)


def get_partner(
    uow: UnitOfWork, partner_id: str, today: date, caller: dict[str, Any] | None = None
) -> dict[str, Any]:
    return directory.partner_view(directory_entry(_load_partner(uow, partner_id)), today, caller)


def directory_snapshot(uow: UnitOfWork) -> list[dict[str, Any]]:
    """Every partner's directory entry: what the gateway's read model loads."""
    return [directory_entry(partner) for partner in uow.session.scalars(_directory_query())]


def directory_entry_of(uow: UnitOfWork, partner_id: str) -> dict[str, Any]:
    return directory_entry(_load_partner(uow, partner_id))


# --- agreements (PKS) -----------------------------------------------------------------


def sign_agreement(
    uow: UnitOfWork, partner_id: str, command: dict[str, Any], actor: str, today: date
) -> dict[str, Any]:
    partner = _load_partner(uow, partner_id, for_update=True)
    if uow.session.scalar(
        select(func.count()).select_from(Agreement).where(Agreement.number == command["number"])
    ):
        raise Conflict(
            f"PKS nomor {command['number']} sudah tercatat.", errors={"number": ["Sudah dipakai."]}
        )
    renews = command.get("renews_agreement_id") or None  # "" names none
    if renews:
        previous = uow.session.get(Agreement, renews)
        if previous is None or previous.partner_id != partner.id:
            raise ValidationFailed(
                "PKS yang diperpanjang tidak ditemukan pada mitra ini.",
                errors={"renews_agreement_id": ["Tidak dikenal."]},
            )
    agreement = Agreement(
        id=str(uuid.uuid4()),
        partner_id=partner.id,
        number=command["number"],
        signed_on=command["signed_on"],
        valid_from=command["valid_from"],
        valid_until=command["valid_until"],
        annual_target=command["annual_target"],
        scope=command["scope"],
        document_ref=command.get("document_ref"),
        renews_agreement_id=renews,
        created_at=utcnow(),
    )
    uow.session.add(agreement)
    partner.version += 1  # the directory shows the partner's agreements
    uow.session.flush()
    uow.emit("agreement_signed", agreement_signed_data(agreement, today), f"partner:{partner.id}")
    log.info("agreement %s signed for partner %s by %s", agreement.id, partner.id, actor)
    return agreement_resource(agreement, today)


def _load_agreement(uow: UnitOfWork, partner_id: str, agreement_id: str) -> Agreement:
    agreement = uow.session.get(Agreement, agreement_id)
    if agreement is None or agreement.partner_id != partner_id:
        raise AgreementNotFound(f"PKS {agreement_id} tidak ditemukan pada mitra {partner_id}.")
    return agreement


def list_agreements(
    uow: UnitOfWork, partner_id: str, today: date, caller: dict[str, Any]
) -> list[dict[str, Any]]:
    _own_partner_only(caller, partner_id)
    partner = _load_partner(uow, partner_id)
    return [agreement_resource(a, today) for a in partner.agreements]


def terminate_agreement(
    uow: UnitOfWork,
    partner_id: str,
    agreement_id: str,
    command: dict[str, Any],
    actor: str,
    today: date,
) -> dict[str, Any]:
    partner = _load_partner(uow, partner_id, for_update=True)
    agreement = _load_agreement(uow, partner_id, agreement_id)
    if agreement.terminated_on is not None:
        raise Conflict("PKS ini sudah diakhiri.")
    agreement.terminated_on = command.get("terminated_on") or today
    agreement.termination_reason = command["reason"]
    partner.version += 1  # the directory shows the partner's agreements
    uow.emit("agreement_terminated", agreement_terminated_data(agreement), f"partner:{partner_id}")
    log.info("agreement %s terminated by %s", agreement.id, actor)
    return agreement_resource(agreement, today)


def check_agreements(uow: UnitOfWork, today: date) -> list[tuple[str, str]]:
    """Emit the expiry notices due today, each once per agreement: the notice row and the
    event are written in one transaction, and the row's key refuses a second writer."""
    sent = []
    now = utcnow()
    agreements = uow.session.scalars(
        select(Agreement).where(Agreement.terminated_on.is_(None), Agreement.valid_from <= today)
    ).all()
    for agreement in agreements:
        due = domain.due_notice(agreement.valid_from, agreement.valid_until, today)
        if due is None:
            continue
        notice, covers = due
        first = insert_ignoring_duplicates(
            uow.session,
            AgreementNotice.__table__,
            {"agreement_id": agreement.id, "notice": notice, "sent_at": now},
        )
        if not first:
            continue
        for covered in covers:
            if covered != notice:
                insert_ignoring_duplicates(
                    uow.session,
                    AgreementNotice.__table__,
                    {"agreement_id": agreement.id, "notice": covered, "sent_at": now},
                )
        event_type = "agreement_expired" if notice == "expired" else "agreement_expiring"
        uow.emit(
            event_type, agreement_due_data(agreement, today), f"partner:{agreement.partner_id}"
        )
        log.info("%s for agreement %s (%s)", event_type, agreement.id, notice)
        sent.append((agreement.id, notice))
    return sent


# --- capacity building and monitoring ---------------------------------------------------


def _activity_resource(activity: Activity) -> dict[str, Any]:
    return {
        "id": activity.id,
        "partner_id": activity.partner_id,
        "kind": activity.kind,
        "held_on": activity.held_on.isoformat(),
        "title": activity.title,
        "participants": list(activity.participants or []),
        "findings": activity.findings,
        "scores": activity.scores,
        "follow_ups": [
            {
                "id": f.id,
                "description": f.description,
                "due_on": f.due_on.isoformat(),
                "status": f.status,
            }
            for f in activity.follow_ups
        ],
        "created_at": rfc3339(activity.created_at),
    }


def record_activity(
    uow: UnitOfWork, partner_id: str, command: dict[str, Any], actor: str
) -> dict[str, Any]:
    _load_partner(uow, partner_id)
    activity = Activity(
        id=str(uuid.uuid4()),
        partner_id=partner_id,
        kind=command["kind"],
        held_on=command["held_on"],
        title=command["title"],
        participants=command["participants"],
        findings=command["findings"],
        scores=command.get("scores"),
        created_by=actor,
        created_at=utcnow(),
        follow_ups=[
            FollowUp(
                id=str(uuid.uuid4()),
                description=f["description"],
                due_on=f["due_on"],
                status="open",
            )
            for f in command["follow_ups"]
        ],
    )
    uow.session.add(activity)
    uow.session.flush()
    log.info("%s recorded for partner %s by %s", activity.kind, partner_id, actor)
    return _activity_resource(activity)


def list_activities(
    uow: UnitOfWork, partner_id: str, caller: dict[str, Any], kind: str | None = None
) -> list[dict[str, Any]]:
    _own_partner_only(caller, partner_id)
    _load_partner(uow, partner_id)
    query = (
        select(Activity)
        .where(Activity.partner_id == partner_id)
        .options(selectinload(Activity.follow_ups))
        .order_by(Activity.held_on.desc(), Activity.created_at.desc())
    )
    if kind:
        query = query.where(Activity.kind == kind)
    return [_activity_resource(a) for a in uow.session.scalars(query)]


def score_history(uow: UnitOfWork, partner_id: str, caller: dict[str, Any]) -> dict[str, Any]:
    """The scores of every supervision visit, oldest first, per dimension."""
    _own_partner_only(caller, partner_id)
    _load_partner(uow, partner_id)
    visits = uow.session.scalars(
        select(Activity)
        .where(Activity.partner_id == partner_id, Activity.scores.is_not(None))
        .order_by(Activity.held_on, Activity.created_at)
    ).all()
    return {
        "partner_id": partner_id,
        "visits": [
            {"activity_id": v.id, "held_on": v.held_on.isoformat(), "scores": v.scores}
            for v in visits
        ],
        "dimensions": {
            dimension: [v.scores[dimension] for v in visits] for dimension in codes.SCORE_DIMENSIONS
        },
    }


# --- monitoring of the registry -------------------------------------------------------


def registry_figures(uow: UnitOfWork, today: date) -> dict[str, Any]:
    partners = dict(
        uow.session.execute(select(Partner.status, func.count()).group_by(Partner.status)).all()
    )
    agreements: dict[str, int] = {}
    nearest = None
    for agreement in uow.session.scalars(select(Agreement)):
        status = domain.agreement_status(
            agreement.valid_from, agreement.valid_until, today, agreement.terminated_on is not None
        )
        agreements[status] = agreements.get(status, 0) + 1
        if status in ("active", "expiring"):
            left = domain.days_to_expiry(agreement.valid_until, today)
            nearest = left if nearest is None else min(nearest, left)
    return {"partners": partners, "agreements": agreements, "days_to_nearest_expiry": nearest}


def agreement_for_attachments(
    uow: UnitOfWork, caller: dict[str, Any], partner_id: str, agreement_id: str
) -> str:
    """The agreement whose attachments (the signed PKS) are asked for: one of the
    partner's, which a partner's operator reaches only for its own partner."""
    _own_partner_only(caller, partner_id)
    agreement = uow.session.get(Agreement, agreement_id)
    if agreement is None or agreement.partner_id != partner_id:
        raise AgreementNotFound(f"PKS {agreement_id} tidak ditemukan.")
    return agreement.id
