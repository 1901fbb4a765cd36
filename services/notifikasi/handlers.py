"""One function per command or event of ``notifikasi``, each run inside a unit of work.

An event is turned into deliveries (one row per recipient and channel, unique on
``(event_id, recipient, channel)``) in the transaction that records it in the inbox; the
in-app inbox is written there and then. Every other channel is sent later by the delivery
worker, a few rows (``DELIVERY_CLAIM``) per short transaction that locks them (``FOR
UPDATE SKIP LOCKED``), sends them and records the attempts: a crash between sending and
committing resends those few messages at most, under the same Message-ID /
``X-Bersinar-Delivery`` id."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Date, DateTime, bindparam, func, select, text

from bersinar.codes import local_date
from bersinar.context import correlated
from bersinar.contracts.notifications import NATIONAL_EVENT_TYPES
from bersinar.db import UnitOfWork, insert_rows, page_newest_first
from bersinar.envelope import parse_rfc3339, rfc3339, utcnow
from bersinar.errors import Forbidden, NotFound
from services.notifikasi import domain
from services.notifikasi.channels import Channels, WebhookTargets
from services.notifikasi.domain import PermanentDeliveryError, RetryPolicy
from services.notifikasi.models import (
    Delivery,
    DeliveryAttempt,
    MissingAddress,
    Notification,
    Preference,
    WebhookSubscription,
)

log = logging.getLogger(__name__)

ERROR_LIMIT = 500


# --- an event arrives ---------------------------------------------------------------------


def _preferences(uow: UnitOfWork, recipients: list[str]) -> dict[tuple[str, str], list[str]]:
    """The choices of these recipients, read once per transaction (a batch of events
    asks for the same few recipients again and again)."""
    known: dict[str, dict[tuple[str, str], list[str]]] = uow.memo.setdefault("preferences", {})
    missing = [r for r in recipients if r not in known]
    if missing:
        for recipient in missing:
            known[recipient] = {}
        with uow.session.no_autoflush:  # what the batch wrote so far can wait for commit
            rows = uow.session.scalars(
                select(Preference).where(Preference.recipient.in_(missing))
            ).all()
        for p in rows:
            known[p.recipient][(p.recipient, p.event_type)] = list(p.channels or [])
    return {key: channels for r in recipients for key, channels in known[r].items()}


def prepare_batch(
    uow: UnitOfWork, events: list[dict[str, Any]], directory: Directory | None = None
) -> None:
    """Read once what planning a batch of events needs: the choices of every recipient
    the batch addresses, the webhook subscriptions, and (with a directory) whether each
    recipient has an address on each channel it would be told through."""
    recipients = {
        recipient
        for event in events
        for recipient in domain.audience_recipients(event["event_type"], event.get("data") or {})
    }
    preferences = _preferences(uow, sorted(recipients))
    _subscriptions(uow)
    if directory is not None:
        uow.memo["directory"] = directory  # for the outcome events of this transaction
        wanted = {
            (item.recipient, item.channel)
            for event in events
            for item in domain.plan(event, preferences, ())
            if item.channel in domain.ADDRESSED_CHANNELS
        }
        check_addresses(uow, directory, wanted)


def check_addresses(uow: UnitOfWork, directory: Directory, wanted) -> None:
    """Whether each (recipient, channel) has an address, asked once per transaction:
    True, False, or None when the directory did not answer (mitra down): then the
    delivery is planned as before and the delivery worker asks again when it sends."""
    known: dict[tuple[str, str], bool | None] = uow.memo.setdefault("reachable", {})
    names: dict[str, str] = uow.memo.setdefault("names", {})
    for recipient, channel in sorted(set(wanted) - set(known)):
        if uow.memo.get("directory_down"):
            known[(recipient, channel)] = None
            continue
        try:
            known[(recipient, channel)] = bool(directory.addresses(recipient, channel))
        except PermanentDeliveryError:  # e.g. a partner mitra does not know
            known[(recipient, channel)] = False
        except Exception as exc:  # one wait for mitra per batch, not one per recipient
            uow.memo["directory_down"] = True
            known[(recipient, channel)] = None
            log.warning(
                "addresses of %s unknown (%s: %s): deliveries planned without knowing",
                recipient,
                type(exc).__name__,
                exc,
            )
        name = directory.name(recipient)
        if name:
            names[recipient] = name


def _subscriptions(uow: UnitOfWork) -> list[tuple[str, list[str]]]:
    """Live webhook subscriptions, read once per transaction."""
    if "subscriptions" not in uow.memo:
        rows = uow.session.scalars(
            select(WebhookSubscription).where(WebhookSubscription.deleted_at.is_(None))
        )
        # a national subscription made before its rule is told only what the rule allows
        uow.memo["subscriptions"] = [
            (s.id, domain.subscribable(s.owner_role, s.event_types or [])) for s in rows
        ]
    return uow.memo["subscriptions"]


# the rows planning writes, in the order their keys need (an attempt and an inbox
# notification name their delivery)
_PLANNED = (Delivery, Notification, DeliveryAttempt)


def _planned_rows(uow: UnitOfWork) -> dict[Any, list[dict[str, Any]]]:
    """What the events of this transaction planned, written when it commits: one insert
    per table for the whole batch instead of an ORM object per row."""
    rows = uow.memo.get("planned_rows")
    if rows is None:
        rows = uow.memo["planned_rows"] = {model: [] for model in _PLANNED}
        uow.before_commit("planned_rows", partial(_write_planned, uow))
    return rows


def _write_planned(uow: UnitOfWork) -> None:
    for model, rows in uow.memo.pop("planned_rows", {}).items():
        insert_rows(uow.session, model.__table__, rows)


def record_event(uow: UnitOfWork, event: dict[str, Any]) -> list[dict[str, Any]]:
    """Plan the deliveries of an event; write the inbox ones at once. A channel whose
    recipient is known (``check_addresses``) to have no address there is not planned:
    it is counted for ``flush_missing_addresses``. Returns what was delivered or skipped
    here, for the metrics after commit."""
    now = utcnow()
    event_type = event["event_type"]
    if event_type not in domain.TEMPLATES:
        return []
    data = event.get("data") or {}
    people = domain.audience_recipients(event_type, data)
    planned, skipped = domain.without_address(
        domain.plan(event, _preferences(uow, people), _subscriptions(uow)),
        uow.memo.get("reachable", {}),
    )
    names = uow.memo.get("names", {})
    delivered = []
    for item in skipped:
        note_missing_address(uow, item.recipient, item.channel, names.get(item.recipient))
        delivered.append({"result": "skipped", "channel": item.channel, "event_type": event_type})
    occurred_at = parse_rfc3339(event["occurred_at"])
    payload = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    rendered = None
    rows = _planned_rows(uow)
    for item in planned:
        delivery_id = str(uuid.uuid4())
        inbox = item.channel == domain.INBOX
        # unique on (event_id, recipient, channel); the inbox of this consumer, in the
        # same transaction, already makes sure an event is planned once
        rows[Delivery].append(
            {
                "id": delivery_id,
                "event_id": event["event_id"],
                "event_type": event_type,
                "occurred_at": occurred_at,
                "recipient": item.recipient,
                "channel": item.channel,
                "status": "sent" if inbox else "pending",
                "attempts": 1 if inbox else 0,
                "next_attempt_at": None if inbox else now,
                "last_error": None,
                "event": payload,
                "created_at": now,
                "updated_at": now,
                "sent_at": now if inbox else None,
            }
        )
        if not inbox:
            continue
        if rendered is None:  # the inbox's words are the same for every recipient
            rendered = domain.render(event_type, domain.INBOX, data)
        rows[Notification].append(
            {
                "id": delivery_id,
                "recipient": item.recipient,
                "event_id": event["event_id"],
                "event_type": event_type,
                "title": rendered.subject[:200],
                "body": rendered.body,
                "created_at": now,
                "read_at": None,
            }
        )
        rows[DeliveryAttempt].append(
            {
                "delivery_id": delivery_id,
                "number": 1,
                "attempted_at": now,
                "outcome": "sent",
                "error": None,
                "duration_ms": 0,
            }
        )
        _emit_outcome(uow, delivery_id, event, item.recipient, item.channel, "sent", 1)
        delivered.append(
            {
                "result": "sent",
                "channel": domain.INBOX,
                "event_type": event_type,
                "latency": max(0.0, (now - occurred_at).total_seconds()),
            }
        )
    if skipped:
        log.debug(
            "%s: %d deliveries planned, %d not (no address: %s)",
            event_type,
            len(planned),
            len(skipped),
            ", ".join(f"{i.recipient} {i.channel}" for i in skipped),
        )
    else:
        log.debug("%s: %d deliveries planned", event_type, len(planned))
    return delivered


# --- recipients without an address -------------------------------------------------------


def note_missing_address(uow: UnitOfWork, recipient: str, channel: str, name: str | None):
    """Count, in this transaction, one delivery not made for want of an address."""
    missing = uow.memo.setdefault("missing", {})
    count, known_name = missing.get((recipient, channel), (0, None))
    missing[(recipient, channel)] = (count + 1, name or known_name)


_COUNT_MISSING = text(
    "INSERT INTO missing_addresses "
    "(recipient, channel, day, recipient_name, skipped, first_at, last_at) "
    "SELECT r, c, :day, n, k, :now, :now FROM unnest(CAST(:recipients AS varchar[]), "
    "CAST(:channels AS varchar[]), CAST(:names AS varchar[]), CAST(:counts AS integer[])) "
    "WITH ORDINALITY AS m(r, c, n, k, i) ORDER BY i "
    "ON CONFLICT (recipient, channel, day) DO UPDATE SET "
    "skipped = missing_addresses.skipped + EXCLUDED.skipped, "
    "last_at = greatest(missing_addresses.last_at, EXCLUDED.last_at), "
    "recipient_name = coalesce(EXCLUDED.recipient_name, missing_addresses.recipient_name) "
    "RETURNING recipient, channel, (xmax = 0)"
).bindparams(
    bindparam("day", type_=Date()),
    bindparam("now", type_=DateTime(timezone=True)),
)


def flush_missing_addresses(uow: UnitOfWork, now: datetime) -> int:
    """Add what this transaction counted to the day's rows (``MissingAddress``), all in
    one statement; the transaction that makes a day's row tells the admins, in their
    inbox. Rows are written in key order, so instances writing the same rows at once
    never deadlock. Returns how many notices were written."""
    missing = sorted(uow.memo.pop("missing", {}).items())
    if not missing:
        return 0
    day = local_date(now)
    names = {key: name for key, (_, name) in missing}
    # the day's row made, or its count added to (xmax = 0: made here)
    written = uow.session.execute(
        _COUNT_MISSING,
        {
            "recipients": [recipient for (recipient, _), _ in missing],
            "channels": [channel for (_, channel), _ in missing],
            "names": [name for _, (_, name) in missing],
            "counts": [count for _, (count, _) in missing],
            "day": day,
            "now": now,
        },
    ).all()
    notices = 0
    for recipient, channel, created in written:
        name = names[(recipient, channel)]
        if not created:
            continue
        notice = domain.address_notice(recipient, channel, name)
        notice_id = str(
            uuid.uuid5(uuid.NAMESPACE_URL, f"bersinar:address-missing:{recipient}:{channel}:{day}")
        )
        uow.session.add(
            Notification(
                id=notice_id,
                recipient=domain.recipient_id("role", "admin"),
                event_id=notice_id,
                event_type=domain.ADDRESS_NOTICE,
                title=notice.subject[:200],
                body=notice.body,
                created_at=now,
            )
        )
        notices += 1
        log.info("%s has no %s address: admins told (once for %s)", recipient, channel, day)
    return notices


def list_missing_addresses(uow: UnitOfWork, today, days: int = 7) -> dict[str, Any]:
    """Recipients that went without a channel for want of an address in the last
    ``days`` local days, the latest first: how many deliveries, first and last time."""
    since = today - timedelta(days=max(1, min(int(days), 90)) - 1)
    rows = uow.session.execute(
        select(
            MissingAddress.recipient,
            MissingAddress.channel,
            func.max(MissingAddress.recipient_name),
            func.sum(MissingAddress.skipped),
            func.min(MissingAddress.first_at),
            func.max(MissingAddress.last_at),
        )
        .where(MissingAddress.day >= since)
        .group_by(MissingAddress.recipient, MissingAddress.channel)
        .order_by(func.max(MissingAddress.last_at).desc(), MissingAddress.recipient)
    ).all()
    return {
        "since": since.isoformat(),
        "items": [
            {
                "recipient": recipient,
                "recipient_kind": domain.recipient_kind(recipient),
                "name": domain.recipient_name(recipient, name),
                "channel": channel,
                "skipped": int(skipped),
                "first_at": rfc3339(first_at),
                "last_at": rfc3339(last_at),
            }
            for recipient, channel, name, skipped, first_at, last_at in rows
        ],
    }


def _emit_outcome(uow, delivery_id, event, recipient, channel, status, attempts) -> None:
    """notification_sent / notification_failed: ids and kinds only, never an address.
    The event leaves through the outbox for whoever subscribes, and what it calls for
    here (the webhooks that asked for it, the admins told of a failure) is planned now,
    in this transaction: notifikasi does not consume its own outcome events. Deliveries
    planned so are kept in ``uow.memo["outcomes"]`` for the metrics after commit."""
    if event["event_type"] in domain.OUTCOME_EVENTS:
        return  # the outcome of telling about an outcome is not told again
    outcome = uow.emit(
        "notification_sent" if status == "sent" else "notification_failed",
        outcome_data(delivery_id, event, recipient, channel, status, attempts),
        ordering_key=f"delivery:{delivery_id}",
    )
    directory = uow.memo.get("directory")
    if directory is not None:
        check_addresses(
            uow,
            directory,
            {
                (item.recipient, item.channel)
                for item in domain.plan(outcome, _preferences(uow, _people(outcome)), ())
                if item.channel in domain.ADDRESSED_CHANNELS
            },
        )
    uow.memo.setdefault("outcomes", []).extend(record_event(uow, outcome))


def _people(event: dict[str, Any]) -> list[str]:
    return domain.audience_recipients(event["event_type"], event.get("data") or {})


def outcome_data(delivery_id, event, recipient, channel, status, attempts) -> dict[str, Any]:
    """What notification_sent / notification_failed carry
    (bersinar.contracts.events.NotificationOutcome)."""
    return {
        "delivery_id": delivery_id,
        "event_id": event["event_id"],
        "event_type": event["event_type"],
        "channel": channel,
        "recipient": recipient,
        "recipient_kind": domain.recipient_kind(recipient),
        "status": status,
        "attempts": attempts,
    }


# --- the delivery worker -------------------------------------------------------------------


class Directory:
    """Where a recipient is reached: ``addresses(recipient, channel)``. The service gives
    one that asks mitra for a partner's contacts and reads staff addresses from config."""

    def addresses(self, recipient: str, channel: str) -> list[str]:  # pragma: no cover
        raise NotImplementedError

    def name(self, recipient: str) -> str | None:
        """A recipient's name, once ``addresses`` has looked it up (a partner's)."""
        return None


