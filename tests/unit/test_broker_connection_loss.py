"""What a service and the gateway do when the broker connection is lost in the middle of
a request: found by the fault suite (docs/chaos.md), each used to kill a container or
answer 500."""

from __future__ import annotations

import json
from types import SimpleNamespace
from unittest import mock

import pytest
from kombu.exceptions import OperationalError as KombuOperationalError
from sqlalchemy.exc import OperationalError as DatabaseOperationalError

from bersinar.entrypoints import Rpc, SturdyQueueConsumer
from gateway.exceptions import ServiceUnavailable
from gateway.http import call, response_for_error


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
