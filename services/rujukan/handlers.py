"""One function per command, query or event of ``rujukan``, each run inside a unit of work.

Locks, on PostgreSQL: a command that changes a referral locks that referral's row first,
then (to check capacity) the receiving partner's row of the read model; creation locks
only the partner. The order is the same everywhere, so two commands cannot deadlock, and
two operators taking the last place of a partner queue up on the partner's row: the
second counts the first's place.
"""

from __future__ import annotations

import base64
import logging
import uuid
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, delete, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from bersinar.codes import REJECTION_REASONS, local_date
from bersinar.context import current_correlation_id
from bersinar.contracts.referrals import is_plain_id
from bersinar.db import UnitOfWork, insert_ignoring, page_newest_first
from bersinar.directory import Candidate, PartnerTerms, agreement_period, rank_partners
from bersinar.envelope import parse_rfc3339, rfc3339, utcnow
from bersinar.errors import Forbidden, ValidationFailed
from services.rujukan import domain
from services.rujukan.crypto import ClientCipher, name_tokens
from services.rujukan.domain import Actor, DeadlinePolicy, LetterNumbering
from services.rujukan.exceptions import (
    ClientNotFound,
    ConsentAlreadyWithdrawn,
    NikInUse,
    ReferralNotFound,
    RequestKeyReused,
    UndoNotPossible,
    UnknownPartner,
)
from services.rujukan.models import (
    AccessAudit,
    AgreementView,
    Client,
    ClientNameToken,
    LetterCounter,
    PartnerView,
    Referral,
    ReferralDischarge,
    ReferralHistory,
    ReferralLetter,
)

log = logging.getLogger(__name__)

DEFAULT_PURPOSE = "lihat rujukan"
# the statuses an ending action enters (its history entry shows the discharge summary)
ENDED = tuple(domain.TRANSITIONS[action][1] for action in domain.ENDING_ACTIONS)


def _stamp(moment: datetime | None) -> str | None:
    return rfc3339(moment) if moment is not None else None


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
    data = event["data"]
    view = _agreement_row(uow, data)
    view.valid_from = date.fromisoformat(data["valid_from"])
    view.valid_until = date.fromisoformat(data["valid_until"])
    # a termination is final: a signing event redelivered after it does not undo it
    view.terminated = view.terminated or data.get("status") == "terminated"


def apply_agreement_terminated(uow: UnitOfWork, event: dict[str, Any]) -> None:
    data = event["data"]
    terminated_on = date.fromisoformat(data["terminated_on"])
    view = _agreement_row(uow, data, placeholder=terminated_on)
    view.terminated = True
    if view.terminated_on is None or terminated_on < view.terminated_on:
        view.terminated_on = terminated_on


def apply_agreement_expired(uow: UnitOfWork, event: dict[str, Any]) -> None:
    """Validity is reckoned by date, so an expiry changes nothing here; the inbox records
    that it was seen."""
    log.info(
        "agreement %s of %s expired", event["data"]["agreement_id"], event["data"]["partner_id"]
    )


def _agreement_row(
    uow: UnitOfWork, data: dict[str, Any], placeholder: date | None = None
) -> AgreementView:
    view = uow.session.get(AgreementView, data["agreement_id"])
    if view is None:
        # a termination may arrive before the signing (retries reorder events): keep a
        # row that the signing fills in later
        view = AgreementView(
            agreement_id=data["agreement_id"],
            partner_id=data["partner_id"],
            valid_from=placeholder,
            valid_until=placeholder,
            terminated=False,
        )
        uow.session.add(view)
    return view


def _agreement_periods(agreements: list[AgreementView]) -> tuple[tuple[date, date], ...]:
    return tuple(
        agreement_period(agreement.valid_from, agreement.valid_until, agreement.terminated_on)
        for agreement in agreements
        # a termination told with no day (rows kept from before days were told) ends it
        if not (agreement.terminated and agreement.terminated_on is None)
    )


def _domain_partner(view: PartnerView, agreements: list[AgreementView]) -> PartnerTerms:
    return PartnerTerms(
        partner_id=view.partner_id,
        status=view.status,
        sex_served=view.sex_served,
        capacities={s["service_type"]: int(s["capacity"]) for s in view.services},
        agreements=_agreement_periods(agreements),
    )


def _partner_view(uow: UnitOfWork, partner_id: str, lock: bool = True) -> PartnerTerms:
    """The partner as eligibility sees it. With ``lock`` its row is locked (PostgreSQL)
    until commit: moves that take a place (accept, transfer) queue up here."""
    return _read_partner(uow, partner_id, lock)[0]


def _read_partner(
    uow: UnitOfWork, partner_id: str, lock: bool, active_of: str | None = None
) -> tuple[PartnerTerms, int | None]:
    """``_partner_view``; with ``active_of`` (a service type; for an unlocked read) the
    same statement counts the partner's active referrals of it, else the count is None."""
    # the partner and its agreements in one statement (one row per agreement, or one
    # row with no agreement)
    columns: list[Any] = [PartnerView, AgreementView]
    if active_of is not None:
        columns.append(_active_count_query(partner_id, active_of).scalar_subquery())
    query = (
        select(*columns)
        .outerjoin(AgreementView, AgreementView.partner_id == PartnerView.partner_id)
        .where(PartnerView.partner_id == partner_id)
    )
    if lock:
        query = query.with_for_update(of=PartnerView)
    rows = uow.session.execute(query).all()
    if not rows:
        raise UnknownPartner(
            f"Mitra {partner_id} tidak dikenal.", errors={"partner_id": ["Mitra tidak dikenal."]}
        )
    agreements = [row[1] for row in rows if row[1] is not None]
    # the name an event of this work tells of (_partner_name): no second read
    uow.memo.setdefault("partner_names", {})[partner_id] = rows[0][0].partner_name
    active = rows[0][2] if active_of is not None else None
    return _domain_partner(rows[0][0], agreements), active


def _active_count_query(partner_id: str, service_type: str) -> Select:
    return (
        select(func.count())
        .select_from(Referral)
        .where(
            Referral.partner_id == partner_id,
            Referral.service_type == service_type,
            Referral.status.in_(domain.ACTIVE_STATUSES),
        )
    )


def _check_place(
    uow: UnitOfWork,
    partner_id: str,
    sex: str,
    service_type: str,
    today: date,
    lock: bool = True,
) -> PartnerTerms:
    """Eligibility and capacity of a partner for one client (the partner locked when the
    move takes a place). Unlocked, the partner and its count come in one statement; a
    locked partner's referrals are counted once the lock is held."""
    partner, active = _read_partner(uow, partner_id, lock, None if lock else service_type)
    domain.check_eligible(partner, sex, service_type, today)
    if active is None:
        active = uow.session.scalar(_active_count_query(partner_id, service_type))
    domain.check_capacity(partner, service_type, active)
    return partner


# --- creating a referral --------------------------------------------------------------


def _find_or_create_client(
    uow: UnitOfWork, cipher: ClientCipher, client: dict[str, Any]
) -> tuple[Client, bool]:
    """The client of this NIK, and whether it is new. The insert comes first (most
    referrals are of a new person: one statement) and inserts nothing when a client has
    the NIK's digest under any configured key: during a key rotation a returning client
    stored under the old key is found, and not made again under the new one. A NIK
    already known, or two referrals of the same new person at the same moment (the unique
    digest), insert nothing and read the row that is there."""
    digests = list(cipher.nik_digests(client["nik"]).values())
    values = {
        "id": str(uuid.uuid4()),
        "nik_digest": digests[0],
        "nik_key_id": cipher.current_hmac_kid,
        "nik_encrypted": cipher.encrypt(client["nik"]),
        "name_encrypted": cipher.encrypt(client["name"]),
        "phone_encrypted": cipher.encrypt(client.get("phone")),
        "key_id": cipher.current_kid,
        "birth_date": client["birth_date"],
        "sex": client["sex"],
        "created_at": utcnow(),
        "name_index_key_id": cipher.current_hmac_kid,
    }
    known = select(Client.id).where(Client.nik_digest.in_(digests))
    row = select(
        *(literal(value, Client.__table__.c[name].type) for name, value in values.items())
    ).where(~known.exists())
    new = uow.session.scalars(
        insert_ignoring(Client).from_select(list(values), row).returning(Client)
    ).first()
    if new is None:
        found = uow.session.scalars(
            select(Client)
            .where(Client.nik_digest.in_(digests))
            .order_by(Client.created_at, Client.id)
        ).all()
        if len(found) > 1:
            log.warning("%d client records share one NIK: %s", len(found), [c.id for c in found])
        return found[0], False
    _index_name(uow, cipher, new.id, client["name"], replace=False)
    return new, True