@dataclass(frozen=True)
class Outcome:
    delivery_id: str
    channel: str
    event_type: str
    result: str  # sent | retry | gave_up | cancelled | skipped
    attempts: int
    latency: float | None = None
    error: str | None = None


def claim_due(uow: UnitOfWork, now: datetime, limit: int = 1) -> list[Delivery]:
    """The next due deliveries (at most ``limit``), locked for this transaction; other
    workers skip them."""
    query = (
        select(Delivery)
        .where(Delivery.status == "pending", Delivery.next_attempt_at <= now)
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(limit)
    )
    if uow.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(uow.session.scalars(query))


def _send(
    delivery: Delivery,
    event: dict[str, Any],
    uow: UnitOfWork,
    channels: Channels,
    directory: Directory,
    console_url: str,
) -> None:
    if delivery.channel == domain.WEBHOOK:
        sub_id = delivery.recipient.partition(":")[2]
        subscription = uow.session.get(WebhookSubscription, sub_id)
        if subscription is None or subscription.deleted_at is not None:
            raise PermanentDeliveryError("CANCELLED", "langganan webhook sudah dihapus")
        if not domain.subscribable(subscription.owner_role, [delivery.event_type]):
            # planned before its role was refused this event: not sent now either
            raise PermanentDeliveryError(
                "CANCELLED", f"peran {subscription.owner_role} tidak boleh menerima peristiwa ini"
            )
        channels.webhook.send(delivery.id, subscription.url, subscription.secret, event)
        return
    audience = domain.recipient_kind(delivery.recipient)
    rendered = domain.render(
        delivery.event_type, delivery.channel, event.get("data") or {}, audience, console_url
    )
    addresses = directory.addresses(delivery.recipient, delivery.channel)
    if delivery.channel == domain.EMAIL:
        channels.email.send(
            delivery.id, delivery.event_type, addresses, rendered.subject, rendered.body
        )
    elif delivery.channel == domain.SMS:
        channels.sms.send(addresses, rendered.body)
    elif delivery.channel == domain.WHATSAPP:
        channels.whatsapp.send(addresses, rendered.body)
    else:
        raise PermanentDeliveryError("UNKNOWN_CHANNEL", f"kanal {delivery.channel} tidak dikenal")


