"""An admin's corrections, as rujukan's domain rules decide them: which transition an
undo takes back and to which status, what it refuses, when an undo takes a place again,
and what an identity correction changes."""

from __future__ import annotations

from datetime import date

import pytest

from bersinar.errors import Forbidden
from services.rujukan import domain
from services.rujukan.domain import Actor
from services.rujukan.exceptions import NothingChanged, NothingToUndo, StatusChanged

REQUESTED = (None, "requested", None)


def step(before, after, reason=None):
    return (before, after, reason)


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        ([REQUESTED, step("requested", "accepted")], ("requested", "accepted")),
        ([REQUESTED, step("requested", "rejected", "capacity_full")], ("requested", "rejected")),
        (
            [REQUESTED, step("requested", "accepted"), step("accepted", "admitted")],
            ("accepted", "admitted"),
        ),
        (
            [
                REQUESTED,
                step("requested", "accepted"),
                step("accepted", "admitted"),
                step("admitted", "transferred"),
            ],
            ("admitted", "transferred"),
        ),
        # entries that change no status are no transitions
        (
            [
                REQUESTED,
                step("requested", "accepted"),
                step("accepted", "accepted", "consent_withdrawn"),
                step("accepted", "accepted", "identity_corrected"),
            ],
            ("requested", "accepted"),
        ),
        # an undo takes its step back: the next undo reverts the step before
        (
            [
                REQUESTED,
                step("requested", "accepted"),
                step("accepted", "admitted"),
                step("admitted", "accepted", domain.UNDONE),
            ],
            ("requested", "accepted"),
        ),
        # undone, then moved again: the new move is the last one
        (
            [
                REQUESTED,
                step("requested", "accepted"),
                step("accepted", "requested", domain.UNDONE),
                step("requested", "cancelled"),
            ],
            ("requested", "cancelled"),
        ),
    ],
)
def test_the_last_transition_is_found_in_the_history(history, expected):
    assert domain.last_transition(history) == expected


@pytest.mark.parametrize(
    "history",
    [
        [REQUESTED],
        [REQUESTED, step("requested", "requested", "consent_withdrawn")],
        [REQUESTED, step("requested", "accepted"), step("accepted", "requested", domain.UNDONE)],
    ],
)
def test_a_referral_never_moved_or_walked_all_the_way_back_has_nothing_to_undo(history):
    with pytest.raises(NothingToUndo) as refused:
        domain.last_transition(history)
    assert (refused.value.code, refused.value.status) == ("NOTHING_TO_UNDO", 409)


def test_an_undo_returns_to_the_status_before_unless_the_referral_moved_since():
    assert domain.check_undo("admitted", "admitted", ("accepted", "admitted")) == "accepted"
    assert domain.check_undo("cancelled", "cancelled", ("accepted", "cancelled")) == "accepted"
    with pytest.raises(StatusChanged) as moved:
        domain.check_undo("completed", "admitted", ("admitted", "completed"))
    assert (moved.value.code, moved.value.status) == ("STATUS_CHANGED", 409)
    assert "expected_status" in moved.value.errors


def test_an_undo_into_an_active_status_from_one_holding_no_place_takes_a_place():
    assert domain.takes_place("cancelled", "accepted")
    assert domain.takes_place("completed", "admitted")
    assert domain.takes_place("transferred", "admitted")
    assert not domain.takes_place("admitted", "accepted")  # the place is kept
    assert not domain.takes_place("accepted", "requested")  # a place is freed
    assert not domain.takes_place("rejected", "requested")


def test_what_each_undone_status_set_is_cleared():
    assert domain.UNDO_CLEARS["admitted"] == ("admitted_at",)
    assert set(domain.UNDO_CLEARS["rejected"]) == {"responded_at", "rejection_reason", "ended_at"}
    assert set(domain.UNDO_CLEARS["transferred"]) == {"ended_at", "transferred_to_id"}
    assert set(domain.UNDO_CLEARS) == set(domain.TRANSITIONS[a][1] for a in domain.TRANSITIONS)


def test_only_an_admin_corrects_or_undoes():
    domain.check_may_correct(Actor("admin", "k"))
    for role in ("officer", "partner", "national"):
        with pytest.raises(Forbidden):
            domain.check_may_correct(Actor(role, "k", "p" if role == "partner" else None))


STORED = {
    "nik": "1771011708900001",
    "name": "Budi",
    "birth_date": date(1990, 8, 17),
    "sex": "M",
    "phone": None,
}


def test_a_correction_names_the_fields_it_changes_and_keeps_the_others():
    after, changed = domain.corrected_identity(STORED, {"name": "Budi Santoso", "sex": "M"})
    assert changed == ["name"]
    assert after == {**STORED, "name": "Budi Santoso"}
    after, changed = domain.corrected_identity(
        STORED, {"nik": "1771015708900001", "sex": "F", "phone": "08123456789"}
    )
    assert changed == ["nik", "sex", "phone"]
    assert after["birth_date"] == STORED["birth_date"]


def test_a_correction_equal_to_what_is_stored_is_refused():
    for correction in ({}, {"name": "Budi"}, {"sex": "M", "phone": None}):
        with pytest.raises(NothingChanged) as same:
            domain.corrected_identity(STORED, correction)
        assert (same.value.code, same.value.status) == ("NOTHING_CHANGED", 409)