def _index_name(
    uow: UnitOfWork, cipher: ClientCipher, client_id: str, name: str, replace: bool = True
) -> None:
    """The client's name tokens as the blind index keeps them (under the current key);
    ``replace=False`` for a client just made, who has none to remove."""
    if replace:
        uow.session.execute(delete(ClientNameToken).where(ClientNameToken.client_id == client_id))
    uow.session.add_all(
        ClientNameToken(client_id=client_id, digest=digest)
        for digest in dict.fromkeys(cipher.name_digests(name))
    )


# A referral made for a request key has an id derived from it (the request key is the
# gateway's: the API key and its Idempotency-Key, or one per HTTP request).
REQUEST_KEY_NAMESPACE = uuid.UUID("6f1d3c52-3b8e-4d7a-9a57-2c1e8b0f4d10")


def referral_id_for(request_key: str | None) -> str:
    if not request_key:
        return str(uuid.uuid4())
    return str(uuid.uuid5(REQUEST_KEY_NAMESPACE, request_key))


def create_referral(
    uow: UnitOfWork,
    cipher: ClientCipher,
    command: dict[str, Any],
    actor: Any,
    now: datetime | None = None,
    policy: DeadlinePolicy | None = None,
    request_key: str | None = None,
) -> dict[str, Any]:
    """Create a referral; with ``request_key``, a request made again (a client retrying
    after a 503 with its Idempotency-Key, or the broker delivering the same RPC again after
    a lost reply) returns the referral the first one made instead of a second one."""
    actor = Actor.parse(actor)
    now = now or utcnow()
    today = local_date(now)
    policy = policy or DeadlinePolicy()
    domain.check_may_create(actor)
    referral_id = referral_id_for(request_key)
    if request_key:
        made = uow.session.get(Referral, referral_id)
        if made is not None:
            same = (
                made.client.nik_digest
                == cipher.nik_digests(command["client"]["nik"]).get(made.client.nik_key_id)
                and made.partner_id == command["partner_id"]
                and made.service_type == command["service_type"]
            )
            if not same:
                raise RequestKeyReused(
                    "Idempotency-Key ini sudah dipakai untuk rujukan dengan isi lain."
                )
            log.info("referral %s requested again with its request key", made.id)
            return referral_summary(uow, made, made.client)
    client_input = command["client"]
    domain.check_consent(command.get("consent"))
    check_client(client_input, today)
    domain.check_guardian(command["consent"], client_input["birth_date"], today)
    # a request takes no place (accept does), so creations need not queue on the partner
    _check_place(
        uow, command["partner_id"], client_input["sex"], command["service_type"], today, lock=False
    )

    client, new_client = _find_or_create_client(uow, cipher, client_input)
    if client.sex != client_input["sex"] or client.birth_date != client_input["birth_date"]:
        log.warning("returning client %s: sex or birth date differs from the record", client.id)
    consent = _recorded_consent(cipher, command["consent"], client, now)
    referral = _new_referral(
        uow,
        client,
        partner_id=command["partner_id"],
        service_type=command["service_type"],
        source=command["source"],
        consent=consent,
        assessment=command.get("assessment"),
        actor=actor,
        now=now,
        policy=policy,
        first_episode=new_client,
        referral_id=referral_id,
    )
    log.info(
        "referral %s requested: partner %s, %s, source %s",
        referral.id,
        referral.partner_id,
        referral.service_type,
        referral.source,
    )
    return referral_summary(uow, referral, client, episodes=1 if new_client else None)


def _recorded_consent(
    cipher: ClientCipher, given: dict[str, Any], client: Client, now: datetime
) -> dict[str, Any]:
    """Consent as a referral keeps it: given after any withdrawal of the client's, stamped
    with when it was given, the guardian's name sealed like the client's."""
    domain.check_new_consent(given.get("given_at"), client.consent_withdrawn_at)
    consent = {k: v for k, v in given.items() if v is not None or k == "given_at"}
    consent["given_at"] = rfc3339(consent.get("given_at") or now)
    if consent.get("guardian_name"):  # a person's name
        consent["guardian_name"] = cipher.encrypt(consent["guardian_name"].strip())
    return consent


def _new_referral(
    uow: UnitOfWork,
    client: Client,
    *,
    partner_id: str,
    service_type: str,
    source: str,
    consent: dict[str, Any],
    assessment: dict[str, Any] | None,
    actor: Actor,
    now: datetime,
    policy: DeadlinePolicy,
    transferred_from: Referral | None = None,
    note: str | None = None,
    first_episode: bool = False,
    referral_id: str | None = None,
) -> Referral:
    # the client's latest earlier episode: one history of care across referrals
    previous = None
    if not first_episode:
        previous = uow.session.scalars(
            select(Referral)
            .where(Referral.client_id == client.id)
            .order_by(Referral.created_at.desc(), Referral.id.desc())
        ).first()
    referral = Referral(
        id=referral_id or str(uuid.uuid4()),
        client_id=client.id,
        partner_id=partner_id,
        service_type=service_type,
        source=source,
        status="requested",
        age_group=domain.age_group(client.birth_date, local_date(now)),
        consent=consent,
        assessment=assessment,
        previous_referral_id=transferred_from.id
        if transferred_from
        else (previous and previous.id),
        transferred_from_id=transferred_from.id if transferred_from else None,
        created_by=actor.label,
        created_at=now,
        updated_at=now,
        response_due_at=policy.due_at(now, source),
    )
    referral.history.append(
        ReferralHistory(
            from_status=None,
            to_status="requested",
            actor=actor.label,
            reason=None,
            note=note,
            at=now,
        )
    )
    uow.session.add(referral)
    uow.session.flush()
    uow.emit(
        "referral_requested",
        referral_event_data(referral, client, actor, _partner_name(uow, referral.partner_id)),
        f"referral:{referral.id}",
        occurred_at=now,
    )
    return referral


# --- moving a referral along its lifecycle ------------------------------------------------


def _visible_referral(
    uow: UnitOfWork, actor: Actor, referral_id: str, lock: bool, follow: bool = False
) -> Referral:
    """The referral if the actor may see it (``follow``: or follow its state only)."""
    allowed = domain.may_follow if follow else domain.may_see
    if not is_plain_id(referral_id):  # e.g. a NUL byte in the URL, which no id holds
        raise ReferralNotFound("Rujukan tidak ditemukan.")
    query = select(Referral).where(Referral.id == referral_id)
    referral = uow.session.scalars(query.with_for_update() if lock else query).first()
    if referral is None or not allowed(actor, referral.partner_id):
        # another partner's referral is answered exactly like one that does not exist
        raise ReferralNotFound(f"Rujukan {referral_id} tidak ditemukan.")
    return referral


def check_client(client: dict[str, Any], today: date) -> None:
    """A client's birth date and NIK (against birth date and sex), as a new referral
    checks them; the console asks before a partner is chosen."""
    domain.check_birth_date(client["birth_date"], today)
    domain.check_nik(client["nik"], client["birth_date"], client["sex"])