def attempt(
    uow: UnitOfWork,
    delivery: Delivery,
    channels: Channels,
    directory: Directory,
    policies: dict[str, RetryPolicy],
    console_url: str = "",
    clock: Callable[[], datetime] = utcnow,
) -> Outcome:
    """Send one claimed delivery and record the attempt; the caller commits. Its log
    lines and the outcome event carry the correlation id of the event it comes from."""
    event = json.loads(delivery.event)
    uow.memo["directory"] = directory  # for the outcome event's own deliveries
    with correlated(event.get("correlation_id")):
        return _attempt(uow, delivery, event, channels, directory, policies, console_url, clock)


def _attempt(
    uow: UnitOfWork,
    delivery: Delivery,
    event: dict[str, Any],
    channels: Channels,
    directory: Directory,
    policies: dict[str, RetryPolicy],
    console_url: str,
    clock: Callable[[], datetime],
) -> Outcome:
    number = delivery.attempts + 1
    started = time.perf_counter()
    error: str | None = None
    permanent = None
    try:
        _send(delivery, event, uow, channels, directory, console_url)
    except PermanentDeliveryError as exc:
        permanent, error = exc, str(exc)
    except Exception as exc:  # any failure of the way out is recorded and retried
        error = f"{type(exc).__name__}: {exc}"
    now = clock()
    duration_ms = int((time.perf_counter() - started) * 1000)
    error = error[:ERROR_LIMIT] if error else None
    # an address missing is a fact about the directory, not a failure of the way out
    skipped = permanent is not None and permanent.code == "NO_ADDRESS"
    uow.session.add(
        DeliveryAttempt(
            delivery_id=delivery.id,
            number=number,
            attempted_at=now,
            outcome="skipped" if skipped else "failed" if error else "sent",
            error=error,
            duration_ms=duration_ms,
        )
    )
    delivery.attempts = number
    delivery.updated_at = now
    delivery.last_error = error
    if skipped:
        delivery.status, delivery.next_attempt_at = "skipped", None
        note_missing_address(
            uow, delivery.recipient, delivery.channel, directory.name(delivery.recipient)
        )
        log.info(
            "delivery %s (%s, %s) skipped: %s",
            delivery.id,
            delivery.event_type,
            delivery.channel,
            error,
        )
        return Outcome(
            delivery.id, delivery.channel, delivery.event_type, "skipped", number, error=error
        )
    if error is None:
        delivery.status, delivery.sent_at, delivery.next_attempt_at = "sent", now, None
        _emit_outcome(uow, delivery.id, event, delivery.recipient, delivery.channel, "sent", number)
        latency = max(0.0, (now - parse_rfc3339(event["occurred_at"])).total_seconds())
        return Outcome(delivery.id, delivery.channel, delivery.event_type, "sent", number, latency)
    policy = policies.get(delivery.channel) or policies["default"]
    retry_at = None if permanent else policy.after_failure(number, now)
    if retry_at is not None:
        delivery.next_attempt_at = retry_at
        log.warning(
            "delivery %s (%s, %s) attempt %d failed, retry at %s: %s",
            delivery.id,
            delivery.event_type,
            delivery.channel,
            number,
            rfc3339(retry_at),
            error,
        )
        return Outcome(
            delivery.id, delivery.channel, delivery.event_type, "retry", number, error=error
        )
    cancelled = permanent is not None and permanent.code == "CANCELLED"
    delivery.status = "cancelled" if cancelled else "failed"
    delivery.next_attempt_at = None
    if not cancelled:
        _emit_outcome(
            uow, delivery.id, event, delivery.recipient, delivery.channel, "failed", number
        )
    log.error(
        "delivery %s (%s, %s) given up after %d attempt(s): %s",
        delivery.id,
        delivery.event_type,
        delivery.channel,
        number,
        error,
    )
    return Outcome(
        delivery.id,
        delivery.channel,
        delivery.event_type,
        "cancelled" if cancelled else "gave_up",
        number,
        error=error,
    )


