"""Referral rules: the client's NIK, eligibility and capacity, the lifecycle after FHIR
Task. Plain Python, no nameko, no SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from bersinar.errors import (
    CapacityFull,
    ConsentRequired,
    InvalidTransition,
    NotEligible,
    ValidationFailed,
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

ACTIVE_STATUSES = ("accepted", "admitted")
TERMINAL_STATUSES = ("rejected", "cancelled", "completed", "dropped_out", "transferred")

# action -> (statuses it may leave, status it enters, who may take it)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "accept": (("requested",), "accepted", "partner"),
    "reject": (("requested",), "rejected", "partner"),
    "cancel": (("requested", "accepted"), "cancelled", "officer"),
    "admit": (("accepted",), "admitted", "partner"),
    "complete": (("admitted",), "completed", "partner"),
    "drop_out": (("admitted",), "dropped_out", "partner"),
    "transfer": (("admitted",), "transferred", "officer"),
}


def check_nik(nik: str, birth_date: date, sex: str) -> None:
    """A NIK is 16 digits: province (2), regency (2), district (2), birth date DDMMYY with
    40 added to the day for women, then a serial. It must agree with birth date and sex."""
    errors: dict[str, list[str]] = {}
    if len(nik) != 16 or not nik.isdigit():
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


@dataclass(frozen=True)
class PartnerView:
    partner_id: str
    status: str
    sex_served: str
    capacities: dict[str, int]
    agreements: tuple[tuple[date, date], ...]


def check_eligible(partner: PartnerView, sex: str, service_type: str, today: date) -> None:
    reasons = []
    if partner.status != "active":
        reasons.append("Mitra sedang tidak aktif.")
    if not (
        partner.sex_served == "all" or (partner.sex_served, sex) in {("male", "M"), ("female", "F")}
    ):
        reasons.append("Mitra tidak melayani klien dengan jenis kelamin ini.")
    if service_type not in partner.capacities:
        reasons.append("Mitra tidak menyediakan layanan ini.")
    if not any(start <= today <= end for start, end in partner.agreements):
        reasons.append("Mitra tidak memiliki perjanjian kerja sama yang berlaku hari ini.")
    if reasons:
        raise NotEligible(" ".join(reasons), errors={"partner_id": reasons})


def check_capacity(partner: PartnerView, service_type: str, active: int) -> None:
    capacity = partner.capacities.get(service_type, 0)
    if active >= capacity:
        raise CapacityFull(
            f"Kapasitas layanan {service_type} mitra penuh ({active} dari {capacity})."
        )


def next_status(current: str, action: str, actor_role: str) -> str:
    if action not in TRANSITIONS:
        raise InvalidTransition(f"Tindakan {action} tidak dikenal.")
    sources, target, owner = TRANSITIONS[action]
    if actor_role not in (owner, "admin"):
        raise InvalidTransition(f"Peran {actor_role} tidak dapat melakukan {action}.")
    if current not in sources:
        raise InvalidTransition(f"Rujukan berstatus {current} tidak dapat di-{action}.")
    return target
