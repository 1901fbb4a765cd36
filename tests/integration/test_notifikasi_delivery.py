"""notifikasi on the real broker and database, telling the real outside world: an SMTP
server (aiosmtpd) that the test reads, a webhook receiver that fails the first attempts,
and a local stand-in of an SMS provider. Each test prints its figures."""

from __future__ import annotations

import json
import time
from datetime import date

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, text
from standardwebhooks import Webhook

from bersinar.envelope import utcnow
from bersinar.relay import BatchPublisher
from harness import produced
from harness.receivers import SmtpServer
from services.mitra.models import Contact
from services.mitra.service import MitraService
from services.notifikasi import domain, handlers
from services.notifikasi.channels import Channels, EmailChannel, SmtpSettings, WebhookTargets
from services.notifikasi.domain import TargetPolicy
from services.notifikasi.models import Delivery, Notification, Preference, outbox
from services.notifikasi.service import NotifikasiService
from tests.integration.conftest import wait_until

OFFICERS = "petugas1@bnnp-bengkulu.test, petugas2@bnnp-bengkulu.test"
ADMINS = "admin@bnnp-bengkulu.test"
KIPAS_EMAIL = "operator@kipas.test"
KIPAS_PHONE = "+6281100000001"
WEBHOOK_ATTEMPTS = 3


@pytest.fixture
def smtp(tmp_path):
    server = SmtpServer(tmp_path / "maildir").start()
    yield server
    server.stop()


@pytest.fixture
def kipas_contacts(seeded):
    with seeded["mitra"]() as uow:
        uow.session.add(
            Contact(
                partner_id="yayasan-kipas", position=0, name="Operator Kipas",
                role="operator", email=KIPAS_EMAIL, phone=KIPAS_PHONE, whatsapp=None,
            )
        )  # fmt: skip
        uow.commit()
    return seeded


def notifikasi_config(make_config, smtp, sms_url="", **overrides):
    return make_config(
        "notifikasi",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=smtp.port,
        SMTP_TIMEOUT=5,
        OFFICER_EMAILS=OFFICERS,
        ADMIN_EMAILS=ADMINS,
        SMS_URL=sms_url,
        DELIVERY_POLL_INTERVAL=0.05,
        DELIVERY_RETRY_BASE=0.2,
        WEBHOOK_RETRY_BASE=0.2,
        WEBHOOK_MAX_ATTEMPTS=WEBHOOK_ATTEMPTS,
        WEBHOOK_TIMEOUT=5,
        WEBHOOK_ALLOW_HOSTS="127.0.0.1",  # the receivers here: plain http on this machine
        **overrides,
    )


def publish(amqp_uri, *events):
    for event in events:
        publisher = BatchPublisher(amqp_uri, f"{event['source']}.events")
        try:
            outcome = publisher.publish(
                [(event["event_id"], event["event_type"], json.dumps(event).encode(), {})]
            )
        finally:
            publisher.close()
        assert set(outcome.values()) == {"confirmed"}, outcome


def subscribe(dbs, url, event_types):
    targets = WebhookTargets(TargetPolicy(domain.parse_allowed_hosts("127.0.0.1")))
    with dbs["notifikasi"]() as uow:
        created = handlers.create_webhook(
            uow, {"url": url, "event_types": event_types}, {"role": "admin", "key_id": "k1"},
            targets,
        )  # fmt: skip
        uow.commit()
    return created


def deliveries(dbs, *where):
    with dbs["notifikasi"]() as uow:
        rows = uow.session.scalars(select(Delivery).where(*where)).all()
        uow.session.expunge_all()  # plain snapshots, readable after the session
        return rows


def settled(dbs, expected, *where):
    rows = deliveries(dbs, *where)
    return len(rows) == expected and all(d.status != "pending" for d in rows) and rows


