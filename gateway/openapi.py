"""``/openapi.json``, generated from the same marshmallow schemas that validate."""

from __future__ import annotations

import re
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema

from gateway.http import ROUTES
from gateway.schemas import Problem

_URL_ARG = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")
_ERRORS = {
    "400": "Permintaan tidak dapat dibaca (bukan JSON, Idempotency-Key tidak sah)",
    "401": "Kunci API tidak ada atau tidak berlaku",
    "403": "Peran tidak berwenang untuk layanan atau bidang ini",
    "404": "Data tidak ditemukan (termasuk milik mitra lain)",
    "409": "Bertentangan dengan keadaan data",
    "413": "Isi permintaan terlalu besar",
    "422": "Data tidak valid atau tidak memenuhi aturan",
    "429": "Terlalu banyak permintaan; lihat header Retry-After",
    "503": "Layanan tidak menjawab",
}
# what an open endpoint can answer besides success
_OPEN_ERRORS = {"/health": ("503",), "/docs/static/<string:filename>": ("404",)}


# the version of the published documents (OpenAPI, AsyncAPI)
API_VERSION = "1"


def build_spec() -> dict[str, Any]:
    spec = APISpec(
        title="Bersinar API",
        version=API_VERSION,
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
        if route.method == "POST" and route.roles is not None:
            parameters.append(
                {
                    "in": "header",
                    "name": "Idempotency-Key",
                    "required": False,
                    "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,100}$"},
                    "description": "Permintaan yang diulang dengan kunci yang sama mendapat "
                    "jawaban pertama dan tidak membuat data baru.",
                }
            )
            operation["parameters"] = parameters
        success: dict[str, Any] = {"description": "Berhasil"}
        if isinstance(route.response, Schema) and route.response.many:
            # lists answer {"items": [...], "next_cursor": ...}
            item = type(route.response)
            success["content"] = {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["items"],
                        "properties": {
                            "items": {"type": "array", "items": item},
                            "next_cursor": {"type": "string", "nullable": True},
                        },
                    }
                }
            }
        elif route.response is not None:
            success["content"] = {"application/json": {"schema": route.response}}
        for content_type in route.produces:
            if content_type != "application/json":
                success.setdefault("content", {})[content_type] = {"schema": {"type": "string"}}
        operation["responses"][str(route.status)] = success
        if route.roles is not None:
            operation["security"] = [{"apiKey": []}]
        statuses = _ERRORS if route.roles is not None else _OPEN_ERRORS.get(route.path, ())
        for status in statuses:
            operation["responses"][status] = {
                "description": _ERRORS[status],
                "content": problem_ref,
            }
        if "429" in operation["responses"]:
            operation["responses"]["429"]["headers"] = {
                "Retry-After": {
                    "schema": {"type": "integer"},
                    "description": "Detik sebelum mencoba lagi",
                }
            }
        paths.setdefault(path, {})[route.method.lower()] = operation
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()
