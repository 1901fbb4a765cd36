"""nameko entrypoints and dependencies with the guarantees nameko alone does not give.

- ``rpc``: a domain error crosses the wire as one registered type the gateway rebuilds,
  with its stable code, and is logged as expected rather than as a crash.
- ``event_handler``: events are handed to the service method in batches (a list of one
  or more, as many as arrived together, up to ``EVENT_BATCH_SIZE``) so that one
  transaction records many; a batch that fails is split and each event handled alone. A
  failing event is retried with growing delay through per-delay queues of its own, then
  parked with its reason in ``<queue>.parked``; a message is acked only once it is
  handled, or once its retry or parked copy is confirmed by the broker.
- ``Database``: a unit of work per call, bound to the consumer name the inbox records.
- ``BrokerConsumers``: whether the container's queue consumers are consuming, for
  ``health``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import contextmanager
from functools import partial
from typing import Any

import eventlet
from amqp.exceptions import ConnectionError as AmqpConnectionError
from amqp.exceptions import RecoverableConnectionError
from kombu import Connection, Queue
from kombu.exceptions import OperationalError as BrokerUnreachable
from marshmallow import ValidationError as MarshmallowValidationError
from nameko.amqp.publish import Publisher as AmqpPublisher
from nameko.amqp.publish import get_connection
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY,
    AMQP_URI_CONFIG_KEY,
    DEFAULT_HEARTBEAT,
    DEFAULT_SERIALIZER,
    DEFAULT_TRANSPORT_OPTIONS,
    HEARTBEAT_CONFIG_KEY,
    LOGIN_METHOD_CONFIG_KEY,
    NON_PERSISTENT,
    SERIALIZER_CONFIG_KEY,
    TRANSPORT_OPTIONS_CONFIG_KEY,
)
from nameko.events import SERVICE_POOL
from nameko.events import EventHandler as NamekoEventHandler
from nameko.exceptions import ContainerBeingKilled, deserialize_to_instance
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR, DependencyProvider
from nameko.messaging import QueueConsumer
from nameko.rpc import ReplyListener as NamekoReplyListener
from nameko.rpc import Responder as NamekoResponder
from nameko.rpc import Rpc as NamekoRpc
from nameko.rpc import RpcConsumer as NamekoRpcConsumer
from nameko.rpc import RpcProxy as NamekoRpcProxy
from nameko.rpc import get_rpc_exchange
from sqlalchemy import MetaData
from sqlalchemy.exc import DBAPIError, OperationalError

from bersinar.context import current_correlation_id, set_correlation_id
from bersinar.contracts.events import load_event
from bersinar.db import UnitOfWork, UnitOfWorkFactory
from bersinar.envelope import EnvelopeError
from bersinar.errors import DomainError, PermanentFailure, Unavailable, ValidationFailed
from bersinar.metrics import EVENTS_PARKED, EVENTS_RETRIED

log = logging.getLogger(__name__)

ATTEMPT_HEADER = "x-bersinar-attempt"
PARKED_REASON_HEADER = "x-bersinar-reason"
PARKED_EXCEPTION_HEADER = "x-bersinar-exception"
PARKED_AT_HEADER = "x-bersinar-parked-at"
ORIGIN_QUEUE_HEADER = "x-bersinar-queue"
DEFAULT_RETRY_DELAYS = (1.0, 2.0, 4.0)
DEFAULT_BATCH_SIZE = 50
# seconds the first event of a batch waits for others: at a referral every 20 ms a batch
# then holds several events, and a batch costs a consumer and PostgreSQL about as much as
# an event (docs/benchmarks.md); a person sees the notice a tenth of a second later
DEFAULT_BATCH_LINGER = 0.1
DEFAULT_EVENT_PREFETCH = 500
NAMEKO_PREFIX = "nameko."
# what publishing raises when the broker connection is gone
BROKER_CONNECTION_ERRORS = (BrokerUnreachable, AmqpConnectionError, OSError)
# a consumer loop waits at most 1 s for a message, so one that has not come round for
# this long is stuck (e.g. waiting for an answer on a connection that died silently)
CONSUMER_STALLED_AFTER = 15.0
# seconds between attempts to reconnect a consumer (kombu's default grows to 30)
RECONNECT_INTERVAL_MAX = 5.0


def is_infrastructure_error(error: BaseException) -> bool:
    """The database could not be reached (down, restarting, connection lost): nothing is
    wrong with the request or the event, so it is neither the caller's fault nor a
    reason to give up on the event."""
    return isinstance(error, OperationalError) or (
        isinstance(error, DBAPIError) and error.connection_invalidated
    )


class ContextHeadersOnly:
    """Stock nameko copies every AMQP header (``x-death``, retry counters) into the worker
    context and sends them on downstream; keep only nameko's own context keys."""

    def unpack_message_headers(self, message):
        return {
            key[len(NAMEKO_PREFIX) :]: value
            for key, value in (message.headers or {}).items()
            if key.startswith(NAMEKO_PREFIX)
        }


