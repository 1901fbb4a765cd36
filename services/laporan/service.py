from __future__ import annotations

from bersinar.base import ServiceBase
from bersinar.entrypoints import Database, event_handler, rpc
from services.laporan import handlers
from services.laporan.models import Base


class LaporanService(ServiceBase):
    name = "laporan"
    uow = Database(Base.metadata)

    @rpc
    def recorded_counts(self, period, partner_id=None):
        with self.uow() as uow:
            return handlers.recorded_counts(uow, str(period), partner_id)

    @event_handler("rujukan", "referral_requested")
    def on_referral_requested(self, event):
        return self.uow.apply_once(event, handlers.record_referral_requested)
