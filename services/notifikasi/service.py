from __future__ import annotations

import logging
from functools import partial

import eventlet
from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider
from sqlalchemy import func, select

from bersinar.base import ServiceBase
from bersinar.clock import Clock
from bersinar.contracts.notifications import (
    DeliveryQuery,
    PreferencesUpdate,
    ReadMark,
    WebhookCreate,
)
from bersinar.entrypoints import Database, RpcProxy, event_handler, rpc
from bersinar.envelope import utcnow
from bersinar.timers import timer
from services.notifikasi import domain, handlers, metrics
from services.notifikasi.channels import Channels, PartnerCache, StaffAndPartnerDirectory
from services.notifikasi.domain import RetryPolicy
from services.notifikasi.models import Base, Delivery

log = logging.getLogger(__name__)


class Outbound(DependencyProvider):
    """The channels and retry policies, built from config once per container."""

    def setup(self):
        config = self.container.config
        self.channels = Channels.from_config(config)
        default = RetryPolicy(
            max_attempts=int(config.get("DELIVERY_MAX_ATTEMPTS") or 6),
            base=float(config.get("DELIVERY_RETRY_BASE") or 30),
            cap=float(config.get("DELIVERY_RETRY_MAX") or 3600),
        )
        webhook = RetryPolicy(
            max_attempts=int(config.get("WEBHOOK_MAX_ATTEMPTS") or default.max_attempts),
            base=float(config.get("WEBHOOK_RETRY_BASE") or default.base),
            cap=default.cap,
        )
        self.policies = {"default": default, domain.WEBHOOK: webhook}
        self.console_url = str(config.get("CONSOLE_URL") or "")
        self.batch = int(config.get("DELIVERY_BATCH") or 50)
        self.claim = max(1, int(config.get("DELIVERY_CLAIM") or 5))
        self.concurrency = max(1, int(config.get("DELIVERY_CONCURRENCY") or 4))
        self.rpc_timeout = float(config.get("MITRA_RPC_TIMEOUT") or 5)
        cached = config.get("CONTACTS_CACHE_SECONDS")
        self.partners = PartnerCache(1.0 if cached in (None, "") else float(cached))

    def get_dependency(self, worker_ctx):
        return self


def _consumer(event_type: str):
    def handle(self, events):
        return self.record(events)

    handle.__name__ = handle.__qualname__ = f"on_{event_type}"
    return handle


