"""The HTTP edge: one decorator gives every endpoint authentication, role checks, body
and query validation, one error table, metrics and an entry in the OpenAPI document."""

from __future__ import annotations

import functools
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import eventlet
from marshmallow import Schema
from marshmallow import ValidationError as MarshmallowValidationError
from nameko.exceptions import UnknownService
from nameko.web.handlers import http
from werkzeug.wrappers import Response

from bersinar.context import current_correlation_id
from bersinar.entrypoints import (
    BROKER_CONNECTION_ERRORS,
    RemoteDomainError,
    is_infrastructure_error,
)
from bersinar.errors import DomainError, ValidationFailed
from bersinar.metrics import HTTP_DURATION, HTTP_REQUESTS
from gateway import idempotency
from gateway.exceptions import (
    BadRequest,
    PayloadTooLarge,
    RoleForbidden,
    ServiceUnavailable,
    Unauthorized,
)

log = logging.getLogger(__name__)

PROBLEM_TYPE = "https://bersinar.bnn.go.id/problems/"
RAW_JSON_KEY = "bersinar.json"
VALIDATED_KEY = "bersinar.validated"


@dataclass
class Route:
    method: str
    path: str
    summary: str
    roles: tuple[str, ...] | None
    body: type[Schema] | None = None
    query: type[Schema] | None = None
    response: Any = None
    status: int = 200
    tags: tuple[str, ...] = field(default_factory=tuple)
    # content types of the success answer: JSON unless said (text, HTML, CSV)
    produces: tuple[str, ...] = ("application/json",)


ROUTES: list[Route] = []


def problem(
    status: int, code: str, title: str, detail: str, errors: dict[str, Any] | None = None
) -> Response:
    body = {
        "type": PROBLEM_TYPE + code.lower().replace("_", "-"),
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "correlation_id": current_correlation_id(),
    }
    if errors:
        body["errors"] = errors
    return Response(
        json.dumps(body, ensure_ascii=False), status=status, mimetype="application/problem+json"
    )


def response_for_error(exc: BaseException) -> Response:
    """The one error table: matched by isinstance, most specific first."""
    if isinstance(exc, MarshmallowValidationError):
        exc = ValidationFailed(errors=exc.normalized_messages())
    if isinstance(exc, DomainError | RemoteDomainError):
        reply = problem(exc.status, exc.code, exc.title, exc.detail, exc.errors or None)
        reply.headers.update(getattr(exc, "headers", {}))
        return reply
    if isinstance(exc, UnknownService | eventlet.Timeout) or is_infrastructure_error(exc):
        # the gateway's own database (keys, idempotency records) out of reach is an
        # outage like a service that does not answer, not a fault of the request
        error = ServiceUnavailable()
        return problem(error.status, error.code, error.title, error.detail)
    log.error("unexpected error answering a request: %s", type(exc).__name__, exc_info=exc)
    return problem(
        500, "INTERNAL_ERROR", "Kesalahan internal", "Terjadi kesalahan pada server; sudah dicatat."
    )


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(payload, ensure_ascii=False), status=status, mimetype="application/json"
    )


def read_json(request, max_bytes: int) -> Any:
    length = request.content_length
    if length is not None and length > max_bytes:
        raise PayloadTooLarge(f"Batas isi permintaan {max_bytes} bita.")
    raw = request.get_data(cache=True)
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"Batas isi permintaan {max_bytes} bita.")
    if not raw:
        raise BadRequest("Isi permintaan kosong; kirim JSON.")
    try:
        parsed = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest("Isi permintaan bukan JSON yang sah.") from exc
    request.environ[RAW_JSON_KEY] = parsed
    return parsed