# --- the inbox --------------------------------------------------------------------------


def _notification(n: Notification) -> dict[str, Any]:
    return {
        "id": n.id,
        "recipient": n.recipient,
        "event_type": n.event_type,
        "event_id": n.event_id,
        "title": n.title,
        "body": n.body,
        "created_at": rfc3339(n.created_at),
        "read_at": rfc3339(n.read_at) if n.read_at else None,
    }


def list_notifications(
    uow: UnitOfWork,
    recipient: str | None,
    limit: int = 50,
    cursor: str | None = None,
    unread: bool | None = None,
) -> dict[str, Any]:
    """Newest first. ``cursor`` is the id of the last item of the previous page."""
    query = select(Notification)
    if recipient:
        query = query.where(Notification.recipient == recipient)
    if unread is True:
        query = query.where(Notification.read_at.is_(None))
    elif unread is False:
        query = query.where(Notification.read_at.is_not(None))
    return page_newest_first(
        uow,
        query,
        Notification,
        {"limit": limit, "cursor": cursor},
        lambda rows: [_notification(n) for n in rows],
    )


def mark_read(uow: UnitOfWork, notification_id: str, recipient: str | None, read: bool = True):
    """``recipient`` None: an admin, who may mark any. Another recipient's message is 404."""
    note = uow.session.get(Notification, notification_id)
    if note is None or (recipient is not None and note.recipient != recipient):
        raise NotFound(f"Notifikasi {notification_id} tidak ditemukan.")
    if read and note.read_at is None:
        note.read_at = utcnow()
    elif not read:
        note.read_at = None
    return _notification(note)


