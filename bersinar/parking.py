"""Looking into and replaying parking queues (``<handler queue>.parked``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import amqp
from tqdm import tqdm

from bersinar.entrypoints import (
    ATTEMPT_HEADER,
    PARKED_EXCEPTION_HEADER,
    PARKED_REASON_HEADER,
    parked_queue_name,
)
from bersinar.relay import amqp_connection


@dataclass
class ParkedView:
    count: int
    items: list[dict[str, Any]] = field(default_factory=list)


def peek(amqp_uri: str, queue: str, limit: int = 0) -> ParkedView:
    """Count (and read up to ``limit`` of) a handler's parked messages, leaving them."""
    connection = amqp_connection(amqp_uri)
    connection.connect()
    try:
        channel = connection.channel()
        try:
            _, count, _ = channel.queue_declare(parked_queue_name(queue), passive=True)
        except amqp.exceptions.NotFound:
            return ParkedView(0)
        items = []
        for _ in range(min(limit, count)):
            message = channel.basic_get(parked_queue_name(queue), no_ack=False)
            if message is None:
                break
            headers = message.headers or {}
            items.append(
                {
                    "message_id": message.properties.get("message_id"),
                    "attempts": headers.get(ATTEMPT_HEADER),
                    "reason": headers.get(PARKED_REASON_HEADER),
                    "exception": headers.get(PARKED_EXCEPTION_HEADER),
                }
            )
        channel.close()  # unacked messages go back to the queue, in order
        return ParkedView(count, items)
    finally:
        connection.close()


def replay(
    amqp_uri: str,
    queue: str,
    event_id: str | None = None,
    limit: int = 1000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Move parked messages back to the handler's own queue (the default exchange, so no
    other subscriber sees them again), with a fresh attempt count. Each is acked from the
    parking queue only after the broker confirmed its replay."""
    connection = amqp_connection(amqp_uri)
    connection.connect()
    replayed = 0
    try:
        channel = connection.channel()
        source = parked_queue_name(queue)
        _, count, _ = channel.queue_declare(source, passive=True)
        skipped = []
        with tqdm(total=min(count, limit), desc=f"replay {queue}", unit="msg", disable=None) as bar:
            for _ in range(count):
                if replayed >= limit:
                    break
                message = channel.basic_get(source, no_ack=False)
                if message is None:
                    break
                if event_id and message.properties.get("message_id") != event_id:
                    skipped.append(message.delivery_tag)
                    continue
                headers = {
                    k: v for k, v in (message.headers or {}).items() if not k.startswith("x-")
                }
                replay_message = amqp.Message(
                    message.body,
                    content_type=message.properties.get("content_type"),
                    content_encoding=message.properties.get("content_encoding"),
                    message_id=message.properties.get("message_id"),
                    delivery_mode=2,
                    application_headers=headers,
                )
                channel.basic_publish_confirm(
                    replay_message, exchange="", routing_key=queue, mandatory=True
                )
                channel.basic_ack(message.delivery_tag)
                replayed += 1
                bar.update(1)
                if progress:
                    progress(replayed)
        channel.close()  # skipped messages return to the parking queue
    finally:
        connection.close()
    return replayed


def declare_consumer_queues(
    amqp_uri: str, service_cls, service_name: str, retry_delays=None
) -> int:
    """Declare, as nameko would at start, each event handler queue of ``service_cls``
    bound to its source's exchange, with its retry and parking queues. Messages
    published before the service first starts then wait for it instead of being routed
    only to the consumers that happened to be up."""

    from bersinar.entrypoints import (
        DEFAULT_RETRY_DELAYS,
        event_handlers_of,
        retry_queue_arguments,
        retry_queue_name,
    )

    delays = [float(d) for d in (retry_delays or DEFAULT_RETRY_DELAYS)]
    connection = amqp_connection(amqp_uri)
    connection.connect()
    declared = 0
    try:
        channel = connection.channel()
        for handler, queue in event_handlers_of(service_cls, service_name):
            exchange = f"{handler.source_service}.events"
            channel.exchange_declare(exchange, "topic", durable=True, auto_delete=False)
            channel.queue_declare(queue, durable=True, auto_delete=False)
            channel.queue_bind(queue, exchange, handler.event_type)
            for delay in delays:
                channel.queue_declare(
                    retry_queue_name(queue, delay),
                    durable=True,
                    auto_delete=False,
                    arguments=retry_queue_arguments(queue, delay),
                )
            channel.queue_declare(parked_queue_name(queue), durable=True, auto_delete=False)
            declared += 1
        channel.close()
    finally:
        connection.close()
    return declared
