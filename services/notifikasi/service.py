from __future__ import annotations

from bersinar.base import ServiceBase
from bersinar.entrypoints import Database, event_handler, rpc
from services.notifikasi import handlers
from services.notifikasi.models import Base


class NotifikasiService(ServiceBase):
    name = "notifikasi"
    uow = Database(Base.metadata)

    @rpc
    def list_notifications(self, recipient=None, limit=50, cursor=None):
        with self.uow() as uow:
            return handlers.list_notifications(uow, recipient, limit, cursor)

    @event_handler("rujukan", "referral_requested")
    def on_referral_requested(self, event):
        return self.uow.apply_once(event, handlers.deliver_to_inboxes)
