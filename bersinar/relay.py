"""The outbox relay: publishes what services committed to their outbox.

One relay runs per service database at a time (a PostgreSQL advisory lock elects it;
others wait), so the events of one aggregate are
published in the order they were written. Each batch is published with publisher
confirms and ``mandatory``; only rows the broker confirmed are marked published, in the
same transaction that selected them (an event type that needs no consumer,
``OPTIONAL_SUBSCRIBERS``, is published without ``mandatory``). A row the broker returns
(no queue bound) stays in
the outbox with a growing ``available_at``, a log line and a metric; later rows with the
same ordering key wait behind it (and a batch carries one event per key, so none can
overtake another that turns out unroutable). A relay that dies after publishing and before
committing publishes the batch again: consumers' inboxes absorb the repeat. An idle relay
waits for the NOTIFY a committing unit of work sends (``OutboxSignal``), not polling.
"""

from __future__ import annotations

import json
import logging
import select
import threading
import time
import zlib
from datetime import datetime, timedelta
from typing import Any

import amqp
from kombu.utils.url import parse_url
from sqlalchemy import DateTime, bindparam, text
from sqlalchemy.engine import Connection, Engine

from bersinar.contracts.events import OPTIONAL_SUBSCRIBERS
from bersinar.db import OUTBOX_CHANNEL, make_engine, outbox_pending
from bersinar.envelope import utcnow
from bersinar.metrics import (
    OUTBOX_BACKLOG,
    OUTBOX_LAST_CHECK,
    OUTBOX_OLDEST_AGE,
    OUTBOX_PUBLISH_FAILURES,
    OUTBOX_PUBLISHED,
    OUTBOX_UNROUTABLE,
)

log = logging.getLogger(__name__)

MAX_DEFER_SECONDS = 30.0
LEADERSHIP_CHECK_SECONDS = 2.0

_SELECT = """
SELECT o.id, o.event_id, o.event_type, o.ordering_key, o.payload, o.attempts
FROM outbox o
WHERE o.published_at IS NULL AND o.available_at <= :now
  AND NOT EXISTS (
    SELECT 1 FROM outbox p
    WHERE p.ordering_key = o.ordering_key AND p.published_at IS NULL
      AND p.id < o.id AND p.available_at > :now)
ORDER BY o.id
LIMIT :limit
"""


def amqp_connection(uri: str, heartbeat: int = 0) -> amqp.Connection:
    parts = parse_url(uri)
    vhost = parts.get("virtual_host") or "/"
    return amqp.Connection(
        host=f"{parts.get('hostname') or 'localhost'}:{parts.get('port') or 5672}",
        userid=parts.get("userid") or "guest",
        password=parts.get("password") or "guest",
        virtual_host=vhost,
        heartbeat=heartbeat,
        connect_timeout=5,
    )


