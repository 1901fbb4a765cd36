"""notifikasi's rules without a broker: routing, preferences, templates per channel,
webhook signatures, backoff (the delivery bookkeeping, in a database:
tests/integration/test_notifikasi_bookkeeping.py)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from bersinar.contracts.notifications import EVENT_TYPES
from services.notifikasi import domain
from services.notifikasi.domain import RetryPolicy

NIK = "1771014503950012"
CLIENT_NAME = "Siti Aminah"
PHONE = "+6281234567890"

SAMPLE = {
    "referral_id": "ref-1", "partner_id": "yayasan-kipas", "partner_name": "Yayasan Kipas",
    "client_pseudonym": "pseudo-77", "sex": "M", "age_group": "25-34",
    "service_type": "outpatient", "source": "TAT", "status": "x", "reason": "CAPACITY_FULL",
    "report_id": "rep-1", "period": "2026-10", "due_on": "2026-11-07",
    "agreement_id": "agr-1", "number": "PKS/01/V/2023", "valid_from": "2023-05-30",
    "valid_until": "2026-12-31", "days_left": 30, "terminated_on": "2026-11-28",
    "kabupaten_kota": "Kota Bengkulu", "to_partner_id": "yayasan-pesona",
    # identity that must never be printed, even if an event carried it
    "name": CLIENT_NAME, "nik": NIK, "phone": PHONE, "client": {"name": CLIENT_NAME},
}  # fmt: skip


def envelope(event_type, **data):
    return {
        "event_id": "5d0f6a5e-0b7e-4d5c-9a57-1f1f5b7b1a11",
        "event_type": event_type,
        "source": domain.EVENT_SOURCES[event_type],
        "occurred_at": "2026-11-28T03:00:00Z",
        "data": {"partner_id": "yayasan-kipas", **data},
    }


# --- routing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event_type,expected",
    [
        ("referral_requested", ["partner:yayasan-kipas"]),
        ("referral_accepted", ["role:officer"]),
        ("referral_response_overdue", ["role:officer"]),
        ("report_due_soon", ["partner:yayasan-kipas"]),
        ("report_overdue", ["partner:yayasan-kipas", "role:officer"]),
        ("agreement_expiring", ["role:admin"]),
        ("partner_updated", []),
    ],
)
def test_each_event_goes_to_its_audience(event_type, expected):
    assert domain.audience_recipients(event_type, {"partner_id": "yayasan-kipas"}) == expected


def test_a_transfer_tells_both_partners_and_the_officers():
    data = {"partner_id": "yayasan-kipas", "to_partner_id": "yayasan-pesona"}
    assert domain.audience_recipients("referral_transferred", data) == [
        "partner:yayasan-kipas",
        "partner:yayasan-pesona",
        "role:officer",
    ]


def test_routing_covers_exactly_the_events_of_the_design():
    assert set(domain.ROUTES) == set(domain.EVENT_SOURCES) == set(EVENT_TYPES)
    assert set(domain.TEMPLATES) == set(EVENT_TYPES)


def test_preferences_override_the_defaults_per_event_type_then_for_all():
    prefs = {
        ("partner:a", "report_due_soon"): ["inbox", "whatsapp"],
        ("partner:a", "*"): ["email"],
    }
    assert domain.channels_for("partner:a", "report_due_soon", prefs) == ("inbox", "whatsapp")
    assert domain.channels_for("partner:a", "report_overdue", prefs) == ("email",)
    assert domain.channels_for("partner:b", "report_overdue", prefs) == ("inbox", "email")


def test_plan_is_one_delivery_per_recipient_and_channel_plus_matching_webhooks():
    event = envelope("report_overdue", period="2026-10")
    planned = domain.plan(
        event,
        {("role:officer", "report_overdue"): ["inbox"]},
        [("w1", ["report_overdue"]), ("w2", ["referral_requested"])],
    )
    assert [(p.recipient, p.channel) for p in planned] == [
        ("partner:yayasan-kipas", "inbox"),
        ("partner:yayasan-kipas", "email"),
        ("role:officer", "inbox"),
        ("webhook:w1", "webhook"),
    ]


# --- templates ----------------------------------------------------------------------------


@pytest.mark.parametrize("channel", domain.PERSON_CHANNELS)
@pytest.mark.parametrize("event_type", sorted(domain.TEMPLATES))
def test_every_event_renders_on_every_channel_without_identity(event_type, channel):
    rendered = domain.render(event_type, channel, SAMPLE, "partner", "http://x/console")
    text = f"{rendered.subject}\n{rendered.body}"
    for secret in (CLIENT_NAME, NIK, PHONE, "pseudo-77"):
        assert secret not in text
    assert "{{" not in text and "None" not in text
    if channel in (domain.SMS, domain.WHATSAPP):
        assert len(rendered.body) <= 160, rendered.body


def test_email_has_a_subject_a_salutation_and_the_way_into_bersinar():
    rendered = domain.render(
        "agreement_expiring", domain.EMAIL, SAMPLE, "admin", "http://bersinar/console"
    )
    assert rendered.subject == "[Bersinar] PKS PKS/01/V/2023 segera berakhir (30 hari lagi)"
    assert rendered.body.startswith("Yth. Administrator Bersinar BNNP Bengkulu,")
    assert "31 Desember 2026" in rendered.body
    assert "http://bersinar/console" in rendered.body


def test_missing_fields_print_a_dash_not_an_error():
    rendered = domain.render("report_overdue", domain.INBOX, {"partner_id": "p"})
    assert "periode -" in rendered.body


def test_dates_are_written_in_indonesian():
    assert domain.tanggal("2026-08-17") == "17 Agustus 2026"
    assert domain.tanggal(None) == "-"
    assert domain.tanggal("bukan tanggal") == "bukan tanggal"


# --- webhook signatures -------------------------------------------------------------------


def test_signature_is_hmac_sha256_over_timestamp_and_body():
    body = b'{"event_type":"referral_accepted"}'
    header = domain.signature("whsec_k", 1764300000, body)
    expected = hmac.new(b"whsec_k", b"1764300000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1764300000,v1={expected}"
    assert domain.verify_signature("whsec_k", header, body, now=1764300010)


@pytest.mark.parametrize(
    "secret,body,now",
    [
        ("other-secret", b"{}", 1764300000),  # wrong secret
        ("whsec_k", b'{"x":1}', 1764300000),  # body changed
        ("whsec_k", b"{}", 1764300000 + 301),  # too old: a replay
    ],
)
def test_a_forged_tampered_or_stale_signature_is_refused(secret, body, now):
    header = domain.signature("whsec_k", 1764300000, b"{}")
    assert not domain.verify_signature(secret, header, body, now=now)


def test_secrets_are_random_and_prefixed():
    first, second = domain.new_webhook_secret(), domain.new_webhook_secret()
    assert first != second and first.startswith("whsec_") and len(first) > 40


# --- backoff ------------------------------------------------------------------------------


def test_retry_delay_grows_to_a_cap_and_gives_up_after_the_last_attempt():
    policy = RetryPolicy(max_attempts=4, base=1.0, factor=2.0, cap=3.0)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 3.0, 3.0]
    now = datetime(2026, 11, 28, tzinfo=UTC)
    assert policy.after_failure(1, now) == now + timedelta(seconds=1)
    assert policy.after_failure(3, now) == now + timedelta(seconds=3)
    assert policy.after_failure(4, now) is None
