"""Reliability of messaging with the real broker and database: redelivery, failing
handlers (retry with backoff, park, replay), unroutable events, ordering, and a slow
query that must not stall other workers. Each test prints its figures."""

from __future__ import annotations

import itertools
import json
import time
import uuid

import eventlet
from nameko.testing.services import entrypoint_hook
from prometheus_client import REGISTRY
from sqlalchemy import func, select, text

from bersinar.base import ServiceBase
from bersinar.context import current_correlation_id
from bersinar.entrypoints import Database, event_handler, rpc
from bersinar.parking import peek, replay
from bersinar.relay import BatchPublisher, OutboxRelay, amqp_connection
from harness import infra, produced
from services.laporan.models import Base as LaporanBase
from services.laporan.models import ReferralRecord
from services.laporan.service import LaporanService
from services.notifikasi.models import Notification
from services.notifikasi.service import NotifikasiService
from tests.integration.conftest import wait_until
from tests.support.fixtures import RETRY_DELAYS


def referral_event(**referral_fields):
    """A referral_requested as rujukan makes it."""
    return produced.referral_requested(
        partner_id="yayasan-pesona", sex="F", source="IPWL", **referral_fields
    )


def publish(amqp_uri, *events, exchange="rujukan.events"):
    publisher = BatchPublisher(amqp_uri, exchange)
    try:
        return publisher.publish(
            [(e["event_id"], e["event_type"], json.dumps(e).encode(), {}) for e in events]
        )
    finally:
        publisher.close()


