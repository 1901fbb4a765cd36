"""The code lists and the event contracts without a broker: a producer cannot emit what
its contract does not declare, a consumer reads only what keeps it, every code a rule
produces is in its list, and every code people read has Indonesian words."""

from __future__ import annotations

import copy
from datetime import date, timedelta

import pytest

from bersinar import codes
from bersinar.contracts.events import (
    EVENT_SOURCES,
    EventContractError,
    check_payload,
    contract_of,
    load_event,
)
from bersinar.envelope import EnvelopeError
from harness import produced
from services.laporan import domain as laporan
from services.notifikasi import domain as notifikasi
from services.rujukan import domain as rujukan


def test_a_payload_keeping_its_contract_is_accepted_with_its_version():
    event = produced.referral_requested()
    assert check_payload("referral_requested", "rujukan", event["data"]) == 1
    assert event["schema_version"] == contract_of("referral_requested").version


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda d: d.pop("partner_id"), "data.partner_id"),
        (lambda d: d.update(sex="X"), "data.sex"),
        (lambda d: d.update(reason="CAPACITY_FULL"), "data.reason"),
        (lambda d: d.update(requested_at="2027-03-04"), "data.requested_at"),
        (lambda d: d.update(note="catatan bebas"), "data.note"),
    ],
    ids=["missing", "unknown-code", "upper-case-reason", "date-not-instant", "undeclared"],
)
def test_the_producer_cannot_emit_what_breaks_the_contract(change, field):
    data = copy.deepcopy(produced.referral_requested()["data"])
    change(data)
    with pytest.raises(EventContractError) as refused:
        check_payload("referral_requested", "rujukan", data)
    assert field in str(refused.value)


def test_an_event_is_emitted_only_by_the_service_that_owns_it():
    data = produced.report_event()["data"]
    with pytest.raises(EventContractError, match="emitted by laporan"):
        check_payload("report_overdue", "rujukan", data)
    with pytest.raises(EventContractError, match="no contract"):
        check_payload("report_lost", "laporan", data)


def test_a_consumer_reads_the_declared_fields_and_ignores_later_additions():
    event = produced.referral_requested()
    event["data"]["added_in_a_later_version"] = 1
    loaded = load_event(event)
    assert "added_in_a_later_version" not in loaded["data"]
    assert loaded["data"]["partner_name"] == "Yayasan Kipas"
    assert loaded["data"]["requested_at"] == event["data"]["requested_at"]  # still text


@pytest.mark.parametrize(
    "spoil",
    [
        lambda e: e["data"].pop("service_type"),
        lambda e: e.update(schema_version=9),
        lambda e: e.update(source="mitra"),
        lambda e: e.update(event_type="referral_lost"),
    ],
    ids=["payload", "version", "source", "type"],
)
def test_a_consumer_refuses_an_event_that_breaks_its_contract(spoil):
    event = produced.referral_requested()
    spoil(event)
    with pytest.raises(EnvelopeError):
        load_event(event)


def test_every_age_group_a_referral_gets_is_in_the_code_list():
    today = date(2027, 3, 4)
    groups = {rujukan.age_group(today - timedelta(days=365 * age + 1), today) for age in range(111)}
    assert groups == set(codes.CLIENT_AGE_GROUPS)


def test_every_rejection_reason_reads_in_indonesian_in_the_officers_notification():
    for reason, words in codes.REJECTION_REASONS.items():
        event = produced.referral_event(
            "referral_rejected",
            status="rejected",
            rejection_reason=reason,
            extra={"from_status": "requested"},
        )
        body = notifikasi.render("referral_rejected", notifikasi.INBOX, event["data"]).body
        assert words.lower() in body and reason not in body
        assert "Yayasan Kipas" in body


def test_every_event_has_an_emitter_a_route_and_words():
    assert set(EVENT_SOURCES) == set(notifikasi.ROUTES) == set(notifikasi.TEMPLATES)
    assert set(EVENT_SOURCES.values()) == {"mitra", "rujukan", "laporan", "notifikasi"}


def test_every_indicator_laporan_computes_has_words_and_definitions_in_both_languages():
    computed = laporan.indicators([laporan.PartnerMonth("p", expected=True)], "2026-10")
    assert set(computed["partners"][0]) - {"partner_id", "figures"} == set(codes.INDICATORS)
    assert set(codes.INDICATOR_DEFINITIONS) == set(codes.INDICATORS)
    assert set(codes.INDICATOR_DEFINITIONS_EN) == set(codes.INDICATORS)
    assert computed["definitions"] == codes.INDICATOR_DEFINITIONS


def test_a_label_is_the_words_of_a_code_or_the_code_itself():
    assert codes.label(codes.SEXES, "F") == "Perempuan"
    assert codes.label(codes.SEXES, "X") == "X"
    assert codes.label(codes.SEXES, None) == "-"
    assert codes.label({None: "Belum dikirim"}, None) == "Belum dikirim"


@pytest.mark.parametrize(
    "nik",
    ["١٧٧١٠٥٠٥٠١٩٠٠٠٠١", "１７７１０５０５０１９０００００１", "177105050190000１"],
    ids=["arabic-indic", "full-width", "one-full-width"],
)
def test_a_nik_is_sixteen_ascii_digits_at_the_edge_and_in_the_rule(nik):
    """Other scripts' digits would make the same person a new client each time."""
    from datetime import date

    from marshmallow import ValidationError

    from bersinar.contracts.referrals import ClientInput
    from bersinar.errors import ValidationFailed

    body = {"nik": nik, "name": "Klien", "birth_date": "1990-01-05", "sex": "M"}
    with pytest.raises(ValidationError) as refused:
        ClientInput().load(body)
    assert "nik" in refused.value.messages
    with pytest.raises(ValidationFailed):
        rujukan.check_nik(nik, date(1990, 1, 5), "M")
    rujukan.check_nik("1771050501900001", date(1990, 1, 5), "M")  # the same in ASCII
