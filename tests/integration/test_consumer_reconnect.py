"""A queue consumer whose broker connection dies consumes again from a new one, and says
so while it cannot: the state ``health`` reports. With the real broker and database."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from kombu import Connection, Consumer, Exchange, Producer, Queue
from nameko.testing.services import entrypoint_hook

from bersinar.entrypoints import EventQueueConsumer, SturdyQueueConsumer
from services.laporan.models import ReferralRecord
from services.laporan.service import LaporanService
from tests.integration.conftest import wait_until
from tests.integration.test_messaging_reliability import (
    count,
    publish,
    queue_state,
    referral_event,
)

QUEUE = "evt-rujukan-referral_requested--laporan.on_referral_requested"


def queue_consumer(container, cls):
    found = [e for e in container.extensions if type(e) is cls]
    assert len(found) == 1, found
    return found[0]


def consumers_on(amqp_uri, queue):
    return queue_state(amqp_uri, queue).consumer_count


def fail_a_write(transport_connection):
    """What a worker's ack does on a socket the broker has reset: amqp's transport write
    fails and marks the transport not connected, before the consumer loop, waiting for
    the next message, has read the end of that socket."""

    def reset(_data):
        raise ConnectionResetError(104, "Connection reset by peer")

    transport = transport_connection.transport
    transport._write = reset
    with pytest.raises(ConnectionResetError):
        transport.write(b"\x08")
    assert not transport_connection.connected


def test_an_event_consumer_whose_ack_found_the_connection_reset_consumes_again(
    container_factory, make_config, clean_databases, amqp_uri
):
    container = container_factory(LaporanService, make_config("laporan"))
    container.start()
    events = queue_consumer(container, EventQueueConsumer)
    first = referral_event()
    publish(amqp_uri, first)
    wait_until(lambda: count(clean_databases["laporan"], ReferralRecord) == 1, message="first")
    with entrypoint_hook(container, "health") as health:
        assert health()["consumers"] == {"rpc": "ok", "events": "ok"}

    lost = events._consuming_on
    failed_at = time.monotonic()
    fail_a_write(lost)
    assert events.state() == "disconnected"
    with entrypoint_hook(container, "health") as health:
        answer = health()
    assert answer["status"] == "degraded"
    assert answer["consumers"] == {"rpc": "ok", "events": "disconnected"}

    # once its loop has come round (it waits up to 1 s for a message on the old
    # socket), kombu alone would drain a new connection that consumes nothing; this one
    # drops it and declares the consumers again on a new one
    wait_until(lambda: events._last_iteration > failed_at, message="the loop to come round")
    second = referral_event()
    publish(amqp_uri, second)
    wait_until(
        lambda: count(clean_databases["laporan"], ReferralRecord) == 2,
        timeout=30,
        message="the event published after the connection was lost",
    )
    wait_until(lambda: events.state() == "ok", message="the consumer to be ready again")
    assert events._consuming_on is not lost
    wait_until(lambda: consumers_on(amqp_uri, QUEUE) == 1, message="one consumer on the queue")
    with entrypoint_hook(container, "health") as health:
        assert health() == {
            "service": "laporan",
            "status": "ok",
            "consumers": {"rpc": "ok", "events": "ok"},
        }


def test_consumers_name_their_connections_for_the_broker(container_factory, make_config):
    container = container_factory(LaporanService, make_config("laporan"))
    rpc = queue_consumer(container, SturdyQueueConsumer)
    events = queue_consumer(container, EventQueueConsumer)
    for consumer, name in ((rpc, "laporan rpc"), (events, "laporan events")):
        options = consumer.connection.transport_options
        assert options["client_properties"] == {"connection_name": name}
    assert rpc.state() == "stopped"  # not started yet


def test_an_rpc_reply_is_sent_transient_with_the_answer(container_factory, make_config):
    """A reply lives only as long as its caller's reply queue: the service sends it
    transient and does not wait for the broker's confirm (bersinar.entrypoints.Responder);
    the caller gets the answer all the same."""
    config = make_config("laporan")
    container = container_factory(LaporanService, config)
    container.start()
    replies = []
    with Connection(config["AMQP_URI"]) as connection:
        channel = connection.channel()
        # nameko sends a reply to its RPC exchange, routed by the reply_to name
        name = f"test-reply-{uuid.uuid4()}"
        exchange = Exchange("nameko-rpc", type="topic", durable=True)
        reply_queue = Queue(name, exchange, routing_key=name, exclusive=True, auto_delete=True)
        reply_queue.bind(channel).declare()
        with Consumer(channel, [reply_queue], callbacks=[lambda _, m: replies.append(m)]):
            Producer(channel).publish(
                {"args": ["2026-11"], "kwargs": {}},
                exchange="nameko-rpc",
                routing_key="laporan.recorded_counts",
                reply_to=reply_queue.name,
                correlation_id="c-1",
            )
            deadline = time.monotonic() + 10
            while not replies and time.monotonic() < deadline:
                try:
                    connection.drain_events(timeout=0.5)
                except TimeoutError:
                    pass
    assert len(replies) == 1
    reply = replies[0]
    assert reply.properties["correlation_id"] == "c-1"
    assert reply.properties["delivery_mode"] == 1  # transient, not persisted by the broker
    body = json.loads(reply.body)
    assert body["error"] is None
    assert isinstance(body["result"], dict)