@deserialize_to_instance
class RemoteDomainError(Exception):
    """A DomainError as it arrives at an RPC caller: code, status, title, detail, errors."""

    def __init__(self, code, status, title, detail, errors=None):
        super().__init__(code, status, title, detail, errors or {})
        self.code = code
        self.status = int(status)
        self.title = title
        self.detail = detail
        self.errors = errors or {}

    def to_dict(self):
        body = {
            "code": self.code,
            "status": self.status,
            "title": self.title,
            "detail": self.detail,
        }
        if self.errors:
            body["errors"] = self.errors
        return body


def republish(publisher: AmqpPublisher, message, queue: str, headers: dict) -> None:
    """A copy of ``message`` to ``queue`` only (default exchange), body untouched,
    confirmed by the broker or raising."""
    publisher.publish(
        message.body,
        exchange="",
        routing_key=queue,
        headers=headers,
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        message_id=message.properties.get("message_id"),
        retry=True,
        retry_policy={"max_retries": 3, "interval_start": 0.5, "interval_step": 1},
    )


class ConsumerConnection(Connection):
    """A consumer's broker connection that, once lost, stays lost.

    kombu hands out its transport connection through a property that quietly opens a new
    one when the old one looks dead (celery/kombu#220). A worker whose ack finds the socket
    reset marks it dead before the consumer loop reads the end of it; the loop's next
    ``drain_events`` then waits on a fresh connection that consumes nothing, for ever,
    while the process looks well and its queues have no consumer (found after a missed
    heartbeat, with every event consumer of notifikasi gone). Raising instead sends
    ``ConsumerMixin.run`` round its reconnection, which declares the consumers again."""

    @property
    def connection(self):
        if self._connection is not None and not self.connected:
            raise RecoverableConnectionError("the consumer's broker connection was lost")
        return super().connection


