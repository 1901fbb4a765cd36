"""The HTTP edge: one decorator gives every endpoint authentication, role checks, body
and query validation, one error table, metrics and an entry in the OpenAPI document."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

import eventlet
from marshmallow import Schema
from marshmallow import ValidationError as MarshmallowValidationError
from nameko.exceptions import UnknownService
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter, Rule
from werkzeug.wrappers import Request, Response

from bersinar import attachments
from bersinar.context import clean_correlation_id, current_correlation_id, set_correlation_id
from bersinar.entrypoints import (
    BROKER_CONNECTION_ERRORS,
    RemoteDomainError,
    is_infrastructure_error,
)
from bersinar.errors import DomainError, NotFound, ValidationFailed
from bersinar.metrics import HTTP_DURATION, HTTP_REQUESTS
from gateway import idempotency
from gateway.exceptions import (
    BadRequest,
    BodyTooDeep,
    PayloadTooLarge,
    RoleForbidden,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedMediaType,
)
from gateway.fhir.search import operation_outcome
from gateway.schemas import PATH_PARAMETERS

log = logging.getLogger(__name__)

PROBLEM_TYPE = "https://bersinar.bnn.go.id/problems/"
RAW_JSON_KEY = "bersinar.json"
VALIDATED_KEY = "bersinar.validated"
_URL_ARG = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")


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
    # False: the body may be left out (a note on a transition, a review comment)
    body_required: bool = True
    # the OpenAPI operationId: the method's name
    operation_id: str = ""
    # what a created resource answers, for OpenAPI links: {path argument: JSON pointer}
    creates: dict[str, str] = field(default_factory=dict)
    # the codes a 422 may carry for rules on the data's state that no schema can state
    # (a partner that is not eligible, a report that does not add up): {code: the rules}
    rules: dict[str, str] = field(default_factory=dict)
    # a body that passes every check, for people and for the fuzzer's examples phase
    example: dict[str, Any] | None = None
    # the content types of a file sent as the body (an attachment), read by the route
    uploads: tuple[str, ...] = ()
    # a GET whose answer carries an ETag and answers 304 to a matching If-None-Match
    conditional: bool = False
    # the service that reads the body through the same contract at its own edge: the
    # gateway then passes the body on as sent and does not validate it a second time
    validated_by: str | None = None

    @property
    def path_arguments(self) -> list[str]:
        return _URL_ARG.findall(self.path)


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


class _PartnerId(BaseConverter):
    """A partner id is never ``match``: /api/v1/partners/match is a route of its own,
    and an id spelt so would also make the router offer that route a partner's methods
    (its Allow header)."""

    regex = r"(?!match(?![^/]))[^/]+"


class _Period(BaseConverter):
    """A period never ends in ``.pdf``: /api/v1/reports/<partner_id>/<period>.pdf is a
    route of its own, and a method it does not serve answers 405 there rather than
    reaching the report's other routes with a period that is no month (422)."""

    regex = r"[^/]+(?<!\.pdf)"


class _Rule(Rule):
    def get_converter(self, variable_name, converter_name, args, kwargs):
        if variable_name == "partner_id":
            return _PartnerId(self.map)
        if variable_name == "period":
            return _Period(self.map)
        return super().get_converter(variable_name, converter_name, args, kwargs)


class _WsgiApp(WsgiApp):
    """nameko's, with what the router itself answers (no such path, a method the path
    does not serve) in problem+json under the API; the console keeps its pages."""

    def __call__(self, environ, start_response):
        request = Request(environ, shallow=True)
        adapter = self.url_map.bind_to_environ(environ)
        try:
            provider, values = adapter.match()
            request.path_values = values
            reply = provider.handle_request(request)
        except HTTPException as exc:
            reply = exc
            if exc.code in (404, 405) and not request.path.startswith("/console"):
                set_correlation_id(clean_correlation_id(request.headers.get("X-Correlation-ID")))
                reply = _routing_problem(exc, fhir=request.path.startswith("/fhir/"))
                reply.headers["X-Correlation-ID"] = current_correlation_id() or ""
        return reply(environ, start_response)


