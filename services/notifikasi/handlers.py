"""One function per command or event of ``notifikasi``, each run inside a unit of work."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy import select

from bersinar.db import UnitOfWork
from bersinar.envelope import rfc3339, utcnow
from services.notifikasi import domain
from services.notifikasi.models import Notification

log = logging.getLogger(__name__)

MAX_PAGE = 200


def deliver_to_inboxes(uow: UnitOfWork, event: dict[str, Any]) -> int:
    now = utcnow()
    messages = domain.messages_for(event)
    for message in messages:
        uow.session.add(
            Notification(
                id=str(uuid.uuid4()),
                recipient=message.recipient,
                event_id=event["event_id"],
                event_type=event["event_type"],
                title=message.title,
                body=message.body,
                created_at=now,
            )
        )
        log.info("%s notification for %s", event["event_type"], message.recipient)
    return len(messages)


def list_notifications(
    uow: UnitOfWork, recipient: str | None, limit: int = 50, cursor: str | None = None
) -> dict[str, Any]:
    """Newest first. ``cursor`` is the id of the last item of the previous page."""
    limit = max(1, min(int(limit), MAX_PAGE))
    query = select(Notification).order_by(Notification.created_at.desc(), Notification.id.desc())
    if recipient:
        query = query.where(Notification.recipient == recipient)
    if cursor:
        anchor = uow.session.get(Notification, cursor)
        if anchor is not None:
            query = query.where(
                (Notification.created_at < anchor.created_at)
                | ((Notification.created_at == anchor.created_at) & (Notification.id < anchor.id))
            )
    rows = uow.session.scalars(query.limit(limit + 1)).all()
    items = [
        {
            "id": n.id,
            "recipient": n.recipient,
            "event_type": n.event_type,
            "title": n.title,
            "body": n.body,
            "created_at": rfc3339(n.created_at),
            "read_at": rfc3339(n.read_at) if n.read_at else None,
        }
        for n in rows[:limit]
    ]
    return {"items": items, "next_cursor": items[-1]["id"] if len(rows) > limit else None}
