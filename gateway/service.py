"""The only door: HTTP on /api/v1, turned into RPC calls to the services by name. The
endpoints live in gateway.routes, one mixin per area."""

from __future__ import annotations

from nameko.dependency_providers import Config

from bersinar.clock import Clock
from bersinar.context import CorrelationId
from bersinar.entrypoints import BrokerConsumers, Database, RpcProxy
from bersinar.metrics import MetricsListener
from gateway import keys
from gateway.console.documents import ConsoleDocumentRoutes
from gateway.console.pages import ConsoleRoutes
from gateway.exceptions import Unauthorized
from gateway.http import call
from gateway.limits import RateLimiter
from gateway.models import Base
from gateway.readmodel import DirectoryUpkeep
from gateway.routes import API_ROUTES


class GatewayService(*API_ROUTES, ConsoleRoutes, ConsoleDocumentRoutes, DirectoryUpkeep):
    name = "gateway"
    config = Config()
    uow = Database(Base.metadata)
    correlation_id = CorrelationId()
    consumers = BrokerConsumers()
    rate_limiter = RateLimiter()
    # its requests are counted by gateway.http's endpoint wrapper (route, status)
    metrics = MetricsListener()
    clock = Clock()
    mitra = RpcProxy("mitra")
    rujukan = RpcProxy("rujukan")
    laporan = RpcProxy("laporan")
    notifikasi = RpcProxy("notifikasi")

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
        """A call to a service by its RPC name, answered 503 if it does not answer in time."""
        timeout = float(self.config.get("RPC_TIMEOUT", 5))
        return call(getattr(self, service), service, method, *args, timeout=timeout, **kwargs)
