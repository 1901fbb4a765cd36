"""The FHIR R4 interface against the processes of `make run`: a walk of the
CapabilityStatement that calls every interaction and search parameter it claims, every
answer validated against FHIR R4 4.0.1; the refusal rules of /api/v1 (401, 403 for the
role, 404 for another partner's objects), errors as OperationOutcome with the stable
code; identity only for whom rujukan shows it, every such read in the audit log."""

from __future__ import annotations

import json
import re
from datetime import date
from urllib.parse import urlsplit

import pytest
import requests
from fhir.resources import construct_fhir_element

from bersinar.codes import ROLES, local_date
from bersinar.envelope import utcnow
from gateway.fhir.web import FHIR_ROUTES
from gateway.routes.fhir import FhirRoutes  # noqa: F401  (registers the routes)
from harness.data import CLIENT_NAME, ISSUED_NIKS, referral_body, referral_bundle
from harness.wait import eventually

FHIR = "/fhir/R4"
KARUNIA = "yayasan-karunia-insani"
MONTH = local_date(utcnow()).strftime("%Y-%m")
# a value for each search parameter the statement claims, chosen to match something
SAMPLES = {
    ("Organization", "_id"): "yayasan-kipas",
    ("Organization", "type"): "hospital",
    ("Organization", "name"): "karunia",
    ("Organization", "address"): "curup",
    ("HealthcareService", "_id"): f"{KARUNIA}.inpatient",
    ("HealthcareService", "service-type"): "inpatient",
    ("HealthcareService", "organization"): f"Organization/{KARUNIA}",
    ("HealthcareService", "address"): "bengkulu",
    ("Task", "status"): "in-progress,rejected",
    ("Task", "owner"): f"Organization/{KARUNIA}",
    ("MeasureReport", "period"): MONTH,
    ("MeasureReport", "reporter"): f"Organization/{KARUNIA}",
}
BY_NAME = {"_lastUpdated": "ge2000-01-01", "active": "true"}


def valid(resource: dict) -> dict:
    construct_fhir_element(resource["resourceType"], resource)
    if resource["resourceType"] == "Bundle":
        for entry in resource.get("entry", []):
            if "resource" in entry:  # a transaction-response answers without them
                valid(entry["resource"])
    return resource


