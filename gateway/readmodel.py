"""The gateway's read model of the partner directory: partner reads (GET /api/v1/partners,
/api/v1/partners/{id} and /api/v1/partners/match) are answered from a copy held in each
gateway process instead of an RPC to mitra or rujukan per read.

- **Loading.** A snapshot of every partner's directory entry (bersinar.directory) through
  one RPC, ``mitra.directory_snapshot``, and of the places taken by partner and service
  type through another, ``rujukan.places_taken``: at start, whenever the process's event
  connection (re)starts consuming (events may have been missed meanwhile), and every
  ``DIRECTORY_REFRESH_SECONDS`` (30) whatever happened, which bounds how stale the copy
  may be when an event is lost.
- **Events.** Each gateway process has its own queue, exclusive and deleted with its
  connection, bound to ``mitra.events`` for every event that changes what the directory
  shows (``DIRECTORY_EVENTS``) and to ``rujukan.events`` for every referral event that
  may take or give back a place (``OCCUPANCY_EVENTS``): a broadcast, so every process
  hears every change. An event names the partner; the process takes that partner's
  entry by one RPC (``mitra.directory_entry``; the entry holds contacts, people, and free
  text, which events never carry), or its places taken (``rujukan.places_taken``; never
  worked out here from events, where one lost or told twice would leave a count wrong
  for good).
- **Order.** An entry carries its partner's ``version``, which grows with every change
  the directory shows; an entry older than the one held (a snapshot taken before an
  event, answered after it) changes nothing. Places taken carry no version: an answer
  asked for before the one held for a partner changes nothing of that partner.
- **Until loaded** (mitra or rujukan not answering at start) reads go to them by RPC as
  before; a partner not in the copy (registered through another gateway process a moment
  ago) is asked of mitra too. Who sees contacts is decided here, on the read, by the same
  rule mitra applies (``bersinar.directory.may_see_contacts``), and which partners may
  take a client by the rule rujukan applies (``bersinar.directory.rank_partners``).
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
from bersinar.directory import ACTIVE_STATUSES
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
PLACES_AGE = Gauge(
    "bersinar_gateway_directory_places_age_seconds",
    "Seconds since this gateway process's copy of the places taken was last loaded whole "
    "(NaN until the first load)",
)
PLACES_AGE.set(float("nan"))
# every mitra event after which GET /api/v1/partners/{id} may answer otherwise; the
# agreement notices (agreement_expiring, _expired) change nothing stored: an agreement's
# status is reckoned on the day of the read
DIRECTORY_EVENTS = (
    "partner_registered",
    "partner_updated",
    "agreement_signed",
    "agreement_terminated",
)
# every rujukan event whose referral may have taken or given back a place (moved into or
# out of ACTIVE_STATUSES); a new referral (referral_requested, a transfer's too) is
# requested, which takes none, and admission keeps the place acceptance took
OCCUPANCY_EVENTS = (
    "referral_accepted",
    "referral_cancelled",
    "referral_completed",
    "referral_dropped_out",
    "referral_transferred",
    "referral_transition_undone",
)


def reason(exc: Exception) -> str:
    """What a log line says of a failed call: its code, or the exception's type."""
    if isinstance(exc, DomainError | RemoteDomainError):
        return exc.code
    return type(exc).__name__


class WholeLoads:
    """When a part of the copy was last loaded whole, and whether a whole load is due.
    Its methods do not yield (eventlet), so a read never sees half a change."""

    def __init__(self, refresh_seconds: float = DEFAULT_REFRESH_SECONDS):
        self.refresh_seconds = refresh_seconds
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

    def loaded_whole(self, asked_at: float, generation: int) -> None:
        """A whole load asked for at ``asked_at`` (when ``wanted`` was ``generation``)
        has been taken."""
        self.loaded = True
        self.last_snapshot = max(self.last_snapshot, asked_at)
        self.done = max(self.done, generation)


class PartnerDirectory(WholeLoads):
    """The copy: directory entries by partner id, and the places taken of each."""

    def __init__(self, refresh_seconds: float = DEFAULT_REFRESH_SECONDS):
        super().__init__(refresh_seconds)
        self.entries: dict[str, dict[str, Any]] = {}
        self.occupancy = Occupancy(refresh_seconds)

    def load(self, entries: list[dict[str, Any]], asked_at: float, generation: int) -> int:
        """Take a whole snapshot asked for at ``asked_at`` (when ``wanted`` was
        ``generation``); returns how many entries changed."""
        changed = sum(self.apply(entry) for entry in entries)
        self.loaded_whole(asked_at, generation)
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


