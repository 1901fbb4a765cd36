"""``/openapi.json``, generated from the same marshmallow schemas and path shapes that
validate, so that the document says exactly what the gateway and the services enforce:
a request the document allows is not refused for its shape, and one it forbids is."""

from __future__ import annotations

import re
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin, OpenAPIConverter
from marshmallow import Schema, fields, validate

from gateway.http import ROUTES, Route
from gateway.schemas import PATH_PARAMETERS, Problem

_URL_ARG = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")
_ERRORS = {
    "400": "Permintaan tidak dapat dibaca (bukan JSON, bersarang lebih dari 32 tingkat, "
    "Idempotency-Key tidak sah)",
    "401": "Kunci API tidak ada atau tidak berlaku",
    "403": "Peran ini tidak pernah boleh melakukan ini, apa pun keadaan datanya",
    "404": "Data tidak ditemukan (termasuk milik mitra lain, juga sebagai filter daftar)",
    "409": "Bertentangan dengan keadaan data",
    "413": "Isi permintaan terlalu besar",
    "415": "Isi permintaan bukan application/json",
    "422": "Data tidak valid atau tidak memenuhi aturan",
    "429": "Terlalu banyak permintaan; lihat header Retry-After",
    "503": "Layanan tidak menjawab",
}
# what an open endpoint can answer besides success (422: a NUL character in the query)
_OPEN_ERRORS = {
    "/health": ("422", "503"),
    "/docs/static/<string:filename>": ("404", "422"),
}
# every text is refused with a NUL character in it (PostgreSQL cannot store one)
NO_NUL = r"^[^\x00]*$"


class Converter(OpenAPIConverter):
    """apispec's converter, saying what marshmallow's validators check that apispec
    leaves out:

    - a nested schema that may be null is that schema or null, nothing else;
    - a text without a pattern, choice or format of its own cannot hold NUL;
    - a ``Dict`` whose keys are a choice is an object of exactly those properties;
    - a schema may state rules across its fields that JSON Schema can express, in its
      ``OPENAPI`` class attribute (``minProperties``, ``oneOf``, ...), merged into the
      generated object (a property's key given None is dropped).
    """

    def field2nullable(self, field: fields.Field, ret: dict[str, Any]) -> dict[str, Any]:
        # apispec's anyOf of the reference and {type: object, nullable} lets any object
        # through; this is the reference or null
        if field.allow_none and ("$ref" in ret or "allOf" in ret):
            refs = ret.pop("allOf", None) or [{"$ref": ret.pop("$ref")}]
            return {"allOf": refs, "nullable": True}
        return super().field2nullable(field, ret)

    def init_attribute_functions(self):
        super().init_attribute_functions()
        self.add_attribute_function(_no_nul)
        self.add_attribute_function(_choice_keys)

    def schema2jsonschema(self, schema):
        jsonschema = super().schema2jsonschema(schema)
        schema_class = schema if isinstance(schema, type) else type(schema)
        for key, value in getattr(schema_class, "OPENAPI", {}).items():
            if key == "properties":
                for name, extra in value.items():
                    merged = {**jsonschema["properties"][name], **extra}
                    jsonschema["properties"][name] = {
                        k: v for k, v in merged.items() if v is not None
                    }
            else:
                jsonschema[key] = value
        return jsonschema


def _no_nul(self, field: fields.Field, ret: dict[str, Any], **kwargs) -> dict[str, Any]:
    if ret.get("type") != "string" or {"pattern", "enum", "format"} & set(ret):
        return {}
    return {"pattern": NO_NUL}


def _choice_keys(self, field: fields.Field, ret: dict[str, Any], **kwargs) -> dict[str, Any]:
    if not isinstance(field, fields.Dict) or field.key_field is None:
        return {}
    choices = [v for v in field.key_field.validators if isinstance(v, validate.OneOf)]
    if not choices:
        return {}
    value = self.field2property(field.value_field) if field.value_field is not None else {}
    return {
        "properties": {str(choice): value for choice in choices[0].choices},
        "additionalProperties": False,
    }


class Plugin(MarshmallowPlugin):
    Converter = Converter


def _error_statuses(route: Route) -> list[str]:
    """What an operation can answer besides success."""
    if route.roles is None:
        return list(_OPEN_ERRORS.get(route.path, ("422",)))
    statuses = {"401", "403", "404", "422", "429", "503"}
    if route.body is not None or route.uploads:
        statuses |= {"400", "413", "415"}
    if route.method != "GET":
        statuses |= {"400", "409"}  # POST: Idempotency-Key; any change: the data's state
    if "attachment_id" in route.path_arguments:
        statuses.add("409")  # an attachment an admin has removed
    return sorted(statuses)


