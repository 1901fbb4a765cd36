"""``/openapi.json``, generated from the same marshmallow schemas that validate."""

from __future__ import annotations

import re
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from gateway.http import ROUTES
from gateway.schemas import Problem

_URL_ARG = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")
_ERRORS = {
    "400": "Permintaan tidak dapat dibaca",
    "401": "Kunci API tidak ada atau tidak berlaku",
    "403": "Peran tidak berwenang",
    "413": "Isi permintaan terlalu besar",
    "422": "Data tidak valid",
    "503": "Layanan tidak menjawab",
}


def build_spec() -> dict[str, Any]:
    spec = APISpec(
        title="Bersinar API",
        version="1",
        openapi_version="3.0.3",
        info={"description": "Jaringan lembaga rehabilitasi mitra BNN Provinsi Bengkulu."},
        plugins=[MarshmallowPlugin()],
    )
    spec.components.security_scheme("apiKey", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Problem", schema=Problem)
    problem_ref = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        path = _URL_ARG.sub(r"{\1}", route.path)
        operation: dict[str, Any] = {
            "summary": route.summary,
            "tags": list(route.tags),
            "responses": {},
        }
        names = _URL_ARG.findall(route.path)
        parameters: list[Any] = [
            {"in": "path", "name": name, "required": True, "schema": {"type": "string"}}
            for name in names
        ]
        if route.query is not None:
            parameters.append({"in": "query", "schema": route.query})
        if parameters:
            operation["parameters"] = parameters
        if route.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": route.body}},
            }
        success: dict[str, Any] = {"description": "Berhasil"}
        if route.response is not None:
            success["content"] = {"application/json": {"schema": route.response}}
        operation["responses"][str(route.status)] = success
        if route.roles is not None:
            operation["security"] = [{"apiKey": []}]
        for status, text in _ERRORS.items():
            if status in ("401", "403") and route.roles is None:
                continue
            if status in ("400", "413") and route.body is None:
                continue
            operation["responses"][status] = {"description": text, "content": problem_ref}
        paths.setdefault(path, {})[route.method.lower()] = operation
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()
