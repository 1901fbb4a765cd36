"""Parked messages on the real broker, in a vhost of this test's own, on a classic and on
a quorum parking queue whose ``x-delivery-limit`` drops a message returned three times:
listing (`bersinar parked list --show`) thirty times changes nothing (no message lost,
order kept, no delivery counted), replaying one event leaves the others parked as they
were, and replaying all brings each message to the handler's queue exactly once."""

from __future__ import annotations

import json
from collections import Counter

import amqp
import pytest
from click.testing import CliRunner

from bersinar import parking
from bersinar.entrypoints import ATTEMPT_HEADER, parked_headers, parked_queue_name
from bersinar.relay import amqp_connection
from cli.main import main
from harness import infra, produced

QUEUE = "evt-rujukan-referral_requested--laporan.on_referral_requested"
PARKED = parked_queue_name(QUEUE)
DELIVERY_LIMIT = 2
QUORUM = {"x-queue-type": "quorum", "x-delivery-limit": DELIVERY_LIMIT}
KINDS = {"classic": {}, "quorum": QUORUM}


class Broker:
    def __init__(self, amqp_uri: str):
        self.connection = amqp_connection(amqp_uri)
        self.connection.connect()
        self.channel = self.connection.channel()
        self.channel.auto_decode = False

    def declare(self, name: str, arguments: dict | None = None) -> None:
        self.channel.queue_declare(name, durable=True, auto_delete=False, arguments=arguments)

    def park(self, queue: str, count: int) -> list[dict]:
        """Events as rujukan makes them, parked as the event handler parks them."""
        events = [produced.referral_requested() for _ in range(count)]
        for attempt, event in enumerate(events, start=1):
            headers = parked_headers({}, attempt, RuntimeError(f"cause {attempt}"), QUEUE)
            message = amqp.Message(
                json.dumps(event).encode(),
                content_type="application/json",
                content_encoding="utf-8",
                message_id=event["event_id"],
                delivery_mode=2,
                application_headers=headers,
            )
            self.channel.basic_publish_confirm(message, exchange="", routing_key=queue)
        return events

    def count(self, name: str) -> int:
        return self.channel.queue_declare(name, passive=True)[1]

    def drain(self, name: str) -> list:
        messages = []
        while (message := self.channel.basic_get(name, no_ack=True)) is not None:
            messages.append(message)
        return messages

    def close(self) -> None:
        self.connection.close()


@pytest.fixture
def broker(test_run_id, request, monkeypatch):
    with infra.own_vhost(f"bersinar-parking-{request.node.callspec.id}-{test_run_id}") as uri:
        monkeypatch.setenv("AMQP_URI", uri)
        broker = Broker(uri)
        broker.uri = uri
        yield broker
        broker.close()


def listed(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("  {")]


def described(events: list[dict]) -> list[tuple]:
    return [(e["event_id"], attempt, f"RuntimeError: cause {attempt}") for attempt, e in events]


@pytest.mark.parametrize("kind", list(KINDS))
def test_listing_changes_nothing_and_replays_deliver_each_message_once(broker, kind):
    broker.declare(QUEUE)
    broker.declare(PARKED, KINDS[kind])
    events = list(enumerate(broker.park(PARKED, 12), start=1))
    runner = CliRunner()

    first = None
    for _ in range(30):
        result = runner.invoke(main, ["parked", "list", "--service", "laporan", "--show"])
        assert result.exit_code == 0, result.output
        items = listed(result.output)
        assert [(i["message_id"], i["attempts"], i["reason"]) for i in items] == described(events)
        first = first or items
        assert items == first  # every header as parked, parked_at to the last digit
    assert f"{PARKED}: 12" in result.output
    assert broker.count(PARKED) == 12

    # what the next reader sees: fresh messages, never handed out before
    seen = []

    def look(message):
        seen.append((message.delivery_info["redelivered"], message.headers.get("x-delivery-count")))
        return PARKED, parking._copy(message, lambda k: k not in parking.BROKER_HEADERS)

    parking._walk(broker.uri, QUEUE, lambda walk: walk.run(walk.count(), look))
    assert set(seen) <= {(False, None), (False, 0)}, seen
    assert len(seen) == 12

    chosen = events[4][1]["event_id"]
    result = runner.invoke(main, ["parked", "replay", QUEUE, "--event-id", chosen])
    assert result.exit_code == 0, result.output
    assert "replayed 1 message(s)" in result.output
    others = [e for e in events if e[1]["event_id"] != chosen]
    after_one = parking.peek(broker.uri, QUEUE, limit=100)
    assert after_one.count == 11
    assert after_one.items == [item for item in first if item["message_id"] != chosen]
    arrived = broker.drain(QUEUE)
    assert [m.properties["message_id"] for m in arrived] == [chosen]
    assert ATTEMPT_HEADER not in (arrived[0].headers or {})  # a fresh attempt count

    for _ in range(5):  # a few more lookings after the replay: still nothing changes
        assert parking.peek(broker.uri, QUEUE, limit=100).items == after_one.items
    result = runner.invoke(main, ["parked", "replay", QUEUE])
    assert result.exit_code == 0, result.output
    assert "replayed 11 message(s)" in result.output
    arrived += broker.drain(QUEUE)
    ids = [m.properties["message_id"] for m in arrived]
    print(
        f"\n[parking {kind}] 30 listings, then 1 + 11 replayed: {len(ids)} arrived, "
        f"{len(set(ids))} distinct, parked left {broker.count(PARKED)}"
    )
    assert Counter(ids) == Counter(e["event_id"] for _, e in events)  # each exactly once
    assert ids[1:] == [e["event_id"] for _, e in others]  # in the order they were parked
    by_id = {e["event_id"]: e for _, e in events}
    assert all(json.loads(m.body) == by_id[m.properties["message_id"]] for m in arrived)
    assert broker.count(PARKED) == 0


@pytest.mark.parametrize("kind", ["quorum"])
def test_a_peek_that_returns_messages_loses_them_on_this_queue(broker, kind):
    """The control: on the quorum queue of the test above, reading messages and letting
    them go back (what listing did before) drops them once the limit is passed; so the
    test above would see the loss if listing returned messages."""
    broker.declare(PARKED, KINDS[kind])
    broker.park(PARKED, 3)
    for _ in range(DELIVERY_LIMIT + 1):
        channel = broker.connection.channel()
        while channel.basic_get(PARKED, no_ack=False) is not None:
            pass
        channel.close()  # the unacked messages go back, a delivery counted on each
    assert broker.count(PARKED) == 0


@pytest.mark.parametrize("kind", ["classic"])
def test_a_second_walk_of_the_same_queue_is_refused_while_one_runs(broker, kind):
    broker.declare(QUEUE)
    broker.declare(PARKED, KINDS[kind])
    events = broker.park(PARKED, 3)
    holder = amqp_connection(broker.uri)
    holder.connect()
    try:
        holder.channel().queue_declare(
            f"bersinar-parking-lock.{QUEUE}", exclusive=True, auto_delete=True
        )
        with pytest.raises(parking.ParkingBusy):
            parking.peek(broker.uri, QUEUE, limit=10)
        with pytest.raises(parking.ParkingBusy):
            parking.replay(broker.uri, QUEUE)
        refused = CliRunner().invoke(main, ["parked", "replay", QUEUE])
        assert refused.exit_code == 1 and "being listed or replayed" in refused.output
    finally:
        holder.close()
    assert [i["message_id"] for i in parking.peek(broker.uri, QUEUE, limit=10).items] == [
        e["event_id"] for e in events
    ]
