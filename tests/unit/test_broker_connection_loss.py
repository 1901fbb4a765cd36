"""What a service and the gateway do when the broker connection is lost: in the middle of
a request (found by the fault suite, docs/chaos.md: each used to kill a container or
answer 500), and under a consumer, which must notice and say so."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace
from unittest import mock

import pytest
from amqp.exceptions import RecoverableConnectionError
from kombu.exceptions import OperationalError as KombuOperationalError
from sqlalchemy.exc import OperationalError as DatabaseOperationalError

from bersinar.entrypoints import (
    CONSUMER_STALLED_AFTER,
    ConsumerConnection,
    Rpc,
    SturdyQueueConsumer,
)
from gateway.exceptions import ServiceUnavailable
from gateway.http import call, response_for_error
from gateway.routes.operations import consumer_problems


def rpc_entrypoint(consumer):
    entrypoint = Rpc.__new__(Rpc)  # no container: only handle_result is exercised
    entrypoint.rpc_consumer = consumer
    entrypoint.method_name = "create_referral"
    entrypoint.container = SimpleNamespace(service_name="rujukan")
    return entrypoint


@pytest.mark.parametrize(
    "error",
    [KombuOperationalError("Server unexpectedly closed connection"), ConnectionResetError(104)],
)
def test_a_reply_that_cannot_be_sent_leaves_the_request_for_redelivery(error):
    consumer = mock.Mock()
    consumer.handle_result.side_effect = error
    message = object()
    result = rpc_entrypoint(consumer).handle_result(message, None, {"id": "r-1"}, None)
    assert result == ({"id": "r-1"}, None)  # no exception reaches the container
    consumer.queue_consumer.requeue_message.assert_called_once_with(message)


@pytest.mark.parametrize("method", ["ack", "requeue"])
@pytest.mark.parametrize("error", [ConnectionResetError(104), BrokenPipeError(32)])
def test_an_ack_on_a_connection_reset_a_moment_ago_is_not_fatal(method, error):
    consumer = SturdyQueueConsumer.__new__(SturdyQueueConsumer)
    message = mock.Mock()
    getattr(message, method).side_effect = error  # the socket died, the channel looks alive
    getattr(consumer, f"{method}_message")(message)
    getattr(message, method).assert_called_once()


def test_an_rpc_the_broker_cannot_take_answers_503():
    proxy = mock.Mock()
    proxy.create_referral.side_effect = KombuOperationalError("[Errno 111] Connection refused")
    with pytest.raises(ServiceUnavailable) as refused:
        call(proxy, "rujukan", "create_referral", {}, timeout=1)
    assert refused.value.errors == {"service": ["rujukan"]}


def test_the_gateways_own_database_out_of_reach_answers_503_not_500():
    error = DatabaseOperationalError("SELECT 1", {}, Exception("connection refused"))
    response = response_for_error(error)
    body = json.loads(response.get_data(as_text=True))
    assert (response.status_code, body["code"]) == (503, "SERVICE_UNAVAILABLE")


def test_a_consumer_connection_once_lost_raises_instead_of_reconnecting_quietly():
    connection = ConsumerConnection("amqp://guest:guest@127.0.0.1:5672/")
    connection._closed = False
    connection._connection = SimpleNamespace(connected=True)
    assert connection.connection is connection._connection
    connection._connection.connected = False  # a write found the socket reset
    with pytest.raises(RecoverableConnectionError):
        _ = connection.connection
    # an error the consumer loop reconnects on (kombu ConsumerMixin.run)
    assert isinstance(RecoverableConnectionError(), connection.connection_errors)


def consumer_in(thread_dead=False, connected=True, idle=0.0):
    consumer = SturdyQueueConsumer.__new__(SturdyQueueConsumer)
    consumer._gt = SimpleNamespace(dead=thread_dead)
    consumer._consuming_on = SimpleNamespace(connected=connected)
    consumer._last_iteration = time.monotonic() - idle
    return consumer


@pytest.mark.parametrize(
    ("make", "state"),
    [
        (lambda: consumer_in(), "ok"),
        (lambda: consumer_in(thread_dead=True), "stopped"),
        (lambda: consumer_in(connected=False), "disconnected"),
        (lambda: consumer_in(idle=CONSUMER_STALLED_AFTER + 1), "stalled"),
    ],
    ids=["ok", "stopped", "disconnected", "stalled"],
)
def test_a_queue_consumer_tells_whether_it_consumes(make, state):
    # made when the test runs: a consumer made at collection looks idle a while later
    assert make().state() == state


def test_a_queue_consumer_not_yet_consuming_is_not_ok():
    consumer = SturdyQueueConsumer()
    assert consumer.state() == "stopped"  # never started
    consumer._gt = SimpleNamespace(dead=False)
    assert consumer.state() == "disconnected"  # started, no consumer declared yet


def test_health_names_each_consumer_that_does_not_consume():
    assert consumer_problems("laporan", {"rpc": "ok", "events": "ok"}) is None
    assert consumer_problems("mitra", {}) is None  # an older service reports none
    assert consumer_problems("notifikasi", {"rpc": "ok", "events": "disconnected"}) == (
        "konsumen event notifikasi terputus dari RabbitMQ dan sedang menyambung lagi."
    )
    assert consumer_problems("gateway", {"rpc": "stalled"}) == (
        "konsumen RPC gateway macet, tidak lagi membaca antreannya."
    )
    both = consumer_problems("rujukan", {"rpc": "stopped", "events": "disconnected"})
    assert both.count("rujukan") == 2 and both.startswith("konsumen event rujukan")