class SturdyQueueConsumer(QueueConsumer):
    """The queue consumer of RPC and RPC replies (one per container, as nameko's own) and,
    with a prefetch of its own, of event handlers (``EventQueueConsumer``). It differs
    from nameko's in what the fault suite (docs/chaos.md) and lost connections found:

    - nameko acks or requeues only while the connection looks alive and catches only
      amqp's ConnectionError: the socket error of a connection that died a moment ago
      (reset, broken pipe) escaped and killed the whole container. What was not acked
      the broker delivers again.
    - a message whose body cannot be decoded (not JSON) never reaches a handler: kombu
      logs it, raw body included, and acks it, so it was gone. An event handler's is
      parked in ``<queue>.parked`` with the reason, acked once the broker confirmed it.
    - a lost connection is always replaced by one with the consumers declared again
      (``ConsumerConnection``), and ``state()`` tells whether it consumes now.
    """

    role = "rpc"  # its name in the broker's connection list and in ``health``
    _consuming_on = None  # the transport connection its consumers were declared on
    _last_iteration = 0.0

    @property
    def connection(self):
        """nameko's connection settings, as a ``ConsumerConnection`` named after the
        service and role (``rabbitmqctl list_connections client_properties``)."""
        config = self.container.config
        options = dict(config.get(TRANSPORT_OPTIONS_CONFIG_KEY) or DEFAULT_TRANSPORT_OPTIONS)
        options["client_properties"] = {
            "connection_name": f"{self.container.service_name} {self.role}"
        }
        return ConsumerConnection(
            self.amqp_uri,
            transport_options=options,
            heartbeat=config.get(HEARTBEAT_CONFIG_KEY, DEFAULT_HEARTBEAT),
            ssl=config.get(AMQP_SSL_CONFIG_KEY),
            login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
        )

    @contextmanager
    def establish_connection(self):
        with self.create_connection() as connection:
            connection.ensure_connection(
                self.on_connection_error,
                self.connect_max_retries,
                interval_start=1,
                interval_step=1,
                interval_max=RECONNECT_INTERVAL_MAX,
            )
            yield connection

    def on_consume_ready(self, connection, channel, consumers, **kwargs):
        self._consuming_on = connection.connection
        self._last_iteration = time.monotonic()
        super().on_consume_ready(connection, channel, consumers, **kwargs)

    def on_iteration(self):
        self._last_iteration = time.monotonic()
        super().on_iteration()

    def state(self) -> str:
        """``ok`` while consuming; else ``stopped`` (its thread ended), ``disconnected``
        (the connection its consumers were declared on is gone; it is reconnecting) or
        ``stalled`` (its loop has not come round for ``CONSUMER_STALLED_AFTER``)."""
        if self._gt is None or self._gt.dead:
            return "stopped"
        if self._consuming_on is None or not self._consuming_on.connected:
            return "disconnected"
        if time.monotonic() - self._last_iteration > CONSUMER_STALLED_AFTER:
            return "stalled"
        return "ok"

    def readiness(self) -> dict[str, str]:
        """What keeps the process from serving, for /ready on its metrics port
        (bersinar.metrics): nothing while it consumes."""
        state = self.state()
        return {} if state == "ok" else {f"broker:{self.role}": state}

    def ack_message(self, message):
        try:
            super().ack_message(message)
        except BROKER_CONNECTION_ERRORS as exc:
            log.warning("ack lost with the broker connection (%s)", type(exc).__name__)

    def requeue_message(self, message):
        try:
            super().requeue_message(message)
        except BROKER_CONNECTION_ERRORS as exc:
            log.warning("requeue lost with the broker connection (%s)", type(exc).__name__)

    def setup(self):
        super().setup()
        self.parking_publisher = AmqpPublisher(self.amqp_uri, use_confirms=True, mandatory=True)

    def _handler_of(self, message):
        tag = (message.delivery_info or {}).get("consumer_tag")
        for provider, consumer in self._consumers.items():
            if tag in getattr(consumer, "_active_tags", {}).values():
                return provider
        return None

    def on_decode_error(self, message, exc):
        handler = self._handler_of(message)
        if not isinstance(handler, EventHandler):  # as kombu does, without logging the body
            log.error("undecodable message dropped: %s", type(exc).__name__)
            message.ack()
            return
        queue = handler.queue.name
        reason = f"undecodable body ({message.content_type}): {type(exc).__name__}"
        headers = parked_headers(message.headers, 1, exc, queue, reason)
        try:
            republish(self.parking_publisher, message, parked_queue_name(queue), headers)
        except Exception:
            log.exception("could not park an undecodable message from %s; requeued", queue)
            time.sleep(1)  # no hot loop while the broker refuses
            message.requeue()
            return
        EVENTS_PARKED.labels(
            self.container.service_name, handler.method_name, handler.event_type
        ).inc()
        log.error("undecodable message on %s parked: %s", queue, type(exc).__name__)
        message.ack()


