"""notifikasi end to end, through the gateway and the real processes: an accepted
referral, an overdue report and an expiring agreement reach the inboxes, the mailboxes of
a real SMTP server and a signed webhook that fails first; each delivered twice, sent once;
the delivery log and the metrics show every attempt. national is refused what describes
a person."""

from __future__ import annotations

import json
import time
from datetime import date

import pytest
import requests
from standardwebhooks import Webhook

from bersinar.relay import BatchPublisher
from harness import produced
from harness.receivers import HttpReceiver, SmtpServer

KIPAS_EMAIL = "operator@kipas.test"


def wait_for(predicate, timeout=90.0, message=""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout}s waiting for {message}")


def publish(amqp_uri, event):
    publisher = BatchPublisher(amqp_uri, f"{event['source']}.events")
    try:
        payload = json.dumps(event).encode()
        outcome = publisher.publish([(event["event_id"], event["event_type"], payload, {})])
    finally:
        publisher.close()
    assert set(outcome.values()) == {"confirmed"}


def scrape(port, name, **labels):
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture
def smtp(system, tmp_path):
    server = SmtpServer(tmp_path / "maildir", port=system.smtp_port).start()
    yield server
    server.stop()


@pytest.fixture
def hook():
    receiver = HttpReceiver(fail_first=2).start()
    yield receiver
    receiver.stop()