class NotifikasiService(ServiceBase):
    name = "notifikasi"
    uow = Database(Base.metadata)
    config = Config()
    outbound = Outbound()
    clock = Clock()
    mitra = RpcProxy("mitra", timeout_key="MITRA_RPC_TIMEOUT")

    # One consumer per event of docs/architecture.md (the routing table decides who is
    # told), but for its own outcome events: what they call for is planned in the
    # transaction that records the outcome (handlers._emit_outcome).
    for _event_type, _source in domain.EVENT_SOURCES.items():
        if _event_type not in domain.OUTCOME_EVENTS:
            locals()[f"on_{_event_type}"] = event_handler(_source, _event_type)(
                _consumer(_event_type)
            )
    del _event_type, _source

    def record(self, events):
        delivered, notices = [], []

        def effect(uow, event):
            delivered.extend(handlers.record_event(uow, event))

        def finish(uow):
            delivered.extend(uow.memo.pop("outcomes", []))
            notices.append(handlers.flush_missing_addresses(uow, self.clock.now()))

        outcome = self.uow.apply_once(
            events,
            effect,
            prepare=partial(handlers.prepare_batch, directory=self._directory()),
            finish=finish,
        )
        metrics.record_planned(delivered, sum(notices))
        return outcome

    def _directory(self) -> StaffAndPartnerDirectory:
        out = self.outbound
        return StaffAndPartnerDirectory(self.mitra, self.config, out.rpc_timeout, out.partners)

    # -- the delivery worker ----------------------------------------------------------------

    @timer("DELIVERY_POLL_INTERVAL", 1.0)
    def send_due_deliveries(self):
        """Send what is due: each sender claims a few rows at a time in a transaction
        that locks them, sends them (e-mail over one SMTP connection for the round) and
        records every attempt before it commits."""
        out = self.outbound
        directory = self._directory()
        sent = eventlet.GreenPool(out.concurrency).imap(
            lambda _: self._send_some(directory, out.batch // out.concurrency or 1),
            range(out.concurrency),
        )
        total = sum(sent)
        with self.uow() as uow:
            pending = dict(
                uow.session.execute(
                    select(Delivery.channel, func.count())
                    .where(Delivery.status == "pending")
                    .group_by(Delivery.channel)
                ).all()
            )
        for channel in domain.CHANNELS:
            if channel != domain.INBOX:
                metrics.PENDING.labels(channel).set(pending.get(channel, 0))
        return total

    def _send_some(self, directory, limit: int) -> int:
        out = self.outbound
        done = 0
        with out.channels.for_round() as channels:
            while done < limit:
                with self.uow() as uow:
                    claimed = handlers.claim_due(uow, utcnow(), min(out.claim, limit - done))
                    if not claimed:
                        break
                    outcomes = [
                        handlers.attempt(
                            uow, delivery, channels, directory, out.policies, out.console_url
                        )
                        for delivery in claimed
                    ]
                    planned = uow.memo.pop("outcomes", [])
                    notices = handlers.flush_missing_addresses(uow, self.clock.now())
                    uow.commit()
                for outcome in outcomes:
                    metrics.record(outcome)
                metrics.record_planned(planned, notices)
                done += len(claimed)
        return done

    # -- the inbox --------------------------------------------------------------------------

    @rpc
    def list_notifications(self, recipient=None, limit=50, cursor=None, unread=None):
        with self.uow() as uow:
            return handlers.list_notifications(uow, recipient, limit, cursor, unread)

    @rpc
    def mark_read(self, notification_id, recipient, payload=None):
        command = ReadMark().load(payload or {})
        with self.uow() as uow:
            note = handlers.mark_read(uow, str(notification_id), recipient, command["read"])
            uow.commit()
        return note

    @rpc
    def missing_addresses(self, days=7):
        """Recipients told nothing on a channel for want of an address (the console's
        dashboard, for BNNP staff)."""
        with self.uow() as uow:
            return handlers.list_missing_addresses(uow, self.clock.today(), int(days or 7))

    # -- the delivery log -------------------------------------------------------------------

    @rpc
    def list_deliveries(self, filters=None):
        query = DeliveryQuery().load(filters or {})
        with self.uow() as uow:
            return handlers.list_deliveries(uow, query)

    @rpc
    def get_delivery(self, delivery_id):
        with self.uow() as uow:
            return handlers.get_delivery(uow, str(delivery_id))

    # -- webhooks and preferences -------------------------------------------------------------

    @rpc
    def create_webhook(self, payload, caller):
        command = WebhookCreate().load(payload or {})
        with self.uow() as uow:
            created = handlers.create_webhook(
                uow, command, caller, self.outbound.channels.webhook.targets
            )
            uow.commit()
        return created

    @rpc
    def list_webhooks(self, caller):
        with self.uow() as uow:
            return handlers.list_webhooks(uow, caller)

    @rpc
    def delete_webhook(self, subscription_id, caller):
        with self.uow() as uow:
            deleted = handlers.delete_webhook(uow, str(subscription_id), caller)
            uow.commit()
        return deleted

    @rpc
    def get_preferences(self, recipient):
        with self.uow() as uow:
            return handlers.get_preferences(uow, str(recipient))

    @rpc
    def set_preferences(self, recipient, payload):
        command = PreferencesUpdate().load(payload or {})
        with self.uow() as uow:
            preferences = handlers.set_preferences(uow, str(recipient), command["items"])
            uow.commit()
        return preferences
