"""The event envelope of docs/architecture.md and the identity rule every payload obeys."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from bersinar.envelope import EnvelopeError, check_envelope, make_event

DESIGN_KEYS = {
    "event_id",
    "event_type",
    "source",
    "occurred_at",
    "schema_version",
    "correlation_id",
    "data",
}
DATA = {
    "referral_id": "ref-1",
    "partner_id": "yayasan-kipas",
    "client_pseudonym": "cl-1",
    "sex": "M",
    "age_group": "25-34",
    "service_type": "outpatient",
}


def event(**changes):
    envelope = make_event("referral_requested", "rujukan", dict(DATA))
    envelope.update(changes)
    return envelope


def test_make_event_has_every_envelope_key():
    envelope = make_event("referral_requested", "rujukan", DATA, correlation_id="corr-12345678")
    assert set(envelope) == DESIGN_KEYS
    assert envelope["event_type"] == "referral_requested"
    assert envelope["source"] == "rujukan"
    assert envelope["correlation_id"] == "corr-12345678"
    assert envelope["data"] == DATA
    assert isinstance(envelope["schema_version"], int)


def test_event_id_is_a_fresh_uuid():
    first = make_event("x_happened", "mitra", {})
    second = make_event("x_happened", "mitra", {})
    assert str(uuid.UUID(first["event_id"])) == first["event_id"]
    assert first["event_id"] != second["event_id"]


def test_correlation_id_is_made_when_none_is_given():
    envelope = make_event("x_happened", "mitra", {})
    assert envelope["correlation_id"]


def test_occurred_at_is_now_in_utc_ending_in_z():
    before = datetime.now(UTC)
    envelope = make_event("x_happened", "mitra", {})
    after = datetime.now(UTC)
    stamp = envelope["occurred_at"]
    assert stamp.endswith("Z")
    assert "+" not in stamp
    moment = datetime.fromisoformat(stamp[:-1]).replace(tzinfo=UTC)
    assert before - timedelta(seconds=1) <= moment <= after + timedelta(seconds=1)


def test_occurred_at_given_in_western_indonesian_time_is_written_in_utc():
    wib = timezone(timedelta(hours=7))
    envelope = make_event(
        "x_happened", "mitra", {}, occurred_at=datetime(2026, 12, 1, 1, 0, tzinfo=wib)
    )
    assert envelope["occurred_at"] == "2026-11-30T18:00:00Z"


@pytest.mark.parametrize(
    "data",
    [
        {"nik": "1771011708900001"},
        {"name": "Budi Santoso"},
        {"phone": "+6281234567890"},
        {"NIK": "1771011708900001"},
        {"client": {"nik": "1771011708900001"}},
        {"client": {"contact": {"phone": "+6281234567890"}}},
        {"clients": [{"name": "Budi"}]},
        {"batches": [[{"referral_id": "r"}, {"nama": "Budi"}]]},
        {"x": [{"y": {"z": [{"birth_date": "1990-08-17"}]}}]},
    ],
)
def test_payload_carrying_identity_at_any_depth_is_refused(data):
    with pytest.raises(EnvelopeError):
        make_event("referral_requested", "rujukan", data)


def test_payload_carrying_identity_in_a_tuple_is_refused():
    # A tuple is written to JSON as an array, exactly like a list.
    with pytest.raises(EnvelopeError):
        make_event("referral_requested", "rujukan", {"clients": ({"nik": "1771011708900001"},)})


def test_payload_without_identity_is_accepted():
    make_event(
        "partner_registered",
        "mitra",
        {
            "partner_id": "p",
            "partner_name": "Yayasan Kipas",
            "services": [{"service_type": "inpatient"}],
        },
    )


def test_check_envelope_accepts_a_made_event():
    envelope = event()
    assert check_envelope(envelope) is envelope


@pytest.mark.parametrize("key", sorted(DESIGN_KEYS))
def test_check_envelope_rejects_a_missing_key(key):
    envelope = event()
    del envelope[key]
    with pytest.raises(EnvelopeError):
        check_envelope(envelope)


@pytest.mark.parametrize("not_an_object", [None, [], "event", 42])
def test_check_envelope_rejects_what_is_not_an_object(not_an_object):
    with pytest.raises(EnvelopeError):
        check_envelope(not_an_object)


@pytest.mark.parametrize("event_id", ["not-a-uuid", "", "1234", None])
def test_check_envelope_rejects_a_bad_event_id(event_id):
    with pytest.raises(EnvelopeError):
        check_envelope(event(event_id=event_id))


@pytest.mark.parametrize(
    "occurred_at", ["yesterday", "", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", None]
)
def test_check_envelope_rejects_a_bad_timestamp(occurred_at):
    with pytest.raises(EnvelopeError):
        check_envelope(event(occurred_at=occurred_at))


@pytest.mark.parametrize("occurred_at", ["2026-11-30T18:00:00", "2026-11-30"])
def test_check_envelope_rejects_a_timestamp_without_offset(occurred_at):
    # RFC 3339 requires a time and an offset; without one, the reader's local time zone
    # would decide the moment (and so the reporting month).
    with pytest.raises(EnvelopeError):
        check_envelope(event(occurred_at=occurred_at))


def test_check_envelope_accepts_an_offset_other_than_z():
    check_envelope(event(occurred_at="2026-12-01T01:00:00+07:00"))


@pytest.mark.parametrize("data", [None, [], "data", 1])
def test_check_envelope_rejects_data_that_is_not_an_object(data):
    with pytest.raises(EnvelopeError):
        check_envelope(event(data=data))
