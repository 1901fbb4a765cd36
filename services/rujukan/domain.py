"""Referral rules: the client's NIK, eligibility and capacity, the lifecycle after FHIR
Task. Plain Python, no nameko, no SQL."""

from __future__ import annotations

import hashlib
import hmac
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from bersinar import codes
from bersinar.directory import ACTIVE_STATUSES, PartnerTerms, ineligibility
from bersinar.errors import (
    CapacityFull,
    ConsentRequired,
    Forbidden,
    InvalidTransition,
    NotEligible,
    ValidationFailed,
)
from services.rujukan.exceptions import (
    DateOutOfRange,
    NothingChanged,
    NothingToUndo,
    StatusChanged,
)

# Kode wilayah provinsi (Kemendagri) that open a valid NIK.
PROVINCE_CODES = frozenset(
    {
        11,
        12,
        13,
        14,
        15,
        16,
        17,
        18,
        19,
        21,
        31,
        32,
        33,
        34,
        35,
        36,
        51,
        52,
        53,
        61,
        62,
        63,
        64,
        65,
        71,
        72,
        73,
        74,
        75,
        76,
        81,
        82,
        91,
        92,
        93,
        94,
        95,
        96,
        97,
    }
)

TERMINAL_STATUSES = ("rejected", "cancelled", "completed", "dropped_out", "transferred")

# action -> (statuses it may leave, status it enters); who may take it is
# bersinar.codes.REFERRAL_ACTORS
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "accept": (("requested",), "accepted"),
    "reject": (("requested",), "rejected"),
    "cancel": (("requested", "accepted"), "cancelled"),
    "admit": (("accepted",), "admitted"),
    "complete": (("admitted",), "completed"),
    "drop_out": (("admitted",), "dropped_out"),
    "transfer": (("admitted",), "transferred"),
}


def check_nik(nik: str, birth_date: date, sex: str) -> None:
    """A NIK is 16 digits: province (2), regency (2), district (2), birth date DDMMYY with
    40 added to the day for women, then a serial. It must agree with birth date and sex."""
    errors: dict[str, list[str]] = {}
    if len(nik) != 16 or not (nik.isascii() and nik.isdigit()):  # ٣ and ３ are digits too
        raise ValidationFailed(errors={"client": {"nik": ["NIK harus 16 digit angka."]}})
    if int(nik[:2]) not in PROVINCE_CODES:
        errors.setdefault("nik", []).append("Kode provinsi pada NIK tidak dikenal.")
    day, month, year2 = int(nik[6:8]), int(nik[8:10]), int(nik[10:12])
    nik_sex = "F" if day > 40 else "M"
    if nik_sex == "F":
        day -= 40
    try:
        date(2000 + year2, month, day)
    except ValueError:
        errors.setdefault("nik", []).append("Tanggal lahir pada NIK tidak valid.")
    else:
        if (day, month, year2) != (birth_date.day, birth_date.month, birth_date.year % 100):
            errors.setdefault("nik", []).append("NIK tidak sesuai dengan tanggal lahir.")
        if nik_sex != sex:
            errors.setdefault("nik", []).append("NIK tidak sesuai dengan jenis kelamin.")
    if nik[12:] == "0000":
        errors.setdefault("nik", []).append("Nomor urut pada NIK tidak valid.")
    if errors:
        raise ValidationFailed("NIK tidak valid.", errors={"client": errors})


def check_birth_date(birth_date: date, today: date) -> None:
    if birth_date > today or (today.year - birth_date.year) > 110:
        raise ValidationFailed(errors={"client": {"birth_date": ["Tanggal lahir tidak wajar."]}})


def age_on(birth_date: date, today: date) -> int:
    return (
        today.year
        - birth_date.year
        - ((today.month, today.day) < (birth_date.month, birth_date.day))
    )


def age_group(birth_date: date, today: date) -> str:
    age = age_on(birth_date, today)
    for upper, label in ((17, "0-17"), (24, "18-24"), (34, "25-34"), (44, "35-44")):
        if age <= upper:
            return label
    return "45+"