# --- the delivery log -------------------------------------------------------------------


def _delivery(d: Delivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "event_id": d.event_id,
        "event_type": d.event_type,
        "recipient": d.recipient,
        "recipient_kind": domain.recipient_kind(d.recipient),
        "channel": d.channel,
        "status": d.status,
        "attempts": d.attempts,
        "last_error": d.last_error,
        "next_attempt_at": rfc3339(d.next_attempt_at) if d.next_attempt_at else None,
        "occurred_at": rfc3339(d.occurred_at),
        "created_at": rfc3339(d.created_at),
        "sent_at": rfc3339(d.sent_at) if d.sent_at else None,
    }


def list_deliveries(uow: UnitOfWork, filters: dict[str, Any]) -> dict[str, Any]:
    """Newest first, filtered by any of event_id, event_type, channel, status, recipient."""
    query = select(Delivery)
    for key in ("event_id", "event_type", "channel", "status", "recipient"):
        if filters.get(key):
            query = query.where(getattr(Delivery, key) == filters[key])
    return page_newest_first(
        uow, query, Delivery, filters, lambda rows: [_delivery(d) for d in rows]
    )


def get_delivery(uow: UnitOfWork, delivery_id: str) -> dict[str, Any]:
    delivery = uow.session.get(Delivery, delivery_id)
    if delivery is None:
        raise NotFound(f"Pengiriman {delivery_id} tidak ditemukan.")
    attempts = uow.session.scalars(
        select(DeliveryAttempt)
        .where(DeliveryAttempt.delivery_id == delivery_id)
        .order_by(DeliveryAttempt.number)
    )
    return {
        **_delivery(delivery),
        "attempt_log": [
            {
                "number": a.number,
                "attempted_at": rfc3339(a.attempted_at),
                "outcome": a.outcome,
                "error": a.error,
                "duration_ms": a.duration_ms,
            }
            for a in attempts
        ],
    }


