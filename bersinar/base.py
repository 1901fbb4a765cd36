"""What every Bersinar nameko service has: its database, the correlation id, metrics and
a health check the gateway pings."""

from __future__ import annotations

from bersinar.context import CorrelationId
from bersinar.entrypoints import BrokerConsumers, rpc
from bersinar.metrics import EntrypointMetrics


class ServiceBase:
    """Subclasses set ``name`` and ``uow = Database(metadata)``."""

    name = "base"
    correlation_id = CorrelationId()
    metrics = EntrypointMetrics()
    consumers = BrokerConsumers()

    @rpc
    def health(self):
        """The database answers, and every queue consumer consumes: the RPC one answered
        this call, but the event handlers' has a connection of its own, which may be
        lost while RPC works (``degraded``)."""
        self.uow.ping()
        consumers = self.consumers()
        ok = all(state == "ok" for state in consumers.values())
        return {"service": self.name, "status": "ok" if ok else "degraded", "consumers": consumers}
