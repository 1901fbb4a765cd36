"""laporan with the real broker and PostgreSQL: deadlines noticed exactly once by two
instances on a shared file clock, a report refused with its rules and nothing stored,
the prefill equal to what the referral events recorded (a redelivered event counting
once), and indicators and the export matching hand-computed values."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import eventlet
import pytest
from marshmallow import ValidationError
from nameko.testing.services import entrypoint_hook
from prometheus_client import REGISTRY
from sqlalchemy import func, select, text

from bersinar.codes import LOCAL_TZ
from bersinar.relay import BatchPublisher
from harness import produced
from services.laporan import handlers
from services.laporan.models import AgreementView, ReportVersion
from services.laporan.service import LaporanService
from tests.integration.conftest import wait_until

PARTNER = "klinik-uji-laporan"
OTHER = "yayasan-uji-dua"
OFFICER = {"role": "officer", "key_id": "k-officer", "partner_id": None}
OPERATOR = {"role": "partner", "key_id": "k-operator", "partner_id": PARTNER}


def wib(y, m, d, hour=10, minute=0):
    return datetime(y, m, d, hour, minute, tzinfo=LOCAL_TZ).astimezone(UTC)


def publish(amqp_uri, exchange, *events):
    publisher = BatchPublisher(amqp_uri, exchange)
    try:
        outcomes = publisher.publish(
            [(e["event_id"], e["event_type"], json.dumps(e).encode(), {}) for e in events]
        )
    finally:
        publisher.close()
    assert set(outcomes.values()) == {"confirmed"}, outcomes


def handled(dbs) -> int:
    with dbs["laporan"]() as uow:
        return uow.session.scalar(text("SELECT COUNT(*) FROM inbox"))


def outbox(dbs, event_type):
    with dbs["laporan"]() as uow:
        rows = uow.session.execute(
            text("SELECT payload FROM outbox WHERE event_type = :t ORDER BY id"), {"t": event_type}
        ).all()
    return [json.loads(r[0])["data"] for r in rows]


def register(amqp_uri, partner_id, services, valid_from, valid_until, target, sex="all"):
    """A partner and its PKS, as mitra announces them."""
    partner = produced.partner_event(
        "partner_registered",
        partner_id,
        kabupaten_kota="Seluma",
        sex_served=sex,
        offers=produced.offers(*services),
    )
    partner["data"]["extra_key_laporan_ignores"] = True  # as a later version may add
    start = date.fromisoformat(valid_from)
    agreement = produced.agreement_signed(
        partner_id,
        id=f"pks-{partner_id}",
        number=f"PKS/{partner_id}",
        signed_on=start,
        valid_from=start,
        valid_until=date.fromisoformat(valid_until),
        annual_target=target,
        scope=["reporting"],
    )
    publish(amqp_uri, "mitra.events", partner, agreement)


@pytest.fixture
def laporan(container_factory, make_config, clean_databases, clock_file, amqp_uri):
    """Two laporan instances on one file clock (their timer driven by the test), and two
    partners with agreements covering November 2026."""
    config = make_config(
        "laporan",
        CLOCK_FILE=str(clock_file.path),
        REPORT_START_PERIOD="2026-11",
        REPORT_CHECK_INTERVAL=3600,
        EXPORT_SMALL_CELL_THRESHOLD=2,
    )
    instances = [container_factory(LaporanService, config) for _ in range(2)]
    for instance in instances:
        instance.start()
    register(
        amqp_uri, PARTNER, [("inpatient", 10), ("outpatient", 10)], "2026-11-15", "2027-11-14", 24
    )
    register(amqp_uri, OTHER, [("outpatient", 10)], "2026-01-01", "2026-12-31", 12)

    def agreements():
        with clean_databases["laporan"]() as uow:
            return uow.session.scalar(select(func.count()).select_from(AgreementView)) == 2

    wait_until(agreements, message="laporan to learn the agreements")
    return instances, clean_databases


def call(container, method, *args):
    with entrypoint_hook(container, method) as hook:
        return hook(*args)


def report_body(total, by_sex=None, by_service_type=None, narrative="Layanan berjalan."):
    return {
        "counts": {
            "total": total,
            "by_sex": by_sex or {},
            "by_service_type": by_service_type or {},
        },
        "services_delivered": {"counselling_sessions": 12, "group_sessions": 2, "home_visits": 1},
        "capacity_building": {"activities": 1, "staff_trained": 2},
        "narrative": narrative,
    }


def counts(start, admitted, completed, dropped_out, transferred_out, end):
    return dict(
        start=start,
        admitted=admitted,
        completed=completed,
        dropped_out=dropped_out,
        transferred_out=transferred_out,
        end=end,
    )


def test_due_soon_and_overdue_are_emitted_once_by_two_instances(
    laporan, clock_file, container_factory
):
    (first, second), dbs = laporan

    def check_in_both():
        with (
            entrypoint_hook(first, "check_reports") as a,
            entrypoint_hook(second, "check_reports") as b,
        ):
            runs = [eventlet.spawn(a), eventlet.spawn(b)]
            return [notice for run in runs for _, notice in run.wait()]

    schedule = [
        ("2026-11-30", []),  # November not over: nothing is due yet
        ("2026-12-01", []),
        ("2026-12-04", ["due_soon", "due_soon"]),  # both partners, 3 days before the 7th
        ("2026-12-07", []),
        ("2026-12-08", ["overdue", "overdue"]),
        ("2026-12-20", []),
    ]
    seen = []
    for day, expected in schedule:
        clock_file.set(datetime.fromisoformat(day).date())
        sent = check_in_both() + check_in_both()  # and again: nothing more
        assert sorted(sent) == expected, day
        seen.append((day, sent))

    # a late submission stops the December notices for this partner only
    late = call(
        first, "submit_report", PARTNER, "2026-11", report_body(counts(0, 0, 0, 0, 0, 0)), OPERATOR
    )
    assert (late["status"], late["timeliness"]) == ("submitted_late", "submitted_late")
    clock_file.set(datetime(2027, 1, 8).date())
    sent = check_in_both() + check_in_both()
    # December: the other partner's PKS ends on 31 Dec, so both owe it; Jan 8 is past due,
    # so no due-soon any more: one overdue each
    assert sorted(sent) == ["overdue", "overdue"]
    due_soon, overdue = outbox(dbs, "report_due_soon"), outbox(dbs, "report_overdue")
    print(f"\n[report notices] schedule={seen} due_soon={len(due_soon)} overdue={len(overdue)}")
    assert sorted((e["partner_id"], e["period"]) for e in due_soon) == [
        (PARTNER, "2026-11"),
        (OTHER, "2026-11"),
    ]
    assert sorted((e["partner_id"], e["period"]) for e in overdue) == [
        (PARTNER, "2026-11"),
        (PARTNER, "2026-12"),
        (OTHER, "2026-11"),
        (OTHER, "2026-12"),
    ]
    assert all(e["due_on"] in ("2026-12-07", "2027-01-07") for e in overdue)
    assert {e["status"] for e in overdue} == {"missing"}
    listed = call(second, "list_reports", {"period": "2026-11"}, OFFICER)
    assert {(r["partner_id"], r["status"]) for r in listed} == {
        (PARTNER, "submitted_late"),
        (OTHER, "missing"),
    }
    # a restart (a new instance) emits nothing again
    first.stop()
    second.stop()
    third = container_factory(LaporanService, first.config)
    third.start()
    assert call(third, "check_reports") == []


def test_an_inconsistent_report_is_refused_with_its_rules_and_nothing_is_stored(
    laporan, clock_file
):
    (first, _), dbs = laporan
    clock_file.set(datetime(2026, 12, 3).date())
    bad = report_body(
        counts(2, 3, 1, 0, 0, 5),  # 2 + 3 − 1 = 4, not 5
        by_sex={"M": counts(2, 3, 1, 0, 0, 4), "F": counts(0, -1, 0, 0, 0, -1)},
        narrative="",
    )
    with pytest.raises(Exception) as refused:
        call(first, "submit_report", PARTNER, "2026-11", bad, OPERATOR)
    error = refused.value
    print(f"\n[refused] code={getattr(error, 'code', None)} rules={sorted(error.errors)}")
    assert (error.code, error.status) == ("REPORT_INCONSISTENT", 422)
    assert set(error.errors) == {
        "balance",
        "non_negative",
        "by_sex_sums_to_total",
        "narrative_required",
    }
    with dbs["laporan"]() as uow:
        assert uow.session.scalar(select(func.count()).select_from(ReportVersion)) == 0
    assert outbox(dbs, "report_submitted") == []
    view = call(first, "get_report", PARTNER, "2026-11", OFFICER)
    assert (view["version"], view["content"], view["status"]) == (0, None, "open")

    # another partner's report does not exist for this operator
    with pytest.raises(Exception) as hidden:
        call(first, "get_report", OTHER, "2026-11", OPERATOR)
    assert hidden.value.code == "NOT_FOUND"

    # the period locks 30 days after its end, until an officer reopens it
    clock_file.set(datetime(2027, 1, 2).date())
    good = report_body(counts(0, 0, 0, 0, 0, 0))
    with pytest.raises(Exception) as locked:
        call(first, "submit_report", PARTNER, "2026-11", good, OPERATOR)
    assert locked.value.code == "PERIOD_LOCKED"
    call(first, "reopen_report", PARTNER, "2026-11", {"comment": "Diberi waktu"}, OFFICER)
    submitted = call(first, "submit_report", PARTNER, "2026-11", good, OPERATOR)
    assert (submitted["status"], submitted["version"]) == ("submitted_late", 1)


REFERRALS = {
    # referral: (sex, service type, age group, source, [(event, moment), ...])
    "r1": (
        "M",
        "inpatient",
        "25-34",
        "TAT",
        [
            ("requested", wib(2026, 10, 5, 10)),
            ("accepted", wib(2026, 10, 5, 16)),
            ("admitted", wib(2026, 10, 6)),
            ("completed", wib(2026, 11, 20)),
        ],
    ),
    "r2": (
        "F",
        "outpatient",
        "18-24",
        "IPWL",
        [
            ("requested", wib(2026, 11, 2, 8)),
            ("accepted", wib(2026, 11, 2, 12)),
            ("admitted", wib(2026, 11, 3)),
        ],
    ),
    "r3": (
        "M",
        "outpatient",
        "35-44",
        "TAT",
        [("requested", wib(2026, 11, 10, 8)), ("rejected", wib(2026, 11, 10, 9))],
    ),
    "r4": (
        "M",
        "inpatient",
        "25-34",
        "TAT",
        [
            ("requested", wib(2026, 11, 11, 8)),
            ("accepted", wib(2026, 11, 11, 20)),
            ("admitted", wib(2026, 11, 12)),
            ("dropped_out", wib(2026, 11, 28)),
        ],
    ),
    # transferred out on 30 Nov 23:30 in Bengkulu (16:30 UTC): a November transfer
    "r5": (
        "M",
        "outpatient",
        "25-34",
        "TAT",
        [
            ("requested", wib(2026, 10, 20, 8)),
            ("accepted", wib(2026, 10, 20, 10)),
            ("admitted", wib(2026, 10, 21)),
            ("transferred", wib(2026, 11, 30, 23, 30)),
        ],
    ),
}


def referral_events():
    """Each referral's story, event by event as rujukan makes them."""
    events = []
    for referral, (sex, service_type, age_group, source, steps) in REFERRALS.items():
        story = produced.referral_story(
            steps,
            partner_id=PARTNER,
            sex=sex,
            service_type=service_type,
            age_group=age_group,
            source=source,
            id=f"00000000-0000-0000-0000-0000000000{referral[1]}0",
        )
        for event in story:
            event["data"]["an_extra_key"] = 1  # as a later version may add
        events += story
    return events


