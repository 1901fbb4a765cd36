"""The gateway's doors, against the processes of `make run`: every role against every
endpoint, one partner against every object of another (BOLA), broken and revoked keys,
and an OpenAPI document that covers every route that exists. Each prints its counts."""

from __future__ import annotations

import re

import pytest
import requests
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.web.handlers import HttpRequestHandler

from gateway.http import ROUTES
from gateway.service import GatewayService
from harness.data import referral_body

ROLES = ("admin", "officer", "partner", "national", "ops")
OWN, OTHER = "yayasan-kipas", "yayasan-pesona"
_ARG = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")
# bodies that pass validation, so that only the object check can refuse them
VALID_BODIES = {
    "reject": {"reason": "client_unreachable"},
    "transfer": {"partner_id": OWN},
    "terminate": {"reason": "uji akses objek"},
    "<string:partner_id>": {"contacts": []},
    # a month with nothing to report, consistent by every rule
    "<string:period>": {
        "counts": {
            "total": {
                "start": 0,
                "admitted": 0,
                "completed": 0,
                "dropped_out": 0,
                "transferred_out": 0,
                "end": 0,
            }
        },
        "narrative": "Tidak ada klien pada bulan ini.",
    },
}


@pytest.fixture(scope="module")
def keys(system):
    made = {}
    for role in ROLES:
        body = {"role": role, "label": f"matrix {role}"}
        if role == "partner":
            body["partner_id"] = OWN
        response = system.post("/api/v1/api-keys", body)
        assert response.status_code == 201, response.text
        made[role] = response.json()["key"]
    other = system.post(
        "/api/v1/api-keys",
        {"role": "partner", "partner_id": OTHER, "label": "matrix other partner"},
    )
    made["other_partner"] = other.json()["key"]
    return made


def fill(path: str, values: dict[str, str]) -> str:
    return _ARG.sub(lambda m: values.get(m.group(1), "tidak-ada-0000"), path)


def send(system, route, key, values, body=None):
    url = system.base_url + fill(route.path, values)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if route.body is not None and body is None:
        body = {}
    return requests.request(route.method, url, json=body, headers=headers, timeout=15)


def protected_routes():
    return [route for route in ROUTES if route.roles is not None]


def test_every_role_against_every_endpoint(system, keys):
    values = {"partner_id": OWN, "period": "2026-10", "format": "json"}
    tried, failures = 0, []
    for route in protected_routes():
        for role in ROLES:
            response = send(system, route, keys[role], values)
            tried += 1
            allowed = role in route.roles
            ok = (
                response.status_code not in (401, 403, 500)
                if allowed
                else (response.status_code, response.json().get("code")) == (403, "FORBIDDEN")
            )
            if not ok:
                failures.append(
                    (route.method, route.path, role, response.status_code, response.text[:200])
                )
    print(
        f"\n[matrix] {len(protected_routes())} endpoints x {len(ROLES)} roles: "
        f"{tried} cases, {len(failures)} failures"
    )
    assert failures == []


def test_a_partner_reaches_no_object_of_another_partner(system, keys):
    admin = system.admin_key
    referral = system.post(
        "/api/v1/referrals", referral_body(partner_id=OTHER, service_type="outpatient")
    )
    assert referral.status_code == 201, referral.text
    agreements = system.get(f"/api/v1/partners/{OTHER}/agreements", key=admin).json()["items"]
    activity = system.post(
        f"/api/v1/partners/{OTHER}/activities",
        {"kind": "training", "held_on": "2026-10-01", "title": "Pelatihan BOLA"},
    )
    assert activity.status_code == 201, activity.text
    values = {
        "partner_id": OTHER,
        "referral_id": referral.json()["id"],
        "agreement_id": agreements[0]["id"],
        "activity_id": activity.json()["id"],
        "period": "2026-10",
    }
    tried, leaks = 0, []
    for route in protected_routes():
        names = set(_ARG.findall(route.path))
        if not names & {"partner_id", "referral_id", "agreement_id", "activity_id"}:
            continue
        body = VALID_BODIES.get(route.path.rsplit("/", 1)[-1]) if route.body else None
        response = send(system, route, keys["partner"], values, body)
        tried += 1
        if (route.method, route.path) == ("GET", "/api/v1/partners/<string:partner_id>"):
            # the directory is public; the other partner's contacts are not
            assert response.status_code == 200 and "contacts" not in response.json()
            continue
        if response.status_code not in (403, 404):
            leaks.append((route.method, route.path, response.status_code, response.text[:300]))
    for leak in leaks:
        print("reachable:", leak)
    # lists: nothing of the other partner shows
    listed = system.get("/api/v1/referrals", key=keys["partner"]).json()["items"]
    other_inbox = system.get(f"/api/v1/notifications?partner_id={OTHER}", key=keys["partner"])
    inbox = other_inbox.json().get("items", []) if other_inbox.status_code == 200 else []
    assert other_inbox.status_code in (200, 403, 404)
    print(
        f"\n[bola] {tried} object endpoints tried with another partner's objects, "
        f"{len(leaks)} reachable; lists leaking: "
        f"{sum(r['partner_id'] == OTHER for r in listed)} referrals, "
        f"{sum(n['recipient'] == 'partner:' + OTHER for n in inbox)} notifications"
    )
    assert tried >= 10
    assert leaks == []
    assert all(r["partner_id"] == OWN for r in listed)
    assert all(n["recipient"] == f"partner:{OWN}" for n in inbox)


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
