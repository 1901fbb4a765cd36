"""One function per command or query of ``mitra``, each run inside a unit of work."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bersinar.db import UnitOfWork
from bersinar.envelope import utcnow
from services.mitra import domain
from services.mitra.exceptions import PartnerNotFound
from services.mitra.models import Agreement, Partner, ServiceOffer


def partner_snapshot(partner: Partner, today: date) -> dict[str, Any]:
    """The partner as events and RPC answers carry it."""
    return {
        "partner_id": partner.id,
        "partner_name": partner.name,
        "kind": partner.kind,
        "kabupaten_kota": partner.kabupaten_kota,
        "address": partner.address,
        "sex_served": partner.sex_served,
        "status": partner.status,
        "version": partner.version,
        "services": [
            {"service_type": o.service_type, "capacity": o.capacity, "unit": o.unit}
            for o in partner.offers
        ],
        "agreements": [agreement_snapshot(a, today) for a in partner.agreements],
    }


def partner_resource(partner: Partner, today: date) -> dict[str, Any]:
    """The partner as the API shows it: ``id`` and ``name`` rather than the event keys."""
    snapshot = partner_snapshot(partner, today)
    return {"id": snapshot.pop("partner_id"), "name": snapshot.pop("partner_name"), **snapshot}


def agreement_snapshot(agreement: Agreement, today: date) -> dict[str, Any]:
    return {
        "agreement_id": agreement.id,
        "partner_id": agreement.partner_id,
        "number": agreement.number,
        "signed_on": agreement.signed_on.isoformat(),
        "valid_from": agreement.valid_from.isoformat(),
        "valid_until": agreement.valid_until.isoformat(),
        "annual_target": agreement.annual_target,
        "status": domain.agreement_status(agreement.valid_from, agreement.valid_until, today),
    }


def seed_partners(uow: UnitOfWork, today: date | None = None) -> int:
    """Register the five partners of 2023 and their PKS once. Returns how many were new;
    a second run changes nothing and emits nothing."""
    today = today or date.today()
    now = utcnow()
    created = 0
    for seed in domain.SEED_PARTNERS:
        if uow.session.get(Partner, seed.id) is not None:
            continue
        partner = Partner(
            id=seed.id,
            name=seed.name,
            kind=seed.kind,
            kabupaten_kota=seed.kabupaten_kota,
            address=seed.address,
            sex_served=seed.sex_served,
            status="active",
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
                    created_at=now,
                )
            ],
        )
        uow.session.add(partner)
        uow.session.flush()
        key = f"partner:{partner.id}"
        uow.emit("partner_registered", partner_snapshot(partner, today), key)
        for agreement in partner.agreements:
            uow.emit("agreement_signed", agreement_snapshot(agreement, today), key)
        created += 1
    return created


def _load(uow: UnitOfWork):
    return select(Partner).options(selectinload(Partner.offers), selectinload(Partner.agreements))


def list_partners(
    uow: UnitOfWork, filters: dict[str, Any], today: date | None = None
) -> list[dict[str, Any]]:
    today = today or date.today()
    query = _load(uow).order_by(Partner.name)
    if filters.get("kabupaten_kota"):
        query = query.where(Partner.kabupaten_kota == filters["kabupaten_kota"])
    partners = uow.session.scalars(query).all()
    result = []
    for partner in partners:
        if filters.get("sex") and not domain.serves_sex(partner.sex_served, filters["sex"]):
            continue
        if filters.get("service_type") and filters["service_type"] not in {
            o.service_type for o in partner.offers
        }:
            continue
        result.append(partner_resource(partner, today))
    return result


def get_partner(uow: UnitOfWork, partner_id: str, today: date | None = None) -> dict[str, Any]:
    partner = uow.session.scalars(_load(uow).where(Partner.id == partner_id)).first()
    if partner is None:
        raise PartnerNotFound(f"Mitra {partner_id} tidak ditemukan.")
    return partner_resource(partner, today or date.today())
