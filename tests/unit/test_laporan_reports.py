"""laporan's rules without a broker or a database: deadlines, the validation rules of a
report, review, the counts derived from referral events, indicators and suppression."""

from __future__ import annotations

import copy
import dataclasses
from datetime import UTC, date, datetime, timedelta

import pytest

from bersinar import codes
from services.laporan import domain
from services.laporan.domain import (
    AgreementTerm,
    Episode,
    PartnerMonth,
    ReportPolicy,
)

POLICY = ReportPolicy(start_period="2026-01", due_day=7, due_soon_days=3, lock_after_days=30)


def wib(y, m, d, hour=10, minute=0):
    """A moment given in Bengkulu time (UTC+7), as UTC."""
    return datetime(y, m, d, hour, minute, tzinfo=domain.LOCAL_TZ).astimezone(UTC)


# --- deadlines ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "due"),
    [("2026-11", date(2026, 12, 7)), ("2026-12", date(2027, 1, 7)), ("2027-01", date(2027, 2, 7))],
)
def test_a_report_is_due_on_day_7_of_the_next_month(period, due):
    assert POLICY.due_on(period) == due


def test_the_due_day_is_configurable_and_checked():
    assert ReportPolicy(due_day=5).due_on("2026-11") == date(2026, 12, 5)
    with pytest.raises(ValueError):
        ReportPolicy(due_day=31)
    with pytest.raises(ValueError):
        ReportPolicy(start_period="2026-13")


@pytest.mark.parametrize(
    ("today", "notice"),
    [
        (date(2026, 12, 3), None),
        (date(2026, 12, 4), "due_soon"),  # 3 days before the 7th
        (date(2026, 12, 7), "due_soon"),  # the due date itself is still on time
        (date(2026, 12, 8), "overdue"),
        (date(2027, 3, 1), "overdue"),
    ],
)
def test_notices_follow_the_calendar(today, notice):
    assert POLICY.notice_due("2026-11", today, submitted=False) == notice
    assert POLICY.notice_due("2026-11", today, submitted=True) is None


def test_status_timeliness_and_lock():
    assert POLICY.status_today("open", "2026-11", date(2026, 12, 7)) == "open"
    assert POLICY.status_today("open", "2026-11", date(2026, 12, 8)) == "missing"
    assert POLICY.status_today("returned", "2026-11", date(2027, 1, 8)) == "returned"
    assert POLICY.timeliness("2026-11", date(2026, 12, 7)) == "submitted_on_time"
    assert POLICY.timeliness("2026-11", date(2026, 12, 8)) == "submitted_late"
    assert POLICY.locks_after("2026-11") == date(2026, 12, 30)
    assert not POLICY.locked("2026-11", date(2026, 12, 30), reopened=False)
    assert POLICY.locked("2026-11", date(2026, 12, 31), reopened=False)
    assert not POLICY.locked("2026-11", date(2026, 12, 31), reopened=True)


def test_periods_to_check_are_the_ended_months_from_the_start():
    assert POLICY.periods_to_check(date(2026, 1, 31)) == []
    assert POLICY.periods_to_check(date(2026, 3, 1)) == ["2026-01", "2026-02"]
    assert ReportPolicy(start_period="2026-11").periods_to_check(date(2027, 1, 2)) == [
        "2026-11",
        "2026-12",
    ]


@pytest.mark.parametrize(
    ("terms", "owes"),
    [
        ([AgreementTerm(date(2023, 5, 30), date(2028, 5, 29))], True),
        ([AgreementTerm(date(2026, 11, 30), date(2027, 5, 29))], True),  # one day is enough
        ([AgreementTerm(date(2025, 1, 1), date(2026, 11, 1))], True),
        ([AgreementTerm(date(2025, 1, 1), date(2026, 10, 31))], False),
        ([AgreementTerm(date(2026, 12, 1), date(2027, 12, 1))], False),
        (
            [AgreementTerm(date(2025, 1, 1), date(2028, 1, 1), terminated_on=date(2026, 10, 15))],
            False,
        ),
        (
            [AgreementTerm(date(2025, 1, 1), date(2028, 1, 1), terminated_on=date(2026, 11, 15))],
            True,
        ),
        ([], False),
    ],
)
def test_a_partner_owes_a_report_for_a_month_its_agreement_touches(terms, owes):
    assert domain.owes_report(terms, "2026-11") is owes


# --- validation rules ----------------------------------------------------------------------


def counts(start, admitted, completed, dropped_out, transferred_out, end):
    return dict(
        start=start,
        admitted=admitted,
        completed=completed,
        dropped_out=dropped_out,
        transferred_out=transferred_out,
        end=end,
    )