def _success(route: Route) -> dict[str, Any]:
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
    return success


def _links(route: Route) -> dict[str, Any]:
    """From an operation that creates (or writes) a resource to every operation on it:
    those whose path puts a created id in the collection this operation is in, and whose
    other path arguments this request's own path fills."""
    if not route.creates:
        return {}
    known = {name: f"$request.path.{name}" for name in route.path_arguments}
    known.update({name: f"$response.body#{pointer}" for name, pointer in route.creates.items()})
    links = {}
    for target in ROUTES:
        names = target.path_arguments
        created = set(route.creates) & set(names)
        if target is route or not created or not set(names) <= set(known):
            continue
        collections = [target.path.split(f"<string:{name}>")[0].rstrip("/") for name in created]
        if not all(route.path.startswith(collection) for collection in collections):
            continue
        name = "".join(part.capitalize() for part in target.operation_id.split("_"))
        links[name] = {
            "operationId": target.operation_id,
            "parameters": {arg: known[arg] for arg in names},
        }
    return links


# the version of the published documents (OpenAPI, AsyncAPI)
API_VERSION = "1"
DESCRIPTION = (
    "Jaringan lembaga rehabilitasi mitra BNN Provinsi Bengkulu.\n\n"
    "Setiap penolakan berupa application/problem+json dengan `code` yang tetap. Satu "
    "aturan penolakan: 401 tanpa kunci yang berlaku; 403 `FORBIDDEN` bila peran pemanggil "
    "tidak pernah boleh melakukan tindakan itu (apa pun keadaan datanya); 404 `NOT_FOUND` "
    "bila data milik mitra lain, untuk membaca, bertindak, maupun sebagai filter daftar "
    "(seolah-olah tidak ada); 409 bila keadaan data tidak mengizinkan tindakan itu; 422 "
    "bila isian tidak sah (pesan per bidang dalam bahasa Indonesia)."
)


def build_spec() -> dict[str, Any]:
    plugin = Plugin()
    spec = APISpec(
        title="Bersinar API",
        version=API_VERSION,
        openapi_version="3.0.3",
        info={"description": DESCRIPTION},
        plugins=[plugin],
    )
    spec.components.security_scheme("apiKey", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Problem", schema=Problem)
    problem_ref = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        path = _URL_ARG.sub(r"{\1}", route.path)
        operation: dict[str, Any] = {
            "operationId": route.operation_id,
            "summary": route.summary,
            "tags": list(route.tags),
            "responses": {},
        }
        parameters: list[Any] = []
        for name in route.path_arguments:
            parameter = plugin.converter._field2parameter(
                PATH_PARAMETERS[name].field, name=name, location="path"
            )
            parameters.append({**parameter, "required": True})
        if route.query is not None:
            parameters.append({"in": "query", "schema": route.query})
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
        if route.conditional:
            parameters.append(
                {
                    "in": "header",
                    "name": "If-None-Match",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "ETag jawaban sebelumnya: bila data belum berubah, "
                    "jawabannya 304 tanpa isi.",
                }
            )
        if parameters:
            operation["parameters"] = parameters
        if route.uploads:
            binary = {"schema": {"type": "string", "format": "binary"}}
            operation["requestBody"] = {
                "required": True,
                "description": "Berkasnya sendiri; jenisnya dinilai dari isinya.",
                "content": {kind: binary for kind in route.uploads},
            }
        if route.body is not None:
            content: dict[str, Any] = {"schema": route.body}
            if route.example is not None:
                content["example"] = route.example
            operation["requestBody"] = {
                "required": route.body_required,
                "content": {"application/json": content},
            }
        success = _success(route)
        links = _links(route)
        if links:
            success["links"] = links
        operation["responses"][str(route.status)] = success
        if route.conditional:
            success["headers"] = {
                "ETag": {"schema": {"type": "string"}, "description": "Versi jawaban ini"}
            }
            operation["responses"]["304"] = {
                "description": "Tidak berubah sejak ETag yang dikirim di If-None-Match",
                "headers": success["headers"],
            }
        if route.roles is not None:
            operation["security"] = [{"apiKey": []}]
        for status in _error_statuses(route):
            operation["responses"][status] = {
                "description": _ERRORS[status],
                "content": problem_ref,
            }
        if route.rules:
            # the rules on the data's state behind a 422, by the code it carries
            unprocessable = operation["responses"]["422"]
            unprocessable["description"] += ". " + "; ".join(
                f"{code}: {text}" for code, text in route.rules.items()
            )
            unprocessable["x-codes"] = ["VALIDATION_ERROR", *route.rules]
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
