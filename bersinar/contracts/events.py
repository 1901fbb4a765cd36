"""The declared contract of every event: one payload schema per event type and version,
owned by the service that emits it (``source``). The producer's unit of work validates a
payload against it when the event is emitted (a payload that breaks it fails the
producer's transaction); every consumer loads the payload through it before acting
(``load_event``); the AsyncAPI document (``bersinar.contracts.asyncapi``) is generated
from it. See docs/architecture.md#events.

Payload fields keep their JSON form when loaded (dates and instants stay RFC 3339 text)
so that what a consumer reads is what travelled. Producers may not send a field the
contract does not declare; consumers ignore fields they do not know (a later version may
add some)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate

from bersinar import codes
from bersinar.contracts import one_of
from bersinar.contracts.referrals import PLAIN_ID
from bersinar.contracts.reports import PERIOD
from bersinar.envelope import ENVELOPE_KEYS, EnvelopeError, check_envelope, parse_rfc3339


class EventContractError(ValueError):
    """A payload that does not keep its event's contract (the message names the fields)."""


# --- fields ------------------------------------------------------------------------------


def _instant(value: str) -> None:
    try:
        parse_rfc3339(value)
    except ValueError as exc:
        raise ValidationError("Bukan waktu RFC 3339 dengan zona.") from exc


def _day(value: str) -> None:
    try:
        date.fromisoformat(value)
    except ValueError as exc:
        raise ValidationError("Bukan tanggal YYYY-MM-DD.") from exc
    if len(value) != 10:
        raise ValidationError("Bukan tanggal YYYY-MM-DD.")


def Instant(**kwargs) -> fields.String:  # noqa: N802 - a field factory, read like a type
    """An RFC 3339 instant with its offset, kept as text."""
    return fields.String(validate=_instant, metadata={"format": "date-time"}, **kwargs)


def Day(**kwargs) -> fields.String:  # noqa: N802
    return fields.String(validate=_day, metadata={"format": "date"}, **kwargs)


def _uuid(value: str) -> None:
    try:
        uuid.UUID(value)
    except ValueError as exc:
        raise ValidationError("Bukan UUID.") from exc


def Uuid(**kwargs) -> fields.String:  # noqa: N802
    """A UUID kept as text (marshmallow's UUID field would load an object a consumer
    cannot store back as JSON)."""
    return fields.String(validate=_uuid, metadata={"format": "uuid"}, **kwargs)


def Id(**kwargs) -> fields.String:  # noqa: N802
    return fields.String(validate=PLAIN_ID, **kwargs)


def Code(code_list, **kwargs) -> fields.String:  # noqa: N802
    return fields.String(validate=one_of(code_list), **kwargs)


def Text(max_length: int, **kwargs) -> fields.String:  # noqa: N802
    return fields.String(validate=validate.Length(max=max_length), **kwargs)


class Payload(Schema):
    class Meta:
        unknown = RAISE
        ordered = True


# --- mitra --------------------------------------------------------------------------------


class ServiceOffer(Payload):
    service_type = Code(codes.SERVICE_TYPES, required=True)
    capacity = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    unit = Text(32, required=True)


class PartnerSnapshot(Payload):
    """partner_registered, partner_updated: the public data of a partner (no contacts)."""

    partner_id = Id(required=True)
    partner_name = Text(200, required=True)
    kind = Code(codes.PARTNER_KINDS, required=True)
    kabupaten_kota = Text(100, required=True)
    address = Text(500, required=True, allow_none=True)
    sex_served = Code(codes.SEX_SERVED, required=True)
    age_groups = fields.List(Code(codes.SERVED_AGE_GROUPS), required=True)
    status = Code(codes.PARTNER_STATUSES, required=True)
    accreditation = Text(100, required=True, allow_none=True)
    version = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    services = fields.List(fields.Nested(ServiceOffer), required=True)


class AgreementFacts(Payload):
    agreement_id = Id(required=True)
    partner_id = Id(required=True)
    partner_name = Text(200, required=True, allow_none=True)