OPEN_STATUSES = ("requested", *domain.ACTIVE_STATUSES)


def open_referrals(uow: UnitOfWork, cipher: ClientCipher, nik: str) -> list[dict[str, Any]]:
    """The referrals of the client of this NIK still open (requested, accepted or in
    care), with the partner's name: what an officer is to see before referring again."""
    rows = uow.session.execute(
        select(Referral, PartnerView.partner_name)
        .join(Client, Client.id == Referral.client_id)
        .outerjoin(PartnerView, PartnerView.partner_id == Referral.partner_id)
        .where(
            Client.nik_digest.in_(cipher.nik_digests(nik).values()),
            Referral.status.in_(OPEN_STATUSES),
        )
        .order_by(Referral.created_at.desc(), Referral.id.desc())
    ).all()
    return [
        {
            "referral_id": referral.id,
            "partner_id": referral.partner_id,
            "partner_name": partner_name,
            "status": referral.status,
            "service_type": referral.service_type,
            "created_at": _stamp(referral.created_at),
            "consent_withdrawn": domain.consent_withdrawn(referral.consent),
        }
        for referral, partner_name in rows
    ]


def transition(
    uow: UnitOfWork,
    actor: Any,
    referral_id: str,
    action: str,
    command: dict[str, Any] | None,
    now: datetime | None = None,
    policy: DeadlinePolicy | None = None,
    cipher: ClientCipher | None = None,
) -> dict[str, Any]:
    """accept, reject, admit, complete, drop_out, cancel or transfer one referral. Any
    refusal raises before anything is written. A transfer discloses the client to another
    partner: it carries the client's (or guardian's) consent to that, which the new
    referral keeps (``cipher`` seals the guardian's name)."""
    actor = Actor.parse(actor)
    now = now or utcnow()
    command = command or {}
    action = domain.action_name(action)
    referral = _visible_referral(uow, actor, referral_id, lock=True)
    client = referral.client
    before = referral.status
    target = domain.next_status(before, action, actor.role)
    discharge = ending_summary(action, command, now)
    note = command.get("note")
    reason = None

    if action == "accept":
        _check_place(uow, referral.partner_id, client.sex, referral.service_type, local_date(now))
    if action == "reject":
        reason = command.get("reason")
        domain.check_rejection(reason, note)
        referral.rejection_reason = reason
    if action == "transfer":
        note = command.get("reason") or note
        domain.check_transfer_target(referral.partner_id, command["partner_id"])
        service_type = command.get("service_type") or referral.service_type
        _check_place(uow, command["partner_id"], client.sex, service_type, local_date(now))
        domain.check_consent(command.get("consent"))
        domain.check_guardian(command["consent"], client.birth_date, local_date(now))
        if cipher is None:
            raise TypeError("a transfer records consent: pass the cipher")
        disclosure = _recorded_consent(cipher, command["consent"], client, now)

    if action in ("accept", "reject"):
        referral.responded_at = now
    occurred = now
    if action == "admit":
        occurred = domain.admission_instant(
            command.get("admitted_on"), referral.responded_at or referral.created_at, now
        )
        referral.admitted_at = occurred
    if target in domain.TERMINAL_STATUSES:
        referral.ended_at = now
    referral.status = target
    referral.updated_at = now
    referral.history.append(
        ReferralHistory(
            from_status=before,
            to_status=target,
            actor=actor.label,
            reason=reason,
            note=note,
            at=now,
        )
    )

    successor = None
    if action == "transfer":
        successor = _new_referral(
            uow,
            client,
            partner_id=command["partner_id"],
            service_type=command.get("service_type") or referral.service_type,
            source=referral.source,
            consent=disclosure,
            assessment=referral.assessment,
            actor=actor,
            now=now,
            policy=policy or DeadlinePolicy(),
            transferred_from=referral,
            note=note,
        )
        referral.transferred_to_id = successor.id
    uow.session.flush()
    # the successor's referral_requested was emitted first; the transfer names it
    partner_name = _partner_name(uow, referral.partner_id)
    data = {**referral_event_data(referral, client, actor, partner_name), "from_status": before}
    if discharge is not None:
        record_discharge(uow, referral, discharge, actor, now)
        data.update(discharge_event_data(discharge))
    if successor is not None:
        data["to_partner_id"] = successor.partner_id
        data["to_partner_name"] = _partner_name(uow, successor.partner_id)
    uow.emit(f"referral_{target}", data, f"referral:{referral.id}", occurred_at=occurred)
    log.info("referral %s: %s -> %s by %s", referral.id, before, target, actor.role)
    summary = referral_summary(uow, referral, client)
    if successor is not None:
        summary["transferred_to"] = referral_summary(uow, successor, client)
    return summary


# --- ending care: the discharge summary and its follow-up ----------------------------------


def ending_summary(action: str, command: dict[str, Any], now: datetime) -> domain.Discharge | None:
    """The discharge summary an ending action carries, checked (refused at its fields);
    None for the actions that do not end care."""
    if action not in domain.ENDING_ACTIONS:
        return None
    return domain.check_discharge(action, command.get("discharge"), local_date(now))


def record_discharge(
    uow: UnitOfWork, referral: Referral, discharge: domain.Discharge, actor: Actor, now: datetime
) -> ReferralDischarge:
    row = ReferralDischarge(
        referral_id=referral.id,
        outcome=discharge.outcome,
        reasons=list(discharge.reasons),
        aftercare_plan=discharge.aftercare_plan,
        follow_up_on=discharge.follow_up_on,
        recorded_by=actor.label,
        recorded_at=now,
    )
    uow.session.add(row)
    return row


def discharge_event_data(discharge: Any) -> dict[str, Any]:
    """What an ending event carries of the summary (a ``domain.Discharge`` or its row):
    codes and the follow-up day, never the aftercare plan."""
    return {
        "outcome": discharge.outcome,
        "discharge_reasons": list(discharge.reasons),
        "follow_up_on": discharge.follow_up_on.isoformat() if discharge.follow_up_on else None,
    }


def discharge_view(row: ReferralDischarge | None, national: bool = False) -> dict[str, Any] | None:
    """The summary as people read it with the referral; a national system gets the codes
    only (never the plan, nor who wrote it)."""
    if row is None:
        return None
    return {
        "outcome": row.outcome,
        "reasons": list(row.reasons or []),
        "aftercare_plan": None if national else row.aftercare_plan,
        "follow_up_on": row.follow_up_on.isoformat() if row.follow_up_on else None,
        "follow_up_reminded_at": _stamp(row.follow_up_reminded_at),
        "recorded_by": None if national else row.recorded_by,
        "recorded_at": _stamp(row.recorded_at),
    }


def _discharge_of(uow: UnitOfWork, referral_id: str) -> ReferralDischarge | None:
    return uow.session.get(ReferralDischarge, referral_id)


def follow_up_event_data(
    referral: Referral, client: Client, row: ReferralDischarge, partner_name: str | None
) -> dict[str, Any]:
    """``referral_follow_up_due``: the referral's facts, the outcome and the day."""
    return {
        **referral_event_data(referral, client, None, partner_name),
        "outcome": row.outcome,
        "follow_up_on": row.follow_up_on.isoformat(),
    }


