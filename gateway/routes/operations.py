from __future__ import annotations

from pathlib import Path

import eventlet
import swagger_ui_bundle
from werkzeug.security import safe_join
from werkzeug.wrappers import Response

from bersinar.config import SERVICES
from bersinar.contracts import asyncapi
from bersinar.errors import NotFound
from gateway import eventdocs
from gateway.exceptions import ServiceUnavailable
from gateway.http import call, endpoint, json_response
from gateway.openapi import API_VERSION, build_spec
from gateway.schemas import VIEWER_TYPES

VIEWER = Path(swagger_ui_bundle.swagger_ui_path)
DOCS_PAGE = """<!doctype html>
<html lang="id"><head><meta charset="utf-8"><title>Bersinar API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><p style="font-family: sans-serif; margin: 1rem 2rem">Peristiwa (event) yang
diterbitkan layanan: <a href="/docs/events">/docs/events</a>,
<a href="/asyncapi.json">/asyncapi.json</a>.</p>
<div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui"});</script>
</body></html>"""


# what /health says of a queue consumer that is not consuming (bersinar.entrypoints
# SturdyQueueConsumer.state)
CONSUMER_ROLES = {
    "rpc": "konsumen RPC",
    "events": "konsumen event",
    "directory": "konsumen event salinan direktori mitra",
}
CONSUMER_STATES = {
    "disconnected": "terputus dari RabbitMQ dan sedang menyambung lagi",
    "stopped": "berhenti",
    "stalled": "macet, tidak lagi membaca antreannya",
}


def consumer_problems(component: str, states: dict[str, str]) -> str | None:
    """One sentence naming each consumer of ``component`` that is not consuming, or None
    when all are (or the component reports none)."""
    problems = [
        f"{CONSUMER_ROLES.get(role, role)} {component} {CONSUMER_STATES.get(state, state)}"
        for role, state in sorted(states.items())
        if state != "ok"
    ]
    return "; ".join(problems) + "." if problems else None


def ping(proxy, name: str, timeout: float):
    """A service's health answer and None, or None and why it failed: a spawned
    greenthread that raises has its traceback printed by eventlet's hub even when the
    exception is waited for, so the ping never raises."""
    try:
        return call(proxy, name, "health", timeout=timeout), None
    except Exception as exc:
        return None, exc


class OperationsRoutes:
    @endpoint("GET", "/health", "Kesiapan setiap layanan", roles=None, tags=("operasi",))
    def health(self, request, caller, data, params):
        """ok only if every service answers, its database too, and every broker consumer
        of every service and of the gateway consumes; else 503 with the reason of each
        that is not ok in ``reasons``."""
        timeout = float(self.config.get("HEALTH_TIMEOUT", 2))
        pings = {
            name: eventlet.spawn(ping, getattr(self, name), name, timeout) for name in SERVICES
        }
        report, down, reasons, consumers = {}, [], {}, {}
        for name, pinged in pings.items():
            answer, exc = pinged.wait()
            if exc is not None:
                report[name] = "down" if isinstance(exc, ServiceUnavailable) else "error"
                reasons[name] = getattr(exc, "detail", None) or type(exc).__name__
                down.append(name)
                continue
            consumers[name] = (answer or {}).get("consumers") or {}
            problem = consumer_problems(name, consumers[name])
            report[name] = "degraded" if problem else "ok"
            if problem:
                reasons[name] = problem
                down.append(name)
        consumers["gateway"] = self.consumers()
        report["gateway"] = "ok"
        try:
            self.uow.ping()
        except Exception:
            report["gateway"] = "error"
            reasons["gateway"] = "Basis data gateway tidak dapat dihubungi."
        problem = consumer_problems("gateway", consumers["gateway"])
        if problem and report["gateway"] == "ok":
            report["gateway"] = "degraded"
            reasons["gateway"] = problem
        if report["gateway"] != "ok":
            down.append("gateway")
        if down:
            body = {
                "status": "unavailable",
                "services": report,
                "down": down,
                "reasons": reasons,
                "consumers": consumers,
            }
            return json_response(body, 503)
        return {"status": "ok", "services": report, "consumers": consumers}

    @endpoint("GET", "/ready", "Kesiapan gateway ini", roles=None, tags=("operasi",))
    def ready(self, request, caller, data, params):
        """This gateway process can serve: its database answers and its broker consumers
        consume (the readiness probe of compose and Kubernetes). The services behind it
        are /health's concern: one slow service must not take every gateway out of
        rotation. 503 with ``reasons`` otherwise."""
        reasons = {}
        try:
            self.uow.ping()
        except Exception:
            reasons["database"] = "Basis data gateway tidak dapat dihubungi."
        problem = consumer_problems("gateway", self.consumers())
        if problem:
            reasons["broker"] = problem
        if reasons:
            return json_response({"status": "unavailable", "reasons": reasons}, 503)
        return {"status": "ok"}

    @endpoint("GET", "/openapi.json", "Dokumen OpenAPI", roles=None, tags=("operasi",))
    def openapi(self, request, caller, data, params):
        return build_spec()

    @endpoint("GET", "/asyncapi.json", "Dokumen AsyncAPI peristiwa", roles=None, tags=("operasi",))
    def asyncapi_document(self, request, caller, data, params):
        return asyncapi.document(API_VERSION)

    @endpoint(
        "GET",
        "/docs/events",
        "Penampil dokumen peristiwa",
        roles=None,
        tags=("operasi",),
        produces=("text/html",),
    )
    def events_docs(self, request, caller, data, params):
        return Response(eventdocs.render(asyncapi.document(API_VERSION)), mimetype="text/html")

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
