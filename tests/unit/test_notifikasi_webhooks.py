"""Webhooks without a network: the Standard Webhooks signature as a receiver's library
checks it, the addresses a webhook may not go to (names resolved by a stub: the
resolver is outside the system), and what the national role may subscribe to. The same
through the gateway and a real delivery: tests/integration/test_notifikasi_webhooks.py."""

from __future__ import annotations

import base64
import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from bersinar.contracts import events
from bersinar.contracts.notifications import NATIONAL_EVENT_TYPES
from bersinar.errors import WebhookTargetRefused
from harness.receivers import StubResolver
from services.notifikasi import domain
from services.notifikasi.channels import UnresolvedTarget, WebhookTargets
from services.notifikasi.domain import AllowedHost, TargetPolicy

BODY = b'{"event_type":"report_submitted","data":{"period":"2026-10"}}'
PUBLIC = "93.184.215.14"


# --- signatures ---------------------------------------------------------------------------


def test_a_delivery_is_signed_as_the_standard_webhooks_library_verifies_it():
    secret = domain.new_webhook_secret()
    headers = domain.signed_headers(secret, "d-1", int(time.time()), BODY)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-id"] == "d-1"
    assert Webhook(secret).verify(BODY, headers) == {
        "event_type": "report_submitted",
        "data": {"period": "2026-10"},
    }


@pytest.mark.parametrize(
    "change",
    [
        lambda h, b, s: (h, b, domain.new_webhook_secret()),  # another secret
        lambda h, b, s: (h, b.replace(b"2026-10", b"2026-11"), s),  # body changed
        lambda h, b, s: ({**h, "webhook-id": "d-2"}, b, s),  # another message's id
        lambda h, b, s: ({**h, "webhook-timestamp": str(int(time.time()) + 60)}, b, s),
    ],
    ids=["secret", "body", "id", "timestamp"],
)
def test_a_forged_or_tampered_delivery_is_refused_by_the_receiver(change):
    secret = domain.new_webhook_secret()
    headers, body, key = change(
        domain.signed_headers(secret, "d-1", int(time.time()), BODY), BODY, secret
    )
    with pytest.raises(WebhookVerificationError):
        Webhook(key).verify(body, headers)


def test_a_replayed_delivery_is_refused_once_it_is_stale():
    secret = domain.new_webhook_secret()
    headers = domain.signed_headers(secret, "d-1", int(time.time()) - 301, BODY)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(BODY, headers)


def test_a_secret_is_whsec_and_32_random_bytes_in_standard_base64():
    first, second = domain.new_webhook_secret(), domain.new_webhook_secret()
    assert first != second
    for secret in (first, second):
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32


# --- where a webhook may go ---------------------------------------------------------------


