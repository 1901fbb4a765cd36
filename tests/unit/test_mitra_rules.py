"""mitra's rules beyond the seed: expiry notices, who may change what, ids."""

from datetime import date, timedelta

import pytest

from services.mitra import domain

START = date(2026, 1, 1)
END = date(2027, 3, 31)


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (END - timedelta(days=91), None),
        (END - timedelta(days=90), ("expiring_90", ("expiring_90",))),
        (END - timedelta(days=31), ("expiring_90", ("expiring_90",))),
        (END - timedelta(days=30), ("expiring_30", ("expiring_90", "expiring_30"))),
        (END - timedelta(days=7), ("expiring_7", ("expiring_90", "expiring_30", "expiring_7"))),
        (END, ("expiring_7", ("expiring_90", "expiring_30", "expiring_7"))),
        (END + timedelta(days=1), ("expired", ("expired",))),
        (END + timedelta(days=400), ("expired", ("expired",))),
    ],
)
def test_the_notice_due_is_the_tightest_threshold_crossed(today, expected):
    assert domain.due_notice(START, END, today) == expected


def test_no_notice_before_an_agreement_starts_or_once_it_is_terminated():
    short = date(2026, 2, 1)  # a short PKS: within 90 days of its end before it starts
    assert domain.due_notice(date(2026, 1, 15), short, date(2026, 1, 10)) is None
    assert domain.due_notice(START, END, END, terminated=True) is None


def test_a_partner_may_change_its_contacts_and_existing_capacities_only():
    offers = {"inpatient", "outpatient"}
    assert (
        domain.fields_partner_may_not_change(
            {"contacts": [], "services": [{"service_type": "inpatient"}]}, offers
        )
        == []
    )
    assert domain.fields_partner_may_not_change({"status": "inactive", "name": "x"}, offers) == [
        "name",
        "status",
    ]
    assert domain.fields_partner_may_not_change(
        {"services": [{"service_type": "aftercare"}]}, offers
    ) == ["services.aftercare"]


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Yayasan Kipas", "yayasan-kipas"),
        ("RSUD Dr. M. Yunus (Bengkulu)", "rsud-dr-m-yunus-bengkulu"),
        ("Klinik Pratama Sehat Ceria", "klinik-pratama-sehat-ceria"),
        ("Yayasan Ñusantara — Mandiri", "yayasan-nusantara-mandiri"),
        ("!!!", "mitra"),
    ],
)
def test_partner_ids_are_readable_slugs(name, slug):
    assert domain.slug_for(name) == slug


def test_a_partner_whose_offer_lacks_a_valid_type_is_refused_field_by_field():
    from marshmallow import ValidationError

    from bersinar.contracts.partners import PartnerCreate

    body = {
        "name": "Yayasan Uji",
        "kind": "other",
        "kabupaten_kota": "Kota Bengkulu",
        "sex_served": "all",
        "services": [
            {"service_type": "no-such-type", "capacity": 3},
            {"service_type": "outpatient", "capacity": 2},
            {"service_type": "outpatient", "capacity": 5},
        ],
    }
    with pytest.raises(ValidationError) as refused:
        PartnerCreate().load(body)
    errors = refused.value.normalized_messages()
    assert "service_type" in errors["services"][0]  # the offer's own fault, at its field
    assert errors["services"]["_schema"] == ["Setiap jenis layanan hanya sekali."]
