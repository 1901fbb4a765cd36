"""notifikasi's delivery bookkeeping in its migrated database, without a broker: an
event's deliveries planned once, retries kept attempt by attempt, giving up announced,
a recipient without an address failed at once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, func, select

from bersinar.db import UnitOfWorkFactory
from harness import produced
from services.notifikasi import handlers
from services.notifikasi.domain import PermanentDeliveryError, RetryPolicy
from services.notifikasi.models import (
    Base,
    Delivery,
    DeliveryAttempt,
    MissingAddress,
    Notification,
    WebhookSubscription,
    outbox,
)


@pytest.fixture
def uow_factory(empty_database):
    factory = UnitOfWorkFactory(empty_database("notifikasi"), "notifikasi", Base.metadata)
    yield factory
    factory.dispose()


class FakeDirectory:
    def addresses(self, recipient, channel):
        return ["ops@kipas.example"] if recipient.startswith("partner:") else []

    def name(self, recipient):
        return "Yayasan Kipas" if recipient == "partner:yayasan-kipas" else None


class FlakyEmail:
    def __init__(self, failures):
        self.failures = failures
        self.sent = []

    def send(self, delivery_id, event_type, addresses, subject, body):
        if not addresses:
            raise PermanentDeliveryError("NO_ADDRESS", "tidak ada alamat")
        if self.failures:
            self.failures -= 1
            raise ConnectionRefusedError("smtp down")
        self.sent.append((delivery_id, addresses, subject))


class Channels:
    def __init__(self, email):
        self.email = email


def record(factory, event):
    with factory("notifikasi.test") as uow:
        if not uow.first_delivery(event):
            return None
        delivered = handlers.record_event(uow, event)
        uow.commit()
    return delivered


def drain(factory, channels, policy, clock):
    outcomes = []
    while True:
        with factory() as uow:
            claimed = handlers.claim_due(uow, clock(), limit=2)
            if not claimed:
                return outcomes
            for delivery in claimed:
                outcomes.append(
                    handlers.attempt(
                        uow, delivery, channels, FakeDirectory(), {"default": policy}, clock=clock
                    )
                )
            handlers.flush_missing_addresses(uow, clock())  # as the delivery worker does
            uow.commit()


def test_an_event_recorded_twice_plans_its_deliveries_once(uow_factory):
    event = produced.report_event("report_overdue", "yayasan-kipas", "2026-10")
    assert len(record(uow_factory, event)) == 2  # partner and officer inboxes at once
    assert record(uow_factory, event) is None
    with uow_factory() as uow:
        rows = uow.session.execute(
            select(Delivery.recipient, Delivery.channel, Delivery.status)
        ).all()
        notes = uow.session.scalar(select(func.count()).select_from(Notification))
        events = [
            json.loads(p)["event_type"] for p in uow.session.scalars(select(outbox.c.payload))
        ]
    assert sorted(rows) == [
        ("partner:yayasan-kipas", "email", "pending"),
        ("partner:yayasan-kipas", "inbox", "sent"),
        ("role:officer", "email", "pending"),
        ("role:officer", "inbox", "sent"),
    ]
    assert notes == 2
    assert events == ["notification_sent", "notification_sent"]


def test_a_failing_delivery_is_retried_later_then_sent_and_every_attempt_is_kept(uow_factory):
    email = FlakyEmail(failures=2)
    policy = RetryPolicy(max_attempts=5, base=10, cap=100)
    record(
        uow_factory,
        produced.report_event("report_due_soon", "yayasan-kipas", "2026-10", "open"),
    )
    now = [datetime.now(UTC)]
    outcomes = drain(uow_factory, Channels(email), policy, lambda: now[0])
    assert [o.result for o in outcomes] == ["retry"]
    assert drain(uow_factory, Channels(email), policy, lambda: now[0]) == []  # not due yet
    for _ in range(2):
        now[0] += timedelta(seconds=25)
        outcomes += drain(uow_factory, Channels(email), policy, lambda: now[0])
    assert [o.result for o in outcomes] == ["retry", "retry", "sent"]
    assert len(email.sent) == 1
    with uow_factory() as uow:
        delivery = uow.session.scalars(select(Delivery).where(Delivery.channel == "email")).one()
        attempts = uow.session.scalars(
            select(DeliveryAttempt.outcome)
            .where(DeliveryAttempt.delivery_id == delivery.id)
            .order_by(DeliveryAttempt.number)
        ).all()
        assert (delivery.status, delivery.attempts, delivery.last_error) == ("sent", 3, None)
    assert attempts == ["failed", "failed", "sent"]


def test_a_delivery_is_given_up_after_the_last_attempt_and_announced(uow_factory):
    policy = RetryPolicy(max_attempts=2, base=1, cap=1)
    record(
        uow_factory,
        produced.report_event("report_due_soon", "yayasan-kipas", "2026-10", "open"),
    )
    now = [datetime.now(UTC)]
    email = FlakyEmail(failures=99)
    outcomes = drain(uow_factory, Channels(email), policy, lambda: now[0])
    now[0] += timedelta(seconds=5)
    outcomes += drain(uow_factory, Channels(email), policy, lambda: now[0])
    assert [o.result for o in outcomes] == ["retry", "gave_up"]
    with uow_factory() as uow:
        delivery = uow.session.scalars(select(Delivery).where(Delivery.channel == "email")).one()
        failed = [
            json.loads(p)["data"]
            for p in uow.session.scalars(select(outbox.c.payload))
            if json.loads(p)["event_type"] == "notification_failed"
        ]
        assert delivery.status == "failed" and "smtp down" in delivery.last_error
        assert failed == [
            {
                "delivery_id": delivery.id,
                "event_id": delivery.event_id,
                "event_type": "report_due_soon",
                "channel": "email",
                "recipient": "partner:yayasan-kipas",
                "recipient_kind": "partner",
                "status": "failed",
                "attempts": 2,
            }
        ]


def test_a_recipient_without_an_address_when_sending_is_skipped_and_told_once(uow_factory):
    """The address went missing between planning and sending: the delivery is skipped at
    its first attempt (no retry, no failure, no notification_failed) and the admins are
    told once that day."""
    for _ in range(2):
        record(uow_factory, produced.referral_requested(partner_id="yayasan-kipas"))
    now = datetime.now(UTC)

    class NoAddressYet(FakeDirectory):
        def addresses(self, recipient, channel):
            return []

    outcomes = []
    with uow_factory() as uow:
        for delivery in handlers.claim_due(uow, now, limit=10):
            outcomes.append(
                handlers.attempt(
                    uow, delivery, Channels(FlakyEmail(0)), NoAddressYet(),
                    {"default": RetryPolicy()}, clock=lambda: now,
                )
            )  # fmt: skip
        handlers.flush_missing_addresses(uow, now)
        uow.commit()
    assert sorted((o.result, o.attempts) for o in outcomes) == [("skipped", 1)] * len(outcomes)
    assert outcomes and all(o.error.startswith("NO_ADDRESS") for o in outcomes)
    with uow_factory() as uow:
        statuses = set(
            uow.session.scalars(select(Delivery.status).where(Delivery.channel == "email"))
        )
        events = [
            json.loads(p)["event_type"] for p in uow.session.scalars(select(outbox.c.payload))
        ]
        notices = uow.session.scalars(
            select(Notification.body).where(Notification.recipient == "role:admin")
        ).all()
        missing = uow.session.execute(
            select(MissingAddress.recipient, MissingAddress.skipped)
        ).all()
        skipped_for = set(
            uow.session.scalars(select(Delivery.recipient).where(Delivery.status == "skipped"))
        )
    assert statuses == {"skipped"}
    assert "notification_failed" not in events
    # two events, each skipped once per recipient: one row and one notice per recipient
    assert "partner:yayasan-kipas" in skipped_for
    assert sorted(missing) == sorted((recipient, 2) for recipient in skipped_for)
    assert len(notices) == len(missing)
    assert any("Yayasan Kipas" in body for body in notices)


def test_an_outcome_is_planned_in_the_transaction_that_records_it(uow_factory):
    """notifikasi consumes none of its own outcome events: the webhook that asked for
    notification_sent / _failed and the admins told of a failure get their deliveries
    in the transaction that records the outcome, and the event still leaves through
    the outbox for other subscribers."""
    with uow_factory() as uow:
        uow.session.add(
            WebhookSubscription(
                id="w-outcomes", url="https://hook.example/in",
                event_types=["notification_sent", "notification_failed"], secret="whsec_x",
                owner="admin", owner_role="admin", created_at=datetime.now(UTC),
            )
        )  # fmt: skip
        uow.commit()
    delivered = record(
        uow_factory, produced.report_event("report_due_soon", "yayasan-kipas", "2026-10", "open")
    )
    assert [d["channel"] for d in delivered] == ["inbox"]
    policy = RetryPolicy(max_attempts=1, base=1, cap=1)
    outcomes = drain(
        uow_factory, Channels(FlakyEmail(failures=99)), policy, lambda: datetime.now(UTC)
    )
    assert "gave_up" in [o.result for o in outcomes]
    with uow_factory() as uow:
        emitted = {
            json.loads(p)["event_id"]: json.loads(p)["event_type"]
            for p in uow.session.scalars(select(outbox.c.payload))
        }
        hooked = uow.session.execute(
            select(Delivery.event_id, Delivery.event_type).where(Delivery.channel == "webhook")
        ).all()
        admin_told = uow.session.scalars(
            select(Notification.event_type).where(Notification.recipient == "role:admin")
        ).all()
    assert sorted(emitted.values()) == ["notification_failed", "notification_sent"]
    # one webhook delivery per outcome, of that very event; none about those deliveries
    assert sorted((emitted[e], t) for e, t in hooked) == [
        ("notification_failed", "notification_failed"),
        ("notification_sent", "notification_sent"),
    ]
    assert sorted(admin_told) == ["address_missing", "notification_failed"]  # no admin e-mail


def test_a_batch_writes_its_planned_rows_in_one_insert_per_table(uow_factory):
    periods = ["2026-08", "2026-09", "2026-10"]
    sent = []

    def count(conn, cursor, statement, parameters, context, executemany):
        sent.append(" ".join(statement.split())[:40])

    event.listen(uow_factory.engine, "before_cursor_execute", count)
    try:
        with uow_factory("notifikasi.test") as uow:
            for period in periods:
                event_ = produced.report_event("report_overdue", "yayasan-kipas", period)
                assert uow.first_delivery(event_)
                handlers.record_event(uow, event_)
            uow.commit()
    finally:
        event.remove(uow_factory.engine, "before_cursor_execute", count)
    inserts = sorted(s.split(" (")[0] for s in sent if s.startswith("INSERT INTO"))
    # one inbox row per event (first_delivery), then one insert per table for the batch
    assert inserts == sorted(
        ["INSERT INTO deliveries", "INSERT INTO delivery_attempts", "INSERT INTO notifications"]
        + ["INSERT INTO inbox"] * len(periods)
    )
    with uow_factory() as uow:
        deliveries = uow.session.scalar(select(func.count()).select_from(Delivery))
        notes = uow.session.scalar(select(func.count()).select_from(Notification))
        attempts = uow.session.scalars(select(DeliveryAttempt.outcome)).all()
        outcomes = uow.session.scalar(select(func.count()).select_from(outbox))
    # per period: partner and officer, inbox (sent at once) and e-mail (pending)
    assert (deliveries, notes, attempts, outcomes) == (12, 6, ["sent"] * 6, 6)
