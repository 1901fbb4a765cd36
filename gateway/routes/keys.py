from __future__ import annotations

from gateway import keys, schemas
from gateway.http import endpoint, page_of


class KeyRoutes:
    @endpoint(
        "POST",
        "/api/v1/api-keys",
        "Buat kunci API (ditampilkan sekali)",
        roles=("admin",),
        body=schemas.ApiKeyCreate,
        response=schemas.ApiKeyCreated,
        status=201,
        creates={"key_id": "/id"},
        example={"role": "partner", "partner_id": "yayasan-pesona", "label": "Operator Pesona"},
        tags=("kunci",),
    )
    def create_api_key(self, request, caller, data, params):
        if data.get("partner_id"):
            self.rpc("mitra", "get_partner", data["partner_id"])  # 404 if unknown
        with self.uow() as uow:
            created = keys.create_key(uow, data, caller.actor)
            uow.commit()
        return created

    @endpoint(
        "GET",
        "/api/v1/api-keys",
        "Daftar kunci API",
        roles=("admin",),
        query=schemas.Page,
        response=schemas.ApiKey(many=True),
        tags=("kunci",),
    )
    def list_api_keys(self, request, caller, data, params):
        with self.uow() as uow:
            return page_of(keys.list_keys(uow), params)

    @endpoint(
        "DELETE",
        "/api/v1/api-keys/<string:key_id>",
        "Cabut kunci API",
        roles=("admin",),
        response=schemas.ApiKey,
        tags=("kunci",),
    )
    def revoke_api_key(self, request, caller, data, params, key_id):
        with self.uow() as uow:
            revoked = keys.revoke_key(uow, key_id)
            uow.commit()
        return revoked
