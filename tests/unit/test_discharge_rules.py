"""The discharge summary: how care ended (complete, drop-out, transfer) and its one
follow-up reminder; the input shape; what ending events carry."""

from __future__ import annotations

from datetime import date

import pytest
from marshmallow import ValidationError

from bersinar import codes
from bersinar.contracts.events import check_payload
from bersinar.contracts.referrals import EndingInput, TransferInput
from bersinar.errors import ValidationFailed
from harness import produced
from services.rujukan.domain import (
    ENDING_ACTIONS,
    Discharge,
    check_discharge,
    follow_up_due,
)
from services.rujukan.exceptions import DateOutOfRange
from services.rujukan.handlers import discharge_event_data

END = date(2027, 3, 10)


def test_a_summary_needs_an_outcome_and_a_reason():
    with pytest.raises(ValidationFailed) as refused:
        check_discharge("complete", {}, END)
    assert set(refused.value.errors["discharge"]) == {"outcome", "reasons"}
    with pytest.raises(ValidationFailed) as refused:
        check_discharge("drop_out", {"outcome": "improved", "reasons": []}, END)
    assert refused.value.errors["discharge"] == {
        "reasons": ["Pilih sedikitnya satu alasan layanan berakhir."]
    }


@pytest.mark.parametrize(
    "summary, field",
    [
        ({"outcome": "cured", "reasons": ["program_completed"]}, "outcome"),
        ({"outcome": "improved", "reasons": ["bored"]}, "reasons"),
        ({"outcome": "improved", "reasons": ["relocation", "relocation"]}, "reasons"),
    ],
)
def test_codes_outside_their_lists_are_refused_at_their_field(summary, field):
    with pytest.raises(ValidationFailed) as refused:
        check_discharge("transfer", summary, END)
    assert list(refused.value.errors["discharge"]) == [field]


@pytest.mark.parametrize(
    "follow_up_on, allowed",
    [
        (date(2027, 3, 9), False),  # before the end
        (END, False),  # the end day itself
        (date(2027, 3, 11), True),
        (date(2028, 3, 9), True),  # 365 days after
        (date(2028, 3, 10), False),  # 366 days after
    ],
)
def test_the_follow_up_day_comes_after_the_end_within_a_year(follow_up_on, allowed):
    summary = {"outcome": "improved", "reasons": ["program_completed"]}
    summary["follow_up_on"] = follow_up_on
    if allowed:
        assert check_discharge("complete", summary, END).follow_up_on == follow_up_on
        return
    with pytest.raises(DateOutOfRange) as refused:
        check_discharge("complete", summary, END)
    assert refused.value.status == 422
    assert list(refused.value.errors["discharge"]) == ["follow_up_on"]


def test_a_valid_summary_keeps_its_codes_and_a_blank_plan_is_none():
    found = check_discharge(
        "complete",
        {"outcome": "recovered", "reasons": ["program_completed"], "aftercare_plan": "  "},
        END,
    )
    assert found == Discharge("recovered", ("program_completed",), None, None)
    with pytest.raises(ValueError):
        check_discharge("admit", {"outcome": "recovered", "reasons": ["medical"]}, END)
    assert ENDING_ACTIONS == ("complete", "drop_out", "transfer")


def test_a_reminder_is_due_once_from_its_day_on():
    assert not follow_up_due(None, False, END)
    assert not follow_up_due(date(2027, 3, 11), False, END)
    assert follow_up_due(END, False, END)
    assert follow_up_due(date(2027, 3, 1), False, END)
    assert not follow_up_due(END, True, END)


def test_the_input_requires_a_summary_and_refuses_in_indonesian():
    with pytest.raises(ValidationError) as refused:
        EndingInput().load({"note": "selesai"})
    assert "discharge" in refused.value.messages
    with pytest.raises(ValidationError) as refused:
        TransferInput().load({"partner_id": "yayasan-kipas"})
    assert "discharge" in refused.value.messages
    with pytest.raises(ValidationError) as refused:
        EndingInput().load(
            {"discharge": {"outcome": "improved", "reasons": ["medical", "medical"]}}
        )
    assert refused.value.messages["discharge"]["reasons"] == ["Setiap alasan cukup disebut sekali."]
    with pytest.raises(ValidationError) as refused:
        EndingInput().load(
            {
                "discharge": {
                    "outcome": "improved",
                    "reasons": ["medical"],
                    "aftercare_plan": "x" * 2001,
                }
            }
        )
    assert "aftercare_plan" in refused.value.messages["discharge"]
    loaded = EndingInput().load(
        {"discharge": {"outcome": "improved", "reasons": ["medical"], "follow_up_on": "2027-04-01"}}
    )
    assert loaded["discharge"]["follow_up_on"] == date(2027, 4, 1)


def test_ending_events_carry_codes_and_the_day_never_the_plan():
    summary = Discharge("improved", ("program_completed",), "Konseling tiap pekan.", END)
    data = discharge_event_data(summary)
    assert data == {
        "outcome": "improved",
        "discharge_reasons": ["program_completed"],
        "follow_up_on": "2027-03-10",
    }
    assert "Konseling" not in repr(data)
    for status in ("completed", "dropped_out", "transferred"):
        event = produced.referral_moved(status)
        assert event["data"]["outcome"] in codes.DISCHARGE_OUTCOMES
        check_payload(event["event_type"], "rujukan", event["data"])
    due = produced.referral_follow_up_due()
    check_payload("referral_follow_up_due", "rujukan", due["data"])
    assert set(due["data"]) >= {"outcome", "follow_up_on", "partner_id"}