def check_consent(consent: dict | None) -> None:
    if not consent or consent.get("given") is not True:
        raise ConsentRequired("Rujukan tidak dapat dibuat tanpa persetujuan klien yang tercatat.")


ADULT_AGE = 18


def check_guardian(consent: Mapping[str, Any], birth_date: date, today: date) -> None:
    """A client under 18 consents through a guardian, whose name and relationship to the
    client are recorded."""
    if age_on(birth_date, today) >= ADULT_AGE:
        return
    errors = {}
    if consent.get("given_by") != "guardian":
        errors["given_by"] = ["Klien di bawah 18 tahun: persetujuan diberikan oleh wali."]
    if not (consent.get("guardian_name") or "").strip():
        errors["guardian_name"] = ["Tulis nama wali yang memberi persetujuan."]
    if not consent.get("guardian_relationship"):
        errors["guardian_relationship"] = ["Pilih hubungan wali dengan klien."]
    if errors:
        raise ConsentRequired(
            "Persetujuan klien di bawah 18 tahun diberikan oleh walinya, yang dicatat.",
            errors={"consent": errors},
        )


def check_new_consent(given_at: datetime | None, withdrawn_at: datetime | None) -> None:
    """A client who withdrew consent is referred again only with consent given after the
    withdrawal, stated with its time."""
    if withdrawn_at is None:
        return
    if given_at is None or given_at <= withdrawn_at:
        wrong = (
            "Klien ini telah mencabut persetujuannya; rujukan baru memerlukan persetujuan "
            "baru, dengan waktu pemberiannya sesudah pencabutan."
        )
        raise ConsentRequired(wrong, errors={"consent": {"given_at": [wrong]}})


def check_may_withdraw_consent(actor: Actor) -> None:
    if not actor.is_staff:
        raise Forbidden("Hanya petugas atau admin yang mencatat pencabutan persetujuan.")


def withdrawal_day(withdrawn_on: date | None, referred_at: datetime, now: datetime) -> date:
    """The day consent was withdrawn: today unless an earlier day is named, which may
    not be before the referral was made."""
    today = codes.local_date(now)
    if withdrawn_on is None:
        return today
    wrong = None
    if withdrawn_on > today:
        wrong = "Tanggal pencabutan tidak boleh setelah hari ini."
    elif withdrawn_on < codes.local_date(referred_at):
        wrong = "Tanggal pencabutan tidak boleh sebelum rujukan dibuat."
    if wrong:
        raise DateOutOfRange(wrong, errors={"withdrawn_on": [wrong]})
    return withdrawn_on


def consent_withdrawn(consent: Mapping[str, Any] | None) -> bool:
    return bool((consent or {}).get("withdrawn_at"))


def identity_hidden(actor: Actor, consent: Mapping[str, Any] | None) -> bool:
    """After withdrawal the receiving partner sees no identity (staff still do)."""
    return not actor.is_staff and consent_withdrawn(consent)


def check_eligible(partner: PartnerTerms, sex: str, service_type: str, today: date) -> None:
    """The matching rule (bersinar.directory), refused with its reasons."""
    reasons = ineligibility(partner, sex, service_type, today)
    if reasons:
        raise NotEligible(" ".join(reasons), errors={"partner_id": reasons})


def check_capacity(partner: PartnerTerms, service_type: str, active: int) -> None:
    capacity = partner.capacities.get(service_type, 0)
    if active >= capacity:
        raise CapacityFull(
            f"Kapasitas layanan {service_type} mitra penuh ({active} dari {capacity})."
        )


def next_status(current: str, action: str, actor_role: str) -> str:
    if action not in TRANSITIONS:
        raise InvalidTransition(f"Tindakan {action} tidak dikenal.")
    sources, target = TRANSITIONS[action]
    if actor_role not in codes.referral_action_roles(action):
        # a refusal by role, whatever the referral's state (403, not 409)
        raise Forbidden(f"Peran {actor_role} tidak dapat melakukan {action}.")
    if current not in sources:
        raise InvalidTransition(f"Rujukan berstatus {current} tidak dapat di-{action}.")
    return target