class ReplyPublisher(AmqpPublisher):
    """An RPC reply goes to its caller's reply queue, which lives only as long as the
    caller's connection: persisting it or awaiting the broker's confirm (nameko's
    defaults) protects nothing, and cost a round trip per call. A reply lost with the
    broker makes the caller answer 503, as one that never came; a request made again with
    its key returns what the first made (docs/architecture.md)."""

    use_confirms = False
    delivery_mode = NON_PERSISTENT


class Responder(NamekoResponder):
    publisher_cls = ReplyPublisher


class RpcConsumer(NamekoRpcConsumer):
    queue_consumer = SturdyQueueConsumer()

    def handle_result(self, message, result, exc_info):
        """nameko's, with the reply sent by ``Responder`` above."""
        config = self.container.config
        responder = Responder(
            config[AMQP_URI_CONFIG_KEY],
            get_rpc_exchange(config),
            config.get(SERIALIZER_CONFIG_KEY, DEFAULT_SERIALIZER),
            message,
            ssl=config.get(AMQP_SSL_CONFIG_KEY),
            login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
        )
        result, exc_info = responder.send_response(result, exc_info)
        self.queue_consumer.ack_message(message)
        return result, exc_info


class ReplyListener(NamekoReplyListener):
    queue_consumer = SturdyQueueConsumer()


class Rpc(ContextHeadersOnly, NamekoRpc):
    rpc_consumer = RpcConsumer()

    def __init__(self, expected_exceptions=(DomainError, MarshmallowValidationError), **kwargs):
        super().__init__(expected_exceptions=expected_exceptions, **kwargs)

    def handle_result(self, message, worker_ctx, result, exc_info):
        if exc_info is not None and isinstance(exc_info[1], MarshmallowValidationError):
            error = ValidationFailed(errors=exc_info[1].normalized_messages())
            exc_info = (ValidationFailed, error, exc_info[2])
        if exc_info is not None and is_infrastructure_error(exc_info[1]):
            error = Unavailable(
                f"Basis data layanan {self.container.service_name} sedang tidak dapat dihubungi."
            )
            exc_info = (Unavailable, error, exc_info[2])
        if exc_info is not None and isinstance(exc_info[1], DomainError):
            error = exc_info[1]
            wire = RemoteDomainError(
                error.code, error.status, error.title, error.detail, error.errors
            )
            exc_info = (RemoteDomainError, wire, exc_info[2])
        try:
            return super().handle_result(message, worker_ctx, result, exc_info)
        except BROKER_CONNECTION_ERRORS as exc:
            # Stock nameko lets this escape and the whole container dies: the service
            # would need a restart to come back from a broker restart. The request is not
            # acked; the broker delivers it again and the caller has timed out (503).
            log.warning(
                "reply to %s not sent, broker connection lost (%s); request left unacked",
                self.method_name,
                type(exc).__name__,
            )
            try:
                self.rpc_consumer.queue_consumer.requeue_message(message)
            except BROKER_CONNECTION_ERRORS:
                pass  # the connection is gone: the broker has taken the message back
            return result, exc_info


rpc = Rpc.decorator


class RpcProxy(NamekoRpcProxy):
    """nameko's proxy for requests that are worth nothing once the caller has given up
    (the gateway answers 503 after ``timeout_key`` seconds): each request expires in the
    queue after that long, so a service that comes back later does not carry out what
    its caller already reported as failed, and is sent transient (a broker restart
    drops it, as it drops the reply queue that would have taken the answer). Its replies
    are consumed by the sturdy queue consumer."""

    rpc_reply_listener = ReplyListener()

    def __init__(self, target_service, timeout_key="RPC_TIMEOUT", **options):
        options.setdefault("delivery_mode", NON_PERSISTENT)
        super().__init__(target_service, **options)
        self.timeout_key = timeout_key

    def setup(self):
        super().setup()
        timeout = float(self.container.config.get(self.timeout_key) or 5)
        self.options.setdefault("expiration", timeout)