class AgreementSigned(AgreementFacts):
    number = Text(100, required=True)
    signed_on = Day(required=True)
    valid_from = Day(required=True)
    valid_until = Day(required=True)
    scope = fields.List(Code(codes.AGREEMENT_SCOPE), required=True)
    annual_target = fields.Integer(required=True, allow_none=True, strict=True)
    renews_agreement_id = Id(required=True, allow_none=True)
    status = Code(codes.AGREEMENT_STATUSES, required=True)


class AgreementTerminated(AgreementFacts):
    terminated_on = Day(required=True)


class AgreementDue(AgreementFacts):
    """agreement_expiring (90, 30 and 7 days before its end), agreement_expired."""

    number = Text(100, required=True)
    valid_until = Day(required=True)
    days_left = fields.Integer(required=True, strict=True)


# --- rujukan ------------------------------------------------------------------------------


class ReferralFacts(Payload):
    """What every referral event carries: the referral, never who the client is (a
    pseudonym, sex and age group) and never the notes people typed."""

    referral_id = Id(required=True)
    partner_id = Id(required=True)
    partner_name = Text(200, required=True, allow_none=True)
    client_pseudonym = Id(required=True)
    sex = Code(codes.SEXES, required=True)
    age_group = Code(codes.CLIENT_AGE_GROUPS, required=True)
    service_type = Code(codes.SERVICE_TYPES, required=True)
    source = Code(codes.REFERRAL_SOURCES, required=True)
    status = Code(codes.REFERRAL_STATUSES, required=True)
    previous_referral_id = Id(required=True, allow_none=True)
    transferred_from_id = Id(required=True, allow_none=True)
    transferred_to_id = Id(required=True, allow_none=True)
    reason = Code(codes.REJECTION_REASONS, required=True, allow_none=True)
    actor_role = Code((*codes.ROLES, "system"), required=True)
    requested_at = Instant(required=True)
    response_due_at = Instant(required=True, allow_none=True)
    responded_at = Instant(required=True, allow_none=True)
    admitted_at = Instant(required=True, allow_none=True)
    ended_at = Instant(required=True, allow_none=True)


class ReferralMoved(ReferralFacts):
    """A transition: the status the referral left."""

    from_status = Code(codes.REFERRAL_STATUSES, required=True)


class ReferralEnded(ReferralMoved):
    """referral_completed, referral_dropped_out (and, with the partner taking over,
    referral_transferred): the discharge summary's codes and follow-up day, never the
    aftercare plan people typed. Absent in events emitted before summaries existed."""

    outcome = Code(codes.DISCHARGE_OUTCOMES, allow_none=True, load_default=None)
    discharge_reasons = fields.List(
        Code(codes.DISCHARGE_REASONS), allow_none=True, load_default=None
    )
    follow_up_on = Day(allow_none=True, load_default=None)


class ReferralTransferred(ReferralEnded):
    to_partner_id = Id(required=True)
    to_partner_name = Text(200, required=True, allow_none=True)


class ReferralUndone(ReferralFacts):
    """An admin undid the referral's last transition: it left ``from_status`` (the
    status undone) for ``to_status`` (the one before it, also ``status``)."""

    from_status = Code(codes.REFERRAL_STATUSES, required=True)
    to_status = Code(codes.REFERRAL_STATUSES, required=True)


class ClientCorrected(ReferralFacts):
    """An admin corrected the identity of the referral's client (one event per referral
    of the client): its sex and age group as they are now, and whether they changed.
    Never what the identity was or is."""

    sex_changed = fields.Boolean(required=True)
    age_group_changed = fields.Boolean(required=True)


class ReferralOverdue(ReferralFacts):
    hours_overdue = fields.Float(required=True, validate=validate.Range(min=0))


class ReferralFollowUpDue(ReferralFacts):
    """The follow-up day of a discharge summary has come: told once to the partner."""

    outcome = Code(codes.DISCHARGE_OUTCOMES, required=True)
    follow_up_on = Day(required=True)