# --- who is acting ----------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """The caller, as the gateway vouches for it: role, API key id and, for a partner's
    operator, the one partner it acts for."""

    role: str
    key_id: str
    partner_id: str | None = None

    @classmethod
    def parse(cls, value: Any) -> Actor:
        """From the gateway's ``{"role", "key_id", "partner_id"}`` or the older
        ``"role:key_id"`` string (which names no partner)."""
        if isinstance(value, Mapping):
            return cls(
                str(value.get("role") or ""),
                str(value.get("key_id") or ""),
                str(value["partner_id"]) if value.get("partner_id") else None,
            )
        role, _, key_id = str(value or "").partition(":")
        return cls(role, key_id)

    @property
    def label(self) -> str:
        return f"{self.role}:{self.key_id}"

    @property
    def is_staff(self) -> bool:
        return self.role in codes.STAFF


def may_see(actor: Actor, partner_id: str) -> bool:
    """Staff see every referral; a partner's operator only those addressed to its partner.
    Anything else answers as if the referral did not exist."""
    if actor.is_staff:
        return True
    return (
        actor.role == "partner" and actor.partner_id is not None and actor.partner_id == partner_id
    )


def may_follow(actor: Actor, partner_id: str) -> bool:
    """Who may follow a referral's state: whoever may see it, and national systems, which
    get it de-identified (``deidentify``) and never the client's identity."""
    return actor.role == "national" or may_see(actor, partner_id)


# what a de-identified referral leaves out: the client, and every link between the
# episodes of one person (earlier and transferred referrals)
LINKS_TO_CLIENT = ("previous_referral_id", "transferred_from_id", "transferred_to_id")


def deidentify(summary: dict, actor: Actor, pseudonym_key: str | None = None) -> dict:
    """A referral summary as a national system reads it: nothing that names the client or
    lets two episodes of one person be linked. Others read it as it is. With a
    ``pseudonym_key`` (a Bulk Data export's, for any reader) the client is there only
    as the HMAC of its pseudonym under that key: episodes link within that export only."""
    unlinked = {**summary, **{key: None for key in LINKS_TO_CLIENT}}
    if pseudonym_key is not None:
        return {
            **unlinked,
            "client": {"id": keyed_pseudonym(pseudonym_key, summary["client"]["id"])},
        }
    if actor.role != "national":
        return summary
    return {**unlinked, "client": None}


def keyed_pseudonym(key_hex: str, client_id: str) -> str:
    return hmac.new(bytes.fromhex(key_hex), client_id.encode(), hashlib.sha256).hexdigest()


def check_may_create(actor: Actor) -> None:
    if not actor.is_staff:
        raise Forbidden("Hanya petugas atau admin yang dapat membuat rujukan.")


# --- transitions --------------------------------------------------------------------------

# the URL says drop-out, the code drop_out
ACTION_ALIASES = {"drop-out": "drop_out"}
# actions that take a place at the receiving partner: eligibility and capacity again
CAPACITY_ACTIONS = ("accept",)


def action_name(action: str) -> str:
    return ACTION_ALIASES.get(action, action)


def check_rejection(reason: str | None, note: str | None) -> None:
    if reason not in codes.REJECTION_REASONS:
        raise ValidationFailed(
            errors={
                "reason": [
                    f"Alasan penolakan harus salah satu dari: {', '.join(codes.REJECTION_REASONS)}."
                ]
            }
        )
    if reason == "other" and not (note or "").strip():
        raise ValidationFailed(errors={"note": ["Alasan 'other' memerlukan catatan."]})


