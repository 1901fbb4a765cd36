"""A message whose body is not JSON never reaches a handler: kombu acked it and it was
gone. It is parked with its reason now, and the consumer goes on (found by the fault
suite's poison case, docs/chaos.md)."""

from __future__ import annotations

import amqp

from bersinar.parking import peek
from bersinar.relay import amqp_connection
from tests.integration.conftest import wait_until
from tests.integration.test_messaging_reliability import Flaky, publish, referral_event

QUEUE = "evt-rujukan-referral_requested--flaky.on_referral_requested"


def test_a_body_that_is_not_json_is_parked_and_the_flow_goes_on(
    container_factory, make_config, clean_databases, amqp_uri
):
    Flaky.failing, Flaky.attempts, Flaky.handled = False, [], []
    container_factory(Flaky, make_config("laporan")).start()
    connection = amqp_connection(amqp_uri)
    connection.connect()
    channel = connection.channel()
    channel.basic_publish(
        amqp.Message(b"{not json", content_type="application/json", message_id="broken-1"),
        exchange="",
        routing_key=QUEUE,
    )
    connection.close()
    after = referral_event()
    publish(amqp_uri, after)

    wait_until(lambda: peek(amqp_uri, QUEUE).count == 1, timeout=30, message="the parked body")
    wait_until(lambda: after["event_id"] in Flaky.handled, message="the event after it")
    parked = peek(amqp_uri, QUEUE, limit=5).items[0]
    print(f"\n[undecodable] parked: {parked}")
    assert parked["message_id"] == "broken-1"
    assert parked["reason"].startswith("undecodable body (application/json)")