def retry_queue_name(queue_name: str, delay: float) -> str:
    return f"{queue_name}.retry.{int(delay * 1000)}ms"


def parked_queue_name(queue_name: str) -> str:
    return f"{queue_name}.parked"


def parked_headers(
    headers: dict | None, attempt: int, error: BaseException, queue: str, reason: str = ""
) -> dict:
    """The headers of a message's copy in ``<queue>.parked``: its own (none of the
    broker's or ours), how many attempts were made, why it failed and when."""
    parked = {k: v for k, v in (headers or {}).items() if not k.startswith("x-")}
    parked.update(
        {
            ATTEMPT_HEADER: attempt,
            PARKED_REASON_HEADER: (reason or f"{type(error).__name__}: {error}")[:1000],
            PARKED_EXCEPTION_HEADER: f"{type(error).__module__}.{type(error).__name__}",
            PARKED_AT_HEADER: time.time(),
            ORIGIN_QUEUE_HEADER: queue,
        }
    )
    return parked


def retry_queue_arguments(queue_name: str, delay: float) -> dict:
    """A retry queue holds a copy for ``delay`` seconds, then dead-letters it back to the
    handler's own queue only (through the default exchange)."""
    return {
        "x-message-ttl": int(delay * 1000),
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": queue_name,
    }


def event_handlers_of(service_cls, service_name: str):
    """(handler, its queue name) for every event handler of a service class, named as
    nameko names a service-pool handler's queue."""
    for method_name in dir(service_cls):
        method = getattr(service_cls, method_name)
        for extension in getattr(method, ENTRYPOINT_EXTENSIONS_ATTR, ()):
            if isinstance(extension, EventHandler):
                yield (
                    extension,
                    (
                        f"evt-{extension.source_service}-{extension.event_type}"
                        f"--{service_name}.{method_name}"
                    ),
                )


class EventQueueConsumer(SturdyQueueConsumer):
    """The event handlers' queue consumer: a connection of their own, with a prefetch of
    its own (``EVENT_PREFETCH`` per queue), since batches need more unacknowledged
    messages in hand than nameko's default of ``max_workers``, which stays RPC's."""

    role = "events"

    @property
    def prefetch_count(self):
        return int(self.container.config.get("EVENT_PREFETCH") or DEFAULT_EVENT_PREFETCH)

    # -- acks in batches ----------------------------------------------------------------
    #
    # A batch of 50 events acked one by one was 50 frames and 50 socket writes: a tenth of
    # a consumer's CPU. The broker numbers deliveries on a channel in order, and one ack
    # with ``multiple`` settles every delivery up to its tag; so each delivery is tracked
    # from arrival, and when one is done the longest run of done deliveries from the
    # oldest is acked at once. A delivery still being handled holds back the acks of later
    # ones (they wait, none is acked early); a requeued one is settled alone.

    def setup(self):
        super().setup()
        # channel -> delivery tag -> done; keyed by the channel itself, not its id(),
        # which a new channel may take once a dead one is gone
        self._tracked: dict[Any, dict[int, bool]] = {}

    def handle_message(self, provider, body, message):
        """nameko spawns a thread per message to hand it over; an event handler takes its
        messages here, in this consumer's thread, and spawns one per batch instead (a
        thread per message was a fifth of a consumer's CPU at a thousand events a
        second)."""
        self._tracked.setdefault(message.channel, {})[message.delivery_tag] = False
        if isinstance(provider, EventHandler):
            provider.handle_message(body, message)
        else:
            super().handle_message(provider, body, message)

    def on_consume_ready(self, connection, channel, consumers, **kwargs):
        # The deliveries of a lost channel were taken back by the broker: forgotten. This
        # channel's first ones arrived while its consumers were being declared (kombu
        # reads them while it waits for each declaration's answer): kept, or a later
        # delivery's ack would settle them unhandled, and their own ack then name a tag
        # the broker no longer knows, which closes the channel and its consumers.
        self._tracked = {channel: self._tracked.get(channel, {})}
        super().on_consume_ready(connection, channel, consumers, **kwargs)

    def ack_message(self, message):
        self.ack_messages([message])

    def ack_messages(self, messages) -> None:
        """Mark these deliveries done, then ack what that completes: a batch's deliveries
        are acked together, not one by one. One of a channel no longer tracked (lost)
        is acked alone, which does nothing once its connection is gone."""
        channels = {}
        for message in messages:
            unsettled = self._tracked.get(message.channel)
            if unsettled is not None and message.delivery_tag in unsettled:
                unsettled[message.delivery_tag] = True
                channels[message.channel] = unsettled
            else:
                super().ack_message(message)
        for channel, unsettled in channels.items():
            self._ack_done(channel, unsettled)

    def requeue_message(self, message):
        unsettled = self._tracked.get(message.channel)
        if unsettled is not None:
            unsettled.pop(message.delivery_tag, None)
        super().requeue_message(message)
        if unsettled is not None:
            self._ack_done(message.channel, unsettled)

    def _ack_done(self, channel, unsettled: dict[int, bool]) -> None:
        last = None
        while unsettled:
            oldest = next(iter(unsettled))
            if not unsettled[oldest]:
                break
            del unsettled[oldest]
            last = oldest
        if last is None or not channel.connection:
            return  # nothing to ack, or the broker has taken them back
        try:
            channel.basic_ack(last, multiple=True)
        except BROKER_CONNECTION_ERRORS as exc:
            log.warning("ack lost with the broker connection (%s)", type(exc).__name__)