def fhir_json(response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/fhir+json")
    return valid(response.json())


def outcome_code(response) -> str:
    body = fhir_json(response, response.status_code)
    assert body["resourceType"] == "OperationOutcome"
    return body["issue"][0]["details"]["coding"][0]["code"]


@pytest.fixture(scope="module")
def world(system):
    """Two referrals to Karunia: one admitted, one rejected with a coded reason."""
    keys = {
        "officer": system.new_key("officer"),
        "karunia": system.new_key("partner", KARUNIA),
        "kipas": system.new_key("partner", "yayasan-kipas"),
        "national": system.new_key("national"),
    }
    ids, created_at = [], []
    for serial in (61, 62):
        body = referral_body(
            partner_id=KARUNIA, sex="F", birth_date=date(1993, 7, 9), serial=serial
        )
        created = system.post("/api/v1/referrals", body, key=keys["officer"])
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
        created_at.append(created.json()["created_at"])
    for action, body in (("accept", None), ("admit", None)):
        moved = system.post(f"/api/v1/referrals/{ids[0]}/{action}", body, key=keys["karunia"])
        assert moved.status_code == 200, moved.text
    rejected = system.post(
        f"/api/v1/referrals/{ids[1]}/reject", {"reason": "capacity_full"}, key=keys["karunia"]
    )
    assert rejected.status_code == 200, rejected.text
    world = {
        "keys": keys,
        "admitted": ids[0],
        "rejected": ids[1],
        "since": f"ge{created_at[0]}",
        "made": ids,  # every referral this module makes, its place given back at the end
    }
    yield world
    # later modules count Karunia's inpatient places from its seeded capacity
    for referral_id in world["made"]:
        status = system.get(f"/api/v1/referrals/{referral_id}/history").json()["items"][-1]
        if status["to_status"] == "admitted":
            done = system.post(
                f"/api/v1/referrals/{referral_id}/complete",
                {"discharge": {"outcome": "improved", "reasons": ["program_completed"]}},
                key=keys["karunia"],
            )
            assert done.status_code == 200, done.text
        elif status["to_status"] in ("requested", "accepted"):
            cancelled = system.post(f"/api/v1/referrals/{referral_id}/cancel")
            assert cancelled.status_code == 200, cancelled.text


def test_the_capability_statement_is_walked_and_every_interaction_it_claims_answers(system, world):
    officer = world["keys"]["officer"]
    statement = fhir_json(requests.get(f"{system.base_url}{FHIR}/metadata", timeout=10))
    assert statement["fhirVersion"] == "4.0.1"
    resources = statement["rest"][0]["resource"]
    found: dict[str, list[dict]] = {}
    called = set()

    def get(path, **params):
        response = system.get(FHIR + path, key=officer, params=params)
        return fhir_json(response)

    for resource in resources:  # every search first: reads take ids from their results
        kind = resource["type"]
        if "search-type" not in {i["code"] for i in resource["interaction"]}:
            continue
        bundle = get(f"/{kind}")
        assert bundle["type"] == "searchset"
        found[kind] = [e["resource"] for e in bundle["entry"]]
        assert found[kind], f"{kind}: nothing to read"
        called.add((kind, "search-type"))
        for param in resource.get("searchParam", []):
            value = SAMPLES.get((kind, param["name"])) or BY_NAME[param["name"]]
            matched = get(f"/{kind}", **{param["name"]: value})
            assert matched["entry"], f"{kind}?{param['name']}={value} matched nothing"
        paged = get(f"/{kind}", _count=1)
        following = [link["url"] for link in paged["link"] if link["relation"] == "next"]
        if following:
            url = urlsplit(following[0])
            second = fhir_json(system.get(f"{url.path}?{url.query}", key=officer))
            assert second["entry"][0]["resource"]["id"] != paged["entry"][0]["resource"]["id"]

    found["Task"] = [{"id": world["admitted"]}]
    task = get(f"/Task/{world['admitted']}")
    found["ServiceRequest"] = [{"id": task["focus"]["reference"].split("/")[1]}]
    found["Patient"] = [{"id": task["for"]["reference"].split("/")[1]}]
    for resource in resources:
        kind = resource["type"]
        sample = found[kind][0]["id"]
        for interaction in (i["code"] for i in resource["interaction"]):
            if interaction == "read":
                read = get(f"/{kind}/{sample}")
                assert (read["resourceType"], read["id"]) == (kind, sample)
            elif interaction == "history-instance":
                versions = get(f"/{kind}/{sample}/_history")
                assert versions["type"] == "history" and versions["total"] == 3
            elif interaction == "vread":
                first = get(f"/{kind}/{sample}/_history/1")
                assert first["meta"]["versionId"] == "1"
            elif interaction != "search-type":
                pytest.fail(f"{kind}: an interaction the walk does not know: {interaction}")
            called.add((kind, interaction))
    for interaction in statement["rest"][0].get("interaction", []):
        assert interaction["code"] == "transaction", interaction
        bundle = referral_bundle(identifier=None, serial=63)
        answer = fhir_json(system.post(FHIR, bundle, key=officer))
        assert answer["type"] == "transaction-response"
        world["made"].append(answer["entry"][1]["response"]["location"].split("/")[1])
        called.add((None, "transaction"))
    for operation in statement["rest"][0].get("operation", []):
        assert operation["name"] == "export", operation  # Bulk Data: admin and national
        headers = {**system.headers(), "Prefer": "respond-async"}
        started = requests.get(f"{system.base_url}{FHIR}/$export", headers=headers, timeout=10)
        assert started.status_code == 202, started.text
        status_url = started.headers["Content-Location"]
        assert requests.delete(status_url, headers=headers, timeout=10).status_code == 202
        called.add((None, "$export"))
    claimed = {(r["type"], i["code"]) for r in resources for i in r["interaction"]}
    claimed |= {(None, i["code"]) for i in statement["rest"][0].get("interaction", [])}
    claimed |= {(None, f"${o['name']}") for o in statement["rest"][0].get("operation", [])}
    assert called == claimed


def test_tasks_follow_the_referrals_and_search_by_status_owner_and_last_update(system, world):
    officer = world["keys"]["officer"]

    def tasks(**params):
        # the system's clock is a file the tests move: "since" is its time, not the host's
        params = {"_lastUpdated": world["since"], "_count": 200, **params}
        bundle = fhir_json(system.get(f"{FHIR}/Task", key=officer, params=params))
        return {e["resource"]["id"]: e["resource"] for e in bundle["entry"]}

    ours = {world["admitted"], world["rejected"]}
    mine = tasks(owner=f"Organization/{KARUNIA}")
    assert set(mine) >= ours
    assert mine[world["admitted"]]["status"] == "in-progress"
    rejected = mine[world["rejected"]]
    assert rejected["status"] == "rejected"
    assert rejected["statusReason"]["coding"][0]["code"] == "capacity_full"
    assert set(tasks(owner=KARUNIA, status="in-progress")) & ours == {world["admitted"]}
    assert set(tasks(owner=KARUNIA, status="rejected,completed")) & ours == {world["rejected"]}
    assert not set(tasks(owner="Organization/yayasan-kipas")) & ours
    assert tasks(_lastUpdated="lt2001-01-01") == {}
    later = f"gt{mine[world['admitted']]['meta']['lastUpdated']}"
    assert world["admitted"] not in tasks(owner=KARUNIA, _lastUpdated=later)
    history = fhir_json(system.get(f"{FHIR}/Task/{world['admitted']}/_history", key=officer))
    assert [e["resource"]["status"] for e in history["entry"]] == [
        "in-progress",
        "accepted",
        "requested",
    ]


def test_the_refusal_rules_of_the_api_as_operation_outcomes(system, world):
    keys, admitted = world["keys"], world["admitted"]
    response = system.get(f"{FHIR}/Task/{admitted}", key=keys["kipas"])
    assert response.status_code == 404 and outcome_code(response) == "NOT_FOUND"
    response = system.get(f"{FHIR}/Task", key=keys["kipas"], params={"owner": KARUNIA})
    assert response.status_code == 404 and outcome_code(response) == "NOT_FOUND"
    since = {"_lastUpdated": world["since"]}
    kipas_tasks = fhir_json(system.get(f"{FHIR}/Task", key=keys["kipas"], params=since))
    assert admitted not in {e["resource"]["id"] for e in kipas_tasks["entry"]}
    response = system.get(f"{FHIR}/Organization", key="not-a-key")
    assert response.status_code == 401 and outcome_code(response) == "UNAUTHORIZED"
    response = system.get(f"{FHIR}/Organization", key=keys["officer"], params={"colour": "x"})
    assert response.status_code == 400 and outcome_code(response) == "VALIDATION_ERROR"
    response = system.get(f"{FHIR}/Encounter", key=keys["officer"])
    assert response.status_code == 404 and outcome_code(response) == "NOT_FOUND"
    response = system.post(f"{FHIR}/Organization", {}, key=keys["officer"])
    assert response.status_code == 405 and outcome_code(response) == "METHOD_NOT_ALLOWED"
    response = system.get(f"{FHIR}/MeasureReport", key=keys["national"])
    assert response.status_code == 403 and outcome_code(response) == "FORBIDDEN"
    # the directory is read by every role; contacts and free places only as /api/v1 shows
    national = fhir_json(system.get(f"{FHIR}/Organization/{KARUNIA}", key=keys["national"]))
    assert "contact" not in national
    services = fhir_json(system.get(f"{FHIR}/HealthcareService", key=keys["kipas"]))
    urls = {x["url"] for e in services["entry"] for x in e["resource"]["extension"]}
    assert not any(url.endswith("/free-places") for url in urls)
    staff = fhir_json(
        system.get(f"{FHIR}/HealthcareService/{KARUNIA}.inpatient", key=keys["officer"])
    )
    assert any(x["url"].endswith("/free-places") for x in staff["extension"])


def test_identity_only_for_whom_rujukan_shows_it_and_every_read_audited(system, world):
    keys, admitted = world["keys"], world["admitted"]
    task = fhir_json(system.get(f"{FHIR}/Task/{admitted}", key=keys["karunia"]))
    client = task["for"]["reference"].split("/")[1]

    def audited():
        response = system.get("/api/v1/audit", params={"referral_id": admitted})
        assert response.status_code == 200, response.text
        return len(response.json()["items"])

    before = audited()
    patient = fhir_json(system.get(f"{FHIR}/Patient/{client}", key=keys["karunia"]))
    nik = [i for i in patient["identifier"] if i["system"] == "https://fhir.kemkes.go.id/id/nik"]
    assert len(nik[0]["value"]) == 16 and patient["name"][0]["text"]
    assert patient["gender"] == "female"
    assert audited() == before + 1
    response = system.get(f"{FHIR}/Patient/{client}", key=keys["kipas"])
    assert response.status_code == 404 and outcome_code(response) == "NOT_FOUND"
    assert system.get(f"{FHIR}/Patient/{client}", key=keys["national"]).status_code == 403
    assert audited() == before + 1
    # Task, ServiceRequest and searches carry no identity and are not audited
    request = fhir_json(system.get(f"{FHIR}/ServiceRequest/{admitted}", key=keys["karunia"]))
    assert request["subject"] == {"reference": f"Patient/{client}"}
    assert nik[0]["value"] not in str(request) and nik[0]["value"] not in str(task)
    assert audited() == before + 1


def test_national_follows_every_referrals_state_without_the_client(system, world):
    """Task and ServiceRequest for a national key: states, partner, service, times and
    reasons, nothing that names the client or links one person's episodes."""
    keys, admitted, rejected = world["keys"], world["admitted"], world["rejected"]
    clients = {
        fhir_json(system.get(f"{FHIR}/Task/{rid}", key=keys["officer"]))["for"]["reference"]
        for rid in (admitted, rejected)
    }
    params = {"_lastUpdated": world["since"], "_count": 200, "owner": KARUNIA}
    bundle = fhir_json(system.get(f"{FHIR}/Task", key=keys["national"], params=params))
    tasks = {e["resource"]["id"]: e["resource"] for e in bundle["entry"]}
    assert tasks[admitted]["status"] == "in-progress"
    assert tasks[rejected]["statusReason"]["coding"][0]["code"] == "capacity_full"
    assert tasks[admitted]["owner"] == {"reference": f"Organization/{KARUNIA}"}
    read = fhir_json(system.get(f"{FHIR}/Task/{admitted}", key=keys["national"]))
    history = fhir_json(system.get(f"{FHIR}/Task/{admitted}/_history", key=keys["national"]))
    request = fhir_json(system.get(f"{FHIR}/ServiceRequest/{admitted}", key=keys["national"]))
    assert [e["resource"]["status"] for e in history["entry"]][0] == "in-progress"
    assert "reference" not in request["subject"]
    assert request["code"]["coding"][0]["code"] == "inpatient"
    served = [*tasks.values(), read, history, request]
    for text in map(str, served):
        assert "Patient/" not in text and not any(c.split("/")[1] in text for c in clients)
        assert CLIENT_NAME not in text and not any(nik in text for nik in ISSUED_NIKS)
    assert all("for" not in task for task in tasks.values())
    client = next(iter(clients)).split("/")[1]
    assert system.get(f"{FHIR}/Patient/{client}", key=keys["national"]).status_code == 403


def test_a_partners_month_is_a_measure_report(system, world):
    officer = world["keys"]["officer"]
    bundle = fhir_json(system.get(f"{FHIR}/MeasureReport", key=officer, params={"period": MONTH}))
    reports = {e["resource"]["id"]: e["resource"] for e in bundle["entry"]}
    mine = reports[f"{KARUNIA}.{MONTH}"]
    assert mine["reporter"] == {"reference": f"Organization/{KARUNIA}"}
    groups = {g["code"]["coding"][0]["code"]: g for g in mine["group"]}
    indicators = system.get("/api/v1/indicators", key=officer, params={"period": MONTH}).json()
    row = next(p for p in indicators["partners"] if p["partner_id"] == KARUNIA)
    acceptance = [p["count"] for p in groups["acceptance_rate"]["population"]]
    assert acceptance == [row["figures"]["accepted"], row["figures"]["answered"]]
    assert acceptance[0] >= 1 and acceptance[1] >= 2  # this test's acceptance and rejection
    assert groups["acceptance_rate"]["measureScore"]["value"] == row["acceptance_rate"]
    read = fhir_json(system.get(f"{FHIR}/MeasureReport/{KARUNIA}.{MONTH}", key=officer))
    assert read == mine
    measure = fhir_json(system.get(f"{FHIR}/Measure/acceptance-rate", key=officer))
    assert measure["_description"]["extension"][0]["extension"][0]["valueCode"] == "en"


def test_every_role_against_every_fhir_route(system, world):
    """The role matrix of /api/v1 (tests/e2e/test_gateway_security.py), on /fhir/R4."""
    keys = {
        "admin": system.admin_key,
        "officer": world["keys"]["officer"],
        "partner": world["keys"]["karunia"],
        "national": world["keys"]["national"],
        "ops": system.new_key("ops"),
    }
    assert set(keys) == set(ROLES)
    failures = []
    for route in FHIR_ROUTES:
        if route.roles is None:
            continue
        path = re.sub(r"<(?:[a-z]+:)?resource_id>", "tidak-ada-0000", route.path)
        path = re.sub(r"<(?:[a-z]+:)?version_id>", "1", path)
        path = re.sub(r"<(?:[a-z]+:)?[a-z_]+>", "tidak-ada-0000", path)  # Bulk Data's
        for role, key in keys.items():
            response = requests.request(
                route.method,
                system.base_url + path,
                json={} if route.method == "POST" else None,
                headers={"Authorization": f"Bearer {key}"},
                timeout=15,
            )
            if role in route.roles:  # an empty Bundle is refused as one: 400
                ok = response.status_code in (200, 400, 404)
            else:
                ok = response.status_code == 403 and outcome_code(response) == "FORBIDDEN"
            if not ok or not response.headers["Content-Type"].startswith("application/fhir+json"):
                failures.append((route.path, role, response.status_code, response.text[:200]))
    assert failures == []


def test_a_referral_sent_as_a_transaction_reaches_the_partners_inbox_once(system, world):
    keys = world["keys"]
    bundle = referral_bundle(identifier=f"R-E2E-{world['admitted']}", serial=64)
    answer = fhir_json(system.post(FHIR, bundle, key=keys["officer"]))
    locations = [e["response"].get("location") for e in answer["entry"]]
    task_id = locations[2].split("/")[1]
    world["made"].append(task_id)
    assert locations[1] == f"ServiceRequest/{task_id}"
    task = fhir_json(system.get(f"{FHIR}/Task/{task_id}", key=keys["karunia"]))
    assert task["status"] == "requested"
    assert task["owner"] == {"reference": f"Organization/{KARUNIA}"}
    assert f"Patient/{task['for']['reference'].split('/')[1]}" == locations[0]

    def inbox():
        items = system.get("/api/v1/notifications", key=keys["karunia"]).json()["items"]
        return [n for n in items if task_id in n["body"]]

    [notification] = eventually(inbox, "the referral in Karunia's inbox", timeout=60)
    assert notification["event_type"] == "referral_requested"
    # the same Bundle sent again is the same referral, not a second one
    again = fhir_json(system.post(FHIR, bundle, key=keys["officer"]))
    assert [e["response"].get("location") for e in again["entry"]] == locations
    history = fhir_json(system.get(f"{FHIR}/Task/{task_id}/_history", key=keys["officer"]))
    assert history["total"] == 1
    # ... and its identifier on another referral is refused, as an Idempotency-Key reused
    other = referral_bundle(identifier=f"R-E2E-{world['admitted']}", serial=65)
    response = system.post(FHIR, other, key=keys["officer"])
    assert response.status_code == 409, response.text
    assert outcome_code(response) == "IDEMPOTENCY_KEY_REUSED"


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        ({"sex": "M", "birth_date": date(1990, 8, 17)}, 422, "NOT_ELIGIBLE"),
        ({"consent": False}, 422, "CONSENT_REQUIRED"),
        ({"partner_id": "tidak-ada"}, 422, "NOT_ELIGIBLE"),
    ],
)
def test_a_transaction_is_refused_by_the_rules_of_post_referrals(
    system, world, changes, status, code
):
    bundle = referral_bundle(identifier=None, **changes)
    response = system.post(FHIR, bundle, key=world["keys"]["officer"])
    assert response.status_code == status, response.text
    assert outcome_code(response) == code