# --- laporan ------------------------------------------------------------------------------


class ReportFacts(Payload):
    """What report events carry: never a comment or the narrative."""

    report_id = Id(required=True)
    partner_id = Id(required=True)
    partner_name = Text(200, required=True, allow_none=True)
    period = fields.String(required=True, validate=PERIOD)
    due_on = Day(required=True)
    status = Code(codes.REPORT_STATUSES, required=True)
    submitted_at = Instant()
    version = fields.Integer(strict=True, validate=validate.Range(min=1))


# --- notifikasi ---------------------------------------------------------------------------


class NotificationOutcome(Payload):
    """notification_sent, notification_failed: ids and kinds, never an address."""

    delivery_id = Id(required=True)
    event_id = Uuid(required=True)
    event_type = fields.String(required=True, validate=lambda value: _known(value))
    channel = Code(codes.CHANNELS, required=True)
    recipient = Text(100, required=True)
    recipient_kind = Text(32, required=True)
    status = Code(("sent", "failed"), required=True)
    attempts = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))


# --- the registry -------------------------------------------------------------------------


def _known(event_type: str) -> None:
    if event_type not in EVENT_SOURCES:
        raise ValidationError("Jenis peristiwa tidak dikenal.")


@dataclass(frozen=True)
class EventContract:
    event_type: str
    source: str  # the service that emits it and owns its contract
    version: int
    payload: type[Payload]
    summary: str  # what happened, in Indonesian, for people reading the AsyncAPI document

    def producing(self) -> Payload:
        return _schema(self.payload, RAISE)

    def consuming(self) -> Payload:
        return _schema(self.payload, EXCLUDE)


@cache
def _schema(payload: type[Payload], unknown: str) -> Payload:
    """One instance per payload and strictness, made once: a marshmallow schema keeps no
    state between loads, and making one copies every field (a third of a consumer's CPU
    per event when it was made per event)."""
    return payload(unknown=unknown)


# event type -> payload and what happened, by the service that emits (and owns) it
_DECLARED: dict[str, tuple[tuple[str, type[Payload], str], ...]] = {
    "mitra": (
        ("partner_registered", PartnerSnapshot, "Lembaga mitra baru terdaftar."),
        ("partner_updated", PartnerSnapshot, "Data publik, layanan atau kapasitas mitra berubah."),
        ("agreement_signed", AgreementSigned, "Perjanjian kerja sama (PKS) ditandatangani."),
        ("agreement_expiring", AgreementDue, "PKS berakhir dalam 90, 30 atau 7 hari."),
        ("agreement_expired", AgreementDue, "PKS telah berakhir."),
        ("agreement_terminated", AgreementTerminated, "PKS diakhiri sebelum waktunya."),
    ),
    "rujukan": (
        ("referral_requested", ReferralFacts, "Klien dirujuk ke mitra."),
        ("referral_accepted", ReferralMoved, "Mitra menerima rujukan."),
        ("referral_rejected", ReferralMoved, "Mitra menolak rujukan, dengan alasan berkode."),
        ("referral_cancelled", ReferralMoved, "Petugas membatalkan rujukan."),
        ("referral_admitted", ReferralMoved, "Klien mulai menjalani layanan di mitra."),
        ("referral_completed", ReferralEnded, "Klien menyelesaikan layanan."),
        ("referral_dropped_out", ReferralEnded, "Klien berhenti sebelum layanan selesai."),
        (
            "referral_transferred",
            ReferralTransferred,
            "Petugas mengalihkan klien ke mitra lain (disusul rujukan baru).",
        ),
        (
            "referral_response_overdue",
            ReferralOverdue,
            "Mitra belum menanggapi rujukan dalam batas waktu.",
        ),
        (
            "referral_follow_up_due",
            ReferralFollowUpDue,
            "Hari tindak lanjut pasca rehabilitasi klien telah tiba.",
        ),
        (
            "referral_transition_undone",
            ReferralUndone,
            "Admin membatalkan langkah terakhir rujukan; rujukan kembali ke status sebelumnya.",
        ),
        (
            "client_corrected",
            ClientCorrected,
            "Admin mengoreksi identitas klien rujukan (jenis kelamin dan kelompok usia terkini).",
        ),
    ),
    "laporan": (
        ("report_due_soon", ReportFacts, "Laporan bulanan jatuh tempo beberapa hari lagi."),
        ("report_overdue", ReportFacts, "Laporan bulanan lewat tenggat tanpa dikirim."),
        ("report_submitted", ReportFacts, "Mitra mengirim laporan bulanannya."),
        ("report_approved", ReportFacts, "Petugas menyetujui laporan bulanan."),
        ("report_returned", ReportFacts, "Petugas mengembalikan laporan bulanan untuk diperbaiki."),
    ),
    "notifikasi": (
        ("notification_sent", NotificationOutcome, "Notifikasi terkirim."),
        ("notification_failed", NotificationOutcome, "Notifikasi gagal dan tidak dicoba lagi."),
    ),
}
VERSION = 1
CONTRACTS: dict[tuple[str, int], EventContract] = {
    (event_type, VERSION): EventContract(event_type, source, VERSION, payload, summary)
    for source, declared in _DECLARED.items()
    for event_type, payload, summary in declared
}
# every event type, in the order above; and the service that emits each
EVENT_TYPES: tuple[str, ...] = tuple(event_type for event_type, _ in CONTRACTS)
EVENT_SOURCES: dict[str, str] = {c.event_type: c.source for c in CONTRACTS.values()}
# Announced for whoever subscribes (a national system's queue, say), consumed by no
# service of Bersinar: notifikasi plans what its own outcome events call for (webhooks
# that asked for them, the admins told of a failure) in the transaction that records the
# outcome. The relay publishes these without ``mandatory``: with no queue bound the
# broker drops them rather than returning them.
OPTIONAL_SUBSCRIBERS: frozenset[str] = frozenset({"notification_sent", "notification_failed"})


