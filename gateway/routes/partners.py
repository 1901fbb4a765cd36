from __future__ import annotations

from bersinar.contracts import partners as contracts
from gateway.http import endpoint
from gateway.routes import EVERYONE


class PartnerRoutes:
    @endpoint(
        "GET",
        "/api/v1/partners",
        "Daftar mitra",
        roles=EVERYONE,
        query=contracts.PartnerFilter,
        response=contracts.Partner(many=True),
        tags=("mitra",),
    )
    def list_partners(self, request, caller, data, params):
        return {"items": self.rpc("mitra", "list_partners", params)}

    @endpoint(
        "GET",
        "/api/v1/partners/<string:partner_id>",
        "Satu mitra",
        roles=EVERYONE,
        response=contracts.Partner,
        tags=("mitra",),
    )
    def get_partner(self, request, caller, data, params, partner_id):
        return self.rpc("mitra", "get_partner", partner_id)