def _routing_problem(exc: HTTPException, fhir: bool = False) -> Response:
    """The router's refusal, in problem+json or, under /fhir, as an OperationOutcome."""
    if exc.code == 405:
        answer = (
            405,
            "METHOD_NOT_ALLOWED",
            "Metode tidak didukung",
            "Alamat ini tidak melayani metode tersebut; lihat header Allow.",
        )
    else:
        answer = (404, "NOT_FOUND", "Data tidak ditemukan", "Alamat ini tidak dikenal.")
    if fhir:
        reply = Response(
            json.dumps(operation_outcome(*answer), ensure_ascii=False),
            status=answer[0],
            mimetype="application/fhir+json",
        )
    else:
        reply = problem(*answer)
    if exc.code == 405:
        reply.headers["Allow"] = ", ".join(getattr(exc, "valid_methods", None) or ())
    return reply


class _WebServer(WebServer):
    def get_wsgi_app(self):
        return _WsgiApp(self)


class _HttpHandler(HttpRequestHandler):
    """Every HTTP entrypoint of the gateway (API and console) on one server."""

    server = _WebServer()

    def get_url_rule(self):
        return _Rule(self.url, methods=self.method.split(","))


http = _HttpHandler.decorator


@dataclass(frozen=True)
class ErrorAnswer:
    """What the error table decides for an exception, before it is written in a shape
    (problem+json here, an OperationOutcome on /fhir)."""

    status: int
    code: str
    title: str
    detail: str
    errors: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


def answer_for_error(exc: BaseException) -> ErrorAnswer:
    """The one error table: matched by isinstance, most specific first."""
    if isinstance(exc, MarshmallowValidationError):
        exc = ValidationFailed(errors=exc.normalized_messages())
    if isinstance(exc, DomainError | RemoteDomainError):
        return ErrorAnswer(
            exc.status,
            exc.code,
            exc.title,
            exc.detail,
            exc.errors or None,
            dict(getattr(exc, "headers", {})),
        )
    if isinstance(exc, UnknownService | eventlet.Timeout) or is_infrastructure_error(exc):
        # the gateway's own database (keys, idempotency records) out of reach is an
        # outage like a service that does not answer, not a fault of the request
        error = ServiceUnavailable()
        return ErrorAnswer(error.status, error.code, error.title, error.detail)
    log.error("unexpected error answering a request: %s", type(exc).__name__, exc_info=exc)
    return ErrorAnswer(
        500, "INTERNAL_ERROR", "Kesalahan internal", "Terjadi kesalahan pada server; sudah dicatat."
    )


def response_for_error(exc: BaseException) -> Response:
    answer = answer_for_error(exc)
    reply = problem(answer.status, answer.code, answer.title, answer.detail, answer.errors)
    reply.headers.update(answer.headers)
    return reply


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(payload, ensure_ascii=False), status=status, mimetype="application/json"
    )


def with_etag(request, reply: Response) -> Response:
    """An ETag on a 200 answer (a digest of its body, so of what this caller may see: a
    partner's contacts are in it only for staff and the partner itself), and 304 with no
    body when If-None-Match names it (weak comparison, RFC 9110 13.1.2). ``Vary:
    Authorization`` and ``private``: one caller's answer is not another's."""
    if reply.status_code != 200:
        return reply
    tag = hashlib.sha256(reply.get_data()).hexdigest()[:32]
    if request.if_none_match.contains_weak(tag):
        reply = Response(status=304)
    reply.set_etag(tag)
    reply.headers["Cache-Control"] = "private, no-cache"
    reply.headers["Vary"] = "Authorization"
    return reply


