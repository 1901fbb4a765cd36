"""The only door: HTTP on /api/v1, turned into RPC calls to the services by name."""

from __future__ import annotations

import eventlet
from nameko.dependency_providers import Config
from nameko.rpc import RpcProxy
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.wrappers import Response

from bersinar import contracts
from bersinar.context import CorrelationId
from bersinar.entrypoints import Database
from gateway import keys, schemas
from gateway.exceptions import ServiceUnavailable, Unauthorized
from gateway.http import call, endpoint, json_response, raw_json, require
from gateway.models import Base
from gateway.openapi import build_spec

SERVICES = ("mitra", "rujukan", "laporan", "notifikasi")
STAFF = ("admin", "officer")
EVERYONE = ("admin", "officer", "partner", "national", "ops")


class GatewayService:
    name = "gateway"
    config = Config()
    uow = Database(Base.metadata)
    correlation_id = CorrelationId()
    mitra = RpcProxy("mitra")
    rujukan = RpcProxy("rujukan")
    laporan = RpcProxy("laporan")
    notifikasi = RpcProxy("notifikasi")

    # -- used by gateway.http --------------------------------------------------------

    @property
    def max_body_bytes(self) -> int:
        return int(self.config.get("MAX_BODY_BYTES", 65536))

    def authenticate(self, request) -> keys.Caller:
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise Unauthorized("Sertakan header Authorization: Bearer <kunci API>.")
        with self.uow() as uow:
            caller = keys.authenticate(
                uow, presented.strip(), str(self.config.get("ADMIN_KEY") or "") or None
            )
        if caller is None:
            raise Unauthorized("Kunci API tidak dikenal atau sudah dicabut.")
        return caller

    def rpc(self, service: str, method: str, *args, **kwargs):
        timeout = float(self.config.get("RPC_TIMEOUT", 5))
        return call(getattr(self, service), service, method, *args, timeout=timeout, **kwargs)

    # -- open endpoints ---------------------------------------------------------------

    @endpoint("GET", "/health", "Kesiapan setiap layanan", roles=None, tags=("operasi",))
    def health(self, request, caller, data, params):
        timeout = float(self.config.get("HEALTH_TIMEOUT", 2))
        pings = {
            name: eventlet.spawn(call, getattr(self, name), name, "health", timeout=timeout)
            for name in SERVICES
        }
        report, down = {}, []
        for name, ping in pings.items():
            try:
                ping.wait()
                report[name] = "ok"
            except Exception as exc:
                report[name] = "down" if isinstance(exc, ServiceUnavailable) else "error"
                down.append(name)
        try:
            self.uow.ping()
            report["gateway"] = "ok"
        except Exception:
            report["gateway"] = "error"
            down.append("gateway")
        if down:
            return json_response({"status": "unavailable", "services": report, "down": down}, 503)
        return {"status": "ok", "services": report}

    @endpoint("GET", "/metrics", "Metrik Prometheus", roles=None, tags=("operasi",))
    def metrics(self, request, caller, data, params):
        return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)

    @endpoint("GET", "/openapi.json", "Dokumen OpenAPI", roles=None, tags=("operasi",))
    def openapi(self, request, caller, data, params):
        return build_spec()

    # -- API keys -----------------------------------------------------------------------

    @endpoint(
        "POST",
        "/api/v1/api-keys",
        "Buat kunci API (ditampilkan sekali)",
        roles=("admin",),
        body=schemas.ApiKeyCreate,
        response=schemas.ApiKeyCreated,
        status=201,
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
        response=schemas.ApiKey(many=True),
        tags=("kunci",),
    )
    def list_api_keys(self, request, caller, data, params):
        with self.uow() as uow:
            return {"items": keys.list_keys(uow)}

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

    # -- partners -----------------------------------------------------------------------

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

    # -- referrals ----------------------------------------------------------------------

    @endpoint(
        "POST",
        "/api/v1/referrals",
        "Buat rujukan",
        roles=STAFF,
        body=contracts.ReferralCreate,
        response=contracts.Referral,
        status=201,
        tags=("rujukan",),
    )
    def create_referral(self, request, caller, data, params):
        # the service validates the same contract again: send what the caller sent
        return self.rpc("rujukan", "create_referral", raw_json(request), caller.actor)

    # -- notifications ------------------------------------------------------------------

    @endpoint(
        "GET",
        "/api/v1/notifications",
        "Kotak masuk notifikasi pemanggil",
        roles=("admin", "officer", "partner"),
        query=schemas.NotificationQuery,
        response=contracts.Notification(many=True),
        tags=("notifikasi",),
    )
    def list_notifications(self, request, caller, data, params):
        if caller.role == "partner":
            recipient = f"partner:{caller.partner_id}"
        elif caller.role == "officer":
            require(not params.get("partner_id"), "Petugas melihat kotak masuk petugas.")
            recipient = "role:officer"
        else:
            recipient = f"partner:{params['partner_id']}" if params.get("partner_id") else None
        return self.rpc(
            "notifikasi", "list_notifications", recipient, params["limit"], params.get("cursor")
        )