def consistent_report():
    return {
        "counts": {
            "total": counts(10, 4, 2, 1, 1, 10),
            "by_sex": {"M": counts(7, 3, 2, 1, 0, 7), "F": counts(3, 1, 0, 0, 1, 3)},
            "by_service_type": {
                "inpatient": counts(6, 2, 1, 1, 0, 6),
                "outpatient": counts(4, 2, 1, 0, 1, 4),
            },
        },
        "services_delivered": {"counselling_sessions": 30, "group_sessions": 4, "home_visits": 2},
        "capacity_building": {"activities": 1, "staff_trained": 3},
        "narrative": "Kegiatan berjalan baik.",
    }


def test_a_consistent_report_breaks_no_rule():
    assert domain.validate_report(consistent_report(), sex_served="all") == []


def test_each_broken_rule_is_named_with_a_message():
    report = consistent_report()
    report["counts"]["total"]["end"] = 11  # balance broken in the total, and the sums
    report["counts"]["by_sex"]["F"]["admitted"] = -1  # negative; F balance; sums
    report["narrative"] = "  "
    named = domain.breaches_by_rule(domain.validate_report(report))
    assert set(named) == {
        "balance",
        "non_negative",
        "by_sex_sums_to_total",
        "by_service_type_sums_to_total",
        "narrative_required",
    }
    assert any("awal 10 + masuk 4" in m and "bukan akhir 11" in m for m in named["balance"])
    assert any("perempuan" in m for m in named["non_negative"])
    assert all(isinstance(m, str) and m for ms in named.values() for m in ms)


def test_start_must_equal_the_previous_end_and_sex_served_is_respected():
    previous = copy.deepcopy(consistent_report()["counts"])
    previous["total"]["end"] = 9
    named = domain.breaches_by_rule(
        domain.validate_report(consistent_report(), previous_end=previous, sex_served="female")
    )
    assert set(named) == {"start_equals_previous_end", "sex_served"}
    assert "awal bulan (total) 10" in named["start_equals_previous_end"][0]
    named = domain.breaches_by_rule(
        domain.validate_report(consistent_report(), services_offered=["outpatient"])
    )
    assert set(named) == {"service_offered"}


def test_review_moves_a_report_along():
    assert domain.after_submission("open", "submitted_late") == "submitted_late"
    assert domain.after_submission("returned", "submitted_on_time") == "submitted_on_time"
    assert domain.after_review("submitted_late", "return") == "returned"
    assert domain.after_review("submitted_on_time", "approve") == "approved"
    with pytest.raises(domain.ReviewRefused):
        domain.after_submission("approved", "submitted_late")
    for status in ("open", "missing", "returned", "approved"):
        with pytest.raises(domain.ReviewRefused):
            domain.after_review(status, "approve")


def test_a_reopened_approved_report_goes_back_to_returned_others_keep_their_status():
    assert domain.after_reopen("approved") == "returned"
    for status in ("open", "missing", "submitted_on_time", "submitted_late", "returned"):
        assert domain.after_reopen(status) == status
    # returned again, it is resubmitted and reviewed like any returned report
    assert domain.after_submission(domain.after_reopen("approved"), "submitted_late") == (
        "submitted_late"
    )


# --- a fixed data set: November 2026 of two partners -------------------------------------------

KIPAS = [
    # in care since October, completed in November
    Episode(
        "kipas",
        "M",
        "inpatient",
        "25-34",
        "TAT",
        wib(2026, 10, 1),
        wib(2026, 10, 2),
        True,
        wib(2026, 10, 3),
        wib(2026, 11, 20),
        "completed",
    ),
    # admitted 1 Nov 00:30 WIB (31 Oct in UTC): a November admission, in care at the end
    Episode(
        "kipas",
        "F",
        "outpatient",
        "18-24",
        "IPWL",
        wib(2026, 10, 30),
        wib(2026, 10, 31),
        True,
        wib(2026, 11, 1, 0, 30),
    ),
    # requested and accepted in November (answered in 6 h), admitted, dropped out
    Episode(
        "kipas",
        "M",
        "outpatient",
        "25-34",
        "TAT",
        wib(2026, 11, 5, 8),
        wib(2026, 11, 5, 14),
        True,
        wib(2026, 11, 6),
        wib(2026, 11, 25),
        "dropped_out",
    ),
    # rejected after 2 h in November
    Episode(
        "kipas", "M", "inpatient", "35-44", "TAT", wib(2026, 11, 9, 8), wib(2026, 11, 9, 10), False
    ),
    # in care since September, transferred out on 30 Nov 23:59 WIB
    Episode(
        "kipas",
        "M",
        "inpatient",
        "35-44",
        "IPWL",
        wib(2026, 9, 1),
        wib(2026, 9, 1, 12),
        True,
        wib(2026, 9, 2),
        wib(2026, 11, 30, 23, 59),
        "transferred",
    ),
    # ended in December: in care at the end of November
    Episode(
        "kipas",
        "M",
        "aftercare",
        "25-34",
        "TAT",
        wib(2026, 10, 10),
        wib(2026, 10, 10, 20),
        True,
        wib(2026, 10, 11),
        wib(2026, 12, 1, 0, 1),
        "completed",
    ),
]
PESONA = [
    # accepted in November after 10 h, not yet admitted
    Episode(
        "pesona", "F", "outpatient", "18-24", "TAT", wib(2026, 11, 2, 8), wib(2026, 11, 2, 18), True
    ),
]


