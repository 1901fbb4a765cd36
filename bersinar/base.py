"""What every Bersinar nameko service has: its database, the correlation id, metrics and
a health check the gateway pings."""

from __future__ import annotations

from bersinar.context import CorrelationId
from bersinar.entrypoints import rpc
from bersinar.metrics import EntrypointMetrics


class ServiceBase:
    """Subclasses set ``name`` and ``uow = Database(metadata)``."""

    name = "base"
    correlation_id = CorrelationId()
    metrics = EntrypointMetrics()

    @rpc
    def health(self):
        self.uow.ping()
        return {"service": self.name, "status": "ok"}