class EventHandler(ContextHeadersOnly, NamekoEventHandler):
    """The service method receives a list of events (see the module's docstring)."""

    queue_consumer = EventQueueConsumer()

    def __init__(self, source_service, event_type, **kwargs):
        kwargs.setdefault("handler_type", SERVICE_POOL)
        kwargs["reliable_delivery"] = True
        kwargs["requeue_on_error"] = False
        super().__init__(source_service, event_type, **kwargs)

    def setup(self):
        super().setup()  # builds self.queue and registers with the queue consumer
        config = self.container.config
        self.delays = tuple(
            float(d) for d in config.get("EVENT_RETRY_DELAYS", DEFAULT_RETRY_DELAYS)
        )
        self.batch_size = max(1, int(config.get("EVENT_BATCH_SIZE") or DEFAULT_BATCH_SIZE))
        linger = config.get("EVENT_BATCH_LINGER")
        self.batch_linger = DEFAULT_BATCH_LINGER if linger in (None, "") else float(linger)
        self._pending: list[tuple[Any, Any]] = []
        self.amqp_uri = config[AMQP_URI_CONFIG_KEY]
        self.publisher = AmqpPublisher(self.amqp_uri, use_confirms=True, mandatory=True)
        base = self.queue.name
        queues = [
            Queue(
                retry_queue_name(base, delay),
                durable=True,
                queue_arguments=retry_queue_arguments(base, delay),
            )
            for delay in self.delays
        ]
        queues.append(Queue(parked_queue_name(base), durable=True))
        with get_connection(self.amqp_uri) as connection:
            channel = connection.channel()
            for queue in queues:
                queue.bind(channel).queue_declare()
            channel.close()

    @property
    def consumer_name(self) -> str:
        return f"{self.container.service_name}.{self.method_name}"

    # -- batches ------------------------------------------------------------------------

    def handle_message(self, body, message):
        """Runs in the queue consumer's thread (``EventQueueConsumer.handle_message``), so
        it never waits: a full batch leaves at once, in a thread of its own; the first
        message of a batch starts a thread that waits ``batch_linger`` for others that
        arrive with it, then hands over what came."""
        self._pending.append((body, message))
        if len(self._pending) >= self.batch_size:
            self.container.spawn_managed_thread(
                partial(self._dispatch, self._take()), identifier=f"{self.consumer_name}.batch"
            )
        elif len(self._pending) == 1:
            self.container.spawn_managed_thread(
                self._linger, identifier=f"{self.consumer_name}.linger"
            )

    def _linger(self) -> None:
        eventlet.sleep(self.batch_linger)
        while self._pending:
            self._dispatch(self._take())

    def _take(self) -> list[tuple[Any, Any]]:
        batch = self._pending[: self.batch_size]
        del self._pending[: self.batch_size]
        return batch

    def _dispatch(self, batch: list[tuple[Any, Any]]) -> None:
        events = [body for body, _ in batch]
        messages = [message for _, message in batch]
        try:
            self.container.spawn_worker(
                self,
                (events,),
                {},
                context_data=self.unpack_message_headers(messages[0]),
                handle_result=partial(self.handle_batch_result, messages),
            )
        except ContainerBeingKilled:
            for message in messages:
                self.queue_consumer.requeue_message(message)

    def handle_batch_result(self, messages, worker_ctx, result=None, exc_info=None):
        if exc_info is None:
            self.queue_consumer.ack_messages(messages)
            return result, exc_info
        if len(messages) == 1 or is_infrastructure_error(exc_info[1]):
            for message in messages:
                self.handle_result(message, worker_ctx, None, exc_info)
            return result, exc_info
        # Which event failed is not known, and the transaction left no trace of any of
        # them: each is handled again alone, so only the failing one is retried.
        log.warning(
            "a batch of %d %s failed in %s (%s); handling each event alone",
            len(messages),
            self.event_type,
            self.consumer_name,
            type(exc_info[1]).__name__,
        )
        singles = list(zip(worker_ctx.args[0], messages, strict=True))
        self.container.spawn_managed_thread(
            lambda: [self._dispatch([single]) for single in singles],
            identifier=f"{self.consumer_name}.split_batch",
        )
        return result, exc_info

    def handle_result(self, message, worker_ctx, result=None, exc_info=None):
        if exc_info is None:
            self.queue_consumer.ack_message(message)
            return result, exc_info
        error = exc_info[1]
        attempt = int((message.headers or {}).get(ATTEMPT_HEADER, 1))
        service = self.container.service_name
        headers = {k: v for k, v in (message.headers or {}).items() if not k.startswith("x-")}
        retryable = not isinstance(error, PermanentFailure | EnvelopeError)
        infrastructure = is_infrastructure_error(error)
        try:
            if infrastructure or (retryable and attempt <= len(self.delays)):
                # an outage of the database does not use up the event's attempts
                delay = self.delays[-1] if infrastructure else self.delays[attempt - 1]
                headers[ATTEMPT_HEADER] = attempt if infrastructure else attempt + 1
                republish(
                    self.publisher, message, retry_queue_name(self.queue.name, delay), headers
                )
                EVENTS_RETRIED.labels(service, self.method_name, self.event_type).inc()
                log.warning(
                    "event %s failed in %s (attempt %d), retry in %.1fs: %s",
                    self.event_type,
                    self.consumer_name,
                    attempt,
                    delay,
                    type(error).__name__,
                )
            else:
                headers = parked_headers(message.headers, attempt, error, self.queue.name)
                republish(self.publisher, message, parked_queue_name(self.queue.name), headers)
                EVENTS_PARKED.labels(service, self.method_name, self.event_type).inc()
                log.error(
                    "event %s parked by %s after %d attempt(s): %s",
                    self.event_type,
                    self.consumer_name,
                    attempt,
                    type(error).__name__,
                )
        except Exception:
            # Not confirmed: give the message back to the broker rather than lose it.
            log.exception(
                "could not schedule a retry of %s in %s; requeued",
                self.event_type,
                self.consumer_name,
            )
            time.sleep(1)  # no hot loop while the broker refuses
            self.queue_consumer.requeue_message(message)
            return result, exc_info
        self.queue_consumer.ack_message(message)
        return result, exc_info