def test_prefill_indicators_and_export_follow_the_referral_events(laporan, clock_file, amqp_uri):
    (first, second), dbs = laporan
    events = referral_events()
    before = handled(dbs)
    redelivered = [e for e in events if e["data"]["referral_id"].endswith("40")]

    def duplicates():
        return sum(
            REGISTRY.get_sample_value(
                "bersinar_events_handled_total",
                {
                    "service": "laporan",
                    "consumer": f"on_referral_{e['event_type'][9:]}",
                    "event_type": e["event_type"],
                    "outcome": "duplicate",
                },
            )
            or 0
            for e in {e["event_type"]: e for e in redelivered}.values()
        )

    duplicates_before = duplicates()
    publish(amqp_uri, "rujukan.events", *events)
    publish(amqp_uri, "rujukan.events", *redelivered)  # at least once: again
    wait_until(lambda: handled(dbs) == before + len(events), message="every referral event")
    wait_until(
        lambda: duplicates() == duplicates_before + len(redelivered),
        message="the redeliveries to be seen and ignored",
    )
    print(
        f"\n[prefill] events={len(events)} redelivered={len(redelivered)} "
        f"handled={handled(dbs) - before} ignored={duplicates() - duplicates_before}"
    )

    clock_file.set(datetime(2026, 12, 5).date())
    view = call(first, "get_report", PARTNER, "2026-11", OPERATOR)
    prefill = view["prefill"]
    assert prefill["total"] == counts(2, 2, 1, 1, 1, 1)
    assert prefill["by_sex"]["M"] == counts(2, 1, 1, 1, 1, 0)
    assert prefill["by_sex"]["F"] == counts(0, 1, 0, 0, 0, 1)
    assert prefill["by_service_type"]["inpatient"] == counts(1, 1, 1, 1, 0, 0)
    assert prefill["by_service_type"]["outpatient"] == counts(1, 1, 0, 0, 1, 1)
    assert prefill["by_service_type"]["aftercare"] == counts(0, 0, 0, 0, 0, 0)

    # the partner reports one admission more than recorded (a walk-in): flagged
    reported = json.loads(json.dumps(prefill))
    reported["total"].update(admitted=3, end=2)
    reported["by_sex"]["F"].update(admitted=2, end=2)
    reported["by_service_type"]["outpatient"].update(admitted=2, end=2)
    submitted = call(
        second,
        "submit_report",
        PARTNER,
        "2026-11",
        {**report_body(reported["total"]), "counts": reported},
        OPERATOR,
    )
    assert submitted["status"] == "submitted_on_time"
    assert submitted["flags"] == [
        {"field": "counts.total.admitted", "reported": 3, "recorded": 2},
        {"field": "counts.total.end", "reported": 2, "recorded": 1},
        {"field": "counts.by_sex.F.admitted", "reported": 2, "recorded": 1},
        {"field": "counts.by_sex.F.end", "reported": 2, "recorded": 1},
        {"field": "counts.by_service_type.outpatient.admitted", "reported": 2, "recorded": 1},
        {"field": "counts.by_service_type.outpatient.end", "reported": 2, "recorded": 1},
    ]

    result = call(first, "indicators", "2026-11")
    mine = next(p for p in result["partners"] if p["partner_id"] == PARTNER)
    other = next(p for p in result["partners"] if p["partner_id"] == OTHER)
    # by hand: answered in November r2 (4 h), r3 (rejected, 1 h), r4 (12 h); exits r1
    # completed, r4 dropped out, r5 transferred; in care at the end r2, of capacity 20;
    # admitted in 2026 r1, r2, r4, r5 of a target of 24
    assert mine["reporting_rate"] == 1.0 and mine["on_time_rate"] == 1.0
    assert mine["acceptance_rate"] == 0.6667 and mine["median_response_hours"] == 4.0
    assert mine["completion_rate"] == 0.3333 and mine["dropout_rate"] == 0.3333
    assert mine["occupancy"] == 0.05 and mine["target_reached"] == 0.1667
    assert other["reporting_rate"] == 0.0 and other["acceptance_rate"] is None
    assert other["occupancy"] == 0.0 and other["target_reached"] == 0.0
    province = result["province"]
    assert province["reporting_rate"] == 0.5 and province["on_time_rate"] == 0.5
    assert province["occupancy"] == round(1 / 30, 4)
    assert province["target_reached"] == round(4 / 36, 4)

    recap = call(first, "monthly_export", "2026-11")  # small cells: below 2
    row = next(p for p in recap["partners"] if p["partner_id"] == PARTNER)
    assert row["admitted_total"] == 2
    assert row["admitted"]["by_sex"] == {"F": None, "M": None}
    assert row["outcomes"] == {"completed": None, "dropped_out": None, "transferred_out": None}
    with dbs["laporan"]() as uow:  # nothing hidden: the exact figures
        exact = handlers.monthly_export(uow, "2026-11", 1)
    row = next(p for p in exact["partners"] if p["partner_id"] == PARTNER)
    assert row["admitted"] == {
        "by_sex": {"F": 1, "M": 1},
        "by_age_group": {"18-24": 1, "25-34": 1},
        "by_service_type": {"inpatient": 1, "outpatient": 1},
        "by_source": {"IPWL": 1, "TAT": 1},
    }
    assert row["outcomes"] == {"completed": 1, "dropped_out": 1, "transferred_out": 1}
    pseudonyms = {e["data"]["client_pseudonym"] for e in events}
    assert not [p for p in pseudonyms if p in json.dumps(recap) + json.dumps(exact)]
    assert "0000000000" not in json.dumps(recap)


