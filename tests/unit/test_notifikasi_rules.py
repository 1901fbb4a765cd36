"""notifikasi's rules without a broker: routing, preferences, templates per channel,
backoff (the delivery bookkeeping, in a database:
tests/integration/test_notifikasi_bookkeeping.py; webhooks: test_notifikasi_webhooks.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from bersinar.contracts.notifications import EVENT_TYPES
from harness import produced
from services.notifikasi import domain
from services.notifikasi.domain import RetryPolicy

NIK = "1771014503950012"
CLIENT_NAME = "Siti Aminah"
PHONE = "+6281234567890"

# identity that must never be printed, even if an event carried it
IDENTITY = {"name": CLIENT_NAME, "nik": NIK, "phone": PHONE, "client": {"name": CLIENT_NAME}}


# --- routing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event_type,expected",
    [
        ("referral_requested", ["partner:yayasan-kipas"]),
        ("referral_accepted", ["role:officer"]),
        ("referral_response_overdue", ["role:officer"]),
        ("referral_follow_up_due", ["partner:yayasan-kipas"]),
        ("report_due_soon", ["partner:yayasan-kipas"]),
        ("report_overdue", ["partner:yayasan-kipas", "role:officer"]),
        ("agreement_expiring", ["role:admin"]),
        ("partner_updated", []),
    ],
)
def test_each_event_goes_to_its_audience(event_type, expected):
    data = produced.sample(event_type, "yayasan-kipas")["data"]
    assert domain.audience_recipients(event_type, data) == expected


def test_the_follow_up_reminder_tells_the_partner_the_day_and_outcome_in_indonesian():
    event = produced.referral_follow_up_due(outcome="recovered")
    [message] = domain.messages_for(event)
    assert message.recipient == "partner:yayasan-kipas"
    assert message.title == "Tindak lanjut pasca rehabilitasi hari ini"
    day = domain.tanggal(event["data"]["follow_up_on"])
    assert day in message.body and event["data"]["referral_id"] in message.body
    assert "pulih (tidak memakai lagi)" in message.body and "recovered" not in message.body
    short = domain.render("referral_follow_up_due", "sms", event["data"])
    assert len(short.body) <= 160


def test_a_transfer_tells_both_partners_and_the_officers():
    data = produced.referral_moved(
        "transferred", partner_id="yayasan-kipas", transfer_to="yayasan-pesona"
    )["data"]
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
    event = produced.report_event("report_overdue", "yayasan-kipas")
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
    data = {**produced.sample(event_type, "yayasan-kipas")["data"], **IDENTITY}
    rendered = domain.render(event_type, channel, data, "partner", "http://x/console")
    text = f"{rendered.subject}\n{rendered.body}"
    pseudonym = [data["client_pseudonym"]] if "client_pseudonym" in data else []
    for secret in (CLIENT_NAME, NIK, PHONE, *pseudonym):
        assert secret not in text
    assert "{{" not in text and "None" not in text
    if channel in (domain.SMS, domain.WHATSAPP):
        assert len(rendered.body) <= 160, rendered.body


def test_email_has_a_subject_a_salutation_and_the_way_into_bersinar():
    expiring = produced.agreement_notice(
        "yayasan-kipas", 30, number="PKS/01/V/2023", valid_until=date(2026, 12, 31)
    )
    rendered = domain.render(
        "agreement_expiring", domain.EMAIL, expiring["data"], "admin", "http://bersinar/console"
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


# --- backoff ------------------------------------------------------------------------------


def test_retry_delay_grows_to_a_cap_and_gives_up_after_the_last_attempt():
    policy = RetryPolicy(max_attempts=4, base=1.0, factor=2.0, cap=3.0)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 3.0, 3.0]
    now = datetime(2026, 11, 28, tzinfo=UTC)
    assert policy.after_failure(1, now) == now + timedelta(seconds=1)
    assert policy.after_failure(3, now) == now + timedelta(seconds=3)
    assert policy.after_failure(4, now) is None