event_handler = EventHandler.decorator


class Database(DependencyProvider):
    """The service's database: ``self.uow()`` begins a unit of work. For an event handler
    it is bound to that consumer, so ``uow.first_delivery(event)`` fills the inbox."""

    def __init__(self, metadata: MetaData):
        self.metadata = metadata

    def setup(self):
        self.factory = UnitOfWorkFactory(
            self.container.config["DATABASE_URL"], self.container.service_name, self.metadata
        )

    def stop(self):
        self.factory.dispose()

    def kill(self):
        self.factory.dispose()

    def get_dependency(self, worker_ctx):
        consumer = f"{self.container.service_name}.{worker_ctx.entrypoint.method_name}"
        return BoundStore(self.factory, consumer)

    def readiness(self) -> dict[str, str]:
        """For /ready on the metrics port (bersinar.metrics): nothing while the database
        answers."""
        try:
            self.factory.ping()
        except Exception as exc:
            return {"database": type(exc).__name__}
        return {}


class BrokerConsumers(DependencyProvider):
    """``self.consumers()``: the state of each queue consumer of the container by role
    (``rpc``: RPC requests and replies; ``events``: the event handlers), as
    ``SturdyQueueConsumer.state`` tells it."""

    def get_dependency(self, worker_ctx):
        return partial(consumer_states, self.container)


