"""Partners, their service offers and their cooperation agreements (PKS): plain rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

SERVICE_TYPES = ("inpatient", "outpatient", "aftercare")
EXPIRING_WITHIN_DAYS = 90


@dataclass(frozen=True)
class Offer:
    service_type: str
    capacity: int
    unit: str = "klien"


@dataclass(frozen=True)
class SeedAgreement:
    number: str
    signed_on: date
    valid_from: date
    valid_until: date
    annual_target: int


@dataclass(frozen=True)
class SeedPartner:
    id: str
    name: str
    kind: str
    kabupaten_kota: str
    address: str
    sex_served: str
    offers: tuple[Offer, ...]
    agreement: SeedAgreement
    age_groups: tuple[str, ...] = field(default=("adult", "adolescent"))


def _pks(seq: int, target: int) -> SeedAgreement:
    # Signed on 30 May 2023 (seed document). The period is not in the source: five years
    # is assumed here and is editable like everything seeded.
    return SeedAgreement(
        number=f"PKS/{seq:03d}/V/RH.00/2023/BNNP-BKL",
        signed_on=date(2023, 5, 30),
        valid_from=date(2023, 5, 30),
        valid_until=date(2028, 5, 29),
        annual_target=target,
    )


# The five partners of 2023. Capacities and offers are not in the source: plausible
# values, editable after install.
SEED_PARTNERS: tuple[SeedPartner, ...] = (
    SeedPartner(
        id="rsud-hasanuddin-damrah",
        name="RSUD Hasanuddin Damrah",
        kind="hospital",
        kabupaten_kota="Bengkulu Selatan",
        address="Jl. Raya Manna, Kabupaten Bengkulu Selatan",
        sex_served="all",
        offers=(Offer("inpatient", 10, "tempat tidur"), Offer("outpatient", 40)),
        agreement=_pks(1, 60),
    ),
    SeedPartner(
        id="yayasan-dwin-foundation",
        name="Yayasan Dwin Foundation",
        kind="foundation",
        kabupaten_kota="Rejang Lebong",
        address="Curup, Kabupaten Rejang Lebong",
        sex_served="all",
        offers=(
            Offer("inpatient", 20, "tempat tidur"),
            Offer("outpatient", 30),
            Offer("aftercare", 20),
        ),
        agreement=_pks(2, 50),
    ),
    SeedPartner(
        id="yayasan-karunia-insani",
        name="Yayasan Karunia Insani Foundation",
        kind="foundation",
        kabupaten_kota="Rejang Lebong",
        address="Curup, Kabupaten Rejang Lebong",
        sex_served="female",
        offers=(Offer("inpatient", 12, "tempat tidur"), Offer("outpatient", 20)),
        agreement=_pks(3, 30),
    ),
    SeedPartner(
        id="yayasan-pesona",
        name="Yayasan Pesona",
        kind="foundation",
        kabupaten_kota="Kota Bengkulu",
        address="Kota Bengkulu",
        sex_served="all",
        offers=(Offer("outpatient", 40), Offer("aftercare", 25)),
        agreement=_pks(4, 50),
    ),
    SeedPartner(
        id="yayasan-kipas",
        name="Yayasan Kipas",
        kind="foundation",
        kabupaten_kota="Kota Bengkulu",
        address="Kota Bengkulu",
        sex_served="all",
        offers=(
            Offer("inpatient", 15, "tempat tidur"),
            Offer("outpatient", 30),
            Offer("aftercare", 20),
        ),
        agreement=_pks(5, 50),
    ),
)


def agreement_status(
    valid_from: date, valid_until: date, today: date, terminated: bool = False
) -> str:
    if terminated:
        return "terminated"
    if today < valid_from:
        return "draft"
    if today > valid_until:
        return "expired"
    if (valid_until - today).days <= EXPIRING_WITHIN_DAYS:
        return "expiring"
    return "active"


def serves_sex(sex_served: str, client_sex: str) -> bool:
    return sex_served == "all" or (sex_served, client_sex) in {("male", "M"), ("female", "F")}