def emit_follow_up_reminders(uow: UnitOfWork, now: datetime, limit: int = 100) -> int:
    """Emit ``referral_follow_up_due`` for every summary whose follow-up day has come in
    Bengkulu, once per summary however many instances run or however often: the row is
    locked (``SKIP LOCKED``: another instance passes it by) and ``follow_up_reminded_at``
    set in the transaction that writes the event to the outbox."""
    today = local_date(now)
    rows = uow.session.scalars(
        select(ReferralDischarge)
        .where(
            ReferralDischarge.follow_up_on.is_not(None),
            ReferralDischarge.follow_up_on <= today,
            ReferralDischarge.follow_up_reminded_at.is_(None),
        )
        .order_by(ReferralDischarge.follow_up_on, ReferralDischarge.referral_id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    emitted = 0
    for row in rows:
        if not domain.follow_up_due(row.follow_up_on, row.follow_up_reminded_at is not None, today):
            continue
        # the row is locked (another instance skips it) and still unreminded: claimed
        row.follow_up_reminded_at = now
        referral = uow.session.get(Referral, row.referral_id)
        uow.emit(
            "referral_follow_up_due",
            follow_up_event_data(
                referral, referral.client, row, _partner_name(uow, referral.partner_id)
            ),
            f"referral:{referral.id}",
            occurred_at=now,
        )
        log.info("referral %s: follow-up due at %s", referral.id, referral.partner_id)
        emitted += 1
    return emitted


# --- consent ---------------------------------------------------------------------------


def withdraw_consent(
    uow: UnitOfWork,
    actor: Any,
    referral_id: str,
    command: dict[str, Any],
    now: datetime | None = None,
) -> dict[str, Any]:
    """The client withdraws consent, on the client's word to an officer: every referral
    of the client made until now records when, by whom and why, and says so in its
    history; from then on the receiving partners see no identity, and a new referral
    needs consent given after this. No event: no other service holds the client's
    identity, and nothing that laporan counts or notifikasi tells changes.

    Locks: the client's row, then the client's referrals in id order (a transition
    locks one referral then a partner, never a client: no circle)."""
    actor = Actor.parse(actor)
    now = now or utcnow()
    domain.check_may_withdraw_consent(actor)
    referral = _visible_referral(uow, actor, referral_id, lock=False)
    if domain.consent_withdrawn(referral.consent):
        raise ConsentAlreadyWithdrawn("Persetujuan klien pada rujukan ini sudah dicabut.")
    withdrawn_on = domain.withdrawal_day(command.get("withdrawn_on"), referral.created_at, now)
    client = uow.session.scalars(
        select(Client).where(Client.id == referral.client_id).with_for_update()
    ).one()
    client.consent_withdrawn_at = now
    note = command.get("note")
    affected = _client_referrals_locked(uow, client.id)
    touched = []
    for each in affected:
        if domain.consent_withdrawn(each.consent):
            continue
        each.consent = {
            **each.consent,
            "withdrawn_at": rfc3339(now),
            "withdrawn_on": withdrawn_on.isoformat(),
            "withdrawn_by": actor.label,
            "withdrawal_note": note,
        }
        each.updated_at = now
        each.history.append(
            ReferralHistory(
                from_status=each.status,
                to_status=each.status,
                actor=actor.label,
                reason="consent_withdrawn",
                note=note,
                at=now,
            )
        )
        touched.append(each.id)
    log.info(
        "consent of client %s withdrawn by %s: %d referral(s)", client.id, actor.label, len(touched)
    )
    return {
        **referral_summary(uow, referral, client),
        "consent_withdrawn_on": withdrawn_on.isoformat(),
        "referrals_affected": touched,
    }


# --- corrections (an admin's) ------------------------------------------------------------


def undo_transition(
    uow: UnitOfWork,
    actor: Any,
    referral_id: str,
    command: dict[str, Any],
    now: datetime | None = None,
) -> dict[str, Any]:
    """An admin undoes the referral's last transition, saying why: the referral returns
    to the status before it, what that transition set is cleared, the history keeps both
    (the undo with who, when and why) and ``referral_transition_undone`` tells laporan
    and notifikasi. Undoing into an active status takes a place again (capacity as on
    accept). A transfer is undone only while its new referral is still a request, which
    is then cancelled (``referral_cancelled``); else 409 UNDO_NOT_POSSIBLE.

    Locks: the referral, then (a transfer) its successor, then the partner."""
    actor = Actor.parse(actor)
    now = now or utcnow()
    domain.check_may_correct(actor)
    referral = _visible_referral(uow, actor, referral_id, lock=True)
    step = domain.last_transition((h.from_status, h.to_status, h.reason) for h in referral.history)
    undone = referral.status
    back_to = domain.check_undo(undone, command["expected_status"], step)
    reason = command["reason"].strip()
    successor = None
    if undone == "transferred" and referral.transferred_to_id:
        successor = uow.session.scalars(
            select(Referral).where(Referral.id == referral.transferred_to_id).with_for_update()
        ).one()
        if successor.status != "requested":
            raise UndoNotPossible(
                "Pengalihan tidak dapat dibatalkan: rujukan baru di mitra tujuan sudah "
                "ditanggapi. Batalkan atau selesaikan rujukan baru itu lebih dulu."
            )
    client = referral.client
    if domain.takes_place(undone, back_to):
        _check_place(uow, referral.partner_id, client.sex, referral.service_type, local_date(now))
    undo_on(referral, back_to, now)
    ended = _discharge_of(uow, referral.id)
    if ended is not None and undone in domain.TERMINAL_STATUSES:
        # care goes on: the summary of an ending that did not happen goes, and with it
        # the follow-up reminder; a later ending records its own
        uow.session.delete(ended)
    _correction_entry(referral, undone, actor, domain.UNDONE, reason, now)
    if successor is not None:
        successor.status, successor.ended_at = "cancelled", now
        _correction_entry(successor, "requested", actor, domain.UNDONE, reason, now)
    uow.session.flush()
    partner_name = _partner_name(uow, referral.partner_id)
    if successor is not None:
        data = referral_event_data(
            successor, client, actor, _partner_name(uow, successor.partner_id)
        )
        uow.emit(
            "referral_cancelled",
            {**data, "from_status": "requested"},
            f"referral:{successor.id}",
            occurred_at=now,
        )
    uow.emit(
        "referral_transition_undone",
        undone_event_data(referral, client, actor, partner_name, undone),
        f"referral:{referral.id}",
        occurred_at=now,
    )
    log.info("referral %s: %s undone, back to %s by %s", referral.id, undone, back_to, actor.label)
    return {**referral_summary(uow, referral, client), "undone_status": undone}


def _correction_entry(
    referral: Referral, left: str, actor: Actor, reason: str, note: str, now: datetime
) -> None:
    """A correction in the referral's history: the status it ``left`` for the one it
    has now (the same for an identity corrected), who, why (coded and in words), when."""
    referral.history.append(
        ReferralHistory(
            from_status=left,
            to_status=referral.status,
            actor=actor.label,
            reason=reason,
            note=note,
            at=now,
        )
    )
    referral.updated_at = now


def correct_client(
    uow: UnitOfWork,
    cipher: ClientCipher,
    actor: Any,
    client_id: str,
    command: dict[str, Any],
    now: datetime | None = None,
) -> dict[str, Any]:
    """An admin corrects a client's identity (NIK, name, birth date, sex, phone), saying
    why. The result is checked as a new referral's client is; a NIK another client holds
    is refused 409 NIK_IN_USE, a correction equal to what is stored 409 NOTHING_CHANGED.
    The identity is sealed again under the current keys, the NIK digest and the name's
    blind index made again; each referral of the client gets its age group again (age on
    the day it was made), an entry in its history and a ``client_corrected`` event (sex
    and age group only); the access audit records the correction with its reason.

    Locks: the client's row, then its referrals in id order (as a consent withdrawal)."""
    actor = Actor.parse(actor)
    now = now or utcnow()
    domain.check_may_correct(actor)
    if not is_plain_id(client_id):
        raise ClientNotFound("Klien tidak ditemukan.")
    client = uow.session.scalars(
        select(Client).where(Client.id == client_id).with_for_update()
    ).first()
    if client is None:
        raise ClientNotFound(f"Klien {client_id} tidak ditemukan.")
    stored = {
        "nik": cipher.decrypt(client.nik_encrypted),
        "name": cipher.decrypt(client.name_encrypted),
        "phone": cipher.decrypt(client.phone_encrypted),
        "birth_date": client.birth_date,
        "sex": client.sex,
    }
    after, changed = domain.corrected_identity(stored, command)
    try:
        check_client(after, local_date(now))
    except ValidationFailed as exc:  # at the fields of the correction's body
        raise ValidationFailed(exc.detail, errors=exc.errors.get("client", exc.errors)) from None
    if "nik" in changed:
        digests = list(cipher.nik_digests(after["nik"]).values())
        holder = uow.session.scalar(
            select(Client.id).where(Client.nik_digest.in_(digests), Client.id != client.id)
        )
        if holder is not None:
            raise NikInUse(
                "NIK ini sudah tercatat untuk klien lain; periksa kembali NIK-nya.",
                errors={"nik": ["NIK ini sudah tercatat untuk klien lain."]},
            )
    client.nik_digest = cipher.nik_digests(after["nik"])[cipher.current_hmac_kid]
    client.nik_key_id = cipher.current_hmac_kid
    client.nik_encrypted = cipher.encrypt(after["nik"])
    client.name_encrypted = cipher.encrypt(after["name"])
    client.phone_encrypted = cipher.encrypt(after["phone"])
    client.key_id = cipher.current_kid
    client.birth_date = after["birth_date"]
    client.sex = after["sex"]
    _index_name(uow, cipher, client.id, after["name"])
    client.name_index_key_id = cipher.current_hmac_kid
    reason = command["reason"].strip()
    referrals = _client_referrals_locked(uow, client.id)
    moved = []
    for referral in referrals:
        age_group = domain.age_group(client.birth_date, local_date(referral.created_at))
        age_changed = age_group != referral.age_group
        referral.age_group = age_group
        _correction_entry(referral, referral.status, actor, domain.CORRECTED, reason, now)
        moved.append((referral, age_changed))
    uow.session.flush()
    for referral, age_changed in moved:
        partner_name = _partner_name(uow, referral.partner_id)
        data = corrected_event_data(referral, client, actor, partner_name, changed, age_changed)
        uow.emit("client_corrected", data, f"referral:{referral.id}", occurred_at=now)
    if referrals:
        latest = max(referrals, key=lambda r: (r.created_at, r.id))
        _audit(uow, actor, latest, f"koreksi identitas: {reason}", now)
    log.info(
        "identity of client %s corrected by %s (%s): %d referral(s)",
        client.id,
        actor.label,
        ", ".join(changed),
        len(referrals),
    )
    return {
        "id": client.id,
        "sex": client.sex,
        "identity": {
            "nik": after["nik"],
            "name": after["name"],
            "phone": after["phone"],
            "birth_date": client.birth_date.isoformat(),
        },
        "changed": changed,
        "referrals_affected": [r.id for r in referrals],
    }


def _client_referrals_locked(uow: UnitOfWork, client_id: str) -> list[Referral]:
    """Every referral of a client, locked in id order (after the client's row)."""
    return list(
        uow.session.scalars(
            select(Referral)
            .where(Referral.client_id == client_id)
            .order_by(Referral.id)
            .with_for_update()
        )
    )


# --- the response deadline ----------------------------------------------------------------


def emit_overdue_responses(uow: UnitOfWork, now: datetime, limit: int = 100) -> int:
    """Emit ``referral_response_overdue`` for requests not answered by their deadline,
    once per referral however many instances run: the row is claimed by setting
    ``overdue_notified_at`` where it is still empty, in the transaction of the event."""
    query = (
        select(Referral)
        .where(
            Referral.status == "requested",
            Referral.response_due_at <= now,
            Referral.overdue_notified_at.is_(None),
        )
        .order_by(Referral.response_due_at, Referral.id)
        .limit(limit)
    )
    emitted = 0
    for referral in uow.session.scalars(query.with_for_update(skip_locked=True)).all():
        claimed = uow.session.execute(
            update(Referral)
            .where(Referral.id == referral.id, Referral.overdue_notified_at.is_(None))
            .values(overdue_notified_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if claimed != 1:
            continue  # another instance got there first
        referral.overdue_notified_at = now
        data = referral_event_data(
            referral, referral.client, None, _partner_name(uow, referral.partner_id)
        )
        data["hours_overdue"] = round((now - referral.response_due_at).total_seconds() / 3600, 2)
        uow.emit("referral_response_overdue", data, f"referral:{referral.id}", occurred_at=now)
        log.info("referral %s: response overdue at %s", referral.id, referral.partner_id)
        emitted += 1
    return emitted


# --- reading --------------------------------------------------------------------------


def _episodes_by_client(uow: UnitOfWork, client_ids: set[str]) -> dict[str, int]:
    if not client_ids:
        return {}
    rows = uow.session.execute(
        select(Referral.client_id, func.count())
        .where(Referral.client_id.in_(client_ids))
        .group_by(Referral.client_id)
    ).all()
    return {client_id: int(n) for client_id, n in rows}


def referral_summary(
    uow: UnitOfWork, referral: Referral, client: Client, episodes: int | None = None
) -> dict[str, Any]:
    """A referral without client identity: what lists, transitions and creation answer."""
    if episodes is None:
        episodes = _episodes_by_client(uow, {client.id}).get(client.id, 1)
    return {
        "id": referral.id,
        "status": referral.status,
        "partner_id": referral.partner_id,
        "service_type": referral.service_type,
        "source": referral.source,
        "previous_referral_id": referral.previous_referral_id,
        "transferred_from_id": referral.transferred_from_id,
        "transferred_to_id": referral.transferred_to_id,
        "rejection_reason": referral.rejection_reason,
        "client": {
            "id": client.id,
            "sex": client.sex,
            "age_group": referral.age_group,
            "previous_referrals": int(episodes) - 1,
        },
        "response_due_at": _stamp(referral.response_due_at),
        "response_overdue": referral.overdue_notified_at is not None,
        "responded_at": _stamp(referral.responded_at),
        "admitted_at": _stamp(referral.admitted_at),
        "ended_at": _stamp(referral.ended_at),
        "created_at": _stamp(referral.created_at),
        "updated_at": _stamp(referral.updated_at),
    }


def list_referrals(uow: UnitOfWork, actor: Any, filters: dict[str, Any]) -> dict[str, Any]:
    """Newest first; a partner's operator sees only its partner's referrals. ``cursor``
    is the id of the last item of the previous page."""
    actor = Actor.parse(actor)
    query = select(Referral)
    partner_id = filters.get("partner_id")
    if actor.role == "national" and filters.get("client_id"):
        # a national system follows states, never one person's episodes
        raise Forbidden("Sistem nasional tidak dapat mencari rujukan per klien.")
    if not actor.is_staff and actor.role != "national":
        if partner_id and not domain.may_see(actor, partner_id):
            raise ReferralNotFound("Rujukan mitra ini tidak ditemukan.")
        partner_id = actor.partner_id if actor.role == "partner" else None
        if partner_id is None:
            return {"items": [], "next_cursor": None}
    if partner_id:
        query = query.where(Referral.partner_id == partner_id)
    if filters.get("status"):
        query = query.where(Referral.status == filters["status"])
    if filters.get("statuses"):
        query = query.where(Referral.status.in_(filters["statuses"]))
    if filters.get("updated_from"):
        query = query.where(Referral.updated_at >= filters["updated_from"])
    if filters.get("updated_before"):
        query = query.where(Referral.updated_at < filters["updated_before"])
    if filters.get("client_id"):
        query = query.where(Referral.client_id == filters["client_id"])

    def render(page):
        episodes = _episodes_by_client(uow, {r.client_id for r in page})
        summaries = (referral_summary(uow, r, r.client, episodes.get(r.client_id, 1)) for r in page)
        key = filters.get("pseudonym_key")
        return [domain.deidentify(summary, actor, key) for summary in summaries]

    page = page_newest_first(uow, query, Referral, filters, render)
    if filters.get("with_total"):
        page["total"] = uow.session.scalar(select(func.count()).select_from(query.subquery()))
    return page


SEARCH_PURPOSE = "pencarian klien"


def search_clients(
    uow: UnitOfWork,
    cipher: ClientCipher,
    actor: Any,
    query: dict[str, Any],
    now: datetime | None = None,
) -> dict[str, Any]:
    """Clients by exact NIK (its digest under every configured key) and/or by name (every
    word of it in the blind index), with their referrals that match the filters; a
    partner's operator finds only clients referred to its partner, and sees only those
    referrals. A page of clients, newest first, with the total. Every client shown is
    written to the access audit (the answer carries name and NIK)."""
    actor = Actor.parse(actor)
    referrals = select(Referral.client_id)
    partner_id = query.get("partner_id")
    if not actor.is_staff:
        if actor.role != "partner" or (partner_id and not domain.may_see(actor, partner_id)):
            raise ReferralNotFound("Klien mitra ini tidak ditemukan.")
        partner_id = actor.partner_id
    conditions = _search_conditions(query, partner_id)
    clients = select(Client).where(Client.id.in_(referrals.where(*conditions)))
    if query.get("nik"):
        clients = clients.where(Client.nik_digest.in_(cipher.nik_digests(query["nik"]).values()))
    if query.get("name"):
        words = domain.check_name_query(name_tokens(query["name"]))
        digests = {
            d for kid in cipher.hmac_key_ids for d in cipher.name_digests(query["name"], kid)
        }
        # a client's tokens are under one key: it matches when it holds a digest of every
        # word (distinct words have distinct digests under one key)
        holders = (
            select(ClientNameToken.client_id)
            .where(ClientNameToken.digest.in_(digests))
            .group_by(ClientNameToken.client_id)
            .having(func.count(func.distinct(ClientNameToken.digest)) >= len(words))
        )
        clients = clients.where(Client.id.in_(holders))
    total = uow.session.scalar(select(func.count()).select_from(clients.subquery()))
    limit, page = query.get("limit", 20), query.get("page", 1)
    found = uow.session.scalars(
        clients.order_by(Client.created_at.desc(), Client.id.desc())
        .offset((page - 1) * limit)
        .limit(limit)
    ).all()
    by_client: dict[str, list[Referral]] = {}
    if found:
        for referral in uow.session.scalars(
            select(Referral)
            .where(Referral.client_id.in_([c.id for c in found]), *conditions)
            .order_by(Referral.created_at.desc(), Referral.id.desc())
        ):
            by_client.setdefault(referral.client_id, []).append(referral)
    episodes = _episodes_by_client(uow, {c.id for c in found})
    items = []
    for client in found:
        shown = by_client[client.id]
        # a partner sees who it is while one of its referrals still has consent
        hidden = all(domain.identity_hidden(actor, r.consent) for r in shown)
        items.append(
            {
                "id": client.id,
                "sex": client.sex,
                "birth_date": client.birth_date.isoformat(),
                "identity": None
                if hidden
                else {
                    "nik": cipher.decrypt(client.nik_encrypted),
                    "name": cipher.decrypt(client.name_encrypted),
                },
                "referrals": [
                    referral_summary(uow, r, client, episodes.get(client.id, 1)) for r in shown
                ],
            }
        )
        if not hidden:
            _audit(uow, actor, shown[0], f"{SEARCH_PURPOSE} ({_search_kind(query)})", now)
    pages = max(1, -(-total // limit))
    log.info("client search (%s) by %s: %d found", _search_kind(query), actor.label, total)
    return {
        "items": items,
        "total": total,
        "page": page,
        "pages": pages,
        "previous_page": page - 1 if page > 1 else None,
        "next_page": page + 1 if page < pages else None,
    }


def _search_kind(query: dict[str, Any]) -> str:
    return " dan ".join(word for word, key in (("NIK", "nik"), ("nama", "name")) if query.get(key))


def _search_conditions(query: dict[str, Any], partner_id: str | None) -> list:
    """The filters of a client search, on the clients' referrals."""
    conditions = []
    if partner_id:
        conditions.append(Referral.partner_id == partner_id)
    if query.get("status"):
        conditions.append(Referral.status == query["status"])
    if query.get("service_type"):
        conditions.append(Referral.service_type == query["service_type"])
    if query.get("referred_from"):
        conditions.append(Referral.created_at >= domain.local_day_start(query["referred_from"]))
    if query.get("referred_until"):
        until = query["referred_until"] + timedelta(days=1)
        conditions.append(Referral.created_at < domain.local_day_start(until))
    return conditions


def _audit(
    uow: UnitOfWork, actor: Actor, referral: Referral, purpose: str, now: datetime | None
) -> None:
    """A read of the client's identity through ``referral``, in the access audit."""
    uow.session.add(
        AccessAudit(
            at=now or utcnow(),
            actor=actor.label,
            actor_role=actor.role,
            actor_partner_id=actor.partner_id,
            referral_id=referral.id,
            client_id=referral.client_id,
            purpose=purpose[:200],
            correlation_id=(current_correlation_id() or "")[:64] or None,
        )
    )


def get_referral(
    uow: UnitOfWork,
    cipher: ClientCipher,
    actor: Any,
    referral_id: str,
    purpose: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """One referral with the client's identity, consent, assessment and episodes. Only
    those who may see the referral get it, and every such read is written to the audit
    log in the same transaction."""
    actor = Actor.parse(actor)
    referral = _visible_referral(uow, actor, referral_id, lock=False)
    client = referral.client
    episodes = uow.session.scalars(
        select(Referral)
        .where(Referral.client_id == client.id)
        .order_by(Referral.created_at, Referral.id)
    ).all()
    result = referral_summary(uow, referral, client, len(episodes))
    hidden = domain.identity_hidden(actor, referral.consent)
    result["client"]["identity"] = (
        None
        if hidden
        else {
            "nik": cipher.decrypt(client.nik_encrypted),
            "name": cipher.decrypt(client.name_encrypted),
            "phone": cipher.decrypt(client.phone_encrypted),
            "birth_date": client.birth_date.isoformat(),
        }
    )
    result["consent"] = consent_view(cipher, referral.consent, hidden)
    result["discharge"] = discharge_view(_discharge_of(uow, referral.id))
    result["assessment"] = referral.assessment
    result["created_by"] = referral.created_by
    # the client's history of care; a partner sees only the episodes it received
    result["episodes"] = [
        {
            "id": e.id,
            "partner_id": e.partner_id,
            "service_type": e.service_type,
            "status": e.status,
            "created_at": _stamp(e.created_at),
            "ended_at": _stamp(e.ended_at),
        }
        for e in episodes
        if domain.may_see(actor, e.partner_id)
    ]
    if hidden:  # consent withdrawn: the partner read the referral, not who it is
        log.info("referral %s read without identity by %s", referral.id, actor.label)
        return result
    _audit(uow, actor, referral, purpose or DEFAULT_PURPOSE, now)
    log.info("identity of referral %s read by %s", referral.id, actor.label)
    return result


def consent_view(
    cipher: ClientCipher, consent: dict[str, Any] | None, hidden: bool = False
) -> dict[str, Any]:
    """A referral's consent as people read it: the guardian's name unsealed (or left out
    where the identity is hidden)."""
    view = dict(consent or {})
    if view.get("guardian_name"):
        view["guardian_name"] = None if hidden else cipher.decrypt(view["guardian_name"])
    return view


def referral_overview(uow: UnitOfWork, actor: Any, referral_id: str) -> dict[str, Any]:
    """One referral without the client's identity, to whoever may see it; national
    systems read it de-identified."""
    actor = Actor.parse(actor)
    referral = _visible_referral(uow, actor, referral_id, lock=False, follow=True)
    return domain.deidentify(referral_summary(uow, referral, referral.client), actor)


def referral_history(uow: UnitOfWork, actor: Any, referral_id: str) -> dict[str, Any]:
    """Every transition; a national system gets the states without who made them, the
    free-text notes or reasons (which may name the client): coded reasons only."""
    actor = Actor.parse(actor)
    referral = _visible_referral(uow, actor, referral_id, lock=False, follow=True)
    national = actor.role == "national"
    ending = discharge_view(_discharge_of(uow, referral.id), national)
    return {
        "referral_id": referral.id,
        "items": [
            {
                "from_status": h.from_status,
                "to_status": h.to_status,
                "actor": None if national else h.actor,
                "reason": h.reason if not national or h.reason in REJECTION_REASONS else None,
                "note": None if national else h.note,
                "at": _stamp(h.at),
                # the summary, with the transition that ended care
                "discharge": ending
                if h.from_status != h.to_status and h.to_status in ENDED
                else None,
            }
            for h in referral.history
        ],
    }


def _next_letter_seq(uow: UnitOfWork, year: int) -> int:
    """The year's next sequence number, taken under the counter row's lock (held until
    the issuing transaction ends: a concurrent issue waits, then takes the next)."""
    counter = LetterCounter.__table__
    statement = (
        pg_insert(counter)
        .values(year=year, last_seq=1)
        .on_conflict_do_update(
            index_elements=[counter.c.year], set_={"last_seq": counter.c.last_seq + 1}
        )
        .returning(counter.c.last_seq)
    )
    return int(uow.session.execute(statement).scalar_one())


def referral_letter(
    uow: UnitOfWork,
    cipher: ClientCipher,
    actor: Any,
    referral_id: str,
    numbering: LetterNumbering,
    now: datetime | None = None,
) -> dict[str, Any]:
    """What the surat rujukan of a referral prints: the referral as ``get_referral``
    gives it (the same people, the client's identity, the read audited) and the letter's
    number. The number is given the first time anyone who may see the referral asks
    (under the referral's row lock, so two first prints at once make one letter) and is
    kept: a reprint carries it again."""
    caller = Actor.parse(actor)
    now = now or utcnow()
    referral = _visible_referral(uow, caller, referral_id, lock=True)
    letter = uow.session.get(ReferralLetter, referral.id)
    if letter is None:
        issued_on = local_date(now)
        seq = _next_letter_seq(uow, issued_on.year)
        letter = ReferralLetter(
            referral_id=referral.id,
            number=numbering.number(seq, issued_on),
            year=issued_on.year,
            seq=seq,
            issued_at=now,
            issued_by=caller.label,
            issued_by_role=caller.role,
        )
        uow.session.add(letter)
        uow.session.flush()
        log.info("letter %s issued for referral %s by %s", letter.number, referral.id, caller.label)
    result = get_referral(
        uow, cipher, actor, referral.id, f"cetak surat rujukan {letter.number}", now
    )
    result["letter"] = {
        "number": letter.number,
        "short_code": domain.short_code(referral.id),
        "issued_at": _stamp(letter.issued_at),
        "issued_by": letter.issued_by,
        "issued_by_role": letter.issued_by_role,
    }
    return result


def referral_by_code(uow: UnitOfWork, actor: Any, code: str) -> str:
    """The id of the one referral the caller may see whose letter prints ``code``; a
    code that is no code, names none, or names another partner's referral: not found."""
    caller = Actor.parse(actor)
    prefix = domain.id_prefix_of(code)
    if prefix is None:
        raise ReferralNotFound("Kode rujukan tidak dikenal.")
    query = select(Referral.id, Referral.partner_id).where(Referral.id.like(f"{prefix}%"))
    found = [
        rid for rid, partner_id in uow.session.execute(query) if domain.may_see(caller, partner_id)
    ]
    if len(found) != 1:
        raise ReferralNotFound("Kode rujukan tidak dikenal.")
    return found[0]


def list_audit(uow: UnitOfWork, actor: Any, filters: dict[str, Any]) -> dict[str, Any]:
    """Admins only. Newest first; ``cursor`` is the id of the last item of the previous
    page."""
    if Actor.parse(actor).role != "admin":
        raise Forbidden("Hanya admin yang dapat melihat log audit.")
    query = select(AccessAudit)
    if filters.get("referral_id"):
        query = query.where(AccessAudit.referral_id == filters["referral_id"])
    if filters.get("actor"):
        query = query.where(AccessAudit.actor == filters["actor"])
    if filters.get("partner_id"):
        query = query.where(AccessAudit.actor_partner_id == filters["partner_id"])
    return page_newest_first(uow, query, AccessAudit, filters, _audit_items, order=("id",))


def _audit_items(rows: list[AccessAudit]) -> list[dict[str, Any]]:
    return [
        {
            "id": str(row.id),
            "at": _stamp(row.at),
            "actor": row.actor,
            "actor_role": row.actor_role,
            "actor_partner_id": row.actor_partner_id,
            "referral_id": row.referral_id,
            "client_id": row.client_id,
            "purpose": row.purpose,
            "correlation_id": row.correlation_id,
        }
        for row in rows
    ]


# --- matching and occupancy -----------------------------------------------------------


def _occupied(uow: UnitOfWork, partner_id: str | None = None) -> dict[tuple[str, str], int]:
    """Places taken (active referrals) by partner and service type; of one partner when
    ``partner_id`` names it."""
    query = (
        select(Referral.partner_id, Referral.service_type, func.count())
        .where(Referral.status.in_(domain.ACTIVE_STATUSES))
        .group_by(Referral.partner_id, Referral.service_type)
    )
    if partner_id is not None:
        query = query.where(Referral.partner_id == partner_id)
    rows = uow.session.execute(query).all()
    return {(partner, service_type): int(n) for partner, service_type, n in rows}


def match_partners(uow: UnitOfWork, params: dict[str, Any], now: datetime | None = None) -> list:
    """Eligible partners with a free place for a client, best first (the rule is
    bersinar.directory's, which the gateway's read model applies too)."""
    today = local_date(now or utcnow())
    occupied = _occupied(uow)
    agreements: dict[str, list[AgreementView]] = {}
    for agreement in uow.session.scalars(select(AgreementView)):
        agreements.setdefault(agreement.partner_id, []).append(agreement)
    candidates = [
        Candidate(
            partner=_domain_partner(view, agreements.get(view.partner_id, [])),
            partner_name=view.partner_name,
            kabupaten_kota=view.kabupaten_kota,
            occupied=occupied.get((view.partner_id, params["service_type"]), 0),
        )
        for view in uow.session.scalars(select(PartnerView))
    ]
    return rank_partners(
        candidates, params["sex"], params["service_type"], today, params.get("kabupaten_kota")
    )


def places_taken(uow: UnitOfWork, partner_id: str | None = None) -> list[dict[str, Any]]:
    """Places taken by partner and service type, counted from the referrals alone (a
    service with none taken is not named): what the gateway's read model of the
    directory holds, of every partner or of one."""
    return [
        {"partner_id": partner, "service_type": service_type, "occupied": taken}
        for (partner, service_type), taken in sorted(_occupied(uow, partner_id).items())
    ]


def occupancy(uow: UnitOfWork) -> list[tuple[str, str, int, int]]:
    """(partner, service type, places taken, capacity) for every service offered."""
    occupied = _occupied(uow)
    rows = []
    for view in uow.session.scalars(select(PartnerView)):
        for service in view.services:
            key = (view.partner_id, service["service_type"])
            rows.append((*key, occupied.get(key, 0), int(service["capacity"])))
    return rows


# --- keys -----------------------------------------------------------------------------


def _stale(cipher: ClientCipher):
    """Clients whose identity, NIK digest or name index an older key wrote (or whose name
    is not indexed yet: stored before the index existed)."""
    return or_(
        Client.key_id != cipher.current_kid,
        Client.nik_key_id != cipher.current_hmac_kid,
        Client.name_index_key_id.is_distinct_from(cipher.current_hmac_kid),
    )


def missing_keys(uow: UnitOfWork, cipher: ClientCipher) -> dict[str, list[str]]:
    """Ids of keys that stored clients were written with and ``cipher`` lacks, by
    variable: a rotation must not start without them (and matching needs the NIK keys)."""
    encryption = set(uow.session.scalars(select(Client.key_id).distinct()))
    nik = set(uow.session.scalars(select(Client.nik_key_id).distinct()))
    missing = {
        "RUJUKAN_ENCRYPTION_KEYS": sorted(encryption - cipher.key_ids),
        "RUJUKAN_NIK_HMAC_KEY": sorted(nik - cipher.hmac_key_ids),
    }
    return {variable: kids for variable, kids in missing.items() if kids}


def rekey_clients(
    uow: UnitOfWork, cipher: ClientCipher, after_id: str = "", limit: int = 500
) -> tuple[int, str | None, list[str]]:
    """Rewrite with the current keys the next ``limit`` clients (by id, after
    ``after_id``) that an older key wrote: identity re-encrypted, NIK digest and name
    index made again (a client not indexed yet is indexed).
    Returns how many were rewritten, the last id seen (None when none is left) and the
    ids of clients whose new digest another client already holds.

    Clients the services create meanwhile are written with the current keys and so are
    never selected here. A digest is taken already only when one person has two client
    records, which only a service lacking the old NIK key could have made (it did not
    find the client stored under it): such a client keeps its old digest, the two
    records are reported, and the rest goes on."""
    clients = uow.session.scalars(
        select(Client)
        .where(_stale(cipher), Client.id > after_id)
        .order_by(Client.id)
        .limit(limit)
        .with_for_update()
    ).all()
    digests = {}
    for client in clients:
        if client.key_id != cipher.current_kid:
            _reseal_guardians(uow, cipher, client.id)
            client.nik_encrypted = cipher.encrypt(cipher.decrypt(client.nik_encrypted))
            client.name_encrypted = cipher.encrypt(cipher.decrypt(client.name_encrypted))
            client.phone_encrypted = cipher.encrypt(cipher.decrypt(client.phone_encrypted))
            client.key_id = cipher.current_kid
        if client.nik_key_id != cipher.current_hmac_kid:
            digests[client.id] = cipher.nik_digest(cipher.decrypt(client.nik_encrypted))
        if client.name_index_key_id != cipher.current_hmac_kid:
            _index_name(uow, cipher, client.id, cipher.decrypt(client.name_encrypted))
            client.name_index_key_id = cipher.current_hmac_kid
    taken = set(
        uow.session.scalars(
            select(Client.nik_digest).where(Client.nik_digest.in_(digests.values()))
        )
    )
    duplicates = []
    for client in clients:
        digest = digests.get(client.id)
        if digest is None:
            continue
        if digest in taken:
            duplicates.append(client.id)
            continue
        client.nik_digest = digest
        client.nik_key_id = cipher.current_hmac_kid
    return len(clients) - len(duplicates), (clients[-1].id if clients else None), duplicates


def _reseal_guardians(uow: UnitOfWork, cipher: ClientCipher, client_id: str) -> None:
    """The guardian's name in the consent of the client's referrals, with the current key."""
    for referral in uow.session.scalars(select(Referral).where(Referral.client_id == client_id)):
        sealed = (referral.consent or {}).get("guardian_name")
        if sealed:
            referral.consent = {
                **referral.consent,
                "guardian_name": cipher.encrypt(cipher.decrypt(sealed)),
            }


def clients_to_rekey(uow: UnitOfWork, cipher: ClientCipher) -> int:
    return uow.session.scalar(select(func.count()).select_from(Client).where(_stale(cipher)))


# --- events ---------------------------------------------------------------------------


def _partner_name(uow: UnitOfWork, partner_id: str) -> str | None:
    """The partner's name from the read model (for the people an event is told to)."""
    names = uow.memo.setdefault("partner_names", {})
    if partner_id not in names:
        names[partner_id] = uow.session.scalar(
            select(PartnerView.partner_name).where(PartnerView.partner_id == partner_id)
        )
    return names[partner_id]


def referral_event_data(
    referral: Referral, client: Client, actor: Actor | None, partner_name: str | None
) -> dict[str, Any]:
    """What laporan and notifikasi need of a referral (its contract:
    bersinar.contracts.events.ReferralFacts), never who the client is and never the
    free-text notes people typed."""
    return {
        "referral_id": referral.id,
        "partner_id": referral.partner_id,
        "partner_name": partner_name,
        "client_pseudonym": client.id,
        "sex": client.sex,
        "age_group": referral.age_group,
        "service_type": referral.service_type,
        "source": referral.source,
        "status": referral.status,
        "previous_referral_id": referral.previous_referral_id,
        "transferred_from_id": referral.transferred_from_id,
        "transferred_to_id": referral.transferred_to_id,
        "reason": referral.rejection_reason,
        "actor_role": actor.role if actor else "system",
        "requested_at": _stamp(referral.created_at),
        "response_due_at": _stamp(referral.response_due_at),
        "responded_at": _stamp(referral.responded_at),
        "admitted_at": _stamp(referral.admitted_at),
        "ended_at": _stamp(referral.ended_at),
    }


def undo_on(referral: Referral, back_to: str, now: datetime) -> str:
    """The referral back in ``back_to``, what its current status had set cleared; the
    status undone."""
    undone = referral.status
    for name in domain.UNDO_CLEARS.get(undone, ()):
        setattr(referral, name, None)
    referral.status = back_to
    referral.updated_at = now
    return undone


def undone_event_data(
    referral: Referral, client: Client, actor: Actor, partner_name: str | None, undone: str
) -> dict[str, Any]:
    """referral_transition_undone: the referral as it is again, and the status undone."""
    return {
        **referral_event_data(referral, client, actor, partner_name),
        "from_status": undone,
        "to_status": referral.status,
    }


def corrected_event_data(
    referral: Referral,
    client: Client,
    actor: Actor,
    partner_name: str | None,
    changed: list[str],
    age_group_changed: bool,
) -> dict[str, Any]:
    """client_corrected, for one referral of the client: sex and age group as they are
    now and whether they changed (never which identity fields were, or what they hold)."""
    return {
        **referral_event_data(referral, client, actor, partner_name),
        "sex_changed": "sex" in changed,
        "age_group_changed": age_group_changed,
    }


# --- attachments (bersinar.attachment_rpc) ------------------------------------------------


def attachment_owner(uow: UnitOfWork, actor: Any, referral_id: str) -> str:
    """Whoever may see the referral may see and add its attachments (a partner its own
    referrals); another partner's referral is as if absent."""
    return _visible_referral(uow, Actor.parse(actor), referral_id, lock=False).id


def sealing(cipher: ClientCipher):
    """A consent form carries the client's name and signature: sealed like the identity."""

    def seal(content: bytes) -> bytes:
        return cipher.encrypt(base64.b64encode(content).decode()).encode()

    def unseal(stored: bytes) -> bytes:
        return base64.b64decode(cipher.decrypt(bytes(stored).decode()))

    return seal, unseal


def audit_attachment(uow: UnitOfWork, actor: Any, referral_id: str, purpose: str, now) -> None:
    """A read or removal of a referral's attachment is a read of the client's identity:
    refused to the partner once the client has withdrawn consent (a consent form or a
    recommendation carries the client's name)."""
    actor = Actor.parse(actor)
    referral = uow.session.get(Referral, referral_id)
    if domain.identity_hidden(actor, referral.consent):
        raise ConsentAlreadyWithdrawn(
            "Klien telah mencabut persetujuannya: lampiran yang memuat identitasnya tidak "
            "dapat dibuka mitra."
        )
    _audit(uow, actor, referral, purpose, now)
    log.info("attachment of referral %s: %s by %s", referral.id, purpose.split(":")[0], actor.label)
