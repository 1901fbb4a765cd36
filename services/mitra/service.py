from __future__ import annotations

from bersinar.base import ServiceBase
from bersinar.contracts.partners import PartnerFilter
from bersinar.entrypoints import Database, rpc
from services.mitra import handlers
from services.mitra.models import Base


class MitraService(ServiceBase):
    name = "mitra"
    uow = Database(Base.metadata)

    @rpc
    def list_partners(self, filters=None):
        filters = PartnerFilter().load(filters or {})
        with self.uow() as uow:
            return handlers.list_partners(uow, filters)

    @rpc
    def get_partner(self, partner_id):
        with self.uow() as uow:
            return handlers.get_partner(uow, str(partner_id))

    @rpc
    def seed(self):
        with self.uow() as uow:
            created = handlers.seed_partners(uow)
            uow.commit()
        return {"created": created}