def admission_instant(admitted_on: date | None, accepted_at: datetime, now: datetime) -> datetime:
    """When a client was admitted: ``now`` unless the partner names an earlier day, which
    is then its first moment in Bengkulu (never before the referral was accepted). A day
    in the future, or before the acceptance, is refused at the field."""
    if admitted_on is None or admitted_on == codes.local_date(now):
        return now
    if admitted_on > codes.local_date(now):
        wrong = "Tanggal masuk tidak boleh setelah hari ini."
        raise DateOutOfRange(wrong, errors={"admitted_on": [wrong]})
    if admitted_on < codes.local_date(accepted_at):
        wrong = "Tanggal masuk tidak boleh sebelum rujukan diterima."
        raise DateOutOfRange(wrong, errors={"admitted_on": [wrong]})
    return max(local_day_start(admitted_on), accepted_at)


def local_day_start(day: date) -> datetime:
    """The first moment of ``day`` in Bengkulu."""
    return datetime.combine(day, datetime.min.time(), codes.LOCAL_TZ)


def check_name_query(words: list[str]) -> list[str]:
    """The words of a name to search by (``crypto.name_tokens``): at least one."""
    if not words:
        wrong = "Tulis sedikitnya satu kata nama (huruf atau angka)."
        raise ValidationFailed(wrong, errors={"name": [wrong]})
    return words


def check_transfer_target(current_partner_id: str, target_partner_id: str) -> None:
    if current_partner_id == target_partner_id:
        same = "Rujukan dialihkan ke mitra lain, bukan ke mitra yang sama."
        raise NotEligible(same, errors={"partner_id": [same]})


# --- ending care: the discharge summary ---------------------------------------------------

# the actions that end care and record how it ended
ENDING_ACTIONS = ("complete", "drop_out", "transfer")


@dataclass(frozen=True)
class Discharge:
    """How care ended, as the partner (or the officer transferring) records it: the codes
    travel in events, the plan stays with the referral."""

    outcome: str
    reasons: tuple[str, ...]
    aftercare_plan: str | None
    follow_up_on: date | None


def check_discharge(action: str, summary: Mapping[str, Any] | None, end_day: date) -> Discharge:
    """The discharge summary of ``action`` (one of ENDING_ACTIONS), ending care on
    ``end_day`` (WIB): an outcome and at least one reason, each from its code list, no
    reason twice; a follow-up day, if any, after the end day and at most
    ``codes.FOLLOW_UP_MAX_DAYS`` after it. Refused at its fields."""
    if action not in ENDING_ACTIONS:
        raise ValueError(f"{action} does not end care")
    summary = summary or {}
    errors: dict[str, list[str]] = {}
    outcome = summary.get("outcome")
    if outcome not in codes.DISCHARGE_OUTCOMES:
        errors["outcome"] = ["Pilih hasil akhir layanan."]
    reasons = list(summary.get("reasons") or [])
    if not reasons:
        errors["reasons"] = ["Pilih sedikitnya satu alasan layanan berakhir."]
    elif any(reason not in codes.DISCHARGE_REASONS for reason in reasons):
        errors["reasons"] = ["Alasan tidak dikenal."]
    elif len(set(reasons)) != len(reasons):
        errors["reasons"] = ["Setiap alasan cukup disebut sekali."]
    if errors:
        raise ValidationFailed(
            "Ringkasan akhir layanan belum lengkap.", errors={"discharge": errors}
        )
    plan = (summary.get("aftercare_plan") or "").strip() or None
    follow_up_on = summary.get("follow_up_on")
    if follow_up_on is not None:
        wrong = None
        if follow_up_on <= end_day:
            wrong = "Tanggal tindak lanjut harus sesudah hari layanan berakhir."
        elif follow_up_on > end_day + timedelta(days=codes.FOLLOW_UP_MAX_DAYS):
            wrong = (
                f"Tanggal tindak lanjut paling lama {codes.FOLLOW_UP_MAX_DAYS} hari sesudah "
                "layanan berakhir."
            )
        if wrong:
            raise DateOutOfRange(wrong, errors={"discharge": {"follow_up_on": [wrong]}})
    return Discharge(outcome, tuple(reasons), plan, follow_up_on)


def follow_up_due(follow_up_on: date | None, reminded: bool, today: date) -> bool:
    """A summary's follow-up reminder is due once its day has come, and only once."""
    return follow_up_on is not None and not reminded and follow_up_on <= today


