"""Partners and their agreements (PKS): status over time, sex served, the seed of 2023."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from bersinar.codes import SERVICE_TYPES
from services.mitra.domain import SEED_PARTNERS, agreement_status, serves_sex

FROM = date(2023, 5, 30)
UNTIL = date(2028, 5, 29)


@pytest.mark.parametrize(
    "today,expected",
    [
        (FROM - timedelta(days=1), "draft"),
        (FROM, "active"),
        (date(2026, 6, 15), "active"),
        (UNTIL - timedelta(days=91), "active"),
        (UNTIL - timedelta(days=90), "expiring"),
        (UNTIL - timedelta(days=1), "expiring"),
        (UNTIL, "expiring"),
        (UNTIL + timedelta(days=1), "expired"),
        (date(2030, 1, 1), "expired"),
    ],
)
def test_agreement_status_over_time(today, expected):
    assert agreement_status(FROM, UNTIL, today) == expected


@pytest.mark.parametrize(
    "today", [FROM - timedelta(days=1), date(2026, 6, 15), UNTIL, UNTIL + timedelta(days=1)]
)
def test_terminated_agreement_is_terminated_whatever_the_date(today):
    assert agreement_status(FROM, UNTIL, today, terminated=True) == "terminated"


def test_short_agreement_is_expiring_from_its_first_day():
    assert agreement_status(date(2026, 1, 1), date(2026, 3, 1), date(2026, 1, 1)) == "expiring"


@pytest.mark.parametrize(
    "sex_served,client_sex,expected",
    [
        ("all", "M", True),
        ("all", "F", True),
        ("female", "F", True),
        ("female", "M", False),
        ("male", "M", True),
        ("male", "F", False),
    ],
)
def test_serves_sex(sex_served, client_sex, expected):
    assert serves_sex(sex_served, client_sex) is expected


# --- the seed: the five partners of the source document ------------------------------

DESIGN_PARTNERS = {
    "RSUD Hasanuddin Damrah": ("Bengkulu Selatan", "hospital", "all"),
    "Yayasan Dwin Foundation": ("Rejang Lebong", "foundation", "all"),
    "Yayasan Karunia Insani Foundation": ("Rejang Lebong", "foundation", "female"),
    "Yayasan Pesona": ("Kota Bengkulu", "foundation", "all"),
    "Yayasan Kipas": ("Kota Bengkulu", "foundation", "all"),
}


def test_seed_has_exactly_the_five_partners_of_the_design():
    assert len(SEED_PARTNERS) == 5
    assert {p.name for p in SEED_PARTNERS} == set(DESIGN_PARTNERS)


def test_seed_partner_ids_are_unique():
    assert len({p.id for p in SEED_PARTNERS}) == 5


@pytest.mark.parametrize("name", sorted(DESIGN_PARTNERS))
def test_seed_partner_place_kind_and_sex_served(name):
    seeded = next(p for p in SEED_PARTNERS if p.name == name)
    assert (seeded.kabupaten_kota, seeded.kind, seeded.sex_served) == DESIGN_PARTNERS[name]


def test_only_karunia_insani_is_female_only():
    female_only = [p.name for p in SEED_PARTNERS if p.sex_served == "female"]
    assert female_only == ["Yayasan Karunia Insani Foundation"]
    karunia = next(p for p in SEED_PARTNERS if p.name == "Yayasan Karunia Insani Foundation")
    assert not serves_sex(karunia.sex_served, "M")
    assert serves_sex(karunia.sex_served, "F")


def test_every_seed_partner_has_an_agreement_signed_on_30_may_2023():
    for seeded in SEED_PARTNERS:
        assert seeded.agreement.signed_on == date(2023, 5, 30), seeded.name
        assert seeded.agreement.valid_from <= seeded.agreement.valid_until


def test_seed_agreement_numbers_are_unique():
    assert len({p.agreement.number for p in SEED_PARTNERS}) == 5


def test_seed_agreements_are_in_force_on_the_signing_day():
    for seeded in SEED_PARTNERS:
        status = agreement_status(
            seeded.agreement.valid_from, seeded.agreement.valid_until, date(2023, 5, 30)
        )
        assert status == "active", seeded.name


def test_seed_offers_are_known_services_with_positive_capacity():
    for seeded in SEED_PARTNERS:
        assert seeded.offers, seeded.name
        types = [o.service_type for o in seeded.offers]
        assert len(types) == len(set(types)), seeded.name
        for offer in seeded.offers:
            assert offer.service_type in SERVICE_TYPES
            assert offer.capacity > 0
