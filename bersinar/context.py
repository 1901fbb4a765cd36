"""The correlation id of the work in hand: it comes in with an HTTP request (or is made
there), travels in nameko's context data through RPC, in the envelope through events,
and is written into every log line."""

from __future__ import annotations

import contextlib
import re
import threading
import uuid
from collections.abc import Iterator

from nameko.extensions import DependencyProvider

# eventlet.monkey_patch() makes this greenthread-local: one value per nameko worker.
_local = threading.local()
_VALID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")


def current_correlation_id() -> str | None:
    return getattr(_local, "correlation_id", None)


def set_correlation_id(value: str | None) -> None:
    _local.correlation_id = value


@contextlib.contextmanager
def correlated(value: str | None) -> Iterator[None]:
    """Work done outside a worker on behalf of an earlier one (a delivery sent by the
    timer for an event): its log lines and the events it emits carry that id."""
    previous = current_correlation_id()
    set_correlation_id(value or previous)
    try:
        yield
    finally:
        set_correlation_id(previous)


def clean_correlation_id(value: str | None) -> str:
    """An id offered by a caller is kept only if it is short and plain (it goes into logs)."""
    if value and _VALID.match(value):
        return value
    return str(uuid.uuid4())


class CorrelationId(DependencyProvider):
    """Binds the correlation id of each worker: from the incoming message's context data,
    from an event's envelope, from the ``X-Correlation-ID`` header of an HTTP request,
    or a new one."""

    # nameko injects dependencies before worker_setup: bind the id here, first.
    def get_dependency(self, worker_ctx):
        cid = worker_ctx.context_data.get("correlation_id")
        if not cid and worker_ctx.args:
            first = worker_ctx.args[0]
            if isinstance(first, list) and first:  # a batch of events: its first
                first = first[0]
            if isinstance(first, dict):
                cid = first.get("correlation_id")
            elif hasattr(first, "headers"):
                cid = first.headers.get("X-Correlation-ID")
        cid = clean_correlation_id(cid)
        worker_ctx.data["correlation_id"] = cid  # context_data is a copy of data
        set_correlation_id(cid)
        return cid

    def worker_teardown(self, worker_ctx):
        set_correlation_id(None)