def test_a_locked_month_sent_late_counts_as_late_and_an_approved_report_is_reopened_with_a_reason(
    laporan, clock_file
):
    (first, _), dbs = laporan
    policy_today = datetime(2027, 1, 2).date()  # November locked since 31 December
    clock_file.set(policy_today)
    good = report_body(counts(0, 0, 0, 0, 0, 0))
    missing = call(first, "indicators", "2026-11")
    row = next(p for p in missing["partners"] if p["partner_id"] == PARTNER)
    assert (row["figures"]["submitted_reports"], row["figures"]["on_time_reports"]) == (0, 0)

    # a reopening says why: refused at the field, nothing changed
    for body in ({}, {"comment": "   "}):
        with pytest.raises(ValidationError) as refused:
            call(first, "reopen_report", PARTNER, "2026-11", body, OFFICER)
        assert list(refused.value.messages) == ["comment"]
    assert call(first, "get_report", PARTNER, "2026-11", OFFICER)["reopened"] is False

    call(first, "reopen_report", PARTNER, "2026-11", {"comment": "Listrik padam."}, OFFICER)
    sent = call(first, "submit_report", PARTNER, "2026-11", good, OPERATOR)
    assert (sent["status"], sent["timeliness"]) == ("submitted_late", "submitted_late")
    late = call(first, "indicators", "2026-11")
    row = next(p for p in late["partners"] if p["partner_id"] == PARTNER)
    # late, not missing: submitted (the reporting rate) and not on time
    assert (row["figures"]["submitted_reports"], row["figures"]["on_time_reports"]) == (1, 0)
    assert (row["reporting_rate"], row["on_time_rate"]) == (1.0, 0.0)

    # an approved report: reopened (with its reason in the history), corrected, resubmitted
    call(first, "review_report", PARTNER, "2026-11", "approve", {}, OFFICER)
    with pytest.raises(Exception) as approved:
        call(first, "submit_report", PARTNER, "2026-11", good, OPERATOR)
    assert approved.value.code == "PERIOD_LOCKED"  # approval locks it again
    reopened = call(
        first, "reopen_report", PARTNER, "2026-11", {"comment": "Angka salah ketik."}, OFFICER
    )
    assert (reopened["status"], reopened["reopened"]) == ("returned", True)
    assert (reopened["history"][-1]["action"], reopened["history"][-1]["comment"]) == (
        "reopened",
        "Angka salah ketik.",
    )
    again = call(first, "submit_report", PARTNER, "2026-11", good, OPERATOR)
    assert (again["status"], again["version"]) == ("submitted_late", 2)
    row = next(
        p for p in call(first, "indicators", "2026-11")["partners"] if p["partner_id"] == PARTNER
    )
    assert (row["figures"]["submitted_reports"], row["figures"]["on_time_reports"]) == (1, 0)


