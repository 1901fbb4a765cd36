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
