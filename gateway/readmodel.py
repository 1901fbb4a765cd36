"""The gateway's read model of the partner directory: partner reads (GET /api/v1/partners
and /api/v1/partners/{id}) are answered from a copy held in each gateway process instead
of an RPC to mitra per read.

- **Loading.** A snapshot of every partner's directory entry (bersinar.directory) through
  one RPC, ``mitra.directory_snapshot``: at start, whenever the process's event
  connection (re)starts consuming (events may have been missed meanwhile), and every
  ``DIRECTORY_REFRESH_SECONDS`` (30) whatever happened, which bounds how stale the copy
  may be when an event is lost.
- **Events.** Each gateway process has its own queue, exclusive and deleted with its
  connection, bound to ``mitra.events`` for every event that changes what the directory
  shows (``DIRECTORY_EVENTS``): a broadcast, so every process hears every change. An
  event names the partner; the process takes that partner's entry by one RPC
  (``mitra.directory_entry``): the entry holds contacts (people) and free text, which
  events never carry.
- **Order.** An entry carries its partner's ``version``, which grows with every change
  the directory shows; an entry older than the one held (a snapshot taken before an
  event, answered after it) changes nothing.
- **Until loaded** (mitra not answering at start) reads go to mitra by RPC as before;
  a partner not in the copy (registered through another gateway process a moment ago)
  is asked of mitra too. Who sees contacts is decided here, on the read, by the same
  rule mitra applies (``bersinar.directory.may_see_contacts``).
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from kombu import Queue, binding
from nameko.extensions import DependencyProvider
from nameko.messaging import Consumer
from nameko.standalone.events import get_event_exchange
from prometheus_client import Gauge

from bersinar.contracts.events import load_event
from bersinar.entrypoints import ContextHeadersOnly, EventQueueConsumer, RemoteDomainError
from bersinar.envelope import EnvelopeError
from bersinar.errors import DomainError
from bersinar.timers import timer

log = logging.getLogger(__name__)

DEFAULT_REFRESH_SECONDS = 30.0
DIRECTORY_PARTNERS = Gauge(
    "bersinar_gateway_directory_partners", "Partners in this gateway process's directory copy"
)
DIRECTORY_AGE = Gauge(
    "bersinar_gateway_directory_snapshot_age_seconds",
    "Seconds since this gateway process's directory copy was last loaded whole "
    "(NaN until the first load)",
)
DIRECTORY_AGE.set(float("nan"))
# every mitra event after which GET /api/v1/partners/{id} may answer otherwise; the
# agreement notices (agreement_expiring, _expired) change nothing stored: an agreement's
# status is reckoned on the day of the read
DIRECTORY_EVENTS = (
    "partner_registered",
    "partner_updated",
    "agreement_signed",
    "agreement_terminated",
)


def reason(exc: Exception) -> str:
    """What a log line says of a failed call: its code, or the exception's type."""
    if isinstance(exc, DomainError | RemoteDomainError):
        return exc.code
    return type(exc).__name__


class PartnerDirectory:
    """The copy: directory entries by partner id, and when it was last loaded whole.
    Its methods do not yield (eventlet), so a read never sees half a change."""

    def __init__(self, refresh_seconds: float = DEFAULT_REFRESH_SECONDS):
        self.refresh_seconds = refresh_seconds
        self.entries: dict[str, dict[str, Any]] = {}
        self.loaded = False
        self.last_snapshot = 0.0  # monotonic time the last whole load was asked for
        self.wanted = 0  # resyncs asked for (a connection that starts consuming)
        self.done = 0  # the resyncs the last whole load answered

    def due(self, now: float) -> bool:
        """Whether a whole load is due: never loaded, a resync asked for, or the last one
        older than ``refresh_seconds``."""
        return (
            not self.loaded
            or self.done < self.wanted
            or now - self.last_snapshot >= self.refresh_seconds
        )

    def resync(self) -> None:
        self.wanted += 1

    def load(self, entries: list[dict[str, Any]], asked_at: float, generation: int) -> int:
        """Take a whole snapshot asked for at ``asked_at`` (when ``wanted`` was
        ``generation``); returns how many entries changed."""
        changed = sum(self.apply(entry) for entry in entries)
        self.loaded = True
        self.last_snapshot = max(self.last_snapshot, asked_at)
        self.done = max(self.done, generation)
        return changed

    def apply(self, entry: dict[str, Any]) -> bool:
        """Keep ``entry`` unless the one held is newer; True when it is new or newer."""
        held = self.entries.get(entry["id"])
        if held is not None and int(held["version"]) > int(entry["version"]):
            return False
        self.entries[entry["id"]] = entry
        return held is None or int(held["version"]) < int(entry["version"])

    def entry(self, partner_id: str) -> dict[str, Any] | None:
        return self.entries.get(partner_id) if self.loaded else None

    def all(self) -> list[dict[str, Any]] | None:
        return list(self.entries.values()) if self.loaded else None


