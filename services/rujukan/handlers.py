"""One function per command or event of ``rujukan``, each run inside a unit of work."""

from __future__ import annotations

import logging
import uuid
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from bersinar.db import UnitOfWork
from bersinar.envelope import parse_rfc3339, rfc3339, utcnow
from services.rujukan import domain
from services.rujukan.crypto import ClientCipher
from services.rujukan.exceptions import UnknownPartner
from services.rujukan.models import AgreementView, Client, PartnerView, Referral, ReferralHistory

log = logging.getLogger(__name__)


# --- the partner read model, from mitra's events -------------------------------------


def apply_partner_snapshot(uow: UnitOfWork, event: dict[str, Any]) -> None:
    data = event["data"]
    view = uow.session.get(PartnerView, data["partner_id"])
    if view is not None and view.version >= int(data["version"]):
        return  # an older snapshot arriving late changes nothing
    if view is None:
        view = PartnerView(partner_id=data["partner_id"])
        uow.session.add(view)
    view.partner_name = data["partner_name"]
    view.kabupaten_kota = data["kabupaten_kota"]
    view.sex_served = data["sex_served"]
    view.status = data["status"]
    view.services = [
        {"service_type": s["service_type"], "capacity": int(s["capacity"])}
        for s in data["services"]
    ]
    view.version = int(data["version"])
    view.updated_at = parse_rfc3339(event["occurred_at"])
    # agreements arrive in their own events (agreement_signed, ...), one writer per row


def apply_agreement(uow: UnitOfWork, event: dict[str, Any]) -> None:
    _upsert_agreement(uow, event["data"])


def _upsert_agreement(uow: UnitOfWork, data: dict[str, Any]) -> None:
    view = uow.session.get(AgreementView, data["agreement_id"])
    if view is None:
        view = AgreementView(agreement_id=data["agreement_id"], partner_id=data["partner_id"])
        uow.session.add(view)
    view.valid_from = date.fromisoformat(data["valid_from"])
    view.valid_until = date.fromisoformat(data["valid_until"])
    view.terminated = data.get("status") == "terminated"


def _partner_view(uow: UnitOfWork, partner_id: str) -> domain.PartnerView:
    query = select(PartnerView).where(PartnerView.partner_id == partner_id)
    if uow.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()  # capacity checks on one partner queue up here
    view = uow.session.scalars(query).first()
    if view is None:
        raise UnknownPartner(
            f"Mitra {partner_id} tidak dikenal.", errors={"partner_id": ["Mitra tidak dikenal."]}
        )
    agreements = uow.session.scalars(
        select(AgreementView).where(
            AgreementView.partner_id == partner_id, AgreementView.terminated.is_(False)
        )
    ).all()
    return domain.PartnerView(
        partner_id=view.partner_id,
        status=view.status,
        sex_served=view.sex_served,
        capacities={s["service_type"]: int(s["capacity"]) for s in view.services},
        agreements=tuple((a.valid_from, a.valid_until) for a in agreements),
    )


def _active_count(uow: UnitOfWork, partner_id: str, service_type: str) -> int:
    return uow.session.scalar(
        select(func.count())
        .select_from(Referral)
        .where(
            Referral.partner_id == partner_id,
            Referral.service_type == service_type,
            Referral.status.in_(domain.ACTIVE_STATUSES),
        )
    )


# --- referrals ------------------------------------------------------------------------


def _find_or_create_client(uow: UnitOfWork, cipher: ClientCipher, client: dict[str, Any]) -> Client:
    digest = cipher.nik_digest(client["nik"])
    existing = uow.session.scalars(select(Client).where(Client.nik_digest == digest)).first()
    if existing is not None:
        return existing
    new = Client(
        id=str(uuid.uuid4()),
        nik_digest=digest,
        nik_encrypted=cipher.encrypt(client["nik"]),
        name_encrypted=cipher.encrypt(client["name"]),
        phone_encrypted=cipher.encrypt(client.get("phone")),
        birth_date=client["birth_date"],
        sex=client["sex"],
        created_at=utcnow(),
    )
    try:
        with uow.session.begin_nested():
            uow.session.add(new)
    except IntegrityError:
        # the same person referred twice at the same moment: take the one that won
        return uow.session.scalars(select(Client).where(Client.nik_digest == digest)).one()
    return new


def create_referral(
    uow: UnitOfWork,
    cipher: ClientCipher,
    command: dict[str, Any],
    actor: str,
    today: date | None = None,
) -> dict[str, Any]:
    today = today or date.today()
    client_input = command["client"]
    domain.check_consent(command.get("consent"))
    domain.check_birth_date(client_input["birth_date"], today)
    domain.check_nik(client_input["nik"], client_input["birth_date"], client_input["sex"])
    partner = _partner_view(uow, command["partner_id"])
    domain.check_eligible(partner, client_input["sex"], command["service_type"], today)
    domain.check_capacity(
        partner,
        command["service_type"],
        _active_count(uow, partner.partner_id, command["service_type"]),
    )

    client = _find_or_create_client(uow, cipher, client_input)
    previous = uow.session.scalars(
        select(Referral).where(Referral.client_id == client.id).order_by(Referral.created_at.desc())
    ).first()
    now = utcnow()
    consent = dict(command["consent"])
    consent["given_at"] = rfc3339(consent.get("given_at") or now)
    referral = Referral(
        id=str(uuid.uuid4()),
        client_id=client.id,
        partner_id=partner.partner_id,
        service_type=command["service_type"],
        source=command["source"],
        status="requested",
        age_group=domain.age_group(client.birth_date, today),
        consent=consent,
        assessment=command.get("assessment"),
        previous_referral_id=previous.id if previous else None,
        created_by=actor,
        created_at=now,
        updated_at=now,
    )
    referral.history.append(
        ReferralHistory(from_status=None, to_status="requested", actor=actor, reason=None, at=now)
    )
    uow.session.add(referral)
    uow.session.flush()
    uow.emit(
        "referral_requested",
        referral_event_data(referral, client),
        f"referral:{referral.id}",
        occurred_at=now,
    )
    log.info(
        "referral %s requested: partner %s, %s, source %s",
        referral.id,
        referral.partner_id,
        referral.service_type,
        referral.source,
    )
    return referral_summary(uow, referral, client)


def referral_event_data(referral: Referral, client: Client) -> dict[str, Any]:
    return {
        "referral_id": referral.id,
        "partner_id": referral.partner_id,
        "client_pseudonym": client.id,
        "sex": client.sex,
        "age_group": referral.age_group,
        "service_type": referral.service_type,
        "source": referral.source,
        "status": referral.status,
        "previous_referral_id": referral.previous_referral_id,
    }


def referral_summary(uow: UnitOfWork, referral: Referral, client: Client) -> dict[str, Any]:
    episodes = uow.session.scalar(
        select(func.count()).select_from(Referral).where(Referral.client_id == client.id)
    )
    return {
        "id": referral.id,
        "status": referral.status,
        "partner_id": referral.partner_id,
        "service_type": referral.service_type,
        "source": referral.source,
        "previous_referral_id": referral.previous_referral_id,
        "client": {
            "id": client.id,
            "sex": client.sex,
            "age_group": referral.age_group,
            "previous_referrals": int(episodes) - 1,
        },
        "created_at": rfc3339(referral.created_at),
        "updated_at": rfc3339(referral.updated_at),
    }
