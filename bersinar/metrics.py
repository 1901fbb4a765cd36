"""Prometheus metrics shared by every component.

Metric objects live at module level in the default registry (one per process), labelled
by service, so several containers in one test process do not register twice. No label
ever carries client identity: labels are service, method, event type, outcome, status.

Conventions (https://prometheus.io/docs/practices/naming/): base units (``_seconds``),
one family per fact, and no ``_created`` series: prometheus_client would add one to every
counter and histogram, a second series per label set that nothing here reads. Importing
this module turns them off for the process, before any component's metrics exist.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from wsgiref.simple_server import WSGIRequestHandler, make_server

from nameko.events import EventHandler
from nameko.extensions import DependencyProvider
from nameko.rpc import Rpc
from nameko.web.handlers import HttpRequestHandler
from prometheus_client import (
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    make_wsgi_app,
)
from prometheus_client.exposition import ThreadingWSGIServer

log = logging.getLogger(__name__)

disable_created_metrics()

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

RPC_REQUESTS = Counter(
    "bersinar_rpc_requests_total", "RPC calls handled", ["service", "method", "outcome"]
)
RPC_DURATION = Histogram(
    "bersinar_rpc_duration_seconds",
    "Time to handle an RPC call",
    ["service", "method"],
    buckets=LATENCY_BUCKETS,
)
HTTP_REQUESTS = Counter(
    "bersinar_http_requests_total",
    "HTTP requests answered",
    ["service", "route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "bersinar_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["service", "route", "method"],
    buckets=LATENCY_BUCKETS,
)
EVENTS_HANDLED = Counter(
    "bersinar_events_handled_total",
    "Events taken by a consumer, by outcome (ok, duplicate, failed)",
    ["service", "consumer", "event_type", "outcome"],
)
EVENT_DURATION = Histogram(
    "bersinar_event_handle_duration_seconds",
    "Time to handle one event (a batch's time shared among its events)",
    ["service", "consumer", "event_type"],
    buckets=LATENCY_BUCKETS,
)
EVENTS_RETRIED = Counter(
    "bersinar_events_retried_total",
    "Failed events scheduled for another attempt",
    ["service", "consumer", "event_type"],
)
EVENTS_PARKED = Counter(
    "bersinar_events_parked_total",
    "Events moved to a parking queue after their last attempt",
    ["service", "consumer", "event_type"],
)
OUTBOX_BACKLOG = Gauge("bersinar_outbox_backlog", "Outbox rows not yet published", ["service"])
OUTBOX_OLDEST_AGE = Gauge(
    "bersinar_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row", ["service"]
)
OUTBOX_LAST_CHECK = Gauge(
    "bersinar_outbox_last_check_timestamp_seconds",
    "Unix time the relay last read its outbox's backlog (its start, before the first read)",
    ["service"],
)
OUTBOX_PUBLISHED = Counter(
    "bersinar_outbox_published_total",
    "Outbox rows published and confirmed by the broker",
    ["service", "event_type"],
)
OUTBOX_UNROUTABLE = Counter(
    "bersinar_outbox_unroutable_total",
    "Outbox rows the broker returned because no queue was bound; kept and retried",
    ["service", "event_type"],
)
OUTBOX_PUBLISH_FAILURES = Counter(
    "bersinar_outbox_publish_failures_total",
    "Outbox batches that failed to publish (broker down, nack, timeout)",
    ["service"],
)
BUSINESS_EVENTS = Counter(
    "bersinar_domain_events_total",
    "Domain events committed to the outbox",
    ["service", "event_type"],
)


_replaced_lock = threading.Lock()
# the label sets each gauge was last given, by id(): the gauges live as long as the process
_replaced: dict[int, set[tuple[str, ...]]] = {}


def replace_samples(gauge: Gauge, values: dict[tuple[str, ...], float]) -> None:
    """Set a labelled gauge to exactly ``values``: a label set it had from the call
    before and not now (a partner that is gone, a status nothing has any more) is
    removed, not left showing its last value."""
    with _replaced_lock:
        for labels, value in values.items():
            gauge.labels(*labels).set(value)
        for labels in _replaced.get(id(gauge), set()) - set(values):
            gauge.remove(*labels)
        _replaced[id(gauge)] = set(values)


_server_lock = threading.Lock()
_server_started: set[int] = set()

# what a readiness check answers: the reasons the process cannot serve (empty: it can)
Readiness = Callable[[], dict[str, str]]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        """Scrapes and probes every few seconds: not worth a log line each."""


def metrics_app(ready: Readiness | None = None):
    """Prometheus text on every path, as prometheus_client serves it; with ``ready``,
    ``/ready`` answers 200 or 503 with the reasons as JSON (the readiness probe of
    compose and Kubernetes)."""
    metrics = make_wsgi_app()

    def app(environ, start_response):
        if ready is None or environ.get("PATH_INFO") != "/ready":
            return metrics(environ, start_response)
        try:
            reasons = ready()
        except Exception as exc:  # a check that fails says so: not ready
            reasons = {"check": type(exc).__name__}
        body = json.dumps(
            {"status": "unavailable", "reasons": reasons} if reasons else {"status": "ok"}
        )
        status = "503 Service Unavailable" if reasons else "200 OK"
        start_response(status, [("Content-Type", "application/json")])
        return [body.encode()]

    return app


def serve_metrics(port: int, addr: str = "127.0.0.1", ready: Readiness | None = None) -> None:
    """Start the process's /metrics listener once per port (0 turns it off), in a thread
    of its own: it answers while the process lives, however busy its workers are."""
    if not port:
        return
    with _server_lock:
        if port in _server_started:
            return
        server = make_server(addr, port, metrics_app(ready), ThreadingWSGIServer, _QuietHandler)
        threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
        _server_started.add(port)
        log.info("metrics served on %s:%s", addr, port)


def container_readiness(container) -> Readiness:
    """A nameko service can serve when what it needs itself works, never another
    service: each extension that can tell (``readiness()``, the problems it finds: the
    broker consumers and the database of bersinar.entrypoints) is asked."""

    def reasons() -> dict[str, str]:
        found: dict[str, str] = {}
        for extension in container.extensions:
            check = getattr(extension, "readiness", None)
            if callable(check):
                found.update(check())
        return found

    return reasons


class MetricsListener(DependencyProvider):
    """The process's /metrics listener on ``METRICS_PORT`` (``METRICS_ADDRESS``), a port
    of its own: never the API's, so scraping needs no key and the API can face the
    world while metrics stay on the internal network. ``/ready`` there tells whether
    this process can serve (its broker consumers, its database)."""

    def setup(self):
        serve_metrics(
            int(self.container.config.get("METRICS_PORT") or 0),
            self.container.config.get("METRICS_ADDRESS", "127.0.0.1"),
            container_readiness(self.container),
        )


class EntrypointMetrics(MetricsListener):
    """RED metrics for every RPC and event entrypoint of a service, and the process's
    metrics listener."""

    def setup(self):
        super().setup()
        self._started: dict[object, float] = {}

    def worker_setup(self, worker_ctx):
        self._started[worker_ctx] = time.perf_counter()

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        started = self._started.pop(worker_ctx, None)
        if started is None:
            return
        elapsed = time.perf_counter() - started
        service = self.container.service_name
        entrypoint = worker_ctx.entrypoint
        method = entrypoint.method_name
        if isinstance(entrypoint, Rpc):
            outcome = "ok" if exc_info is None else type(exc_info[1]).__name__
            RPC_REQUESTS.labels(service, method, outcome).inc()
            RPC_DURATION.labels(service, method).observe(elapsed)
        elif isinstance(entrypoint, EventHandler):
            # a worker handles a batch of events (a list); the result counts outcomes
            event_type = entrypoint.event_type
            batch = worker_ctx.args[0] if worker_ctx.args else []
            size = len(batch) if isinstance(batch, list) else 1
            if exc_info is not None:
                # a failed batch of several is handled again event by event: counted then
                outcomes = {"failed": 1} if size == 1 else {}
            elif isinstance(result, dict):
                outcomes = result
            else:
                outcomes = {"ok": size}
            for outcome, count in outcomes.items():
                if count:
                    EVENTS_HANDLED.labels(service, method, event_type, outcome).inc(count)
            EVENT_DURATION.labels(service, method, event_type).observe(elapsed / max(1, size))
        elif isinstance(entrypoint, HttpRequestHandler):
            HTTP_DURATION.labels(service, entrypoint.url, entrypoint.method).observe(elapsed)