def metric(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


def count(factory, model, *where):
    with factory() as uow:
        return uow.session.scalar(select(func.count()).select_from(model).where(*where))


def test_a_redelivered_event_has_one_effect(
    container_factory, make_config, clean_databases, amqp_uri
):
    dbs = clean_databases
    for cls, name in ((LaporanService, "laporan"), (NotifikasiService, "notifikasi")):
        container_factory(cls, make_config(name)).start()
    event = referral_event()
    before = {
        c: metric(
            "bersinar_events_handled_total",
            service=c,
            consumer="on_referral_requested",
            event_type="referral_requested",
            outcome="duplicate",
        )
        for c in ("laporan", "notifikasi")
    }

    outcomes = publish(amqp_uri, event, event)  # the same event, delivered twice
    assert set(outcomes.values()) == {"confirmed"}
    for consumer in ("laporan", "notifikasi"):
        wait_until(
            lambda c=consumer: (
                metric(
                    "bersinar_events_handled_total",
                    service=c,
                    consumer="on_referral_requested",
                    event_type="referral_requested",
                    outcome="duplicate",
                )
                == before[c] + 1
            ),
            message=f"{consumer} to see the second delivery",
        )

    records = count(dbs["laporan"], ReferralRecord)
    notes = count(dbs["notifikasi"], Notification)
    print(f"\n[redelivery] deliveries=2 laporan_records={records} notifications={notes}")
    assert records == 1
    assert notes == 1


class Flaky(ServiceBase):
    """A consumer whose handler fails for the events in ``poisoned`` while ``failing``
    is set."""

    name = "flaky"
    uow = Database(LaporanBase.metadata)
    failing = True
    poisoned: set[str] = set()
    attempts: list[tuple[float, str]] = []
    handled: list[str] = []

    handled_at: dict[str, float] = {}
    batches: list[int] = []

    @event_handler("rujukan", "referral_requested")
    def on_referral_requested(self, events):
        Flaky.batches.append(len(events))
        if len(events) == 1:  # an attempt of one event, as the retry logic counts them
            Flaky.attempts.append((time.monotonic(), events[0]["event_id"]))
        if Flaky.failing and any(e["event_id"] in Flaky.poisoned for e in events):
            raise RuntimeError("poison pill for this test")
        return self.uow.apply_once(events, lambda uow, e: Flaky.record(e))

    @staticmethod
    def record(event):
        Flaky.handled.append(event["event_id"])
        Flaky.handled_at[event["event_id"]] = time.monotonic()


def test_failing_handler_retries_with_backoff_then_parks_and_replays_once(
    container_factory, make_config, clean_databases, amqp_uri
):
    Flaky.failing, Flaky.attempts, Flaky.handled = True, [], []
    Flaky.handled_at, Flaky.batches = {}, []
    container = container_factory(Flaky, make_config("laporan"))
    container.start()
    queue = "evt-rujukan-referral_requested--flaky.on_referral_requested"

    poison = referral_event()
    Flaky.poisoned = {poison["event_id"]}
    others = [referral_event() for _ in range(40)]
    publish(amqp_uri, poison, *others)

    wait_until(
        lambda: peek(amqp_uri, queue).count == 1,
        timeout=30,
        message="the poison event in the parking queue",
    )
    poison_times = [t for t, event_id in Flaky.attempts if event_id == poison["event_id"]]
    gaps = [b - a for a, b in zip(poison_times, poison_times[1:], strict=False)]
    last_other = max(Flaky.handled_at.values())
    print(
        f"\n[poison] attempts={len(poison_times)} gaps={[round(g, 2) for g in gaps]} "
        f"others_handled={len(set(Flaky.handled))} "
        f"others_done_before_parking={last_other < poison_times[-1]} "
        f"largest_batch={max(Flaky.batches)}"
    )
    assert max(Flaky.batches) > 1  # events that arrive together are handled together
    assert len(poison_times) == 1 + len(RETRY_DELAYS)
    for gap, delay in zip(gaps, RETRY_DELAYS, strict=True):
        assert gap >= delay * 0.9  # each retry waits at least its delay: no hot loop
    assert sorted(Flaky.handled) == sorted(e["event_id"] for e in others)
    assert last_other < poison_times[-1]  # the others flowed while the poison was retried

    view = peek(amqp_uri, queue, limit=10)
    assert view.items[0]["message_id"] == poison["event_id"]
    assert view.items[0]["reason"] == "RuntimeError: poison pill for this test"
    assert view.items[0]["attempts"] == 1 + len(RETRY_DELAYS)
    assert (
        metric(
            "bersinar_events_parked_total",
            service="flaky",
            consumer="on_referral_requested",
            event_type="referral_requested",
        )
        >= 1
    )

    Flaky.failing = False  # the fault is fixed
    assert replay(amqp_uri, queue) == 1
    wait_until(lambda: poison["event_id"] in Flaky.handled, message="the replayed event")
    eventlet.sleep(0.5)
    assert Flaky.handled.count(poison["event_id"]) == 1
    assert peek(amqp_uri, queue).count == 0


class Batched(ServiceBase):
    """Records each effect with the correlation id it ran under and the batch sizes."""

    name = "batched"
    uow = Database(LaporanBase.metadata)
    effects: list[tuple[str, str | None]] = []
    batches: list[int] = []

    @event_handler("rujukan", "referral_requested")
    def on_referral_requested(self, events):
        Batched.batches.append(len(events))
        return self.uow.apply_once(
            events,
            lambda uow, e: Batched.effects.append((e["event_id"], current_correlation_id())),
        )


def test_events_arriving_together_are_handled_in_batches_each_once_under_its_own_id(
    container_factory, make_config, clean_databases, amqp_uri
):
    Batched.effects, Batched.batches = [], []
    container_factory(Batched, make_config("laporan")).start()
    events = [referral_event() for _ in range(300)]
    for event in events:
        event["correlation_id"] = f"corr-{event['event_id']}"
    publish(amqp_uri, *events, *events[:20])  # 20 of them delivered twice

    ids = {e["event_id"] for e in events}
    wait_until(lambda: {i for i, _ in Batched.effects} == ids, message="every event handled")
    wait_until(lambda: sum(Batched.batches) == 320, message="every delivery taken")
    eventlet.sleep(0.3)
    inbox = LaporanBase.metadata.tables["inbox"]
    inbox_rows = count(
        clean_databases["laporan"], inbox, inbox.c.consumer == "batched.on_referral_requested"
    )
    print(
        f"\n[batches] deliveries=320 effects={len(Batched.effects)} inbox_rows={inbox_rows} "
        f"workers={len(Batched.batches)} largest_batch={max(Batched.batches)}"
    )
    assert len(Batched.effects) == 300  # each event once, redelivered or not
    assert inbox_rows == 300
    assert len(Batched.batches) < 320 and max(Batched.batches) > 1
    assert max(Batched.batches) <= 50  # EVENT_BATCH_SIZE's default
    assert all(cid == f"corr-{event_id}" for event_id, cid in Batched.effects)


def _bind_probe(amqp_uri, exchange, *routing_keys):
    """A queue of the test's own bound to ``routing_keys``; returns (connection, name)."""
    connection = amqp_connection(amqp_uri)
    connection.connect()
    channel = connection.channel()
    channel.exchange_declare(exchange, "topic", durable=True, auto_delete=False)
    name = f"probe-{uuid.uuid4().hex[:8]}"
    channel.queue_declare(name, durable=False, auto_delete=False, exclusive=False)
    for key in routing_keys:
        channel.queue_bind(name, exchange, key)
    return connection, channel, name


def _drain(channel, name):
    bodies = []
    while (message := channel.basic_get(name, no_ack=True)) is not None:
        bodies.append(json.loads(message.body))
    return bodies


def test_unroutable_event_is_kept_reported_and_holds_back_its_successors(
    clean_databases, make_config, test_run_id
):
    with infra.own_vhost(f"bersinar-unroutable-{test_run_id}") as amqp_uri:
        unroutable_event_is_kept(clean_databases, make_config, amqp_uri)


def unroutable_event_is_kept(dbs, make_config, amqp_uri):
    # a vhost of its own, where nobody listens to mitra's events but the probe: in the
    # run's, the services of other tests have bound every event type
    lonely, routed = "agreement_expired", "partner_updated"
    connection, channel, probe = _bind_probe(amqp_uri, "mitra.events", routed)
    expired = produced.agreement_notice("yayasan-kipas", days_left=-1)["data"]
    kipas = produced.partner_event(routed, "yayasan-kipas")["data"]
    pesona = produced.partner_event(routed, "yayasan-pesona")["data"]
    with dbs["mitra"]() as uow:
        first = uow.emit(lonely, expired, "partner:p1")
        held = uow.emit(routed, kipas, "partner:p1")  # same key: must wait behind
        free = uow.emit(routed, pesona, "partner:other")  # other key: goes at once
        uow.commit()

    config = make_config("mitra")
    relay = OutboxRelay("mitra", config["DATABASE_URL"], amqp_uri, idle_interval=0.02)
    unroutable_before = metric(
        "bersinar_outbox_unroutable_total", service="mitra", event_type=lonely
    )
    relay.relay_once()

    def row(event):
        with dbs["mitra"]() as uow:
            return uow.session.execute(
                text("SELECT attempts, last_error, published_at FROM outbox WHERE event_id = :e"),
                {"e": event["event_id"]},
            ).one()

    assert row(first).published_at is None
    assert row(first).last_error.startswith("unroutable")
    assert row(held).published_at is None
    assert row(free).published_at is not None
    assert (
        metric("bersinar_outbox_unroutable_total", service="mitra", event_type=lonely)
        == unroutable_before + 1
    )
    assert [b["event_id"] for b in _drain(channel, probe)] == [free["event_id"]]

    channel.queue_bind(probe, "mitra.events", lonely)  # somebody listens now
    thread = eventlet.spawn(relay.run)
    try:
        wait_until(
            lambda: row(held).published_at is not None,
            timeout=15,
            message="the held event to be published",
        )
    finally:
        relay.stop()
        thread.wait()
    received = [b["event_id"] for b in _drain(channel, probe)]
    print(f"\n[unroutable] attempts_before_bound={row(first).attempts} received={len(received)}")
    assert received == [first["event_id"], held["event_id"]]  # in the order written
    connection.close()


def test_an_idle_relay_publishes_as_soon_as_a_commit_notifies_it(
    clean_databases, make_config, amqp_uri
):
    """An idle relay sleeps until a unit of work that wrote to the outbox commits
    (LISTEN / NOTIFY), not polling: here it would otherwise look again only after 30 s."""
    dbs = clean_databases
    connection, channel, probe = _bind_probe(amqp_uri, "mitra.events", "partner_updated")
    relay = OutboxRelay("mitra", make_config("mitra")["DATABASE_URL"], amqp_uri, listen_timeout=30)
    thread = eventlet.spawn(relay.run)
    try:
        eventlet.sleep(1.0)  # leader, outbox empty: waiting
        kipas = produced.partner_event("partner_updated", "yayasan-kipas")["data"]
        with dbs["mitra"]() as uow:
            emitted = uow.emit("partner_updated", kipas, "partner:yayasan-kipas")
            uow.commit()
        started = time.monotonic()
        wait_until(
            lambda: emitted["event_id"] in [b["event_id"] for b in _drain(channel, probe)],
            timeout=5,
            message="the event published after the commit",
        )
        took = time.monotonic() - started
    finally:
        relay.stop()
        thread.wait()
        connection.close()
    print(f"\n[relay wake-up] published {took * 1000:.0f} ms after the commit")
    assert took < 2.0


def test_an_outcome_event_nobody_consumes_is_published_not_kept(
    clean_databases, make_config, test_run_id
):
    """notification_sent / _failed need no consumer (OPTIONAL_SUBSCRIBERS): with no queue
    bound the relay marks them published (the broker drops them) instead of keeping them
    as unroutable, and a queue bound later (a national system's, say) receives them."""
    with infra.own_vhost(f"bersinar-optional-{test_run_id}") as amqp_uri:
        dbs = clean_databases
        told = produced.report_event("report_due_soon", "yayasan-kipas", "2026-10", "open")
        lost = produced.notification_outcome(told, "sent")
        with dbs["notifikasi"]() as uow:
            nobody = uow.emit("notification_sent", lost["data"], "delivery:a")
            uow.commit()
        relay = OutboxRelay("notifikasi", make_config("notifikasi")["DATABASE_URL"], amqp_uri)
        unroutable_before = metric(
            "bersinar_outbox_unroutable_total", service="notifikasi", event_type="notification_sent"
        )
        assert relay.relay_once() == 1
        connection, channel, probe = _bind_probe(
            amqp_uri, "notifikasi.events", "notification_failed"
        )
        with dbs["notifikasi"]() as uow:
            heard = uow.emit("notification_failed", lost["data"] | {"status": "failed"}, "d:b")
            uow.commit()
        assert relay.relay_once() == 1
        relay.publisher.close()
        with dbs["notifikasi"]() as uow:
            rows = uow.session.execute(
                text("SELECT event_id, published_at, last_error FROM outbox ORDER BY id")
            ).all()
        assert [(r.event_id, r.published_at is not None, r.last_error) for r in rows] == [
            (nobody["event_id"], True, None),
            (heard["event_id"], True, None),
        ]
        assert (
            metric(
                "bersinar_outbox_unroutable_total",
                service="notifikasi",
                event_type="notification_sent",
            )
            == unroutable_before
        )
        assert [b["event_id"] for b in _drain(channel, probe)] == [heard["event_id"]]
        connection.close()


def test_setup_retires_notifikasi_outcome_queues_of_an_earlier_release(test_run_id):
    """A broker set up by a release whose notifikasi consumed its own outcome events
    still has their queues bound: `bersinar queues` unbinds them (so they stop filling)
    and deletes those that are empty; one still holding messages is kept for the
    operator."""
    from bersinar.entrypoints import retry_queue_name
    from bersinar.parking import RETIRED_QUEUES, declare_consumer_queues, parked_queue_name

    (sent_queue, exchange, sent_key), (failed_queue, _, failed_key) = RETIRED_QUEUES
    with infra.own_vhost(f"bersinar-retired-{test_run_id}") as amqp_uri:
        connection, channel, _ = _bind_probe(amqp_uri, exchange)
        for queue, key in ((sent_queue, sent_key), (failed_queue, failed_key)):
            channel.queue_declare(queue, durable=True, auto_delete=False)
            channel.queue_bind(queue, exchange, key)
            channel.queue_declare(parked_queue_name(queue), durable=True, auto_delete=False)
        channel.queue_declare(
            retry_queue_name(sent_queue, 1.0), durable=True, auto_delete=False,
            arguments={"x-message-ttl": 1000, "x-dead-letter-exchange": "",
                       "x-dead-letter-routing-key": sent_queue},
        )  # fmt: skip
        told = produced.report_event("report_due_soon", "yayasan-kipas", "2026-10", "open")
        waiting = produced.notification_outcome(told, "failed")
        assert publish(amqp_uri, waiting, exchange=exchange) == {
            waiting["event_id"]: "confirmed"
        }  # routed to the old failed queue: it holds one message
        connection.close()

        declare_consumer_queues(amqp_uri, NotifikasiService, "notifikasi", [1.0])

        def exists(name):
            probe = amqp_connection(amqp_uri)
            probe.connect()
            try:
                probe.channel().queue_declare(name, passive=True)
                return True
            except Exception:
                return False
            finally:
                probe.close()

        assert not exists(sent_queue)
        assert not exists(retry_queue_name(sent_queue, 1.0))
        assert not exists(parked_queue_name(sent_queue))
        assert exists(failed_queue)  # its message waits for the operator
        assert not exists(parked_queue_name(failed_queue))
        # unbound: nothing more reaches it, and the relay's publish is not returned
        again = produced.notification_outcome(told, "failed")
        assert publish(amqp_uri, again, exchange=exchange) == {again["event_id"]: "confirmed"}
        check = amqp_connection(amqp_uri)
        check.connect()
        _, messages, _ = check.channel().queue_declare(failed_queue, passive=True)
        check.close()
        assert messages == 1


class Sleepy(ServiceBase):
    name = "sleepy"
    uow = Database(LaporanBase.metadata)

    @rpc
    def slow(self):
        with self.uow() as uow:
            uow.session.execute(text("SELECT pg_sleep(1.5)"))
        return "slow"

    @rpc
    def fast(self):
        with self.uow() as uow:
            return uow.session.execute(text("SELECT 'fast'")).scalar()


def test_a_slow_query_does_not_stall_another_worker(container_factory, make_config, database_urls):
    container = container_factory(Sleepy, make_config("laporan"))
    container.start()
    with entrypoint_hook(container, "slow") as slow, entrypoint_hook(container, "fast") as fast:
        slow_call = eventlet.spawn(slow)
        eventlet.sleep(0.2)  # the slow query is now running in its worker
        started = time.monotonic()
        assert fast() == "fast"
        fast_took = time.monotonic() - started
        slow_still_running = not slow_call.dead
        assert slow_call.wait() == "slow"
    print(
        f"\n[eventlet] fast query answered in {fast_took * 1000:.0f} ms "
        f"while the slow one ran: {slow_still_running}"
    )
    assert slow_still_running


class Holding(ServiceBase):
    """A consumer whose handler waits on ``release`` for the events in ``held``."""

    name = "holding"
    held: set[str] = set()
    release = eventlet.event.Event()
    handled: list[str] = []

    @event_handler("rujukan", "referral_requested")
    def on_referral_requested(self, events):
        if any(e["event_id"] in Holding.held for e in events):
            Holding.release.wait()
        Holding.handled.extend(e["event_id"] for e in events)


HOLDING_QUEUE = "evt-rujukan-referral_requested--holding.on_referral_requested"


def queue_state(amqp_uri, queue):
    """The broker's answer to a passive declare: ``message_count`` (ready) and
    ``consumer_count``."""
    connection = amqp_connection(amqp_uri)
    connection.connect()
    try:
        return connection.channel().queue_declare(queue, passive=True)
    finally:
        connection.close()


def ready_in(amqp_uri, queue):
    return queue_state(amqp_uri, queue).message_count


def test_acks_wait_for_every_earlier_delivery_and_none_is_acked_before_it_is_handled(
    container_factory, make_config, amqp_uri
):
    """Deliveries are acked together, up to the newest of a run handled from the oldest
    (bersinar.entrypoints.EventQueueConsumer): an event still being handled holds back the
    acks of those after it, so a process that dies then leaves every one of them to the
    broker; once all are handled, none is left unacked."""
    config = make_config("laporan", EVENT_BATCH_SIZE=1, EVENT_BATCH_LINGER=0)
    first = referral_event()
    later = [referral_event() for _ in range(4)]
    Holding.held = {first["event_id"]}
    Holding.handled = []
    Holding.release = eventlet.event.Event()
    holding = container_factory(Holding, config)
    holding.start()
    publish(amqp_uri, first)
    wait_until(lambda: ready_in(amqp_uri, HOLDING_QUEUE) == 0, message="the first delivered")
    publish(amqp_uri, *later)
    wait_until(
        lambda: set(Holding.handled) == {e["event_id"] for e in later},
        message="the later events handled while the first is held",
    )
    holding.kill()  # dies holding the first: the broker takes back every unacked delivery
    held_back = ready_in(amqp_uri, HOLDING_QUEUE)

    Holding.held = set()
    Holding.handled = []
    again = container_factory(Holding, config)
    again.start()
    wait_until(lambda: len(Holding.handled) == 5, message="all five handled again")
    again.stop()  # a graceful stop gives back only what was not acked
    left = ready_in(amqp_uri, HOLDING_QUEUE)
    print(f"\n[acks] given back when the holder died={held_back}, after all were handled={left}")
    assert held_back == 5
    assert sorted(Holding.handled) == sorted(e["event_id"] for e in [first, *later])
    assert left == 0


MOVES = ("accepted", "rejected", "cancelled", "admitted", "completed")


def _recording(event_type):
    def handle(self, events):
        # the later a delivery arrived, the sooner it is done: later deliveries are
        # acked before earlier ones are handled
        arrived = next(Backlogged.arrivals)
        eventlet.sleep(max(0.0, 1.5 - 0.003 * arrived))
        Backlogged.handled.extend(e["event_id"] for e in events)

    handle.__name__ = handle.__qualname__ = f"on_{event_type}"
    return event_handler("rujukan", event_type)(handle)


class Backlogged(ServiceBase):
    """Event consumers of six queues on one channel, recording what they handle."""

    name = "backlogged"
    handled: list[str] = []
    arrivals = itertools.count()
    on_referral_requested = _recording("referral_requested")
    for _move in MOVES:
        locals()[f"on_referral_{_move}"] = _recording(f"referral_{_move}")
    del _move


def test_deliveries_that_arrive_while_the_consumers_are_declared_are_acked_once_each(
    container_factory, make_config, amqp_uri
):
    """With a backlog in several queues, the first queues' deliveries arrive while the
    consumers of the others are still being declared (kombu reads them while it waits for
    each declaration's answer). Their acks are tracked like every later one: none is
    acked by another's ``multiple`` ack before it is handled, none twice (an unknown
    delivery tag closes the channel, and every consumer on it with it), so the consumer
    keeps its first connection and every event is handled once."""
    config = make_config("laporan", EVENT_BATCH_SIZE=1, EVENT_BATCH_LINGER=0, max_workers=500)
    declaring = container_factory(Backlogged, config)
    declaring.start()  # declares the queues
    declaring.stop()
    events = [referral_event() for _ in range(80)]
    events += [produced.referral_moved(move) for move in MOVES for _ in range(80)]
    publish(amqp_uri, *events)
    Backlogged.handled = []
    Backlogged.arrivals = itertools.count()
    consumer = container_factory(Backlogged, config)
    consumer.start()
    events_consumer = next(
        e for e in consumer.extensions if type(e).__name__ == "EventQueueConsumer"
    )
    first_connection = events_consumer._consuming_on
    wait_until(lambda: len(Backlogged.handled) >= len(events), message="every event handled")
    time.sleep(1.0)  # an ack refused by the broker closes the channel by now
    queues = [
        f"evt-rujukan-{event_type}--backlogged.on_{event_type}"
        for event_type in ("referral_requested", *(f"referral_{m}" for m in MOVES))
    ]
    states = [queue_state(amqp_uri, queue) for queue in queues]
    print(
        f"\n[acks at consume start] handled={len(Backlogged.handled)} of {len(events)}, "
        f"same connection={events_consumer._consuming_on is first_connection}, "
        f"consumers={[s.consumer_count for s in states]}"
    )
    assert events_consumer._consuming_on is first_connection
    assert sorted(Backlogged.handled) == sorted(e["event_id"] for e in events)
    assert [s.consumer_count for s in states] == [1] * len(queues)
    consumer.stop()  # a graceful stop gives back only what was not acked
    assert [queue_state(amqp_uri, queue).message_count for queue in queues] == [0] * len(queues)