# --- corrections: undoing the last transition, correcting the identity -------------------

UNDONE = "transition_undone"
CORRECTED = "identity_corrected"
# what each undone status had set, to be cleared: (responded_at, admitted_at, ended_at,
# rejection_reason, transferred_to_id)
UNDO_CLEARS: dict[str, tuple[str, ...]] = {
    "accepted": ("responded_at",),
    "rejected": ("responded_at", "rejection_reason", "ended_at"),
    "cancelled": ("ended_at",),
    "admitted": ("admitted_at",),
    "completed": ("ended_at",),
    "dropped_out": ("ended_at",),
    "transferred": ("ended_at", "transferred_to_id"),
}


def check_may_correct(actor: Actor) -> None:
    if actor.role != "admin":
        raise Forbidden("Hanya admin yang dapat mengoreksi data atau membatalkan langkah.")


def last_transition(history: Iterable[tuple[str | None, str, str | None]]) -> tuple[str, str]:
    """The transition an undo reverts, from a referral's history (``(from_status,
    to_status, reason)`` in order): its (previous status, current status). Undos are
    undone in turn (an undo takes back the transition before it, so several undos walk
    back step by step); entries that change no status (consent, corrections) and the
    request itself are no transitions. Nothing left: 409 NOTHING_TO_UNDO."""
    steps: list[tuple[str, str]] = []
    for from_status, to_status, reason in history:
        if reason == UNDONE:
            if steps:
                steps.pop()
            continue
        if from_status is None or from_status == to_status:
            continue
        steps.append((from_status, to_status))
    if not steps:
        raise NothingToUndo(
            "Rujukan ini belum pernah berpindah status: tidak ada langkah yang dapat dibatalkan."
        )
    return steps[-1]


def check_undo(current: str, expected: str, step: tuple[str, str]) -> str:
    """The status an undo returns the referral to; refused when the referral is not in
    the status the admin saw (409 STATUS_CHANGED)."""
    if current != expected:
        raise StatusChanged(
            f"Rujukan kini berstatus {codes.label(codes.REFERRAL_STATUSES, current)}, bukan "
            f"{codes.label(codes.REFERRAL_STATUSES, expected)}: muat ulang lalu periksa lagi.",
            errors={"expected_status": [f"Status rujukan kini {current}."]},
        )
    previous, undone = step
    assert undone == current, (undone, current)
    return previous


def takes_place(undone: str, back_to: str) -> bool:
    """Undoing into an active status from one that held no place takes a place again
    (the capacity of an accept is checked)."""
    return back_to in ACTIVE_STATUSES and undone not in ACTIVE_STATUSES


IDENTITY_FIELDS = ("nik", "name", "birth_date", "sex", "phone")


def corrected_identity(
    stored: Mapping[str, Any], correction: Mapping[str, Any]
) -> tuple[dict, list]:
    """The identity after a correction, and the fields it changes (in IDENTITY_FIELDS
    order). A correction equal to what is stored is refused (409 NOTHING_CHANGED): it
    would only add noise to the history."""
    after = {f: correction[f] if f in correction else stored[f] for f in IDENTITY_FIELDS}
    changed = [f for f in IDENTITY_FIELDS if after[f] != stored[f]]
    if not changed:
        raise NothingChanged(
            "Data yang dikirim sama dengan yang tersimpan: tidak ada yang dikoreksi."
        )
    return after, changed


# --- the response deadline ----------------------------------------------------------------


