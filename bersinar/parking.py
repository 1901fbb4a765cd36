"""Looking into and replaying parking queues (``<handler queue>.parked``).

Reading a message off a queue and letting it go back (``basic.get`` then closing the
channel, a ``basic.nack``/``reject`` with requeue, or the management API's "get" with
``ack_requeue_true``) is a failed delivery to RabbitMQ: a classic queue marks it
redelivered, and a quorum queue raises its ``x-delivery-count``; past the queue's
``x-delivery-limit`` (a policy may set one; 20 by default from RabbitMQ 4.0) the message
is dropped or dead-lettered. Until 4.3 every return counts, so repeated peeks of a
parked queue would lose the very messages an operator is looking at, and returned
messages of a quorum queue need not come back in their order.

So nothing here returns a message. Messages are taken (unacked) from the head, a copy of
each is published with publisher confirms to where it must go (back to the tail of the
same parking queue, or to the handler's queue when replayed), and the originals are
acked once every copy is confirmed. A queue walked to its end (as many messages as it
held when the walk began; whatever is parked meanwhile comes after them) holds the same
messages in the same order, each a fresh message with its headers (reason, attempts)
unchanged and no delivery count. A stream or a shadow queue would keep a readable copy
too, but parking writes to one queue only (entrypoints.py), and a second record kept
beside it could only drift from what is really parked.

Only one walk of a parking queue runs at a time (an exclusive queue taken as a lock):
two at once would interleave their copies. If the process dies between publishing copies
and acking the originals, the originals come back as well: a message may then be parked
twice (at least once, never lost), and replaying both is harmless (the inbox).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import amqp
from tqdm import tqdm

from bersinar.entrypoints import (
    ATTEMPT_HEADER,
    PARKED_AT_HEADER,
    PARKED_EXCEPTION_HEADER,
    PARKED_REASON_HEADER,
    parked_queue_name,
)
from bersinar.relay import amqp_connection

log = logging.getLogger(__name__)

# messages held unacked at once: bounds memory, and what a crash can leave doubled
WALK_BATCH = 200
CONFIRM_TIMEOUT = 30.0
# set by the broker on delivery, not by whoever parked the message
BROKER_HEADERS = {"x-delivery-count", "x-acquired-count"}


class ParkingBusy(RuntimeError):
    """Another listing or replay of the same parking queue is running."""


@dataclass
class ParkedView:
    count: int
    items: list[dict[str, Any]] = field(default_factory=list)


def _describe(message) -> dict[str, Any]:
    headers = message.headers or {}
    return {
        "message_id": message.properties.get("message_id"),
        "attempts": headers.get(ATTEMPT_HEADER),
        "reason": headers.get(PARKED_REASON_HEADER),
        "exception": headers.get(PARKED_EXCEPTION_HEADER),
        "parked_at": headers.get(PARKED_AT_HEADER),
    }


def _copy(message, keep_headers: Callable[[str], bool]) -> amqp.Message:
    properties = dict(message.properties)
    headers = properties.pop("application_headers", None) or {}
    properties["delivery_mode"] = 2
    return amqp.Message(
        message.body,
        application_headers={k: v for k, v in headers.items() if keep_headers(k)},
        **properties,
    )


class _Walk:
    """One channel walking one parking queue: takes messages from its head, publishes
    each message's copy where ``route`` says, acks the originals once confirmed."""

    def __init__(self, connection: amqp.Connection, queue: str):
        self.connection = connection
        self.queue = queue
        self.parked = parked_queue_name(queue)
        try:
            # the lock: an exclusive queue lives as long as this connection, for it alone
            connection.channel().queue_declare(
                f"bersinar-parking-lock.{queue}", exclusive=True, auto_delete=True
            )
        except amqp.exceptions.ResourceLocked as exc:
            raise ParkingBusy(f"{self.parked} is being listed or replayed already") from exc
        self.channel = connection.channel()
        self.channel.auto_decode = False  # bodies are copied as they are, bytes
        self.channel.confirm_select()
        self.channel.events["basic_ack"].add(self._confirmed)
        self.channel.events["basic_nack"].add(self._refused)
        self.channel.events["basic_return"].add(self._returned)
        self._tag = 0
        self._pending: dict[int, Any] = {}
        self._failures = 0

    def _settle(self, tag: int, multiple: bool, failed: bool) -> None:
        for t in [t for t in self._pending if t <= tag] if multiple else [tag]:
            if self._pending.pop(t, None) is not None and failed:
                self._failures += 1

    def _confirmed(self, tag, multiple):
        self._settle(tag, multiple, failed=False)

    def _refused(self, tag, multiple):
        self._settle(tag, multiple, failed=True)

    def _returned(self, exc, exchange, routing_key, message):
        self._failures += 1  # its queue is gone (basic.return, then its basic.ack)

    def count(self) -> int:
        return self.channel.queue_declare(self.parked, passive=True)[1]

    def run(
        self,
        take: int,
        route: Callable[[Any], tuple[str, amqp.Message]],
        moved: Callable[[int], None] | None = None,
    ) -> None:
        """Take ``take`` messages from the head, in batches; ``route(message)`` gives
        the queue its copy goes to and the copy."""
        while take > 0:
            batch = []
            for _ in range(min(WALK_BATCH, take)):
                message = self.channel.basic_get(self.parked, no_ack=False)
                if message is None:
                    break
                batch.append(message)
            if not batch:
                return
            take -= len(batch)
            for message in batch:
                target, copy = route(message)
                self._tag += 1
                self._pending[self._tag] = message
                self.channel.basic_publish(copy, exchange="", routing_key=target, mandatory=True)
            self._wait_for_confirms()
            if self._failures:
                # nothing of the batch is acked: it comes back when the channel closes,
                # beside the copies that were confirmed (twice, never lost)
                raise RuntimeError(f"{self._failures} message(s) of {self.parked} not moved")
            # one ack for the batch, then a round trip: quorum queues have dropped acks
            # sent just before a channel closed (rabbitmq-server#10327)
            self.channel.basic_ack(batch[-1].delivery_tag, multiple=True)
            self.channel.basic_qos(0, 0, False)
            if moved:
                moved(len(batch))

    def _wait_for_confirms(self) -> None:
        deadline = time.monotonic() + CONFIRM_TIMEOUT
        while self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{len(self._pending)} copies not confirmed in time")
            try:
                self.connection.drain_events(timeout=min(remaining, 1.0))
            except TimeoutError:
                continue