def test_an_undone_step_and_a_corrected_client_change_the_prefill_and_the_export(
    laporan, clock_file, amqp_uri
):
    (first, _), dbs = laporan
    story = produced.referral_story(
        [
            ("requested", wib(2026, 11, 5, 8)),
            ("accepted", wib(2026, 11, 5, 12)),
            ("admitted", wib(2026, 11, 6)),
            ("completed", wib(2026, 11, 20)),
        ],
        partner_id=PARTNER,
        sex="M",
        birth_date=date(1995, 1, 1),
        service_type="inpatient",
    )
    before = handled(dbs)
    publish(amqp_uri, "rujukan.events", *story)
    wait_until(lambda: handled(dbs) == before + len(story), message="the referral's events")
    clock_file.set(datetime(2026, 12, 5).date())

    def prefill():
        return call(first, "get_report", PARTNER, "2026-11", OPERATOR)["prefill"]

    assert prefill()["by_sex"]["M"] == counts(0, 1, 1, 0, 0, 0)

    # an admin undoes the completion: in care again at the end of the month
    undone = produced.referral_undone(story[-1])
    publish(amqp_uri, "rujukan.events", undone)
    wait_until(lambda: handled(dbs) == before + len(story) + 1, message="the undo")
    assert prefill()["total"] == counts(0, 1, 0, 0, 0, 1)
    with dbs["laporan"]() as uow:
        exact = handlers.monthly_export(uow, "2026-11", 1)
    row = next(p for p in exact["partners"] if p["partner_id"] == PARTNER)
    assert row["outcomes"] == {"completed": 0, "dropped_out": 0, "transferred_out": 0}

    # then the client's identity is corrected: a woman of 18-24, not a man of 25-34
    corrected = produced.client_corrected(undone, sex="F", age_group="18-24")
    publish(amqp_uri, "rujukan.events", corrected)
    wait_until(lambda: handled(dbs) == before + len(story) + 2, message="the correction")
    figures = prefill()
    assert figures["by_sex"]["F"] == counts(0, 1, 0, 0, 0, 1)
    assert figures["by_sex"].get("M", counts(0, 0, 0, 0, 0, 0)) == counts(0, 0, 0, 0, 0, 0)
    assert figures["total"] == counts(0, 1, 0, 0, 0, 1)  # the status stays
    with dbs["laporan"]() as uow:
        exact = handlers.monthly_export(uow, "2026-11", 1)
    row = next(p for p in exact["partners"] if p["partner_id"] == PARTNER)
    assert row["admitted"]["by_sex"] == {"F": 1}
    assert row["admitted"]["by_age_group"] == {"18-24": 1}