@dataclass(frozen=True)
class DeadlinePolicy:
    """Hours a partner has to answer a request, by referral source."""

    default_hours: float = 48.0
    by_source: Mapping[str, float] | None = None

    @classmethod
    def from_config(cls, default_hours: Any, by_source: Any) -> DeadlinePolicy:
        """``by_source`` is a mapping or text such as ``"court=24,TAT=72"``."""
        parsed: dict[str, float] = {}
        if isinstance(by_source, Mapping):
            parsed = {str(k): float(v) for k, v in by_source.items()}
        elif by_source:
            for item in str(by_source).split(","):
                source, sep, hours = item.partition("=")
                if not item.strip():
                    continue
                if not sep:
                    raise ValueError(f"deadline override must be written source=hours: {item!r}")
                parsed[source.strip()] = float(hours)
        unknown = sorted(set(parsed) - set(codes.REFERRAL_SOURCES))
        if unknown:
            raise ValueError(f"deadline overrides for unknown referral sources: {unknown}")
        hours = float(default_hours if default_hours not in (None, "") else 48)
        if hours <= 0 or any(value <= 0 for value in parsed.values()):
            raise ValueError("response deadlines must be positive")
        return cls(hours, parsed)

    def hours_for(self, source: str) -> float:
        return (self.by_source or {}).get(source, self.default_hours)

    def due_at(self, requested_at: datetime, source: str) -> datetime:
        return requested_at + timedelta(hours=self.hours_for(source))


# --- the referral letter (surat rujukan) --------------------------------------------------

ROMAN_MONTHS = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII")
DEFAULT_LETTER_NUMBER_FORMAT = "R/{seq}/{month_roman}/KA/RH.00/{year}/BNNP"
# what a numbering scheme may name: the sequence of the year, the month of issue in Roman
# numerals or as two digits, the year of issue
LETTER_NUMBER_FIELDS = ("seq", "month_roman", "month", "year")
LETTER_NUMBER_MAX = 100


@dataclass(frozen=True)
class LetterNumbering:
    """How a letter's number is written (RUJUKAN_LETTER_NUMBER_FORMAT). The sequence
    starts again each year, so a scheme must name both ``{seq}`` and ``{year}``, or two
    letters could carry one number."""

    template: str = DEFAULT_LETTER_NUMBER_FORMAT

    @classmethod
    def from_config(cls, value: Any) -> LetterNumbering:
        template = str(value or "").strip() or DEFAULT_LETTER_NUMBER_FORMAT
        try:
            named = {
                name for _, name, _, _ in string.Formatter().parse(template) if name is not None
            }
        except ValueError as exc:
            raise ValueError(f"letter number format {template!r}: {exc}") from None
        unknown = sorted(named - set(LETTER_NUMBER_FIELDS))
        if unknown:
            raise ValueError(
                f"letter number format {template!r} names {unknown}; it may name only "
                f"{list(LETTER_NUMBER_FIELDS)}"
            )
        if not {"seq", "year"} <= named:
            raise ValueError(f"letter number format {template!r} must name {{seq}} and {{year}}")
        numbering = cls(template)
        numbering.number(1, date(2000, 1, 1))  # a bad format spec stops the service at start
        return numbering

    def number(self, seq: int, issued_on: date) -> str:
        number = self.template.format(
            seq=seq,
            month_roman=ROMAN_MONTHS[issued_on.month - 1],
            month=f"{issued_on.month:02d}",
            year=issued_on.year,
        )
        if len(number) > LETTER_NUMBER_MAX:
            raise ValueError(f"a letter number is at most {LETTER_NUMBER_MAX} characters")
        return number


SHORT_CODE_DIGITS = 12


def short_code(referral_id: str) -> str:
    """What a letter prints for people to read out or type: the first twelve hex digits
    of the referral's id, in groups of four (``0B9F-3C2E-5D1A``); 48 bits, so two
    referrals sharing one are not to be met in the life of the system."""
    plain = referral_id.replace("-", "").upper()[:SHORT_CODE_DIGITS]
    return "-".join(plain[i : i + 4] for i in range(0, SHORT_CODE_DIGITS, 4))


def id_prefix_of(code: str) -> str | None:
    """The start of the referral id a short code stands for (``0b9f3c2e-5d1a``), however
    it was typed (case, dashes, spaces); None when it is not one."""
    plain = "".join(ch for ch in str(code) if ch not in "- ").lower()
    if len(plain) != SHORT_CODE_DIGITS or any(ch not in "0123456789abcdef" for ch in plain):
        return None
    return f"{plain[:8]}-{plain[8:]}"
