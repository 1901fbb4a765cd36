"""Through the gateway over HTTP, against the processes of `make run`."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import requests
from sqlalchemy import create_engine, text

from harness.data import referral_body

PARTNER = {
    "name": "Yayasan Uji",
    "kind": "foundation",
    "kabupaten_kota": "Kaur",
    "sex_served": "all",
}


def scalar(url, sql, **params):
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text(sql), params).scalar()
    finally:
        engine.dispose()


def wait_for(predicate, timeout=20.0, message=""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {message}")


@pytest.fixture(scope="module")
def partner_key(system):
    response = system.post(
        "/api/v1/api-keys",
        {"role": "partner", "partner_id": "yayasan-dwin-foundation", "label": "operator Dwin"},
    )
    assert response.status_code == 201, response.text
    return response.json()["key"]


def test_a_referral_posted_through_the_gateway_reaches_the_partner_inbox(system, partner_key):
    correlation = f"e2e-{uuid.uuid4().hex[:12]}"
    response = requests.post(
        system.base_url + "/api/v1/referrals",
        json=referral_body(partner_id="yayasan-dwin-foundation"),
        headers={**system.headers(), "X-Correlation-ID": correlation},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    assert response.headers["X-Correlation-ID"] == correlation
    referral_id = response.json()["id"]

    def inbox():
        items = system.get("/api/v1/notifications", key=partner_key).json()["items"]
        return [n for n in items if referral_id in n["body"]]

    [notification] = wait_for(inbox, message="the notification in the partner's inbox")
    assert notification["event_type"] == "referral_requested"
    assert "rawat inap" in notification["body"]

    # the correlation id of the request is in the log lines of every hop
    def hops():
        found = set()
        for path in system.log_dir.glob("*.log"):
            for line in path.read_text(errors="replace").splitlines():
                if correlation in line and line.startswith("{"):
                    found.add(json.loads(line)["service"])
        return found >= {"gateway", "rujukan", "laporan", "notifikasi"} and found

    print(f"\n[correlation] {correlation} seen in {sorted(wait_for(hops, message='logs'))}")


@pytest.mark.parametrize(
    "case",
    [
        "no key",
        "wrong key",
        "partner creating",
        "bad json",
        "not json",
        "unknown field",
        "wrong type",
        "bad nik",
        "no consent",
        "unknown partner",
        "too large",
        "too deep",
        "not a number",
        "half a surrogate pair",
        "consent as yes",
        "nik in other digits",
    ],
)
def test_bad_requests_get_a_stable_4xx_and_store_nothing(system, partner_key, case):
    url = system.base_url + "/api/v1/referrals"
    body = referral_body(partner_id="yayasan-pesona")
    headers = system.headers()
    data = None
    expected = {
        "no key": (401, "UNAUTHORIZED"),
        "wrong key": (401, "UNAUTHORIZED"),
        "partner creating": (403, "FORBIDDEN"),
        "bad json": (400, "BAD_REQUEST"),
        "not json": (400, "BAD_REQUEST"),
        "unknown field": (422, "VALIDATION_ERROR"),
        "wrong type": (422, "VALIDATION_ERROR"),
        "bad nik": (422, "VALIDATION_ERROR"),
        "no consent": (422, "CONSENT_REQUIRED"),
        "unknown partner": (422, "NOT_ELIGIBLE"),
        "too large": (413, "PAYLOAD_TOO_LARGE"),
        "too deep": (400, "BODY_TOO_DEEP"),
        "not a number": (400, "BAD_REQUEST"),
        "half a surrogate pair": (422, "VALIDATION_ERROR"),
        "consent as yes": (422, "VALIDATION_ERROR"),
        "nik in other digits": (422, "VALIDATION_ERROR"),
    }[case]
    if case == "no key":
        headers = {}
    elif case == "wrong key":
        headers = system.headers("bsk_not-a-key")
    elif case == "partner creating":
        headers = system.headers(partner_key)
    elif case == "bad json":
        data = b'{"client": {'
    elif case == "not json":
        data = "\xff\xfe garbage".encode("latin-1")
    elif case == "unknown field":
        body["status"] = "admitted"
    elif case == "wrong type":
        body["client"]["birth_date"] = 19900105
    elif case == "bad nik":
        body["client"]["nik"] = "9971050501900001"
    elif case == "no consent":
        body["consent"] = {"given": False}
    elif case == "unknown partner":
        body["partner_id"] = "yayasan-tidak-ada"
    elif case == "too large":
        body["assessment"] = {"notes": "x" * 70_000}
    elif case == "too deep":
        data = b"[" * 20_000 + b"]" * 20_000
    elif case == "not a number":
        data = json.dumps(body).replace('"TAT"', "NaN").encode()
    elif case == "half a surrogate pair":
        data = json.dumps(body).replace("Klien Uji", "Klien \\ud800").encode()
    elif case == "consent as yes":
        body["consent"] = {"given": "yes"}
    elif case == "nik in other digits":
        body["client"]["nik"] = body["client"]["nik"].translate(
            str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
        )

    before = scalar(system.urls["rujukan"], "SELECT COUNT(*) FROM referrals")
    if data is not None:
        response = requests.post(
            url, data=data, headers={**headers, "Content-Type": "application/json"}, timeout=10
        )
    else:
        response = requests.post(url, json=body, headers=headers, timeout=10)
    assert (response.status_code, response.json()["code"]) == expected, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert scalar(system.urls["rujukan"], "SELECT COUNT(*) FROM referrals") == before
    assert body["client"]["nik"] not in response.text
    assert body["client"]["name"] not in response.text


def test_health_names_a_service_that_is_down_while_the_gateway_stays_ready(system):
    """/health speaks for the whole system; /ready, the probe of compose and Kubernetes,
    for this gateway alone (its broker and its database): a service down takes no
    gateway out of rotation."""
    assert system.get("/health").json()["status"] == "ok"
    assert system.get("/ready").json() == {"status": "ok"}
    system.stop("laporan")
    try:
        response = system.get("/health")
        assert response.status_code == 503
        assert response.json()["down"] == ["laporan"]
        ready = system.get("/ready")
        assert (ready.status_code, ready.json()) == (200, {"status": "ok"})
    finally:
        system.start("laporan")
        system.wait_healthy()


def test_openapi_is_served_without_a_key_and_metrics_only_on_their_own_port(system):
    spec = requests.get(system.base_url + "/openapi.json", timeout=10).json()
    operation = spec["paths"]["/api/v1/referrals"]["post"]
    schema_ref = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema_ref == {"$ref": "#/components/schemas/ReferralCreate"}
    assert {"201", "401", "403", "422", "503"} <= set(operation["responses"])
    client = spec["components"]["schemas"]["ClientInput"]
    assert set(client["required"]) == {"nik", "name", "birth_date", "sex"}
    assert "/metrics" not in spec["paths"]
    # the API port has no /metrics, for anyone; GATEWAY_METRICS_PORT has them
    for headers in ({}, system.headers()):
        public = requests.get(system.base_url + "/metrics", headers=headers, timeout=10)
        assert (public.status_code, public.json()["code"]) == (404, "NOT_FOUND")
    metrics = requests.get(f"http://127.0.0.1:{system.gateway_metrics_port}/metrics", timeout=10)
    assert 'bersinar_http_requests_total{method="GET",route="/health"' in metrics.text


def test_what_the_document_forbids_is_refused_in_problem_json(system):
    """The shapes OpenAPI states are the ones checked: a path segment, a content type, a
    method, a path; each refusal a coded application/problem+json."""
    base, headers = system.base_url, system.headers()

    def refused(response, status, code):
        assert (response.status_code, response.json()["code"]) == (status, code), response.text
        assert response.headers["Content-Type"].startswith("application/problem+json")
        return response

    for period in ("9999-13", "1999-12", "9999-12"):
        refused(system.get(f"/api/v1/reports/yayasan-kipas/{period}"), 422, "VALIDATION_ERROR")
        for listing in ("/api/v1/reports", "/api/v1/indicators", "/api/v1/exports/monthly"):
            refused(system.get(listing, params={"period": period}), 422, "VALIDATION_ERROR")
    refused(system.get("/api/v1/referrals/tidak-ada"), 404, "NOT_FOUND")
    refused(
        requests.post(
            base + "/api/v1/partners",
            data=b'{"name": "Yayasan Teks"}',
            headers={**headers, "Content-Type": "text/plain"},
            timeout=10,
        ),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    # /api/v1/partners/match is not a partner: its Allow names only its own methods
    for method in ("OPTIONS", "PATCH"):
        answer = refused(
            requests.request(method, base + "/api/v1/partners/match", headers=headers, timeout=10),
            405,
            "METHOD_NOT_ALLOWED",
        )
        assert {m.strip() for m in answer.headers["Allow"].split(",")} == {"GET", "HEAD"}
    refused(requests.get(base + "/api/v1/tidak-ada", timeout=10), 404, "NOT_FOUND")
    made = system.post("/api/v1/partners", {**PARTNER, "id": "match"})
    assert made.status_code == 422 and "id" in made.json()["errors"], made.text
    named = system.post("/api/v1/partners", {**PARTNER, "name": "Match"})
    assert named.status_code == 201 and named.json()["id"] == "match-2", named.text