# --- webhooks -----------------------------------------------------------------------------


def _webhook(s: WebhookSubscription) -> dict[str, Any]:
    return {
        "id": s.id,
        "url": s.url,
        "event_types": list(s.event_types or []),
        "owner_role": s.owner_role,
        "created_at": rfc3339(s.created_at),
        "deleted_at": rfc3339(s.deleted_at) if s.deleted_at else None,
    }


def create_webhook(
    uow: UnitOfWork, command: dict[str, Any], caller: dict[str, Any], targets: WebhookTargets
):
    """A new subscription; the answer carries the secret, the only time it is shown.
    national may be told only of events that describe no person (403 otherwise, not
    a quiet narrowing: it asked for what its role may never have); the address is
    checked (``WebhookTargets``) before anything is written."""
    role = str(caller.get("role"))
    forbidden = sorted(
        set(command["event_types"]) - set(domain.subscribable(role, command["event_types"]))
    )
    if forbidden:
        raise Forbidden(
            "Peran national (sistem nasional BNN) hanya boleh berlangganan peristiwa yang "
            f"tidak menyangkut perorangan ({', '.join(NATIONAL_EVENT_TYPES)}); tidak boleh: "
            f"{', '.join(forbidden)}.",
            errors={"event_types": forbidden},
        )
    targets.check(command["url"])
    subscription = WebhookSubscription(
        id=str(uuid.uuid4()),
        url=command["url"],
        event_types=sorted(set(command["event_types"])),
        secret=domain.new_webhook_secret(),
        owner=str(caller.get("key_id") or caller.get("role")),
        owner_role=str(caller.get("role")),
        created_at=utcnow(),
    )
    uow.session.add(subscription)
    return {**_webhook(subscription), "secret": subscription.secret}