class Directory(DependencyProvider):
    """``self.directory``: this process's ``PartnerDirectory``."""

    def setup(self):
        refresh = self.container.config.get("DIRECTORY_REFRESH_SECONDS")
        self.directory = PartnerDirectory(
            float(refresh) if refresh not in (None, "") else DEFAULT_REFRESH_SECONDS
        )

    def get_dependency(self, worker_ctx):
        return self.directory


class DirectoryQueueConsumer(EventQueueConsumer):
    """The directory's event connection (``gateway directory`` in the broker's connection
    list, ``directory`` in /health). Each time it starts consuming, a connection lost
    before may have missed events: the copy is loaded whole again."""

    role = "directory"

    def on_consume_ready(self, connection, channel, consumers, **kwargs):
        super().on_consume_ready(connection, channel, consumers, **kwargs)
        for extension in self.container.dependencies:
            if isinstance(extension, Directory):
                extension.directory.resync()


class DirectoryEvents(ContextHeadersOnly, Consumer):
    """The process's own queue, ``gateway-directory-<uuid>``, bound to mitra's events
    that change the directory; exclusive, so it goes with the connection (nothing piles
    up for a process that is gone). A message is acked once handled; one that fails is
    dropped: the next whole load repairs what it would have changed."""

    queue_consumer = DirectoryQueueConsumer()

    def __init__(self, **kwargs):
        super().__init__(queue=None, requeue_on_error=False, **kwargs)

    def setup(self):
        exchange = get_event_exchange("mitra", self.container.config)
        self.queue = Queue(
            f"gateway-directory-{uuid.uuid4().hex}",
            bindings=[binding(exchange, routing_key=event) for event in DIRECTORY_EVENTS],
            durable=False,
            exclusive=True,
            auto_delete=True,
        )
        super().setup()


directory_events = DirectoryEvents.decorator


class DirectoryUpkeep:
    """The entrypoints that keep the copy current, composed into the gateway's service."""

    directory = Directory()

    @directory_events
    def on_directory_event(self, event):
        try:
            event = load_event(event)
        except EnvelopeError as exc:
            log.warning("directory event refused: %s", exc)
            return
        partner_id = str(event["data"]["partner_id"])
        self.refresh_partner(partner_id)

    def refresh_partner(self, partner_id: str) -> None:
        """Take one partner's entry from mitra into the copy; if mitra does not answer,
        the copy is loaded whole at the next tick that can."""
        try:
            entry = self.rpc("mitra", "directory_entry", partner_id)
        except Exception as exc:  # mitra down, slow or older: the copy waits
            log.warning("directory entry of %s not taken (%s)", partner_id, reason(exc))
            self.directory.resync()
            return
        self.directory.apply(entry)

    @timer("DIRECTORY_CHECK_INTERVAL", 1.0, eager=True)
    def keep_directory(self):
        asked_at = time.monotonic()
        copy = self.directory
        DIRECTORY_PARTNERS.set(len(copy.entries))
        if copy.loaded:
            DIRECTORY_AGE.set(asked_at - copy.last_snapshot)
        if not copy.due(asked_at):
            return
        generation = self.directory.wanted
        try:
            snapshot = self.rpc("mitra", "directory_snapshot")
        except Exception as exc:  # tried again at the next check
            log.warning("directory snapshot not taken (%s)", reason(exc))
            return
        changed = self.directory.load(snapshot["entries"], asked_at, generation)
        if changed:
            log.info("directory loaded: %d partner(s) changed", changed)