def contract_of(event_type: str, version: int = VERSION) -> EventContract:
    try:
        return CONTRACTS[(event_type, version)]
    except KeyError:
        raise EventContractError(f"no contract for {event_type} version {version}") from None


def _fields_named(errors: dict, prefix: str = "data") -> list[str]:
    named = []
    for key, value in errors.items():
        path = f"{prefix}.{key}"
        named.extend(_fields_named(value, path) if isinstance(value, dict) else [path])
    return named


def check_payload(event_type: str, source: str, data: dict[str, Any]) -> int:
    """The producer's check: ``data`` keeps the contract of ``event_type``, which
    ``source`` owns. Returns the contract's version; raises EventContractError."""
    contract = contract_of(event_type)
    if contract.source != source:
        raise EventContractError(f"{event_type} is emitted by {contract.source}, not {source}")
    try:
        contract.producing().load(data)
    except ValidationError as exc:
        raise EventContractError(
            f"{event_type} payload breaks its contract at {', '.join(_fields_named(exc.messages))}"
        ) from exc
    return contract.version


def load_event(event: Any) -> dict[str, Any]:
    """The consumer's read: the envelope checked and its payload loaded through the
    contract of its type and version. Raises EnvelopeError (the consumer parks it: a
    message that breaks its contract will not keep it on a second try)."""
    check_envelope(event)
    try:
        contract = contract_of(str(event["event_type"]), int(event["schema_version"]))
    except (EventContractError, ValueError, TypeError) as exc:
        raise EnvelopeError(str(exc)) from exc
    if event["source"] != contract.source:
        raise EnvelopeError(f"{contract.event_type} comes from {contract.source} only")
    try:
        data = contract.consuming().load(event["data"])
    except ValidationError as exc:
        raise EnvelopeError(
            f"{contract.event_type} payload breaks its contract at "
            f"{', '.join(_fields_named(exc.messages))}"
        ) from exc
    return {key: event[key] for key in ENVELOPE_KEYS} | {"data": data}