def _visible(subscription: WebhookSubscription | None, caller: dict[str, Any]) -> bool:
    """Admins see every subscription; a national key only those it made."""
    if subscription is None or subscription.deleted_at is not None:
        return False
    return caller.get("role") == "admin" or subscription.owner == str(caller.get("key_id"))


def list_webhooks(uow: UnitOfWork, caller: dict[str, Any]) -> dict[str, Any]:
    rows = uow.session.scalars(select(WebhookSubscription).order_by(WebhookSubscription.created_at))
    return {"items": [_webhook(s) for s in rows if _visible(s, caller)]}


def delete_webhook(uow: UnitOfWork, subscription_id: str, caller: dict[str, Any]):
    subscription = uow.session.get(WebhookSubscription, subscription_id)
    if not _visible(subscription, caller):
        raise NotFound(f"Langganan webhook {subscription_id} tidak ditemukan.")
    subscription.deleted_at = utcnow()
    return _webhook(subscription)


# --- preferences --------------------------------------------------------------------------


def get_preferences(uow: UnitOfWork, recipient: str) -> dict[str, Any]:
    rows = uow.session.scalars(select(Preference).where(Preference.recipient == recipient))
    chosen = {p.event_type: list(p.channels) for p in rows}
    kind = domain.recipient_kind(recipient)
    return {
        "recipient": recipient,
        "default_channels": list(domain.DEFAULT_CHANNELS),
        "items": [
            {
                "event_type": event_type,
                "channels": list(
                    domain.channels_for(
                        recipient, event_type, {(recipient, k): v for k, v in chosen.items()}
                    )
                ),
                "chosen": event_type in chosen or "*" in chosen,
            }
            for event_type, audiences in domain.ROUTES.items()
            if kind in audiences
        ],
        "chosen": [{"event_type": k, "channels": v} for k, v in sorted(chosen.items())],
    }


def set_preferences(uow: UnitOfWork, recipient: str, items: list[dict[str, Any]]):
    now = utcnow()
    for item in items:
        row = uow.session.get(Preference, (recipient, item["event_type"]))
        channels = [c for c in domain.PERSON_CHANNELS if c in set(item["channels"])]
        if row is None:
            uow.session.add(
                Preference(
                    recipient=recipient,
                    event_type=item["event_type"],
                    channels=channels,
                    updated_at=now,
                )
            )
        else:
            row.channels, row.updated_at = channels, now
    uow.session.flush()
    return get_preferences(uow, recipient)