class Leadership:
    """Only one relay per service database publishes at a time."""

    def __init__(self, engine: Engine, name: str):
        self.engine = engine
        self.name = name
        self._connection: Connection | None = None

    def acquire(self) -> bool:
        if self._connection is None:
            self._connection = self.engine.connect()
        key = zlib.crc32(f"bersinar-relay:{self.name}".encode())
        got = self._connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
        self._connection.commit()
        return bool(got)

    def alive(self) -> bool:
        if self._connection is None:
            return False
        try:
            self._connection.execute(text("SELECT 1"))
            self._connection.commit()
            return True
        except Exception:
            return False

    def release(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception:  # the server may be gone; the lock goes with the session
                log.debug("leader connection already closed")
            self._connection = None


class OutboxSignal:
    """Waits for a commit that wrote to the outbox: a connection of its own LISTENs on
    ``OUTBOX_CHANNEL`` (``UnitOfWork.commit`` NOTIFYs it), so an idle relay sleeps until
    there is something to publish, instead of reading the table 20 times a second. It
    still looks at least every ``longest`` seconds (rows deferred after a failure come
    due by the clock, and a commit made while it was not listening is found then); if
    the connection cannot be made or breaks, it waits ``fallback`` and tries again."""

    def __init__(self, engine: Engine, longest: float = 1.0, fallback: float = 0.05):
        self.engine = engine
        self.longest = longest
        self.fallback = fallback
        self._connection = None

    def _listen(self):
        connection = self.engine.raw_connection()
        try:
            connection.driver_connection.rollback()
            connection.driver_connection.autocommit = True
            with connection.driver_connection.cursor() as cursor:
                cursor.execute(f"LISTEN {OUTBOX_CHANNEL}")
        except Exception:
            connection.invalidate()
            raise
        self._connection = connection
        return connection.driver_connection

    def wait(self, stopping: threading.Event) -> bool:
        """Until a commit notifies, ``longest`` passes or ``stopping`` is set. True if
        notified."""
        try:
            listener = (
                self._listen() if self._connection is None else self._connection.driver_connection
            )
            deadline = time.monotonic() + self.longest
            while not stopping.is_set():
                listener.poll()
                if listener.notifies:
                    listener.notifies.clear()
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                # short slices, so that stop() is heard quickly
                select.select([listener], [], [], min(remaining, 0.25))
            return False
        except Exception as exc:
            log.debug("outbox listener unavailable (%s: %s)", type(exc).__name__, exc)
            self.close()
            stopping.wait(self.fallback)
            return False

    def drain(self) -> None:
        """Read and forget the notifications that came while the relay was publishing
        (it reads the outbox anyway), so none pile up on a relay that is never idle."""
        if self._connection is None:
            return
        try:
            listener = self._connection.driver_connection
            listener.poll()
            listener.notifies.clear()
        except Exception as exc:
            log.debug("outbox listener unavailable (%s: %s)", type(exc).__name__, exc)
            self.close()

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.invalidate()  # LISTEN state must not go back to the pool
            except Exception:
                log.debug("outbox listener already closed")
            self._connection = None


class BatchPublisher:
    """Publishes a batch with mandatory and confirms on one channel and reports, per
    message id, whether the broker confirmed, returned (unroutable) or refused it."""

    def __init__(self, amqp_uri: str, exchange: str, confirm_timeout: float = 15.0):
        self.amqp_uri = amqp_uri
        self.exchange = exchange
        self.confirm_timeout = confirm_timeout
        self.connection: amqp.Connection | None = None
        self.channel = None
        self._tag = 0

    def connect(self) -> None:
        self.close()
        self.connection = amqp_connection(self.amqp_uri)
        self.connection.connect()
        self.channel = self.connection.channel()
        self.channel.exchange_declare(self.exchange, "topic", durable=True, auto_delete=False)
        self.channel.confirm_select()
        self.channel.events["basic_ack"].add(self._on_ack)
        self.channel.events["basic_nack"].add(self._on_nack)
        self.channel.events["basic_return"].add(self._on_return)
        self._tag = 0

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.close()
            except Exception:
                log.debug("broker connection already closed")
        self.connection = None
        self.channel = None

    def _settle(self, tag: int, multiple: bool, outcome: str) -> None:
        tags = [t for t in self._pending if t <= tag] if multiple else [tag]
        for t in tags:
            message_id = self._pending.pop(t, None)
            if message_id is not None:
                self._outcomes.setdefault(message_id, outcome)

    def _on_ack(self, tag, multiple):
        self._settle(tag, multiple, "confirmed")

    def _on_nack(self, tag, multiple):
        self._settle(tag, multiple, "nacked")

    def _on_return(self, exc, exchange, routing_key, message):
        # basic.return arrives before that message's ack: remember it for _settle
        self._outcomes[message.properties.get("message_id")] = "returned"

    def publish(self, messages: list[tuple[str, str, bytes, dict[str, Any]]]) -> dict[str, str]:
        """messages: (message_id, routing_key, body, headers), published one after the
        other and then waited for together (the broker confirms many with one ack).
        Returns outcome per id. An event type no service needs to consume
        (``OPTIONAL_SUBSCRIBERS``) is published without ``mandatory``."""
        if self.channel is None:
            self.connect()
        self._pending: dict[int, str] = {}
        self._outcomes: dict[str, str] = {}
        for message_id, routing_key, body, headers in messages:
            message = amqp.Message(
                body,
                content_type="application/json",
                content_encoding="utf-8",
                delivery_mode=2,
                message_id=message_id,
                application_headers=headers,
            )
            self._tag += 1
            self._pending[self._tag] = message_id
            self.channel.basic_publish(
                message,
                exchange=self.exchange,
                routing_key=routing_key,
                mandatory=routing_key not in OPTIONAL_SUBSCRIBERS,
            )
        deadline = time.monotonic() + self.confirm_timeout
        while self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{len(self._pending)} publishes not confirmed in time")
            try:
                self.connection.drain_events(timeout=min(remaining, 1.0))
            except TimeoutError:
                continue
        return self._outcomes


class OutboxRelay:
    def __init__(
        self,
        service: str,
        database_url: str,
        amqp_uri: str,
        batch_size: int = 200,
        idle_interval: float = 0.05,
        confirm_timeout: float = 15.0,
        retention_days: float = 7.0,
        listen_timeout: float = 1.0,
        linger: float = 0.01,
    ):
        self.service = service
        self.engine = make_engine(database_url)
        self.batch_size = batch_size
        self.idle_interval = idle_interval
        self.publisher = BatchPublisher(amqp_uri, f"{service}.events", confirm_timeout)
        self.leadership = Leadership(self.engine, service)
        self.signal = OutboxSignal(self.engine, longest=listen_timeout, fallback=idle_interval)
        self.linger = linger
        self.stopping = threading.Event()
        moment = DateTime(timezone=True)
        self._select = text(_SELECT + " FOR UPDATE OF o SKIP LOCKED").bindparams(
            bindparam("now", type_=moment)
        )
        self._mark_published = text(
            "UPDATE outbox SET published_at = :now, attempts = attempts + 1, last_error = NULL "
            "WHERE id IN :ids"
        ).bindparams(bindparam("ids", expanding=True), bindparam("now", type_=moment))
        self._defer = text(
            "UPDATE outbox SET attempts = attempts + 1, available_at = :at, last_error = :error "
            "WHERE id = :id"
        ).bindparams(bindparam("at", type_=moment))
        self._prune = text(
            "DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at < :before"
        ).bindparams(bindparam("before", type_=moment))
        self._last_gauges = 0.0
        self._last_prune = 0.0
        self.retention = timedelta(days=retention_days)
        # The age is worked out at each scrape from the oldest row last seen, so it keeps
        # growing while the outbox cannot be read (database down) or the loop is stuck;
        # the time of the last read tells an alert that the outbox is not being watched.
        self._oldest: datetime | None = None
        OUTBOX_OLDEST_AGE.labels(service).set_function(self.oldest_age)
        OUTBOX_LAST_CHECK.labels(service).set(time.time())

    def stop(self) -> None:
        self.stopping.set()

    def relay_once(self) -> int:
        """Publish one batch. Returns how many rows were confirmed."""
        now = utcnow()
        with self.engine.begin() as connection:
            selected = connection.execute(
                self._select, {"now": now, "limit": self.batch_size}
            ).all()
            if not selected:
                return 0
            # One event per ordering key per batch: whether the first is routable is known
            # only after publishing, and a later one must not overtake it.
            keys_seen: set[str] = set()
            rows = []
            for row in selected:
                if row.ordering_key not in keys_seen:
                    keys_seen.add(row.ordering_key)
                    rows.append(row)
            messages = []
            for row in rows:
                envelope = json.loads(row.payload)
                headers = {
                    "nameko.correlation_id": envelope.get("correlation_id"),
                    "nameko.call_id_stack": [f"{self.service}.outbox.{row.event_id}"],
                }
                messages.append((row.event_id, row.event_type, row.payload.encode(), headers))
            try:
                outcomes = self.publisher.publish(messages)
            except Exception:
                OUTBOX_PUBLISH_FAILURES.labels(self.service).inc()
                self.publisher.close()
                raise
            confirmed = [row.id for row in rows if outcomes.get(row.event_id) == "confirmed"]
            if confirmed:
                connection.execute(self._mark_published, {"now": utcnow(), "ids": confirmed})
            for row in rows:
                outcome = outcomes.get(row.event_id)
                if outcome == "confirmed":
                    OUTBOX_PUBLISHED.labels(self.service, row.event_type).inc()
                    continue
                delay = min(MAX_DEFER_SECONDS, 0.5 * 2 ** min(row.attempts, 10))
                if outcome == "returned":
                    OUTBOX_UNROUTABLE.labels(self.service, row.event_type).inc()
                    error = (
                        f"unroutable: no queue bound to {self.service}.events "
                        f"with key {row.event_type}"
                    )
                    log.warning(
                        "outbox event %s (%s) is unroutable; kept, retry in %.1fs",
                        row.event_id,
                        row.event_type,
                        delay,
                    )
                else:
                    error = f"not confirmed by the broker ({outcome or 'no answer'})"
                    log.warning(
                        "outbox event %s (%s) %s; retry in %.1fs",
                        row.event_id,
                        row.event_type,
                        error,
                        delay,
                    )
                connection.execute(
                    self._defer,
                    {"id": row.id, "at": utcnow() + timedelta(seconds=delay), "error": error},
                )
        return len(confirmed)

    def oldest_age(self) -> float:
        """Seconds since the oldest unpublished row last seen was written (0: none)."""
        oldest = self._oldest
        return 0.0 if oldest is None else max(0.0, (utcnow() - oldest).total_seconds())

    def update_gauges(self, force: bool = False) -> bool:
        """Read the backlog and its oldest row, at most once a second, whether this relay
        publishes or waits, and whatever the broker does. False if the database could not
        be read: the backlog and the oldest row stay as last seen (the age grows)."""
        if not force and time.monotonic() - self._last_gauges < 1.0:
            return True
        self._last_gauges = time.monotonic()
        try:
            backlog, self._oldest = outbox_pending(self.engine)
        except Exception as exc:  # the loop reports the outage; this only must not stop it
            log.debug("outbox of %s not readable: %s: %s", self.service, type(exc).__name__, exc)
            return False
        OUTBOX_BACKLOG.labels(self.service).set(backlog)
        OUTBOX_LAST_CHECK.labels(self.service).set(time.time())
        return True

    def prune(self, force: bool = False) -> int:
        """Delete rows published longer ago than the retention (kept a while for audit
        and for replaying to a new consumer by hand)."""
        if not force and time.monotonic() - self._last_prune < 600:
            return 0
        self._last_prune = time.monotonic()
        with self.engine.begin() as connection:
            deleted = connection.execute(self._prune, {"before": utcnow() - self.retention})
        return deleted.rowcount or 0

    def run(self) -> None:
        log.info("outbox relay for %s starting", self.service)
        backoff = 0.5
        leader = False
        last_check = time.monotonic()
        while not self.stopping.is_set():
            self.update_gauges()
            try:
                if not leader:
                    leader = self.leadership.acquire()
                    if not leader:
                        self.stopping.wait(2.0)
                        continue
                    log.info("outbox relay for %s is the publisher", self.service)
                published = self.relay_once()
                if published:
                    self.signal.drain()
                self.prune()
                backoff = 0.5
                if published == 0:
                    # the lock's session is checked every few seconds, not on every idle
                    # poll; meanwhile SKIP LOCKED keeps a second publisher off the same rows
                    if time.monotonic() - last_check > LEADERSHIP_CHECK_SECONDS:
                        last_check = time.monotonic()
                        if not self.leadership.alive():
                            raise ConnectionError("lost the relay leadership connection")
                    if self.signal.wait(self.stopping):
                        # commits come in bursts (a request's, its neighbours'): a moment's
                        # wait publishes them in one batch, one round of confirms
                        self.stopping.wait(self.linger)
            except Exception as exc:
                log.warning(
                    "outbox relay for %s: %s: %s; retrying in %.1fs",
                    self.service,
                    type(exc).__name__,
                    exc,
                    backoff,
                )
                self.publisher.close()
                if not self.leadership.alive():
                    self.leadership.release()
                    leader = False
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, 10.0)
        self.publisher.close()
        self.signal.close()
        self.leadership.release()
        self.engine.dispose()
        log.info("outbox relay for %s stopped", self.service)