def test_prefill_counts_what_the_referral_events_recorded():
    recorded = domain.recorded_report_counts(KIPAS, "2026-11")
    assert recorded["total"] == counts(3, 2, 1, 1, 1, 2)
    assert recorded["by_sex"]["M"] == counts(3, 1, 1, 1, 1, 1)
    assert recorded["by_sex"]["F"] == counts(0, 1, 0, 0, 0, 1)
    assert recorded["by_service_type"]["inpatient"] == counts(2, 0, 1, 0, 1, 0)
    assert recorded["by_service_type"]["outpatient"] == counts(0, 2, 0, 1, 0, 1)
    assert recorded["by_service_type"]["aftercare"] == counts(1, 0, 0, 0, 0, 1)
    # what was recorded is itself a consistent report
    assert domain.validate_report({**consistent_report(), "counts": recorded}) == []


def test_a_reported_figure_that_differs_is_flagged_with_both_numbers():
    recorded = domain.recorded_report_counts(KIPAS, "2026-11")
    reported = copy.deepcopy(recorded)
    reported["total"]["admitted"] = 3
    reported["by_sex"]["F"]["admitted"] = 2
    assert domain.reconciliation_flags(reported, recorded) == [
        {"field": "counts.total.admitted", "reported": 3, "recorded": 2},
        {"field": "counts.by_sex.F.admitted", "reported": 2, "recorded": 1},
    ]
    assert domain.reconciliation_flags(recorded, recorded) == []


def test_indicators_match_hand_computed_values():
    months = [
        PartnerMonth(
            "kipas",
            expected=True,
            report_status="submitted_late",
            capacity=65,
            annual_target=50,
            episodes=KIPAS,
        ),
        PartnerMonth(
            "pesona",
            expected=True,
            report_status="approved",
            report_on_time=True,
            capacity=65,
            annual_target=50,
            episodes=PESONA,
        ),
        PartnerMonth(
            "dwin",
            expected=True,
            report_status="missing",
            capacity=70,
            annual_target=None,
            episodes=[],
        ),
    ]
    result = domain.indicators(months, "2026-11")
    kipas, pesona, dwin = result["partners"]
    # kipas: 1 report of 1 submitted, late; answered 2 (1 accepted: 6 h, 1 rejected: 2 h);
    # exits 3 (1 completed, 1 dropped out, 1 transferred); in care at the end 2 (the
    # 1 Nov admission and the aftercare client who left on 1 Dec) of 65; admitted in 2026:
    # all 5 admissions (2 Sep, 3 Oct, 11 Oct, 1 Nov, 6 Nov) of a target of 50
    assert kipas["reporting_rate"] == 1.0 and kipas["on_time_rate"] == 0.0
    assert kipas["acceptance_rate"] == 0.5
    assert kipas["median_response_hours"] == 4.0
    assert kipas["completion_rate"] == round(1 / 3, 4) == kipas["dropout_rate"]
    assert kipas["occupancy"] == round(2 / 65, 4)
    assert kipas["target_reached"] == round(5 / 50, 4)
    assert pesona["reporting_rate"] == 1.0 and pesona["on_time_rate"] == 1.0
    assert pesona["acceptance_rate"] == 1.0 and pesona["median_response_hours"] == 10.0
    assert pesona["completion_rate"] is None and pesona["occupancy"] == 0.0
    assert dwin["reporting_rate"] == 0.0 and dwin["acceptance_rate"] is None
    assert dwin["target_reached"] is None
    province = result["province"]
    assert province["reporting_rate"] == round(2 / 3, 4)
    assert province["on_time_rate"] == round(1 / 3, 4)
    assert province["acceptance_rate"] == round(2 / 3, 4)
    assert province["median_response_hours"] == 6.0  # of 6, 2 and 10
    assert province["occupancy"] == round(2 / 200, 4)
    assert province["target_reached"] == round(5 / 100, 4)
    assert set(result["definitions"]) >= {"reporting_rate", "occupancy", "target_reached"}


