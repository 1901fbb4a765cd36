from __future__ import annotations

import eventlet
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.wrappers import Response

from gateway.exceptions import ServiceUnavailable
from gateway.http import call, endpoint, json_response
from gateway.openapi import build_spec

SERVICES = ("mitra", "rujukan", "laporan", "notifikasi")


class OperationsRoutes:
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
