"""The FHIR interface's HTTP edge: a sibling of gateway.http's ``endpoint`` that shares
its authentication, rate limits, role checks, error table and metrics, and answers in
application/fhir+json, errors as OperationOutcome. Every route registers what it serves
(FHIR_ROUTES), of which the CapabilityStatement is made."""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from werkzeug.wrappers import Response

from bersinar.errors import NotFound
from gateway.fhir.search import ID_PATTERN, operation_outcome, read_search
from gateway.http import admit, answer_for_error, http, log_answer, read_json, refuse_unstorable

FHIR_JSON = "application/fhir+json"
PREFIX = "/fhir/R4"


@dataclass(frozen=True)
class SearchParameter:
    name: str
    type: str  # FHIR's search parameter types: token, date, string, reference
    documentation: str

    @property
    def accepted(self) -> tuple[str, ...]:
        """The names it is given by, with the modifiers a string parameter takes."""
        if self.type == "string":
            return (self.name, f"{self.name}:contains", f"{self.name}:exact")
        return (self.name,)


@dataclass
class FhirRoute:
    path: str
    roles: tuple[str, ...] | None
    resource_type: str | None
    # read, vread, history-instance, search-type; transaction (system level, no
    # resource type); None: the CapabilityStatement itself
    interaction: str | None
    params: tuple[SearchParameter, ...] = field(default_factory=tuple)
    method: str = "GET"
    operation_id: str = ""
    # a system-level operation ($export): (name, its OperationDefinition's canonical URL)
    operation: tuple[str, str] | None = None


FHIR_ROUTES: list[FhirRoute] = []


def fhir_response(payload: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(payload, ensure_ascii=False), status=status, mimetype=FHIR_JSON)


def outcome_for_error(exc: BaseException) -> Response:
    """gateway.http's one error table, written as an OperationOutcome."""
    answer = answer_for_error(exc)
    body = operation_outcome(answer.status, answer.code, answer.title, answer.detail, answer.errors)
    reply = fhir_response(body, answer.status)
    reply.headers.update(answer.headers)
    return reply


def read_body(service, request) -> Any:
    """A FHIR resource sent as JSON, within the API's size limit, with no NUL anywhere."""
    body = read_json(request, service.max_body_bytes, (FHIR_JSON, "application/json"))
    refuse_unstorable(body, "body")
    return body


def base_url(request) -> str:
    return request.url_root.rstrip("/") + PREFIX


def fhir_endpoint(
    path: str,
    roles: tuple[str, ...] | None,
    resource_type: str | None = None,
    interaction: str | None = None,
    params: tuple[SearchParameter, ...] = (),
    method: str = "GET",
    operation: tuple[str, str] | None = None,
):
    """A route under /fhir/R4. The decorated method receives ``(request, caller, search,
    **url_args)`` (``search``: gateway.fhir.search.Search of the query, every parameter
    checked against ``params``) and returns a FHIR resource as a dict, or a Response of
    its own (Bulk Data: 202s, NDJSON files). A POST reads its body itself
    (``read_body``)."""
    route = FhirRoute(
        PREFIX + path, roles, resource_type, interaction, params, method, operation=operation
    )
    FHIR_ROUTES.append(route)
    known = [name for p in params for name in p.accepted]

    def decorate(fn):
        route.operation_id = fn.__name__

        @functools.wraps(fn)
        def wrapper(self, request, **url_args):
            started = time.perf_counter()
            try:
                caller = admit(self, request, roles)
                refuse_unstorable(url_args, "path")
                refuse_unstorable(request.args.to_dict(flat=False), "query")
                if any(not ID_PATTERN.fullmatch(v) for v in url_args.values()):
                    raise NotFound("Sumber daya tidak ditemukan.")
                search = read_search(request.args.to_dict(flat=False), known)
                answer = fn(self, request, caller, search, **url_args)
                reply = answer if isinstance(answer, Response) else fhir_response(answer)
            except Exception as exc:  # the error table decides; nothing escapes as a 500 page
                reply = outcome_for_error(exc)
            log_answer(method, route.path, request, reply, started)
            return reply

        return http(method, route.path)(wrapper)

    return decorate