def metric(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


def three_events():
    """An accepted referral, an overdue report and an expiring PKS, each made by its
    producer's code."""
    return [
        produced.referral_moved(
            "accepted", partner_id="yayasan-kipas", sex="F", service_type="inpatient"
        ),
        produced.report_event("report_overdue", "yayasan-kipas", "2026-10", "missing"),
        produced.agreement_notice(
            "yayasan-pesona", 30, number="PKS/BNNP-BKL/05/2023", valid_until=date(2026, 12, 28)
        ),
    ]


def test_three_events_reach_inbox_email_sms_and_a_retried_signed_webhook_once(
    container_factory, make_config, kipas_contacts, amqp_uri, smtp, receivers
):
    dbs = kipas_contacts
    hook = receivers(fail_first=2)
    sms = receivers()
    with dbs["notifikasi"]() as uow:  # the partner wants overdue reports by SMS too
        uow.session.add(
            Preference(
                recipient="partner:yayasan-kipas", event_type="report_overdue",
                channels=["inbox", "email", "sms"], updated_at=utcnow(),
            )
        )  # fmt: skip
        uow.commit()
    subscription = subscribe(
        dbs, f"{hook.url}/bersinar", ["referral_accepted", "report_overdue", "agreement_expiring"]
    )
    container_factory(MitraService, make_config("mitra")).start()
    container_factory(
        NotifikasiService,
        notifikasi_config(make_config, smtp, f"json://127.0.0.1:{sms.port}/sms?:to={{to}}"),
    ).start()
    before = {
        (c, e): metric("bersinar_notifications_sent_total", channel=c, event_type=e)
        for c in domain.CHANNELS
        for e in ("referral_accepted", "report_overdue", "agreement_expiring")
    }
    retried_before = metric(
        "bersinar_notifications_retried_total", channel="webhook", event_type="report_overdue"
    )
    latency_before = metric("bersinar_notification_latency_seconds_count", channel="email")

    events = three_events()
    pseudonym = events[0]["data"]["client_pseudonym"]
    started = time.monotonic()
    publish(amqp_uri, *events, *events)  # every event delivered twice

    # accepted: officers inbox+email; overdue: partner inbox+email+sms, officers
    # inbox+email; expiring: admins inbox+email; and three webhooks
    rows = wait_until(lambda: settled(dbs, 2 + 5 + 2 + 3), timeout=60, message="deliveries")
    elapsed = time.monotonic() - started

    assert {(d.event_type, d.recipient, d.channel): d.status for d in rows} == {
        ("referral_accepted", "role:officer", "inbox"): "sent",
        ("referral_accepted", "role:officer", "email"): "sent",
        ("report_overdue", "partner:yayasan-kipas", "inbox"): "sent",
        ("report_overdue", "partner:yayasan-kipas", "email"): "sent",
        ("report_overdue", "partner:yayasan-kipas", "sms"): "sent",
        ("report_overdue", "role:officer", "inbox"): "sent",
        ("report_overdue", "role:officer", "email"): "sent",
        ("agreement_expiring", "role:admin", "inbox"): "sent",
        ("agreement_expiring", "role:admin", "email"): "sent",
        **{(e["event_type"], f"webhook:{subscription['id']}", "webhook"): "sent" for e in events},
    }

    # the in-app inboxes, once each
    with dbs["notifikasi"]() as uow:
        inbox = sorted(
            uow.session.execute(select(Notification.recipient, Notification.event_type)).all()
        )
    assert inbox == [
        ("partner:yayasan-kipas", "report_overdue"),
        ("role:admin", "agreement_expiring"),
        ("role:officer", "referral_accepted"),
        ("role:officer", "report_overdue"),
    ]

    # email through the real SMTP server, once each, in Indonesian, without identity
    mails = smtp.messages()
    by_subject = {m["Subject"]: m for m in mails}
    assert len(mails) == 4 == len({m["Message-ID"] for m in mails})
    accepted = by_subject["[Bersinar] Rujukan diterima mitra"]
    assert accepted["To"] == OFFICERS
    overdue_to = sorted(
        m["To"] for m in mails if m["Subject"] == "[Bersinar] Laporan bulanan 2026-10 terlambat"
    )
    assert overdue_to == sorted([KIPAS_EMAIL, OFFICERS])
    expiring = by_subject["[Bersinar] PKS PKS/BNNP-BKL/05/2023 segera berakhir (30 hari lagi)"]
    assert expiring["To"] == ADMINS
    assert "28 Desember 2026" in expiring.get_content()
    for mail in mails:
        assert pseudonym not in mail.as_string()
        assert mail["X-Bersinar-Delivery"] in {d.id for d in rows}

    # the webhook: failed twice, then taken; every attempt signed as the Standard
    # Webhooks library verifies it, one delivery id each
    ok = hook.succeeded()
    assert len(ok) == 3 and len(hook.received) == 9
    assert {r.json()["event_id"] for r in ok} == {e["event_id"] for e in events}
    receiver = Webhook(subscription["secret"])
    for request in hook.received:
        assert request.path == "/bersinar"
        assert receiver.verify(request.body, request.headers) == request.json()
        assert request.headers["Webhook-Id"] == request.headers["X-Bersinar-Delivery"]
        assert request.json()["event_type"] == request.headers["X-Bersinar-Event"]
    assert {r.headers["X-Bersinar-Delivery"] for r in hook.received} == {
        d.id for d in rows if d.channel == "webhook"
    }
    assert all(d.attempts == 3 for d in rows if d.channel == "webhook")

    # SMS through the provider adapter to its local stand-in
    (message,) = sms.received
    assert message.path == "/sms"
    assert message.json()["to"] == KIPAS_PHONE
    assert "laporan 2026-10" in message.json()["message"]

    # metrics: sent by channel and event type, retries, latency
    def sent(c, e):
        return metric("bersinar_notifications_sent_total", channel=c, event_type=e) - before[c, e]

    assert sent("inbox", "report_overdue") == 2
    assert sent("email", "report_overdue") == 2
    assert sent("sms", "report_overdue") == 1
    assert sent("webhook", "agreement_expiring") == 1
    assert (
        metric("bersinar_notifications_retried_total", channel="webhook",
               event_type="report_overdue") - retried_before == 2
    )  # fmt: skip
    assert (
        metric("bersinar_notification_latency_seconds_count", channel="email") - (latency_before)
        == 4
    )
    print(
        f"\n[notifikasi] events=3 deliveries_each=2 rows={len(rows)} inbox={len(inbox)} "
        f"emails={len(mails)} sms={len(sms.received)} webhook_requests={len(hook.received)} "
        f"webhook_ok={len(ok)} settled_in={elapsed:.2f}s"
    )


def test_a_webhook_that_keeps_failing_is_given_up_and_recorded(
    container_factory, make_config, clean_databases, amqp_uri, smtp, receivers
):
    dbs = clean_databases
    hook = receivers(always_fail=True)
    subscription = subscribe(dbs, hook.url, ["partner_updated"])
    container_factory(NotifikasiService, notifikasi_config(make_config, smtp)).start()
    give_ups = metric(
        "bersinar_notifications_given_up_total", channel="webhook", event_type="partner_updated"
    )
    failed = metric("bersinar_notifications_failed_total", channel="webhook",
                    event_type="partner_updated")  # fmt: skip

    event = produced.partner_event("partner_updated", "yayasan-kipas")
    publish(amqp_uri, event)
    (row,) = wait_until(
        lambda: settled(dbs, 1, Delivery.event_type == "partner_updated"),
        timeout=60,
        message="the webhook given up",
    )

    assert (row.status, row.attempts, row.recipient) == (
        "failed",
        WEBHOOK_ATTEMPTS,
        f"webhook:{subscription['id']}",
    )
    assert "HTTP 500" in row.last_error
    assert len(hook.received) == WEBHOOK_ATTEMPTS
    times = attempt_times(dbs, row.id)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert gaps == sorted(gaps)  # the delay grows
    with dbs["notifikasi"]() as uow:
        log = handlers.get_delivery(uow, row.id)["attempt_log"]
        envelopes = [
            json.loads(p)
            for p in uow.session.scalars(select(outbox.c.payload))
            if json.loads(p)["event_type"] == "notification_failed"
        ]
        announced = [e["data"] for e in envelopes]
    assert [a["outcome"] for a in log] == ["failed"] * WEBHOOK_ATTEMPTS
    assert [a["delivery_id"] for a in announced] == [row.id]
    # the admins are told in the transaction that gave up (no consumer of notification_failed)
    told = deliveries(dbs, Delivery.event_type == "notification_failed")
    assert sorted((d.recipient, d.channel, d.event_id) for d in told) == [
        ("role:admin", "email", envelopes[0]["event_id"]),
        ("role:admin", "inbox", envelopes[0]["event_id"]),
    ]
    # sent by the timer, long after the event's handler: still the event's correlation id
    assert [e["correlation_id"] for e in envelopes] == [event["correlation_id"]]
    assert (
        metric(
            "bersinar_notifications_given_up_total", channel="webhook", event_type="partner_updated"
        )
        == give_ups + 1
    )
    assert (
        metric("bersinar_notifications_failed_total", channel="webhook",
               event_type="partner_updated") == failed + WEBHOOK_ATTEMPTS
    )  # fmt: skip
    print(f"\n[webhook give-up] attempts={row.attempts} gaps_s={[round(g, 2) for g in gaps]}")


def attempt_times(dbs, delivery_id):
    with dbs["notifikasi"]() as uow:
        return [
            moment.timestamp()
            for moment in uow.session.scalars(
                text(
                    "SELECT attempted_at FROM delivery_attempts WHERE delivery_id = :d "
                    "ORDER BY number"
                ),
                {"d": delivery_id},
            )
        ]


def test_a_restart_in_the_middle_of_a_batch_loses_nothing(
    container_factory, make_config, clean_databases, amqp_uri, smtp, receivers
):
    dbs = clean_databases
    total = 40
    hook = receivers(delay=0.3)
    subscribe(dbs, hook.url, ["partner_updated"])
    senders, claim = 4, 2
    config = notifikasi_config(
        make_config, smtp, DELIVERY_CONCURRENCY=senders, DELIVERY_CLAIM=claim
    )
    first = container_factory(NotifikasiService, config)
    first.start()
    publish(
        amqp_uri,
        *[produced.partner_event("partner_updated", f"p{i}") for i in range(total)],
    )
    wait_until(lambda: len(hook.received) >= 8, timeout=60, message="the batch under way")
    first.kill()  # mid-batch: each sender's claimed rows locked, some sent, none recorded
    at_kill = len(hook.received)
    with dbs["notifikasi"].engine.connect() as connection:  # as a dead process's would
        connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    container_factory(NotifikasiService, config).start()
    rows = wait_until(lambda: settled(dbs, total), timeout=90, message="every delivery sent")

    ids = [r.headers["X-Bersinar-Delivery"] for r in hook.received]
    duplicates = len(ids) - len(set(ids))
    print(
        f"\n[restart mid-batch] deliveries={total} received_at_kill={at_kill} "
        f"requests={len(ids)} distinct={len(set(ids))} resent={duplicates}"
    )
    assert all(r.status == "sent" for r in rows)
    assert set(ids) == {r.id for r in rows}
    assert duplicates <= senders * claim  # at most the rows each sender had claimed
    assert {r.json()["event_id"] for r in hook.received} == {r.event_id for r in rows}


def test_nothing_is_planned_for_an_event_no_one_asked_for(
    container_factory, make_config, clean_databases, amqp_uri, smtp
):
    dbs = clean_databases
    container_factory(NotifikasiService, notifikasi_config(make_config, smtp)).start()
    handled = metric(
        "bersinar_events_handled_total", service="notifikasi",
        consumer="on_partner_updated", event_type="partner_updated", outcome="ok",
    )  # fmt: skip
    publish(amqp_uri, produced.partner_event("partner_updated", "yayasan-kipas"))
    wait_until(
        lambda: (
            metric(
                "bersinar_events_handled_total",
                service="notifikasi",
                consumer="on_partner_updated",
                event_type="partner_updated",
                outcome="ok",
            )
            == handled + 1
        ),  # fmt: skip
        message="the event handled",
    )
    assert deliveries(dbs) == []


def test_a_round_sends_its_emails_over_one_connection_and_survives_a_dropped_one(smtp):
    """The delivery worker's e-mail channel keeps its SMTP connection for the round;
    a connection the server dropped in between is replaced and the message still goes."""
    settings = SmtpSettings(host="127.0.0.1", port=smtp.port, timeout=5)
    channels = Channels(
        email=EmailChannel(settings), webhook=None, sms=None, whatsapp=None
    )  # only e-mail is used here

    def send(channel, n):
        channel.send(f"d-{n}", "referral_requested", [KIPAS_EMAIL], f"Rujukan {n}", "Isi.")

    with channels.for_round() as round_one:
        for n in range(5):
            send(round_one.email, n)
        sessions_after_five = smtp.sessions()
    with channels.for_round() as round_two:
        send(round_two.email, 5)
        smtp.stop()  # the server goes away between two messages of the round
        smtp.start()
        send(round_two.email, 6)
    wait_until(lambda: len(smtp.messages()) == 7, timeout=10, message="seven e-mails")
    print(f"\n[smtp] 5 e-mails in one round over {sessions_after_five} connection(s); "
          f"{smtp.sessions()} connection(s) in all")  # fmt: skip
    assert sessions_after_five == 1
    assert smtp.sessions() == 3  # round two: one, and one after the server came back
    ids = sorted(m[domain.DELIVERY_HEADER] for m in smtp.messages())
    assert ids == [f"d-{n}" for n in range(7)]