def consumer_states(container) -> dict[str, str]:
    return {
        extension.role: extension.state()
        for extension in container.extensions
        if isinstance(extension, SturdyQueueConsumer)
    }


class BoundStore:
    def __init__(self, factory: UnitOfWorkFactory, consumer: str):
        self.factory = factory
        self.consumer = consumer

    def __call__(self) -> UnitOfWork:
        return self.factory(self.consumer)

    def apply_once(
        self,
        events: list[dict[str, Any]],
        effect: Callable[[UnitOfWork, dict], Any],
        prepare: Callable[[UnitOfWork, list[dict]], Any] | None = None,
        finish: Callable[[UnitOfWork], Any] | None = None,
    ) -> dict[str, int]:
        """Apply ``effect(uow, event)`` to each event of a batch not handled before and
        record their deliveries, all in one transaction; a redelivered event changes
        nothing. Each effect runs under its event's correlation id. ``prepare(uow,
        new_events)`` runs first, once (e.g. to read in one query what the effects will
        need); ``finish(uow)`` last, once, if any event was new (e.g. to write in one go,
        in a fixed order, what the effects added up). Each event is read through its
        declared contract (``load_event``) first: a broken envelope or a payload that
        breaks its contract fails the batch (and, handled alone, is parked at once)."""
        events = [load_event(event) for event in events]
        batch_correlation_id = current_correlation_id()
        handled = 0
        with self() as uow:
            fresh = uow.first_deliveries(events)
            if prepare is not None and fresh:
                prepare(uow, [event for event in events if event["event_id"] in fresh])
            try:
                for event in events:
                    if event["event_id"] not in fresh:
                        continue
                    fresh.discard(event["event_id"])  # twice in one batch: once
                    set_correlation_id(event.get("correlation_id") or batch_correlation_id)
                    effect(uow, event)
                    handled += 1
            finally:
                set_correlation_id(batch_correlation_id)
            if finish is not None and handled:
                finish(uow)
            uow.commit()
        # one line per batch (each event's own line is DEBUG: at thousands of events a
        # second a line each cost the consumer a tenth of its CPU)
        log.info(
            "%s: %d %s handled, %d already handled before",
            self.consumer,
            handled,
            ", ".join(sorted({str(event["event_type"]) for event in events})),
            len(events) - handled,
        )
        return {"ok": handled, "duplicate": len(events) - handled}

    def ping(self) -> None:
        self.factory.ping()
