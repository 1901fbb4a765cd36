"""The partner directory's rules (bersinar.directory), shared by mitra and the gateway's
read model, and the read model's copy (gateway/readmodel.py): who sees contacts, the
list's filters and order, agreement status on the day of the read, and that an older
entry never replaces a newer one."""

from __future__ import annotations

from datetime import date

import pytest

from bersinar import directory
from gateway.readmodel import PartnerDirectory

TODAY = date(2026, 12, 5)


def entry(partner_id="yayasan-a", version=1, **changes):
    base = {
        "id": partner_id,
        "name": partner_id.replace("-", " ").title(),
        "kind": "foundation",
        "kabupaten_kota": "Kota Bengkulu",
        "address": "Jl. Contoh",
        "sex_served": "all",
        "age_groups": ["adult"],
        "status": "active",
        "accreditation": None,
        "version": version,
        "services": [
            {
                "service_type": "outpatient",
                "capacity": 5,
                "unit": "klien",
                "updated_at": "2026-12-01T00:00:00Z",
            }
        ],
        "agreements": [
            {
                "id": "pks-1",
                "partner_id": partner_id,
                "number": "PKS/1",
                "signed_on": "2026-01-01",
                "valid_from": "2026-01-01",
                "valid_until": "2027-01-31",
                "scope": [],
                "annual_target": 10,
                "renews_agreement_id": None,
                "document_ref": None,
                "terminated_on": None,
                "termination_reason": None,
            }
        ],
        "updated_at": "2026-12-01T00:00:00Z",
        "contacts": [{"name": "Petugas", "role": "head", "email": None, "phone": None}],
    }
    return base | changes


@pytest.mark.parametrize(
    ("caller", "sees"),
    [
        ({"role": "admin"}, True),
        ({"role": "officer"}, True),
        ({"role": "partner", "partner_id": "yayasan-a"}, True),
        ({"role": "partner", "partner_id": "yayasan-b"}, False),
        ({"role": "national"}, False),
        ({"role": "viewer"}, False),
        ({}, False),
        (None, False),
    ],
)
def test_contacts_are_seen_by_staff_and_the_partner_itself_only(caller, sees):
    view = directory.partner_view(entry(), TODAY, caller)
    assert ("contacts" in view) is sees
    assert directory.may_see_contacts(caller, "yayasan-a") is sees


def test_every_role_of_the_code_list_has_a_decided_view():
    from bersinar.codes import ROLES, STAFF

    for role in ROLES:
        own = directory.may_see_contacts({"role": role, "partner_id": "yayasan-a"}, "yayasan-a")
        assert own is (role in STAFF or role == "partner")


def test_an_agreement_status_is_reckoned_on_the_day_of_the_read():
    one = entry()
    assert directory.render_partner(one, TODAY, False)["agreements"][0]["status"] == "expiring"
    assert (
        directory.render_partner(one, date(2026, 6, 1), False)["agreements"][0]["status"]
        == "active"
    )
    later = directory.render_partner(one, date(2027, 2, 1), False)["agreements"][0]
    assert (later["status"], later["days_to_expiry"]) == ("expired", -1)
    ended = entry(agreements=[one["agreements"][0] | {"terminated_on": "2026-11-01"}])
    assert directory.render_partner(ended, TODAY, False)["agreements"][0]["status"] == (
        "terminated"
    )


def test_the_list_filters_and_orders_by_name_then_id():
    entries = [
        entry("yayasan-b", sex_served="female"),
        entry("yayasan-a", kabupaten_kota="Kaur"),
        entry("rsud-c", status="inactive"),
        entry("yayasan-d", services=[]),
    ]

    def ids(**filters):
        return [p["id"] for p in directory.list_view(entries, filters, TODAY, None)]

    assert ids() == ["rsud-c", "yayasan-a", "yayasan-b", "yayasan-d"]
    assert ids(sex="M") == ["rsud-c", "yayasan-a", "yayasan-d"]
    assert ids(kabupaten_kota="Kaur") == ["yayasan-a"]
    assert ids(status="inactive") == ["rsud-c"]
    assert ids(service_type="outpatient") == ["rsud-c", "yayasan-a", "yayasan-b"]
    assert ids(has_capacity=True) == ["yayasan-a", "yayasan-b"]
    assert ids(has_capacity=False) == ["rsud-c", "yayasan-d"]
    assert ids(service_type="inpatient", has_capacity=True) == []


def test_an_older_entry_changes_nothing():
    copy = PartnerDirectory()
    assert copy.entry("yayasan-a") is None  # not loaded: the read goes to mitra
    copy.load([entry(version=3, address="baru")], asked_at=10.0, generation=0)
    assert copy.entry("yayasan-a")["address"] == "baru"
    assert not copy.apply(entry(version=2, address="lama"))
    copy.load([entry(version=1, address="lebih lama")], asked_at=11.0, generation=0)
    assert copy.entry("yayasan-a")["address"] == "baru"
    assert copy.apply(entry(version=4, address="terbaru"))
    assert copy.entry("yayasan-a")["address"] == "terbaru"


def test_a_whole_load_is_due_when_never_loaded_asked_for_or_too_old():
    copy = PartnerDirectory(refresh_seconds=30)
    assert copy.due(0.0)
    copy.load([], asked_at=100.0, generation=copy.wanted)
    assert not copy.due(129.0)
    assert copy.due(130.0)
    copy.resync()  # the event connection consumes again: events may have been missed
    assert copy.due(101.0)
    # a load asked for before the resync does not answer it
    copy.load([], asked_at=101.0, generation=copy.wanted - 1)
    assert copy.due(102.0)
    copy.load([], asked_at=102.0, generation=copy.wanted)
    assert not copy.due(103.0)
