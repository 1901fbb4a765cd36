"""FHIR Bulk Data export against the processes of `make run`: kick-off, polling, the
manifest, every NDJSON file downloaded with the same key and every line valid FHIR R4,
nothing that identifies a client in any file, pseudonyms that differ between exports,
_since and _type, the refusals, and cancelling."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
import requests
from fhir.resources import construct_fhir_element

from bersinar.codes import local_date
from bersinar.envelope import rfc3339, utcnow
from harness.data import CLIENT_NAME, ISSUED_NIKS, referral_body
from harness.wait import eventually

FHIR = "/fhir/R4"
KARUNIA = "yayasan-karunia-insani"
PHONE = "081234567890"  # every test client's phone (harness.data.referral_body)
TYPES = ("Organization", "HealthcareService", "Task", "MeasureReport")


def kick_off(system, key: str, **params) -> requests.Response:
    return requests.get(
        f"{system.base_url}{FHIR}/$export",
        params=params,
        headers={**system.headers(key), "Prefer": "respond-async"},
        timeout=10,
    )


def finished(system, key: str, status_url: str) -> dict:
    """Poll the status URL: 202 with X-Progress until done, then the manifest."""
    seen = []

    def probe():
        response = requests.get(status_url, headers=system.headers(key), timeout=10)
        seen.append(response.status_code)
        if response.status_code == 202:
            assert response.headers["X-Progress"]
            return None
        return response

    response = eventually(probe, "the export to finish", timeout=60)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert set(seen) <= {200, 202}
    return response.json()


def export(system, key: str, **params) -> tuple[dict, dict[str, list[dict]], str]:
    """A whole export: its manifest, each file's resources by type, and all its text."""
    started = kick_off(system, key, **params)
    assert started.status_code == 202, started.text
    manifest = finished(system, key, started.headers["Content-Location"])
    files, text = {}, ""
    for output in manifest["output"]:
        response = requests.get(output["url"], headers=system.headers(key), timeout=30)
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("application/fhir+ndjson")
        lines = response.text.splitlines()
        assert len(lines) == output["count"]
        resources = [json.loads(line) for line in lines]
        for resource in resources:
            assert resource["resourceType"] == output["type"]
            construct_fhir_element(resource["resourceType"], resource)
        files[output["type"]] = resources
        text += response.text
    return manifest, files, text


