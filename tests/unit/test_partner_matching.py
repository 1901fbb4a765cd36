"""Matching (bersinar.directory), the one rule rujukan and the gateway's read model apply
to GET /api/v1/partners/match: eligibility (sex served, service offered, an agreement
valid today, a free place) and the order (same kabupaten/kota, most free places, name);
the read model's places taken (gateway/readmodel.py): a later read is never replaced by
an earlier one, and which of rujukan's events call for a read. Directory entries are
made by mitra's code, events by rujukan's (harness/produced.py)."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from bersinar import directory
from gateway.readmodel import OCCUPANCY_EVENTS, Occupancy, moves_a_place
from harness import produced
from services.mitra import handlers as mitra_handlers

TODAY = date(2026, 6, 15)  # inside the seeded PKS (30 May 2023 to 29 May 2028)
AREA = "Kota Bengkulu"


def entry(partner_id: str, capacity: int = 10, service_type: str = "outpatient", **changes):
    """A partner's directory entry as mitra makes it: a seeded partner offering one
    service (``changes`` to its model)."""
    partner = produced.seeded_partner(
        partner_id, offers=produced.offers((service_type, capacity)), **changes
    )
    return mitra_handlers.directory_entry(partner)


def terminated(partner_id: str, on: date, **changes):
    """A partner whose PKS was ended by mitra from ``on`` on."""
    made = entry(partner_id, **changes)
    made["agreements"][0]["terminated_on"] = on.isoformat()
    return made


# (entry, places taken of outpatient): who is offered to a man needing outpatient care
# in Kota Bengkulu, and who is not
ENTRIES = (
    (entry("yayasan-kipas"), 4),  # here, 6 free
    (entry("yayasan-pesona"), 8),  # here, 2 free
    (entry("yayasan-dwin-foundation", capacity=20), 0),  # elsewhere, 20 free
    (entry("rsud-hasanuddin-damrah", capacity=6), 0),  # elsewhere, 6 free
    (entry("yayasan-alpha", capacity=8, kabupaten_kota="Kaur"), 2),  # elsewhere, 6 free
    (terminated("yayasan-pks-besok", TODAY + timedelta(days=1), capacity=7), 0),  # 7 free
    (entry("yayasan-karunia-insani"), 0),  # women only
    (entry("yayasan-penuh", capacity=3), 3),  # full
    (entry("yayasan-nonaktif", status="inactive"), 0),
    (entry("yayasan-rawat-inap", service_type="inpatient"), 0),  # no outpatient
    (terminated("yayasan-pks-diakhiri", TODAY), 0),  # ended from today on
)
ORDER = [
    ("yayasan-kipas", 6),
    ("yayasan-pesona", 2),
    ("yayasan-dwin-foundation", 20),
    ("yayasan-pks-besok", 7),
    ("rsud-hasanuddin-damrah", 6),
    ("yayasan-alpha", 6),
]
QUERY = {"sex": "M", "service_type": "outpatient", "kabupaten_kota": AREA}


def occupied(entries=ENTRIES):
    return {made["id"]: {"outpatient": taken} for made, taken in entries if taken}


def test_same_area_first_then_most_free_places_then_name():
    matched = directory.match_view([made for made, _ in ENTRIES], occupied(), QUERY, TODAY)
    assert [(m["partner_id"], m["free"]) for m in matched] == ORDER
    kipas = matched[0]
    assert kipas == {
        "partner_id": "yayasan-kipas",
        "partner_name": "Yayasan Kipas",
        "kabupaten_kota": AREA,
        "sex_served": "all",
        "service_type": "outpatient",
        "capacity": 10,
        "occupied": 4,
        "free": 6,
        "same_kabupaten_kota": True,
    }
    assert not any(m["same_kabupaten_kota"] for m in matched[2:])


def test_the_order_does_not_depend_on_the_order_partners_come_in():
    entries = [made for made, _ in ENTRIES]
    expected = directory.match_view(entries, occupied(), QUERY, TODAY)
    shuffler = random.Random(5)
    for _ in range(5):
        shuffler.shuffle(entries)
        assert directory.match_view(entries, occupied(), QUERY, TODAY) == expected


def test_without_an_area_most_free_places_first():
    query = {**QUERY, "kabupaten_kota": None}
    matched = directory.match_view([made for made, _ in ENTRIES], occupied(), query, TODAY)
    assert [m["partner_id"] for m in matched] == [
        "yayasan-dwin-foundation",
        "yayasan-pks-besok",
        "rsud-hasanuddin-damrah",
        "yayasan-alpha",
        "yayasan-kipas",
        "yayasan-pesona",
    ]


def test_the_area_is_compared_whatever_its_case():
    query = {**QUERY, "kabupaten_kota": "kota bengkulu"}
    matched = directory.match_view([made for made, _ in ENTRIES], occupied(), query, TODAY)
    assert [m["partner_id"] for m in matched[:2]] == ["yayasan-kipas", "yayasan-pesona"]


def test_a_woman_is_offered_the_partner_for_women():
    query = {**QUERY, "sex": "F"}
    matched = directory.match_view([made for made, _ in ENTRIES], occupied(), query, TODAY)
    assert "yayasan-karunia-insani" in [m["partner_id"] for m in matched]


def test_an_entry_and_rujukans_terms_of_one_partner_rank_alike():
    """The gateway ranks directory entries (mitra's), rujukan its own view of partners:
    the same partner, seen either way, gives the same answer."""
    made = terminated("yayasan-kipas", TODAY + timedelta(days=30))
    agreement = made["agreements"][0]
    terms = directory.PartnerTerms(
        partner_id="yayasan-kipas",
        status="active",
        sex_served="all",
        capacities={"outpatient": 10},
        agreements=(
            directory.agreement_period(
                date.fromisoformat(agreement["valid_from"]),
                date.fromisoformat(agreement["valid_until"]),
                TODAY + timedelta(days=30),
            ),
        ),
    )
    assert directory.partner_terms(made) == terms
    candidate = directory.Candidate(terms, "Yayasan Kipas", AREA, 3)
    for today in (TODAY, TODAY + timedelta(days=29), TODAY + timedelta(days=30)):
        assert directory.match_view([made], {"yayasan-kipas": {"outpatient": 3}}, QUERY, today) == (
            directory.rank_partners([candidate], "M", "outpatient", today, AREA)
        )


def test_reasons_for_refusing_are_told_in_full():
    made = entry("yayasan-karunia-insani", status="inactive", service_type="inpatient")
    made["agreements"] = []
    reasons = directory.ineligibility(directory.partner_terms(made), "M", "outpatient", TODAY)
    assert len(reasons) == 4


# --- the read model's places taken ------------------------------------------------------


def places(partner_id: str, **taken: int) -> list[dict]:
    return [
        {"partner_id": partner_id, "service_type": service_type, "occupied": n}
        for service_type, n in taken.items()
    ]


def test_places_are_held_once_loaded_and_a_partner_not_named_has_none_taken():
    occupancy = Occupancy()
    assert occupancy.held() is None
    occupancy.load(places("a", outpatient=2) + places("b", inpatient=1), 1.0, 0, occupancy.ask())
    assert occupancy.held() == {"a": {"outpatient": 2}, "b": {"inpatient": 1}}
    occupancy.load(places("a", outpatient=3), 2.0, 0, occupancy.ask())
    assert occupancy.held() == {"a": {"outpatient": 3}, "b": {}}


def test_an_earlier_read_answered_late_changes_nothing_of_a_later_one():
    occupancy = Occupancy()
    occupancy.load([], 1.0, 0, occupancy.ask())
    snapshot = occupancy.ask()  # a whole load asked for, slow to answer
    event = occupancy.ask()  # then an event's read of partner a
    assert occupancy.apply("a", places("a", outpatient=5), event)
    occupancy.load(places("a", outpatient=4) + places("b", outpatient=1), 2.0, 0, snapshot)
    assert occupancy.held() == {"a": {"outpatient": 5}, "b": {"outpatient": 1}}
    assert not occupancy.apply("a", places("a", outpatient=4), snapshot)
    assert occupancy.apply("a", places("a"), occupancy.ask())
    assert occupancy.held()["a"] == {}


def test_a_resync_makes_a_whole_load_due():
    occupancy = Occupancy(refresh_seconds=30)
    assert occupancy.due(0.0)
    occupancy.load([], 10.0, occupancy.wanted, occupancy.ask())
    assert not occupancy.due(11.0)
    occupancy.resync()
    assert occupancy.due(11.0)
    occupancy.load([], 11.0, occupancy.wanted, occupancy.ask())
    assert not occupancy.due(40.9) and occupancy.due(41.0)


@pytest.mark.parametrize(
    ("event", "moves"),
    [
        (lambda: produced.referral_moved("accepted"), True),
        (lambda: produced.referral_moved("admitted"), False),
        (lambda: produced.referral_moved("completed"), True),
        (lambda: produced.referral_moved("dropped_out"), True),
        (lambda: produced.referral_moved("transferred"), True),
        (lambda: produced.referral_moved("rejected"), False),
        (lambda: produced.referral_moved("cancelled"), False),  # cancelled before accepting
        (lambda: produced.referral_undone(status="accepted"), True),
        (lambda: produced.referral_undone(status="admitted"), False),
        (lambda: produced.referral_undone(status="completed"), True),
        (lambda: produced.referral_requested(), False),
    ],
)
def test_an_event_calls_for_a_read_when_its_referral_took_or_gave_back_a_place(event, moves):
    told = event()
    assert moves_a_place(told["data"]) is moves
    if moves:
        assert told["event_type"] in OCCUPANCY_EVENTS