def read_json(request, max_bytes: int, accepted: tuple[str, ...] = ("application/json",)) -> Any:
    length = request.content_length
    if length is not None and length > max_bytes:
        raise PayloadTooLarge(f"Batas isi permintaan {max_bytes} bita.")
    raw = request.get_data(cache=True)
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"Batas isi permintaan {max_bytes} bita.")
    if not raw:
        raise BadRequest("Isi permintaan kosong; kirim JSON.")
    if request.mimetype not in accepted:
        raise UnsupportedMediaType(
            f"Kirim isi permintaan sebagai Content-Type: {' atau '.join(accepted)}."
        )
    try:
        parsed = json.loads(raw, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise BodyTooDeep(_TOO_DEEP) from None
    except (UnicodeDecodeError, ValueError) as exc:
        # a number of more than 4,300 digits is also a ValueError (Python's own limit)
        raise BadRequest("Isi permintaan bukan JSON yang sah.") from exc
    if json_depth(parsed) > MAX_JSON_DEPTH:
        raise BodyTooDeep(_TOO_DEEP)
    request.environ[RAW_JSON_KEY] = parsed
    return parsed


# no body of the API nests deeper than four levels; far deeper ones would only be walked
# by every layer that reads them (validation, the RPC's serializer), each recursing
MAX_JSON_DEPTH = 32
_TOO_DEEP = f"Isi permintaan bersarang lebih dari {MAX_JSON_DEPTH} tingkat."


def json_depth(value: Any) -> int:
    """How deep objects and arrays nest in a parsed body (a scalar is 0), walked without
    recursion so that no depth can exhaust the stack."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            inner = item.values()
        elif isinstance(item, list):
            inner = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_JSON_DEPTH:
            return deepest
        stack.extend((each, depth + 1) for each in inner)
    return deepest


def _no_constant(name: str) -> Any:
    # NaN and Infinity are not JSON (RFC 8259) though Python's reader takes them
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise ValueError("a number too large for a double")
    return number


def read_upload(request, max_bytes: int) -> tuple[bytes, str]:
    """A file sent as the body, and the content type it was declared as: refused before
    any service is asked if it is too large, empty, or not a PDF, JPEG or PNG by its
    content (bersinar.attachments; the service that keeps it checks again)."""
    length = request.content_length
    if length is not None and length > max_bytes:
        raise PayloadTooLarge(f"Berkas paling besar {max_bytes // 1024} KiB.")
    content = request.get_data(cache=True)
    if not content:
        raise BadRequest("Kirim berkas sebagai isi permintaan.")
    attachments.check(content, request.mimetype, max_bytes)
    return content, request.mimetype


def has_body(request) -> bool:
    if request.content_length is not None:
        return request.content_length > 0
    return bool(request.get_data(cache=True))


def check_path(url_args: dict[str, str]) -> None:
    """Each path segment has the shape OpenAPI states, before anything is asked."""
    for name, value in url_args.items():
        parameter = PATH_PARAMETERS[name]
        try:
            parameter.field.deserialize(value)
        except MarshmallowValidationError as exc:
            if parameter.not_found:
                raise NotFound("Data tidak ditemukan.") from None
            detail = " ".join(str(message) for message in exc.messages)
            raise ValidationFailed(detail, errors={name: exc.messages}) from None


# NUL, and the halves of a surrogate pair standing alone (JSON's "\ud800" escape reads as
# one): text no database here can store and no person can have typed
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def refuse_unstorable(value: Any, where: str) -> None:
    """Text that PostgreSQL cannot store is bad input: refused at the door, wherever it
    hides (a key, a value, a path segment, a query)."""
    if isinstance(value, str):
        if _UNSTORABLE.search(value):
            raise ValidationFailed(
                "Teks tidak boleh memuat karakter NUL atau surrogate yang berdiri sendiri.",
                errors={where: ["Karakter ini tidak diperbolehkan."]},
            )
    elif isinstance(value, dict):
        for key, inner in value.items():
            refuse_unstorable(key, where)
            refuse_unstorable(inner, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for inner in value:
            refuse_unstorable(inner, where)


def page_of(items: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    """One page of a list the service returned whole and in a stable order (the
    collections paged here are bounded: partners, keys, a partner's agreements and
    activities, a month's reports, subscriptions). ``cursor`` is opaque to the caller:
    how many items came before this page, so every cursor of its shape is a page (past
    the end, an empty one)."""
    limit, start = params.get("limit") or 50, int(params.get("cursor") or 0)
    page = items[start : start + limit]
    more = start + limit < len(items)
    return {"items": page, "next_cursor": str(start + limit) if more else None}


def without_page(params: dict[str, Any]) -> dict[str, Any]:
    """The filters of a query, for a service that knows nothing of pages."""
    return {k: v for k, v in params.items() if k not in ("limit", "cursor")}


# the rule of a list paged by keyset in its service (bersinar.db.page_newest_first)
KEYSET_PAGE = {
    "UNKNOWN_CURSOR": "kursor yang tidak menunjuk butir daftar ini (dari daftar atau filter "
    "lain, atau butir yang sudah tidak ada)"
}


def validated_json(request) -> Any:
    """The body as the gateway validated it (defaults filled in, dates as text), sent to
    the service that owns the data, which reads it through the same contract at its own
    edge (its RPC is not the gateway's alone); on a route ``validated_by`` that service,
    the body as sent, which that service alone validates."""
    return request.environ.get(VALIDATED_KEY)


def admit(service, request, roles: tuple[str, ...] | None):
    """Who calls (``None`` on an open endpoint): the API key, its rate limit, its role."""
    if roles is None:
        return None
    caller = service.authenticate(request)
    service.rate_limiter.check(caller.key_id)
    if caller.role not in roles:
        raise RoleForbidden("Peran Anda tidak boleh memakai layanan ini.")
    return caller


def log_answer(method: str, path: str, request, reply: Response, started: float) -> None:
    """The access log line and the request metrics (by route, not by URL)."""
    reply.headers["X-Correlation-ID"] = current_correlation_id() or ""
    elapsed = time.perf_counter() - started
    log.info(
        "%s %s %s %.1fms",
        method,
        request.path,
        reply.status_code,
        elapsed * 1000,
        extra={
            "method": method,
            "route": path,
            "status": reply.status_code,
            "duration_ms": round(elapsed * 1000, 1),
        },
    )
    HTTP_REQUESTS.labels("gateway", path, method, str(reply.status_code)).inc()
    HTTP_DURATION.labels("gateway", path, method).observe(elapsed)


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
    body_required: bool = True,
    creates: dict[str, str] | None = None,
    rules: dict[str, str] | None = None,
    example: dict[str, Any] | None = None,
    uploads: tuple[str, ...] = (),
    conditional: bool = False,
    validated_by: str | None = None,
):
    """``roles=None`` is an open endpoint (health, the API documents). The decorated
    method receives ``(request, caller, data, params, **url_args)`` and returns a
    Response or a JSON-able value (answered with ``status``). ``body_required=False``:
    a request without a body gets ``data == {}``. ``creates`` names, for OpenAPI links,
    the path argument a created resource is reached by and where its value is in the
    answer (``{"partner_id": "/id"}``). ``rules``: the codes besides VALIDATION_ERROR a
    422 may carry, each with the rules it stands for (stated in OpenAPI). ``example``: a
    body that passes every check. ``conditional``: the answer carries an ETag and a
    matching If-None-Match answers 304 (see ``with_etag``). ``validated_by``: the
    service that validates the body at its own edge with the same ``body`` contract (and
    so the same 422 answers): the route gets the body as sent (``data`` and
    ``validated_json``), which only that service validates; an empty body (``null``,
    ``{}``, ``[]``...) is still refused here."""
    route = Route(
        method,
        path,
        summary,
        roles,
        body,
        query,
        response,
        status,
        tags,
        produces,
        body_required=body_required,
        creates=creates or {},
        rules=rules or {},
        example=example,
        uploads=uploads,
        conditional=conditional,
        validated_by=validated_by,
    )
    for name in route.path_arguments:
        if name not in PATH_PARAMETERS:
            raise LookupError(f"{path}: path argument {name} has no shape in PATH_PARAMETERS")
    ROUTES.append(route)

    def decorate(fn):
        route.operation_id = fn.__name__

        @functools.wraps(fn)
        def wrapper(self, request, **url_args):
            started = time.perf_counter()
            claimed = None
            try:
                caller = admit(self, request, roles)
                refuse_unstorable(url_args, "path")
                check_path(url_args)
                refuse_unstorable(request.args.to_dict(flat=False), "query")
                sent = body is not None and (body_required or has_body(request))
                raw = read_json(request, self.max_body_bytes) if sent else None
                refuse_unstorable(raw, "body")
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
                    if sent and raw and route.validated_by is not None:
                        # one validation: the service's own, through the same contract
                        data = request.environ[VALIDATED_KEY] = raw
                    else:
                        data = body().load(raw) if sent else ({} if body is not None else None)
                        if data is not None:
                            # what the service is sent: the validated body, in JSON's terms
                            request.environ[VALIDATED_KEY] = body().dump(data)
                    params = query().load(request.args.to_dict()) if query is not None else {}
                    result = fn(self, request, caller, data, params, **url_args)
                    reply = (
                        result if isinstance(result, Response) else json_response(result, status)
                    )
                    if route.conditional:
                        reply = with_etag(request, reply)
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
            log_answer(method, path, request, reply, started)
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