class Occupancy(WholeLoads):
    """Places taken by partner and service type, as rujukan counts them from its
    referrals. Answers are told apart by when they were asked for (``ask``): a snapshot
    asked for before one partner's read and answered after it changes nothing of that
    partner. The later answer is the one to keep: it was asked for after the event that
    called for it, so it counts every change committed before that event."""

    def __init__(self, refresh_seconds: float = DEFAULT_REFRESH_SECONDS):
        super().__init__(refresh_seconds)
        self.taken: dict[str, dict[str, int]] = {}  # partner -> service type -> places
        self.answered: dict[str, int] = {}  # partner -> the ask its places answer
        self.asks = 0

    def ask(self) -> int:
        """The number of a read about to be asked for, later than every one before."""
        self.asks += 1
        return self.asks

    def apply(self, partner_id: str, rows: list[dict[str, Any]], ask: int) -> bool:
        """Take one partner's places (``rujukan.places_taken`` of it), read as ``ask``,
        unless a later read is held; True when taken."""
        if self.answered.get(partner_id, 0) > ask:
            return False
        self.taken[partner_id] = {row["service_type"]: int(row["occupied"]) for row in rows}
        self.answered[partner_id] = ask
        return True

    def load(self, rows: list[dict[str, Any]], asked_at: float, generation: int, ask: int) -> None:
        """Take every partner's places (a partner not named has none taken), read as
        ``ask``, but for partners of which a later read is held."""
        by_partner: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_partner.setdefault(row["partner_id"], []).append(row)
        for partner_id in set(self.taken) | set(by_partner):
            self.apply(partner_id, by_partner.get(partner_id, []), ask)
        self.loaded_whole(asked_at, generation)

    def held(self) -> dict[str, dict[str, int]] | None:
        return self.taken if self.loaded else None


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
                extension.directory.occupancy.resync()


class DirectoryEvents(ContextHeadersOnly, Consumer):
    """The process's own queue, ``gateway-directory-<uuid>``, bound to mitra's events
    that change the directory and rujukan's that may change places taken; exclusive, so
    it goes with the connection (nothing piles up for a process that is gone). A message
    is acked once handled; one that fails is dropped: the next whole load repairs what it
    would have changed."""

    queue_consumer = DirectoryQueueConsumer()

    def __init__(self, **kwargs):
        super().__init__(queue=None, requeue_on_error=False, **kwargs)

    def setup(self):
        bindings = [
            binding(get_event_exchange(source, self.container.config), routing_key=event)
            for source, events in (("mitra", DIRECTORY_EVENTS), ("rujukan", OCCUPANCY_EVENTS))
            for event in events
        ]
        self.queue = Queue(
            f"gateway-directory-{uuid.uuid4().hex}",
            bindings=bindings,
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
        data = event["data"]
        partner_id = str(data["partner_id"])
        if event["event_type"] in DIRECTORY_EVENTS:
            self.refresh_partner(partner_id)
        elif moves_a_place(data):
            self.refresh_occupancy(partner_id)

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

    def refresh_occupancy(self, partner_id: str) -> None:
        """Take one partner's places taken from rujukan into the copy; if rujukan does not
        answer, they are loaded whole at the next tick that can."""
        occupancy = self.directory.occupancy
        ask = occupancy.ask()
        try:
            rows = self.rpc("rujukan", "places_taken", partner_id)
        except Exception as exc:  # rujukan down, slow or older: the copy waits
            log.warning("places taken at %s not read (%s)", partner_id, reason(exc))
            occupancy.resync()
            return
        occupancy.apply(partner_id, rows, ask)

    @timer("DIRECTORY_CHECK_INTERVAL", 1.0, eager=True)
    def keep_directory(self):
        asked_at = time.monotonic()
        copy = self.directory
        DIRECTORY_PARTNERS.set(len(copy.entries))
        if copy.loaded:
            DIRECTORY_AGE.set(asked_at - copy.last_snapshot)
        if copy.occupancy.loaded:
            PLACES_AGE.set(asked_at - copy.occupancy.last_snapshot)
        if copy.due(asked_at):
            self.load_entries(asked_at)
        if copy.occupancy.due(asked_at):
            self.load_occupancy(asked_at)

    def load_entries(self, asked_at: float) -> None:
        generation = self.directory.wanted
        try:
            snapshot = self.rpc("mitra", "directory_snapshot")
        except Exception as exc:  # tried again at the next check
            log.warning("directory snapshot not taken (%s)", reason(exc))
            return
        changed = self.directory.load(snapshot["entries"], asked_at, generation)
        if changed:
            log.info("directory loaded: %d partner(s) changed", changed)

    def load_occupancy(self, asked_at: float) -> None:
        occupancy = self.directory.occupancy
        generation, ask = occupancy.wanted, occupancy.ask()
        try:
            rows = self.rpc("rujukan", "places_taken")
        except Exception as exc:  # tried again at the next check
            log.warning("places taken not read (%s)", reason(exc))
            return
        occupancy.load(rows, asked_at, generation, ask)


def moves_a_place(data: dict[str, Any]) -> bool:
    """Whether a referral event's move took a place or gave one back: from a status that
    holds none to one that holds one, or back (``from_status``: the status left, or
    undone)."""
    return (data.get("from_status") in ACTIVE_STATUSES) != (data["status"] in ACTIVE_STATUSES)
