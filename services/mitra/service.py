from __future__ import annotations

import logging

from nameko.dependency_providers import Config
from prometheus_client import Gauge

from bersinar.attachment_rpc import AttachmentEntrypoints
from bersinar.base import ServiceBase
from bersinar.clock import Clock
from bersinar.contracts.partners import (
    ActivityInput,
    AgreementInput,
    AgreementTermination,
    PartnerCreate,
    PartnerFilter,
    PartnerPatch,
)
from bersinar.entrypoints import Database, rpc
from bersinar.metrics import replace_samples
from bersinar.timers import timer
from services.mitra import handlers
from services.mitra.models import Base, attachments

log = logging.getLogger(__name__)

PARTNERS = Gauge("bersinar_partners", "Partners by status", ["status"])
AGREEMENTS = Gauge("bersinar_agreements", "Cooperation agreements (PKS) by status", ["status"])
DAY = 86400.0
NEAREST_EXPIRY = Gauge(
    "bersinar_agreement_nearest_expiry_seconds",
    "Time until the nearest end of an active agreement (whole days, in seconds)",
)
# unknown until the first check (eager, at start): 0 would read as "ends today" and fire
# BersinarAgreementExpiringSoon on every restart
NEAREST_EXPIRY.set(float("nan"))


class MitraService(AttachmentEntrypoints, ServiceBase):
    name = "mitra"
    uow = Database(Base.metadata)
    clock = Clock()
    config = Config()
    attachment_rows = attachments
    attachment_of = "agreement"

    def attachment_owner(self, uow, owner, caller):
        partner_id, agreement_id = owner
        return handlers.agreement_for_attachments(uow, caller, partner_id, agreement_id)

    # -- partners ----------------------------------------------------------------------

    @rpc
    def list_partners(self, filters=None, caller=None):
        filters = PartnerFilter().load(filters or {})
        with self.uow() as uow:
            return handlers.list_partners(uow, filters, self.clock.today(), caller)

    @rpc
    def get_partner(self, partner_id, caller=None):
        with self.uow() as uow:
            return handlers.get_partner(uow, str(partner_id), self.clock.today(), caller)

    @rpc
    def directory_snapshot(self):
        """Every partner's directory entry, contacts included: for the gateway's read
        model (bersinar.directory), which decides who sees them."""
        with self.uow() as uow:
            return {"entries": handlers.directory_snapshot(uow)}

    @rpc
    def directory_entry(self, partner_id):
        with self.uow() as uow:
            return handlers.directory_entry_of(uow, str(partner_id))

    @rpc
    def register_partner(self, payload, actor):
        command = PartnerCreate().load(payload or {})
        with self.uow() as uow:
            partner = handlers.register_partner(uow, command, str(actor), self.clock.today())
            uow.commit()
        return partner

    @rpc
    def update_partner(self, partner_id, payload, caller):
        changes = PartnerPatch().load(payload or {})
        with self.uow() as uow:
            partner = handlers.update_partner(
                uow, str(partner_id), changes, caller, self.clock.today()
            )
            uow.commit()
        return partner

    @rpc
    def seed(self):
        with self.uow() as uow:
            created = handlers.seed_partners(uow, self.clock.today())
            uow.commit()
        return {"created": created}

    # -- agreements (PKS) ----------------------------------------------------------------

    @rpc
    def list_agreements(self, partner_id, caller):
        with self.uow() as uow:
            return handlers.list_agreements(uow, str(partner_id), self.clock.today(), caller)

    @rpc
    def sign_agreement(self, partner_id, payload, actor):
        command = AgreementInput().load(payload or {})
        with self.uow() as uow:
            agreement = handlers.sign_agreement(
                uow, str(partner_id), command, str(actor), self.clock.today()
            )
            uow.commit()
        return agreement

    @rpc
    def terminate_agreement(self, partner_id, agreement_id, payload, actor):
        command = AgreementTermination().load(payload or {})
        with self.uow() as uow:
            agreement = handlers.terminate_agreement(
                uow, str(partner_id), str(agreement_id), command, str(actor), self.clock.today()
            )
            uow.commit()
        return agreement

    @timer("AGREEMENT_CHECK_INTERVAL", 300, eager=True)
    def check_agreements(self):
        """Emit agreement_expiring / agreement_expired when due (once, whichever instance
        gets there first) and refresh the registry's gauges."""
        today = self.clock.today()
        with self.uow() as uow:
            sent = handlers.check_agreements(uow, today)
            uow.commit()
        with self.uow() as uow:
            figures = handlers.registry_figures(uow, today)
        replace_samples(PARTNERS, {(s,): n for s, n in figures["partners"].items()})
        for status in ("draft", "active", "expiring", "expired", "terminated"):
            AGREEMENTS.labels(status).set(figures["agreements"].get(status, 0))
        nearest = figures["days_to_nearest_expiry"]
        NEAREST_EXPIRY.set(float("nan") if nearest is None else nearest * DAY)
        return sent

    # -- capacity building and monitoring -------------------------------------------------

    @rpc
    def record_activity(self, partner_id, payload, actor):
        command = ActivityInput().load(payload or {})
        with self.uow() as uow:
            activity = handlers.record_activity(uow, str(partner_id), command, str(actor))
            uow.commit()
        return activity

    @rpc
    def list_activities(self, partner_id, caller, kind=None):
        with self.uow() as uow:
            return handlers.list_activities(uow, str(partner_id), caller, kind)

    @rpc
    def score_history(self, partner_id, caller):
        with self.uow() as uow:
            return handlers.score_history(uow, str(partner_id), caller)
