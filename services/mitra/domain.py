"""Partners, their service offers and their cooperation agreements (PKS): plain rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

# what the directory shows of an agreement, and whom a partner serves, are the rules the
# gateway's read model applies too: stated once, in bersinar.directory
from bersinar.directory import (  # noqa: F401 (mitra's rules, re-exported)
    EXPIRING_WITHIN_DAYS,
    agreement_status,
    days_to_expiry,
    serves_sex,
)


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


# --- agreement expiry notices ------------------------------------------------------

EXPIRY_NOTICE_DAYS = (90, 30, 7)


def due_notice(
    valid_from: date, valid_until: date, today: date, terminated: bool = False
) -> tuple[str, tuple[str, ...]] | None:
    """The notice an agreement is due today, if any: ``(notice, covers)``. ``covers``
    names every notice it stands for, so an agreement first seen 20 days from its end
    gets one "expiring_30" notice, not a 90-day one as well. "expired" is due the day
    after the last valid day."""
    if terminated or today < valid_from:
        return None
    left = days_to_expiry(valid_until, today)
    if left < 0:
        return "expired", ("expired",)
    crossed = [days for days in EXPIRY_NOTICE_DAYS if left <= days]
    if not crossed:
        return None
    notice = f"expiring_{min(crossed)}"
    return notice, tuple(f"expiring_{days}" for days in crossed)


# --- who may change what of a partner --------------------------------------------

# A partner's own operator keeps its contacts and the capacity of its offers current;
# everything else is BNNP's to change.
PARTNER_EDITABLE = frozenset({"contacts", "services"})


def fields_partner_may_not_change(changes: dict, current_offers: set[str]) -> list[str]:
    refused = sorted(set(changes) - PARTNER_EDITABLE)
    new_types = sorted({s["service_type"] for s in changes.get("services", [])} - current_offers)
    if new_types:
        refused.append("services." + ",".join(new_types))
    return refused


# --- the registry's look --------------------------------------------------------------


def slug_for(name: str) -> str:
    import re
    import unicodedata

    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")
    return slug[:60] or "mitra"