def refuse_nul(value: Any, where: str) -> None:
    """A NUL character has no place in any text here, and PostgreSQL cannot store it:
    refuse it at the door as bad input, wherever it hides."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValidationFailed(
                "Teks tidak boleh memuat karakter NUL.",
                errors={where: ["Karakter NUL tidak diperbolehkan."]},
            )
    elif isinstance(value, dict):
        for key, inner in value.items():
            refuse_nul(key, where)
            refuse_nul(inner, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for inner in value:
            refuse_nul(inner, where)


def page_of(items: list[dict[str, Any]], params: dict[str, Any], key: str = "id") -> dict[str, Any]:
    """One page of a list the service returned whole and in a stable order (the
    collections paged here are bounded: partners, keys, a partner's agreements and
    activities, a month's reports, subscriptions). ``cursor`` is the last id seen."""
    limit, cursor = params.get("limit") or 50, params.get("cursor")
    start = 0
    if cursor:
        ids = [str(item.get(key)) for item in items]
        if cursor not in ids:
            raise ValidationFailed(
                "Kursor tidak dikenal; mulai lagi dari halaman pertama.",
                errors={"cursor": ["Tidak dikenal."]},
            )
        start = ids.index(cursor) + 1
    page = items[start : start + limit]
    more = start + limit < len(items)
    return {"items": page, "next_cursor": str(page[-1][key]) if more and page else None}


def without_page(params: dict[str, Any]) -> dict[str, Any]:
    """The filters of a query, for a service that knows nothing of pages."""
    return {k: v for k, v in params.items() if k not in ("limit", "cursor")}


def validated_json(request) -> Any:
    """The body as the gateway validated it (defaults filled in, dates as text), sent to
    the service that owns the data, which reads it through the same contract at its own
    edge (its RPC is not the gateway's alone)."""
    return request.environ.get(VALIDATED_KEY)


def endpoint(
    method: str,
    path: str,
    summary: str,
    roles: tuple[str, ...] | None,
    body: type[Schema] | None = None,
    query: type[Schema] | None = None,
    response: Any = None,
    status: int = 200,
    tags: tuple[str, ...] = (),
    produces: tuple[str, ...] = ("application/json",),
):
    """``roles=None`` is an open endpoint (health, metrics, the spec). The decorated
    method receives ``(request, caller, data, params, **url_args)`` and returns a
    Response or a JSON-able value (answered with ``status``)."""
    route = Route(method, path, summary, roles, body, query, response, status, tags, produces)
    ROUTES.append(route)

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(self, request, **url_args):
            started = time.perf_counter()
            claimed = None
            try:
                caller = self.authenticate(request) if roles is not None else None
                if caller is not None:
                    self.rate_limiter.check(caller.key_id)
                    if caller.role not in roles:
                        raise RoleForbidden("Peran Anda tidak boleh memakai layanan ini.")
                refuse_nul(url_args, "path")
                refuse_nul(request.args.to_dict(flat=False), "query")
                raw = read_json(request, self.max_body_bytes) if body is not None else None
                refuse_nul(raw, "body")
                replay = None
                if (
                    method == "POST"
                    and caller is not None
                    and request.headers.get(idempotency.HEADER) is not None
                ):
                    key = (caller.key_id, request.headers[idempotency.HEADER])
                    digest = idempotency.request_hash(
                        method, request.full_path, request.get_data(cache=True)
                    )
                    with self.uow() as uow:
                        replay = idempotency.begin(
                            uow,
                            *key,
                            method,
                            request.path,
                            digest,
                            stale_after=3 * float(self.config.get("RPC_TIMEOUT", 5)),
                        )
                    # only a claim this request holds gets its answer recorded: a refusal
                    # ("in progress", another body) must not become the key's answer
                    claimed = key if replay is None else None
                if replay is not None:
                    reply = Response(
                        replay.body,
                        status=replay.status,
                        mimetype=(
                            "application/problem+json"
                            if replay.status >= 400
                            else "application/json"
                        ),
                    )
                    reply.headers["Idempotent-Replayed"] = "true"
                else:
                    data = body().load(raw) if body is not None else None
                    if data is not None:
                        # what the service is sent: the validated body, in JSON's terms
                        request.environ[VALIDATED_KEY] = body().dump(data)
                    params = query().load(request.args.to_dict()) if query is not None else {}
                    result = fn(self, request, caller, data, params, **url_args)
                    reply = (
                        result if isinstance(result, Response) else json_response(result, status)
                    )
            except Exception as exc:  # the error table decides; nothing escapes as a 500 page
                reply = response_for_error(exc)
            if claimed is not None:
                try:
                    with self.uow() as uow:
                        idempotency.finish(
                            uow, *claimed, reply.status_code, reply.get_data(as_text=True)
                        )
                except Exception:
                    log.exception("could not record the answer to an Idempotency-Key")
            reply.headers["X-Correlation-ID"] = current_correlation_id() or ""
            elapsed = time.perf_counter() - started
            log.info("%s %s %s %.1fms", method, request.path, reply.status_code, elapsed * 1000)
            HTTP_REQUESTS.labels("gateway", path, method, str(reply.status_code)).inc()
            HTTP_DURATION.labels("gateway", path, method).observe(elapsed)
            return reply

        return http(method, path)(wrapper)

    return decorate


def call(proxy, service: str, method: str, *args, timeout: float, **kwargs):
    """An RPC call that answers 503 naming the service instead of hanging."""
    try:
        with eventlet.Timeout(timeout):
            return getattr(proxy, method)(*args, **kwargs)
    except eventlet.Timeout as exc:
        raise ServiceUnavailable(
            f"Layanan {service} tidak menjawab dalam {timeout:g} detik.",
            errors={"service": [service]},
        ) from exc
    except UnknownService as exc:
        raise ServiceUnavailable(
            f"Layanan {service} tidak tersedia.", errors={"service": [service]}
        ) from exc
    except BROKER_CONNECTION_ERRORS as exc:
        # the broker is restarting or unreachable: the call may or may not have left
        raise ServiceUnavailable(
            f"Layanan {service} tidak dapat dihubungi (perantara pesan terputus).",
            errors={"service": [service]},
        ) from exc


def require(condition: bool, message: str = "Peran Anda tidak boleh memakai layanan ini.") -> None:
    if not condition:
        raise RoleForbidden(message)


__all__ = [
    "ROUTES",
    "Route",
    "Unauthorized",
    "call",
    "endpoint",
    "json_response",
    "problem",
    "require",
]