# --- the national export ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cells", "shown"),
    [
        ({"M": 10, "F": 7}, {"M": 10, "F": 7}),
        ({"M": 10, "F": 0}, {"M": 10, "F": 0}),  # nobody is nobody: zero is shown
        # one small cell: the next smallest is hidden too, or the total would reveal it
        ({"M": 10, "F": 2}, {"M": None, "F": None}),
        ({"a": 9, "b": 6, "c": 1}, {"a": 9, "b": None, "c": None}),
        ({"a": 9, "b": 2, "c": 1}, {"a": 9, "b": None, "c": None}),
        ({"total": 3}, {"total": None}),
    ],
)
def test_small_cells_are_suppressed(cells, shown):
    assert domain.suppress(cells, 5) == shown


def test_the_export_recaps_a_partner_month_without_anyone_in_it():
    many = [
        Episode(
            "kipas",
            "M" if i % 4 else "F",
            "inpatient" if i < 7 else "outpatient",
            "25-34",
            "TAT" if i < 9 else "IPWL",
            admitted_at=wib(2026, 11, 2) + timedelta(hours=i),
        )
        for i in range(11)
    ]
    recap = domain.export_partner(KIPAS + many, "2026-11", threshold=3)
    assert recap["admitted_total"] == 13
    # by hand: the 11 above (F for i = 0, 4, 8) and KIPAS's F of 1 Nov and M of 6 Nov
    assert recap["admitted"]["by_sex"] == {"F": 4, "M": 9}
    assert recap["admitted"]["by_service_type"] == {"inpatient": 7, "outpatient": 6}
    assert recap["admitted"]["by_source"] == {"IPWL": 3, "TAT": 10}
    assert recap["admitted"]["by_age_group"] == {"18-24": None, "25-34": None}
    assert recap["outcomes"] == {"completed": None, "dropped_out": None, "transferred_out": None}
    rows = domain.export_rows(
        [{"partner_id": "kipas", "kabupaten_kota": "Kota Bengkulu", **recap}], "2026-11"
    )
    assert {
        "period": "2026-11",
        "partner_id": "kipas",
        "kabupaten_kota": "Kota Bengkulu",
        "measure": "admitted_by_sex",
        "category": "F",
        "value": 4,
        "suppressed": False,
    } in rows
    assert all(
        set(r)
        == {"period", "partner_id", "kabupaten_kota", "measure", "category", "value", "suppressed"}
        for r in rows
    )


def test_the_month_counts_how_care_ended_by_the_discharge_summaries():
    # KIPAS's November with summaries on two of its three endings (the third ended
    # before summaries were recorded); the December ending is not November's
    summaries = {
        "completed": ("recovered", ("program_completed",)),
        "dropped_out": ("unchanged", ("lost_contact", "relocation")),
    }
    episodes = [
        dataclasses.replace(
            e,
            discharge_outcome=summaries[e.outcome][0],
            discharge_reasons=summaries[e.outcome][1],
        )
        if e.outcome in summaries
        else e
        for e in KIPAS
    ]
    found = domain.discharge_counts(episodes, "2026-11")
    assert found["total"] == 3
    assert found["without_summary"] == 1  # the transfer
    assert {k: v for k, v in found["by_outcome"].items() if v} == {"recovered": 1, "unchanged": 1}
    assert {k: v for k, v in found["by_reason"].items() if v} == {
        "program_completed": 1,
        "lost_contact": 1,
        "relocation": 1,
    }
    assert set(found["by_outcome"]) == set(codes.DISCHARGE_OUTCOMES)  # every code, 0 or more
    assert domain.discharge_counts(episodes, "2026-12")["by_outcome"]["recovered"] == 1
    # the indicators' figures count the same, by outcome
    figures = domain.indicators([PartnerMonth("kipas", episodes=episodes)], "2026-11")
    [kipas] = figures["partners"]
    assert kipas["figures"]["discharged_recovered"] == 1
    assert kipas["figures"]["discharged_unchanged"] == 1
    assert kipas["figures"]["discharged_improved"] == 0
    assert figures["province"]["figures"]["discharged_recovered"] == 1
