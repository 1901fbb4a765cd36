from __future__ import annotations

from nameko.extensions import DependencyProvider

from bersinar.base import ServiceBase
from bersinar.contracts.referrals import ReferralCreate
from bersinar.entrypoints import Database, event_handler, rpc
from services.rujukan import handlers
from services.rujukan.crypto import ClientCipher
from services.rujukan.models import Base


class Cipher(DependencyProvider):
    """Keys come from the environment (through config); without them the service does
    not start rather than store identity in the clear."""

    def setup(self):
        config = self.container.config
        self.cipher = ClientCipher(
            str(config.get("ENCRYPTION_KEYS") or ""), str(config.get("NIK_HMAC_KEY") or "")
        )

    def get_dependency(self, worker_ctx):
        return self.cipher


class RujukanService(ServiceBase):
    name = "rujukan"
    uow = Database(Base.metadata)
    cipher = Cipher()

    @rpc
    def create_referral(self, payload, actor):
        command = ReferralCreate().load(payload or {})
        with self.uow() as uow:
            referral = handlers.create_referral(uow, self.cipher, command, str(actor))
            uow.commit()
        return referral

    @event_handler("mitra", "partner_registered")
    def on_partner_registered(self, event):
        return self.uow.apply_once(event, handlers.apply_partner_snapshot)

    @event_handler("mitra", "partner_updated")
    def on_partner_updated(self, event):
        return self.uow.apply_once(event, handlers.apply_partner_snapshot)

    @event_handler("mitra", "agreement_signed")
    def on_agreement_signed(self, event):
        return self.uow.apply_once(event, handlers.apply_agreement)