def _walk(amqp_uri: str, queue: str, work: Callable[[_Walk], Any]):
    connection = amqp_connection(amqp_uri)
    connection.connect()
    try:
        return work(_Walk(connection, queue))
    finally:
        connection.close()


def peek(amqp_uri: str, queue: str, limit: int = 0) -> ParkedView:
    """Count (and read up to ``limit`` of) a handler's parked messages, leaving them as
    they were: same order, same headers, no delivery counted. Reading any of them walks
    the whole queue (see the module's docstring)."""
    connection = amqp_connection(amqp_uri)
    connection.connect()
    try:
        try:
            count = connection.channel().queue_declare(parked_queue_name(queue), passive=True)[1]
        except amqp.exceptions.NotFound:
            return ParkedView(0)
    finally:
        connection.close()
    if not limit or not count:
        return ParkedView(count)

    items: list[dict[str, Any]] = []

    def keep(message):
        if len(items) < limit:
            items.append(_describe(message))
        return parked_queue_name(queue), _copy(message, lambda k: k not in BROKER_HEADERS)

    def work(walk: _Walk) -> int:
        count = walk.count()
        walk.run(count, keep)
        return count

    return ParkedView(_walk(amqp_uri, queue, work), items)


def replay(
    amqp_uri: str,
    queue: str,
    event_id: str | None = None,
    limit: int = 1000,
) -> int:
    """Move parked messages back to the handler's own queue (the default exchange, so no
    other subscriber sees them again), with a fresh attempt count. Each is acked from the
    parking queue only after the broker confirmed its replay. With ``event_id``, only
    that event goes; the others stay parked, in order, as they were."""
    replayed = 0

    def route(message):
        nonlocal replayed
        wanted = event_id is None or message.properties.get("message_id") == event_id
        if wanted and replayed < limit:
            replayed += 1
            return queue, _copy(message, lambda k: not k.startswith("x-"))
        return parked_queue_name(queue), _copy(message, lambda k: k not in BROKER_HEADERS)

    def work(walk: _Walk) -> int:
        walk.channel.queue_declare(queue, passive=True)  # the handler's queue must exist
        count = walk.count()
        # replaying from the head needs no walk past the last one replayed
        take = count if event_id else min(count, limit)
        with tqdm(total=take, desc=f"replay {queue}", unit="msg", disable=None) as bar:
            walk.run(take, route, bar.update)
        return replayed

    return _walk(amqp_uri, queue, work)


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
        retire_queues(connection, service_name, delays)
    finally:
        connection.close()
    return declared


# Queues of event handlers a service no longer has: (queue, exchange, routing key).
# notifikasi plans what its own outcome events call for where it records the outcome.
RETIRED_QUEUES = tuple(
    (f"evt-notifikasi-{event_type}--notifikasi.on_{event_type}", "notifikasi.events", event_type)
    for event_type in ("notification_sent", "notification_failed")
)


def retire_queues(connection, service_name: str, delays) -> int:
    """Unbind this service's retired queues (``RETIRED_QUEUES``) from their exchange, so
    that they stop filling, and delete each that is empty (a parked or waiting message
    stays for the operator to look at: `bersinar parked list`). Returns how many were
    found."""
    from bersinar.entrypoints import retry_queue_name

    found = 0
    for queue, exchange, routing_key in RETIRED_QUEUES:
        if queue.split("--", 1)[1].split(".", 1)[0] != service_name:
            continue
        names = [queue, *(retry_queue_name(queue, d) for d in delays), parked_queue_name(queue)]
        for name in names:
            channel = connection.channel()
            try:
                channel.queue_declare(name, passive=True)
            except amqp.exceptions.NotFound:
                continue  # a channel error closes the channel
            found += 1
            if name == queue:
                channel.queue_unbind(queue, exchange, routing_key)
            try:
                channel.queue_delete(name, if_empty=True)
            except amqp.exceptions.PreconditionFailed:
                log.warning("retired queue %s kept: it still holds messages", name)
                continue
            log.info("retired queue %s deleted", name)
            channel.close()
    return found