@pytest.mark.parametrize(
    "address,kind",
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("10.255.255.254", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.254", "private"),
        ("192.168.0.1", "private"),
        ("192.168.255.254", "private"),
        ("169.254.0.1", "link-local"),
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("100.100.100.200", "metadata"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("fd12:3456:789a::1", "private"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("::ffff:10.0.0.1", "private"),  # IPv4 written as IPv6
        ("::ffff:127.0.0.1", "loopback"),
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("64:ff9b::5db8:d70e", None),  # NAT64 of a public address
        ("100.64.0.1", "reserved"),  # carrier-grade NAT
        ("192.0.2.1", "reserved"),  # documentation
        (PUBLIC, None),
        ("172.32.0.1", None),  # just past 172.16/12
        ("2606:4700:4700::1111", None),
    ],
)
def test_every_address_that_is_not_a_public_receiver_has_its_kind(address, kind):
    assert domain.address_kind(address) == kind


NAMES = {
    "hooks.example": [PUBLIC, "2606:4700:4700::1111"],
    "localhost.example": ["127.0.0.1", "::1"],
    "v6-loopback.example": ["::1"],
    "intranet.example": ["10.20.30.40"],
    "kantor.example": ["172.20.0.5"],
    "rumah.example": ["192.168.1.20"],
    "ula.example": ["fd00:1234::20"],
    "metadata.example": ["169.254.169.254"],
    "mixed.example": [PUBLIC, "192.168.1.20"],  # one private address among public ones
}


def targets(*allowed: str, allowed_only: bool = False, names=NAMES) -> WebhookTargets:
    hosts = tuple(AllowedHost.parse(a) for a in allowed)
    return WebhookTargets(TargetPolicy(hosts, allowed_only), StubResolver(names))


@pytest.mark.parametrize(
    "url,words",
    [
        ("http://hooks.example/in", "https"),
        ("https://127.0.0.1/in", "loopback"),
        ("https://localhost.example/in", "loopback"),
        ("https://v6-loopback.example/in", "loopback"),
        ("https://10.1.2.3/in", "jaringan privat"),
        ("https://172.16.0.1:8443/in", "jaringan privat"),
        ("https://192.168.0.10/in", "jaringan privat"),
        ("https://169.254.10.10/in", "link-local"),
        ("https://169.254.169.254/latest/meta-data/", "metadata"),
        ("https://0.0.0.0/in", "tak tertentu"),
        ("https://intranet.example/in", "jaringan privat"),
        ("https://kantor.example/in", "jaringan privat"),
        ("https://rumah.example/in", "jaringan privat"),
        ("https://ula.example/in", "jaringan privat"),
        ("https://metadata.example/in", "metadata"),
        ("https://mixed.example/in", "jaringan privat"),
        ("https://tidak-ada.example/in", "tidak ditemukan"),
    ],
)
def test_a_target_that_is_not_public_https_is_refused_with_its_reason(url, words):
    with pytest.raises(WebhookTargetRefused) as refused:
        targets().check(url)
    assert words in refused.value.detail
    assert refused.value.errors == {"url": [refused.value.detail]}
    assert (refused.value.status, refused.value.code) == (422, "WEBHOOK_TARGET_REFUSED")


def test_a_public_https_target_is_taken_with_every_address_it_was_checked_at():
    target = targets().check("https://Hooks.example/bersinar/in?k=1")
    assert (target.host, target.port, target.netloc) == ("hooks.example", 443, "Hooks.example")
    assert target.addresses == (PUBLIC, "2606:4700:4700::1111")
    assert target.url_at(PUBLIC) == f"https://{PUBLIC}:443/bersinar/in?k=1"
    assert (
        target.url_at("2606:4700:4700::1111")
        == "https://[2606:4700:4700::1111]:443/bersinar/in?k=1"
    )


def test_an_allowed_host_may_use_http_and_a_private_or_loopback_address_but_no_metadata():
    allowed = targets("localhost.example", "intranet.example:8080", "metadata.example")
    assert allowed.check("http://localhost.example:9999/in").addresses == ("127.0.0.1", "::1")
    assert allowed.check("http://intranet.example:8080/in").addresses == ("10.20.30.40",)
    with pytest.raises(WebhookTargetRefused, match="https"):  # another port: not allowed
        allowed.check("http://intranet.example:8081/in")
    with pytest.raises(WebhookTargetRefused, match="metadata"):
        allowed.check("http://metadata.example/in")
    with pytest.raises(WebhookTargetRefused, match="jaringan privat"):  # not named
        allowed.check("https://rumah.example/in")


def test_with_allowed_only_every_other_host_is_refused_before_it_is_resolved():
    only = targets("localhost.example", allowed_only=True)
    assert only.check("http://localhost.example:8000/in").host == "localhost.example"
    with pytest.raises(WebhookTargetRefused, match="diizinkan admin"):
        only.check("https://hooks.example/in")
    assert only.resolver.asked == ["localhost.example"]


def test_a_name_without_address_is_refused_as_unresolved():
    with pytest.raises(UnresolvedTarget):
        targets().check("https://tidak-ada.example/in")


def test_allowed_hosts_are_read_from_a_comma_separated_setting():
    assert domain.parse_allowed_hosts(" 127.0.0.1 , hooks.kantor.local:8443,[::1]:9000,") == (
        AllowedHost("127.0.0.1"),
        AllowedHost("hooks.kantor.local", 8443),
        AllowedHost("::1", 9000),
    )
    assert domain.parse_allowed_hosts("") == ()
    assert domain.parse_allowed_hosts(["Hooks.Local"]) == (AllowedHost("hooks.local"),)


# --- what the national role may be told of ------------------------------------------------

PERSON_FIELDS = {"client_pseudonym", "sex", "age_group", "referral_id", "recipient"}


def test_national_may_subscribe_only_to_events_that_describe_no_person():
    assert set(NATIONAL_EVENT_TYPES) < set(events.EVENT_TYPES)
    assert not [t for t in NATIONAL_EVENT_TYPES if t.startswith(("referral_", "notification_"))]
    for event_type in NATIONAL_EVENT_TYPES:
        declared = set(events.contract_of(event_type).payload().fields)
        assert not declared & PERSON_FIELDS, event_type
    # every referral event carries one person's record
    for event_type in events.EVENT_TYPES:
        if event_type.startswith("referral_"):
            assert {"client_pseudonym", "sex", "age_group"} <= set(
                events.contract_of(event_type).payload().fields
            )


def test_a_subscription_is_told_what_its_role_may_know():
    asked = ["referral_accepted", "report_submitted", "partner_updated", "notification_sent"]
    assert domain.subscribable("national", asked) == ["report_submitted", "partner_updated"]
    assert domain.subscribable("admin", asked) == asked