@pytest.fixture(scope="module")
def world(system):
    """Two referrals to Karunia: the first rejected, then a second, later one."""
    keys = {
        "officer": system.new_key("officer"),
        "karunia": system.new_key("partner", KARUNIA),
        "national": system.new_key("national"),
        "other_national": system.new_key("national"),
    }
    made = []
    # the system's clock stands still (a file): the later referral is made a second later
    started = utcnow()
    for serial in (71, 72):
        system.clock_file.write_text(rfc3339(started + timedelta(seconds=serial - 71)))
        body = referral_body(
            partner_id=KARUNIA, sex="F", birth_date=date(1991, 5, 14), serial=serial
        )
        created = system.post("/api/v1/referrals", body, key=keys["officer"])
        assert created.status_code == 201, created.text
        made.append(created.json())
        if serial == 71:
            rejected = system.post(
                f"/api/v1/referrals/{made[0]['id']}/reject",
                {"reason": "capacity_full"},
                key=keys["karunia"],
            )
            assert rejected.status_code == 200, rejected.text
    system.clock_file.write_text(rfc3339(utcnow()))  # as the other tests leave it
    yield {"keys": keys, "rejected": made[0]["id"], "later": made[1]}
    cancelled = system.post(f"/api/v1/referrals/{made[1]['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text


def test_an_export_is_every_type_as_valid_ndjson_with_nothing_that_identifies_a_client(
    system, world
):
    national = world["keys"]["national"]
    manifest, files, text = export(system, national)
    assert manifest["requiresAccessToken"] is True and manifest["error"] == []
    assert manifest["request"].endswith("/$export") and manifest["transactionTime"]
    assert set(files) == set(TYPES)
    tasks = {t["id"]: t for t in files["Task"]}
    assert tasks[world["rejected"]]["status"] == "rejected"
    assert tasks[world["later"]["id"]]["owner"] == {"reference": f"Organization/{KARUNIA}"}
    assert not any(nik in text for nik in ISSUED_NIKS)
    assert CLIENT_NAME not in text and PHONE not in text
    assert all("contact" not in o for o in files["Organization"])
    # the client only as a pseudonym of this export: not the one rujukan keeps
    client = system.get(f"{FHIR}/Task/{world['rejected']}", key=world["keys"]["officer"])
    assert client.json()["for"]["reference"] not in text
    # the MeasureReports are laporan's monthly export, small cells as it suppressed them
    month = local_date(utcnow()).strftime("%Y-%m")
    recap = system.get("/api/v1/exports/monthly", key=national, params={"period": month})
    assert recap.status_code == 200, recap.text
    row = next(p for p in recap.json()["partners"] if p["partner_id"] == KARUNIA)
    report = next(r for r in files["MeasureReport"] if r["id"] == f"recap.{KARUNIA}.{month}")
    admitted = report["group"][0]["population"][0]
    assert admitted.get("count") == row["admitted_total"]
    assert ("extension" in admitted) is (row["admitted_total"] is None)


def test_two_exports_give_the_same_client_different_pseudonyms(system, world):
    national = world["keys"]["national"]
    firsts = [export(system, national, _type="Task")[1]["Task"] for _ in range(2)]
    pseudonyms = [
        {t["id"]: t["for"]["reference"] for t in tasks if t["id"] == world["rejected"]}
        for tasks in firsts
    ]
    assert pseudonyms[0] and pseudonyms[1]
    assert pseudonyms[0][world["rejected"]] != pseudonyms[1][world["rejected"]]


def test_since_narrows_and_type_filters(system, world):
    national = world["keys"]["national"]
    later = world["later"]
    manifest, files, _ = export(
        system, national, _type="Task,MeasureReport", _since=later["updated_at"]
    )
    assert {o["type"] for o in manifest["output"]} <= {"Task", "MeasureReport"}
    ids = {t["id"] for t in files["Task"]}
    assert later["id"] in ids and world["rejected"] not in ids
    assert "Organization" not in files and "HealthcareService" not in files


@pytest.mark.parametrize(
    "params,status",
    [
        ({"_type": "Patient"}, 400),
        ({"_type": "Task,Encounter"}, 400),
        ({"_since": "2026-11-01"}, 400),
        ({"_since": "kemarin"}, 400),
        ({"_outputFormat": "text/csv"}, 400),
        ({"colour": "x"}, 400),
    ],
)
def test_a_kick_off_that_cannot_be_read_is_refused_as_an_operation_outcome(
    system, world, params, status
):
    response = kick_off(system, world["keys"]["national"], **params)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    construct_fhir_element("OperationOutcome", body)


def test_refusals_who_may_export_and_whose_export(system, world):
    keys = world["keys"]
    without_prefer = system.get(f"{FHIR}/$export", key=keys["national"])
    assert without_prefer.status_code == 400
    assert kick_off(system, keys["officer"]).status_code == 403
    started = kick_off(system, keys["national"], _type="Organization")
    assert started.status_code == 202, started.text
    status_url = started.headers["Content-Location"]
    finished(system, keys["national"], status_url)
    other = requests.get(status_url, headers=system.headers(keys["other_national"]), timeout=10)
    assert other.status_code == 404
    assert other.json()["issue"][0]["details"]["coding"][0]["code"] == "NOT_FOUND"


def test_a_cancelled_export_is_gone_with_its_files(system, world):
    national = world["keys"]["national"]
    started = kick_off(system, national)
    assert started.status_code == 202, started.text
    status_url = started.headers["Content-Location"]
    cancelled = requests.delete(status_url, headers=system.headers(national), timeout=10)
    assert cancelled.status_code == 202, cancelled.text
    assert requests.get(status_url, headers=system.headers(national), timeout=10).status_code == 404
    again = requests.delete(status_url, headers=system.headers(national), timeout=10)
    assert again.status_code == 404
