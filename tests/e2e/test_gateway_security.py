"""The gateway's doors, against the processes of `make run`: broken and revoked keys, and
an OpenAPI document that covers every route that exists (every role against every
endpoint, and one partner against another's objects: tests/e2e/test_refusals.py)."""

from __future__ import annotations

import re

import pytest
import requests
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.web.handlers import HttpRequestHandler

from gateway.service import GatewayService

_ARG = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic YWRtaW46YWRtaW4=",
        "bearer bsk_nope",
        "Bearer " + "x" * 5000,
        "Token bsk_abc",
        "Bearer bsk_\u00e9\u00e9",
    ],
)
def test_a_missing_or_malformed_key_is_401(system, header):
    headers = {} if header is None else {"Authorization": header.encode("utf-8")}
    response = requests.get(system.base_url + "/api/v1/partners", headers=headers, timeout=10)
    assert (response.status_code, response.json()["code"]) == (401, "UNAUTHORIZED")


def test_a_revoked_key_fails_at_once(system):
    made = system.post("/api/v1/api-keys", {"role": "officer", "label": "to revoke"}).json()
    assert system.get("/api/v1/partners", key=made["key"]).status_code == 200
    revoked = requests.delete(
        f"{system.base_url}/api/v1/api-keys/{made['id']}", headers=system.headers(), timeout=10
    )
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    response = system.get("/api/v1/partners", key=made["key"])
    assert (response.status_code, response.json()["code"]) == (401, "UNAUTHORIZED")
    listed = system.get("/api/v1/api-keys").json()["items"]
    assert all("key" not in item and "key_hash" not in item for item in listed)


def test_the_openapi_document_covers_every_route_that_exists(system):
    exists = set()
    for name in dir(GatewayService):
        for extension in getattr(getattr(GatewayService, name), ENTRYPOINT_EXTENSIONS_ATTR, ()):
            # the console's pages are HTML for people (docs/console.md), not the API; the
            # FHIR interface states itself in its CapabilityStatement (docs/fhir.md, held
            # to it by tests/e2e/test_fhir_interface.py)
            if isinstance(extension, HttpRequestHandler) and not extension.url.startswith(
                ("/console", "/fhir/")
            ):
                exists.add((extension.method.lower(), _ARG.sub(r"{\1}", extension.url)))
    spec = requests.get(system.base_url + "/openapi.json", timeout=10).json()
    documented = {
        (method, path) for path, operations in spec["paths"].items() for method in operations
    }
    print(f"\n[openapi] {len(exists)} routes, {len(documented)} documented")
    assert documented == exists
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert operation["summary"], (method, path)
            assert any(code.startswith("2") for code in operation["responses"]), (method, path)


def test_the_api_viewer_is_served_from_the_package(system):
    page = requests.get(system.base_url + "/docs", timeout=10)
    assert page.status_code == 200 and "swagger-ui-bundle.js" in page.text
    script = requests.get(system.base_url + "/docs/static/swagger-ui-bundle.js", timeout=10)
    assert script.status_code == 200 and len(script.content) > 100_000
    sneaky = requests.get(system.base_url + "/docs/static/..%2F..%2F__init__.py", timeout=10)
    assert sneaky.status_code == 404
