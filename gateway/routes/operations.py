from __future__ import annotations

from pathlib import Path

import eventlet
import swagger_ui_bundle
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.security import safe_join
from werkzeug.wrappers import Response

from bersinar.errors import NotFound
from gateway.exceptions import ServiceUnavailable
from gateway.http import call, endpoint, json_response
from gateway.openapi import build_spec
from gateway.schemas import VIEWER_TYPES

SERVICES = ("mitra", "rujukan", "laporan", "notifikasi")
VIEWER = Path(swagger_ui_bundle.swagger_ui_path)
DOCS_PAGE = """<!doctype html>
<html lang="id"><head><meta charset="utf-8"><title>Bersinar API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui"});</script>
</body></html>"""


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

    @endpoint(
        "GET",
        "/metrics",
        "Metrik Prometheus",
        roles=None,
        tags=("operasi",),
        produces=("text/plain",),
    )
    def metrics(self, request, caller, data, params):
        return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)

    @endpoint("GET", "/openapi.json", "Dokumen OpenAPI", roles=None, tags=("operasi",))
    def openapi(self, request, caller, data, params):
        return build_spec()

    @endpoint(
        "GET",
        "/docs",
        "Penampil dokumen API",
        roles=None,
        tags=("operasi",),
        produces=("text/html",),
    )
    def docs(self, request, caller, data, params):
        return Response(DOCS_PAGE, mimetype="text/html")

    @endpoint(
        "GET",
        "/docs/static/<string:filename>",
        "Berkas penampil dokumen API",
        roles=None,
        tags=("operasi",),
        produces=tuple(sorted(set(VIEWER_TYPES.values()))),
    )
    def docs_static(self, request, caller, data, params, filename):
        path = safe_join(str(VIEWER), filename)
        if path is None or not Path(path).is_file() or filename.endswith(".map"):
            raise NotFound("Berkas tidak ada.")
        mimetype = VIEWER_TYPES[Path(path).suffix]
        response = Response(Path(path).read_bytes(), mimetype=mimetype)
        response.headers["Cache-Control"] = "public, max-age=86400"
        return response
