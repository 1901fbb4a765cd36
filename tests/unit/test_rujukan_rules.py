"""Plain rules of rujukan added with the lifecycle: who the actor is and what it may see,
coded rejections, response deadlines by source, and the metrics fed from events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from marshmallow import ValidationError as MarshmallowError
from prometheus_client import REGISTRY

from bersinar.contracts.referrals import (
    ReferralFilter,
    ReferralReadQuery,
    RejectInput,
    TransferInput,
    TransitionInput,
)
from bersinar.errors import Forbidden, ValidationFailed
from harness import produced
from services.rujukan import metrics
from services.rujukan.domain import (
    Actor,
    DeadlinePolicy,
    action_name,
    check_may_create,
    check_rejection,
    deidentify,
    may_follow,
    may_see,
)

# --- Actor ----------------------------------------------------------------------------


def test_actor_from_the_gateway_dict_names_its_partner():
    actor = Actor.parse({"role": "partner", "key_id": "k1", "partner_id": "yayasan-kipas"})
    assert (actor.role, actor.key_id, actor.partner_id) == ("partner", "k1", "yayasan-kipas")
    assert actor.label == "partner:k1"


def test_actor_from_the_older_string_names_no_partner():
    actor = Actor.parse("partner:k1")
    assert (actor.role, actor.key_id, actor.partner_id) == ("partner", "k1", None)


@pytest.mark.parametrize(
    "actor,partner_id,expected",
    [
        ({"role": "admin", "key_id": "a"}, "yayasan-kipas", True),
        ({"role": "officer", "key_id": "o"}, "yayasan-kipas", True),
        ({"role": "partner", "key_id": "p", "partner_id": "yayasan-kipas"}, "yayasan-kipas", True),
        (
            {"role": "partner", "key_id": "p", "partner_id": "yayasan-pesona"},
            "yayasan-kipas",
            False,
        ),
        ({"role": "partner", "key_id": "p", "partner_id": None}, "yayasan-kipas", False),
        ("partner:p", "yayasan-kipas", False),
        ({"role": "national", "key_id": "n"}, "yayasan-kipas", False),
        ({"role": "ops", "key_id": "x"}, "yayasan-kipas", False),
    ],
)
def test_who_may_see_a_referral(actor, partner_id, expected):
    assert may_see(Actor.parse(actor), partner_id) is expected


@pytest.mark.parametrize(
    "role,partner_id,expected",
    [
        ("national", None, True),
        ("officer", None, True),
        ("partner", "yayasan-kipas", True),
        ("partner", "yayasan-pesona", False),
        ("ops", None, False),
    ],
)
def test_national_systems_follow_every_referrals_state(role, partner_id, expected):
    assert may_follow(Actor(role, "k", partner_id), "yayasan-kipas") is expected


def test_a_national_system_reads_a_referral_without_its_client_or_its_links():
    summary = {
        "id": "r2",
        "status": "accepted",
        "client": {"id": "c1", "sex": "F", "age_group": "25-34", "previous_referrals": 1},
        "previous_referral_id": "r1",
        "transferred_from_id": "r1",
        "transferred_to_id": None,
    }
    national = deidentify(summary, Actor("national", "n"))
    assert national["client"] is None and national["status"] == "accepted"
    assert "r1" not in str(national) and "c1" not in str(national)
    assert deidentify(summary, Actor("officer", "o")) == summary


def test_an_exports_pseudonyms_are_keyed_by_its_own_key_and_link_nothing_else():
    summary = {"id": "r2", "client": {"id": "c1", "sex": "F"}, "previous_referral_id": "r1"}
    one, other = "ab" * 32, "cd" * 32
    first = deidentify(summary, Actor("officer", "o"), one)
    assert first["client"] == {
        "id": deidentify(summary, Actor("national", "n"), one)["client"]["id"]
    }
    assert first["previous_referral_id"] is None and "c1" not in str(first)
    assert first["client"] != deidentify(summary, Actor("officer", "o"), other)["client"]


@pytest.mark.parametrize("role", ["partner", "national", "ops", ""])
def test_only_staff_create(role):
    with pytest.raises(Forbidden):
        check_may_create(Actor(role, "k"))
    check_may_create(Actor("officer", "k"))
    check_may_create(Actor("admin", "k"))


def test_drop_out_in_the_url_is_drop_out_in_the_code():
    assert action_name("drop-out") == "drop_out"
    assert action_name("accept") == "accept"


# --- rejections -----------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["capacity_full", "not_eligible", "client_unreachable"])
def test_coded_rejections_need_no_note(reason):
    check_rejection(reason, None)


def test_other_needs_a_note():
    with pytest.raises(ValidationFailed) as caught:
        check_rejection("other", "  ")
    assert "note" in caught.value.errors
    check_rejection("other", "klien pindah domisili")


@pytest.mark.parametrize("reason", [None, "", "full", "CAPACITY_FULL"])
def test_unknown_reason_is_refused(reason):
    with pytest.raises(ValidationFailed):
        check_rejection(reason, "x")


# --- deadlines ------------------------------------------------------------------------

REQUESTED = datetime(2026, 6, 15, 3, 0, tzinfo=UTC)


def test_default_deadline_is_48_hours():
    policy = DeadlinePolicy.from_config(None, None)
    assert policy.due_at(REQUESTED, "TAT") == datetime(2026, 6, 17, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "overrides", ["court=24, IPWL=72", {"court": 24, "IPWL": "72"}, "court=24,,IPWL=72"]
)
def test_deadline_overrides_by_source(overrides):
    policy = DeadlinePolicy.from_config("36", overrides)
    assert policy.hours_for("court") == 24
    assert policy.hours_for("IPWL") == 72
    assert policy.hours_for("voluntary") == 36


@pytest.mark.parametrize(
    "default,overrides", [(0, None), (48, "court=0"), (48, "court"), (48, "pengadilan=24")]
)
def test_bad_deadline_configuration_is_refused(default, overrides):
    with pytest.raises(ValueError):
        DeadlinePolicy.from_config(default, overrides)


# --- metrics --------------------------------------------------------------------------


def sample(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


def committed(*events):
    """What a committed unit of work hands the metrics: events and their ordering keys."""
    return [(event, f"referral:{event['data']['referral_id']}") for event in events]


def test_committed_events_feed_counters_and_histograms():
    labels = {"partner_id": "metrics-partner", "service_type": "inpatient"}
    before = {
        "accepted": sample("bersinar_referrals_total", status="accepted", **labels),
        "response": sample("bersinar_referral_response_seconds_sum", **labels),
        "admission": sample("bersinar_referral_admission_seconds_count", **labels),
        "overdue": sample("bersinar_referral_responses_overdue_total", **labels),
    }
    requested = datetime(2026, 6, 15, 3, tzinfo=UTC)
    _, accepted, admitted = produced.referral_story(
        [
            ("requested", requested),
            ("accepted", requested + timedelta(hours=6)),
            ("admitted", requested + timedelta(days=1)),
        ],
        partner_id="metrics-partner",
        service_type="inpatient",
    )
    overdue = produced.referral_overdue(partner_id="metrics-partner", service_type="inpatient")
    metrics.observe_committed(committed(accepted, admitted, overdue))
    assert sample("bersinar_referrals_total", status="accepted", **labels) == before["accepted"] + 1
    assert sample("bersinar_referral_response_seconds_sum", **labels) == (
        before["response"] + 6 * 3600
    )
    assert sample("bersinar_referral_admission_seconds_count", **labels) == before["admission"] + 1
    assert sample("bersinar_referral_responses_overdue_total", **labels) == before["overdue"] + 1


def test_occupancy_gauges():
    metrics.set_occupancy([("metrics-partner", "outpatient", 3, 20)])
    labels = {"partner_id": "metrics-partner", "service_type": "outpatient"}
    assert sample("bersinar_partner_occupancy", **labels) == 3
    assert sample("bersinar_partner_capacity", **labels) == 20


def test_occupancy_of_a_partner_that_is_gone_disappears():
    metrics.set_occupancy([("gone-partner", "inpatient", 1, 5), ("kept", "inpatient", 2, 5)])
    metrics.set_occupancy([("kept", "inpatient", 4, 5)])
    gone = {"partner_id": "gone-partner", "service_type": "inpatient"}
    assert REGISTRY.get_sample_value("bersinar_partner_occupancy", gone) is None
    assert REGISTRY.get_sample_value("bersinar_partner_capacity", gone) is None
    assert sample("bersinar_partner_occupancy", partner_id="kept", service_type="inpatient") == 4


# --- what may reach a query -----------------------------------------------------------


@pytest.mark.parametrize(
    "schema,data,field",
    [
        (TransitionInput, {"note": "kamar\x003"}, "note"),
        (RejectInput, {"reason": "other", "note": "a\x1bb"}, "note"),
        (TransferInput, {"partner_id": "yayasan-kipas\n"}, "partner_id"),
        (TransferInput, {"partner_id": "yayasan kipas"}, "partner_id"),
        (ReferralFilter, {"partner_id": "x\x00"}, "partner_id"),
        (ReferralFilter, {"cursor": "' OR 1=1 --"}, "cursor"),
        (ReferralReadQuery, {"purpose": "lihat\x00"}, "purpose"),
    ],
)
def test_control_characters_and_odd_ids_are_refused_before_any_query(schema, data, field):
    with pytest.raises(MarshmallowError) as caught:
        schema().load(data)
    assert field in caught.value.normalized_messages()


def test_notes_keep_their_line_breaks():
    assert TransitionInput().load({"note": "baris 1\nbaris 2\tx"})["note"] == "baris 1\nbaris 2\tx"