def test_a_transaction_from_a_role_that_may_not_refer_or_not_fhir_is_refused(system, world):
    keys, bundle = world["keys"], referral_bundle(identifier=None, serial=66)
    for role in ("karunia", "national"):
        response = system.post(FHIR, bundle, key=keys[role])
        assert response.status_code == 403 and outcome_code(response) == "FORBIDDEN"
    response = requests.post(
        system.base_url + FHIR,
        data=b"<Bundle/>",
        headers={"Authorization": f"Bearer {keys['officer']}", "Content-Type": "application/xml"},
        timeout=10,
    )
    assert response.status_code == 415 and outcome_code(response) == "UNSUPPORTED_MEDIA_TYPE"
    response = system.post(FHIR, {"resourceType": "Bundle", "type": "batch"}, key=keys["officer"])
    assert response.status_code == 400 and outcome_code(response) == "VALIDATION_ERROR"


def test_an_ended_task_carries_its_discharge_summary_as_coded_outputs(system, world):
    keys = world["keys"]
    body = referral_body(partner_id=KARUNIA, sex="F", birth_date=date(1993, 7, 9), serial=64)
    rid = system.post("/api/v1/referrals", body, key=keys["officer"]).json()["id"]
    for action in ("accept", "admit"):
        moved = system.post(f"/api/v1/referrals/{rid}/{action}", None, key=keys["karunia"])
        assert moved.status_code == 200, moved.text
    summary = {
        "outcome": "recovered",
        "reasons": ["program_completed"],
        "aftercare_plan": "Kelompok dukungan sebaya.",
    }
    done = system.post(
        f"/api/v1/referrals/{rid}/complete", {"discharge": summary}, key=keys["karunia"]
    )
    assert done.status_code == 200, done.text
    for who in ("officer", "karunia", "national"):
        task = fhir_json(system.get(f"{FHIR}/Task/{rid}", key=keys[who]))
        assert task["status"] == "completed"
        codings = [o["valueCodeableConcept"]["coding"][0] for o in task["output"]]
        assert [(c["system"].rsplit("/", 1)[-1], c["code"]) for c in codings] == [
            ("discharge-outcome", "recovered"),
            ("discharge-reason", "program_completed"),
        ], who
        assert "dukungan sebaya" not in json.dumps(task)
    system_json = fhir_json(system.get(f"{FHIR}/CodeSystem/discharge-outcome"))
    assert [c["code"] for c in system_json["concept"]][:2] == ["recovered", "improved"]


def test_no_identity_sent_or_read_through_fhir_reaches_a_log_line(system, world):
    """The module's Patient reads and inbound Bundles carried NIKs and names: no process
    logged one (tests/e2e/test_privacy_logs.py checks every module's at the end)."""
    lines = [
        line
        for path in sorted(system.log_dir.glob("*.log"))
        for line in path.read_text(errors="replace").splitlines()
    ]
    assert lines
    identity = [*ISSUED_NIKS, CLIENT_NAME, "081298765432"]
    assert [line for line in lines if any(token in line for token in identity)] == []