def test_three_events_reach_every_channel_once_and_the_log_shows_every_attempt(system, smtp, hook):
    national = system.new_key("national")
    partner = system.new_key("partner", "yayasan-kipas")
    officer = system.new_key("officer")
    patched = system.session_patch(
        "/api/v1/partners/yayasan-kipas",
        {"contacts": [{"name": "Operator Kipas", "role": "operator", "email": KIPAS_EMAIL}]},
    )
    assert patched.status_code == 200, patched.text

    event_types = ["referral_accepted", "report_overdue", "agreement_expiring"]
    # national is never told of a referral (one record per person); an admin may be
    refused = system.post(
        "/api/v1/webhooks", {"url": f"{hook.url}/bnn", "event_types": event_types}, key=national
    )
    assert (refused.status_code, refused.json()["errors"]) == (
        403,
        {"event_types": ["agreement_expiring", "referral_accepted"]},
    )
    assert system.get("/api/v1/webhooks", key=national).json()["items"] == []
    created = system.post(
        "/api/v1/webhooks", {"url": f"{hook.url}/bnn", "event_types": event_types}
    )
    assert created.status_code == 201, created.text
    subscription = created.json()
    assert subscription["secret"].startswith("whsec_")
    listed = system.get("/api/v1/webhooks").json()
    assert subscription["id"] in [w["id"] for w in listed["items"]]
    assert all("secret" not in w for w in listed["items"])  # shown once only
    assert system.post("/api/v1/webhooks", {"url": hook.url, "event_types": ["x"]},
                       key=national).status_code == 422  # fmt: skip
    assert system.post("/api/v1/webhooks", {"url": hook.url, "event_types": event_types},
                       key=partner).status_code == 403  # fmt: skip
    # an address off this machine is refused here: the test system sends nowhere else
    elsewhere = system.post("/api/v1/webhooks", {"url": "https://93.184.215.14/in",
                            "event_types": ["report_overdue"]}, key=national)  # fmt: skip
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (422, "WEBHOOK_TARGET_REFUSED")

    events = [
        produced.referral_moved("accepted", partner_id="yayasan-kipas"),
        produced.report_event("report_overdue", "yayasan-kipas", "2026-09", "missing"),
        produced.agreement_notice(
            "e2e-notif-partner", 30, number="PKS/E2E/NOTIF", valid_until=date(2026, 12, 28)
        ),
    ]
    pseudonym = events[0]["data"]["client_pseudonym"]
    amqp_uri = system.env["AMQP_URI"]
    for event in events * 2:  # every event delivered twice
        publish(amqp_uri, event)
    ids = {e["event_id"] for e in events}

    def log():
        items = []
        for event_id in ids:
            page = system.get("/api/v1/notifications/deliveries", params={"event_id": event_id})
            assert page.status_code == 200, page.text
            items += page.json()["items"]
        return items

    # accepted: officers inbox+email; overdue: partner and officers inbox+email;
    # expiring: admins inbox+email; three webhooks
    expected = 2 + 4 + 2 + 3
    items = wait_for(
        lambda: (lambda got: len(got) == expected and all(d["status"] != "pending" for d in got)
                 and got)(log()),
        message="every delivery settled",
    )  # fmt: skip
    assert {(d["event_type"], d["recipient"], d["channel"], d["status"]) for d in items} == {
        ("referral_accepted", "role:officer", "inbox", "sent"),
        ("referral_accepted", "role:officer", "email", "sent"),
        ("report_overdue", "partner:yayasan-kipas", "inbox", "sent"),
        ("report_overdue", "partner:yayasan-kipas", "email", "sent"),
        ("report_overdue", "role:officer", "inbox", "sent"),
        ("report_overdue", "role:officer", "email", "sent"),
        ("agreement_expiring", "role:admin", "inbox", "sent"),
        ("agreement_expiring", "role:admin", "email", "sent"),
        *{(t, f"webhook:{subscription['id']}", "webhook", "sent") for t in event_types},
    }
    webhook_rows = [d for d in items if d["channel"] == "webhook"]
    assert all(d["attempts"] == 3 for d in webhook_rows)
    detail = system.get(f"/api/v1/notifications/deliveries/{webhook_rows[0]['id']}").json()
    assert [a["outcome"] for a in detail["attempt_log"]] == ["failed", "failed", "sent"]
    assert "HTTP 503" in detail["attempt_log"][0]["error"]

    # inboxes through the gateway, each for its own reader
    # the shared system's inboxes hold other tests' messages too: read a whole page
    partner_inbox = system.get("/api/v1/notifications", key=partner, params={"limit": 200}).json()[
        "items"
    ]
    mine = [n for n in partner_inbox if n["event_id"] in ids]
    assert [n["event_type"] for n in mine] == ["report_overdue"]
    officer_inbox = system.get("/api/v1/notifications", key=officer, params={"limit": 200}).json()[
        "items"
    ]
    assert sorted(n["event_type"] for n in officer_inbox if n["event_id"] in ids) == [
        "referral_accepted", "report_overdue",
    ]  # fmt: skip
    admin_inbox = system.get("/api/v1/notifications", params={"recipient": "role:admin"}).json()[
        "items"
    ]
    assert [n["event_type"] for n in admin_inbox if n["event_id"] in ids] == ["agreement_expiring"]
    read = system.post(f"/api/v1/notifications/{mine[0]['id']}/read", key=partner)
    assert read.status_code == 200 and read.json()["read_at"]
    unread = system.get("/api/v1/notifications", key=partner, params={"unread": "true"}).json()
    assert mine[0]["id"] not in {n["id"] for n in unread["items"]}
    assert system.post(f"/api/v1/notifications/{mine[0]['id']}/read",
                       key=officer).status_code == 404  # fmt: skip
    assert system.get("/api/v1/notifications/deliveries", key=officer).status_code == 403

    # the real SMTP server received each email once
    # (of these events only: the shared system's timers may tell of other reports)
    deliveries = {
        d["id"]
        for event_id in ids
        for d in system.get(
            "/api/v1/notifications/deliveries", params={"event_id": event_id, "limit": 200}
        ).json()["items"]
    }
    mails = [m for m in smtp.messages() if m["X-Bersinar-Delivery"] in deliveries]
    assert sorted((m["X-Bersinar-Event"], m["To"]) for m in mails) == [
        ("agreement_expiring", "admin@bnnp-bengkulu.test"),
        ("referral_accepted", "petugas@bnnp-bengkulu.test"),
        ("report_overdue", KIPAS_EMAIL),
        ("report_overdue", "petugas@bnnp-bengkulu.test"),
    ]
    assert all(pseudonym not in m.as_string() for m in mails)

    # the webhook: signed as a Standard Webhooks receiver verifies it, retried, one
    # delivery id per event
    receiver = Webhook(subscription["secret"])
    for request in hook.received:
        assert receiver.verify(request.body, request.headers) == request.json()
    assert sorted(r.json()["event_id"] for r in hook.succeeded()) == sorted(ids)
    assert len(hook.received) == 9

    # metrics of the notifikasi process
    port = system.notifikasi_metrics_port
    assert scrape(port, "bersinar_notifications_sent_total", channel="webhook") >= 3
    assert scrape(port, "bersinar_notifications_retried_total", channel="webhook") >= 6
    assert scrape(port, "bersinar_notification_latency_seconds_count", channel="email") >= 4
    print(
        f"\n[e2e notifikasi] events=3x2 deliveries={len(items)} emails={len(mails)} "
        f"webhook_requests={len(hook.received)} webhook_ok={len(hook.succeeded())}"
    )

    deleted = requests.delete(
        f"{system.base_url}/api/v1/webhooks/{subscription['id']}",
        headers=system.headers(),
        timeout=10,
    )
    assert deleted.status_code == 200
