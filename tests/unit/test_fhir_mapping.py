"""The FHIR interface's mapping without a broker: every resource made of the REST
contracts' shapes validates against FHIR R4 4.0.1 (fhir.resources), the referral states
map to Task states as docs/fhir.md says, identity appears only when rujukan gave it, and
search parameters are read (or refused) as FHIR defines them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fhir.resources import construct_fhir_element

from bersinar import codes
from gateway.fhir import resources as fhir
from gateway.fhir import terms
from gateway.fhir.capability import capability_statement
from gateway.fhir.search import (
    SearchRefused,
    date_window,
    history,
    matches_text,
    operation_outcome,
    read_search,
    reference_id,
    searchset,
    token_codes,
)
from gateway.fhir.web import FHIR_ROUTES
from gateway.routes.fhir import FhirRoutes  # noqa: F401  (registers the routes)

BASE = "http://127.0.0.1:8000/fhir/R4"
PARTNER = {
    "id": "yayasan-karunia-insani",
    "name": "Yayasan Karunia Insani Foundation",
    "kind": "foundation",
    "kabupaten_kota": "Rejang Lebong",
    "address": "Jl. Merdeka No. 5, Curup",
    "sex_served": "female",
    "age_groups": ["adolescent", "adult"],
    "status": "active",
    "accreditation": None,
    "version": 3,
    "updated_at": "2026-11-02T03:00:00Z",
    "services": [
        {
            "service_type": "inpatient",
            "capacity": 12,
            "unit": "klien",
            "updated_at": "2026-11-02T03:00:00Z",
        },
        {
            "service_type": "outpatient",
            "capacity": 20,
            "unit": "klien",
            "updated_at": "2026-10-01T03:00:00Z",
        },
    ],
    "agreements": [],
    "contacts": [
        {
            "name": "Operator Karunia",
            "role": "operator",
            "email": "operator@example.org",
            "phone": "+6281234567890",
            "whatsapp": None,
        }
    ],
}
CLIENT = {"id": "5f0c7f0e-8c1e-4a57-9a8e-0b6d7f1e2a31", "sex": "F", "age_group": "25-34"}
REFERRAL = {
    "id": "0f8fad5b-d9cb-469f-a165-70867728950e",
    "status": "requested",
    "partner_id": "yayasan-karunia-insani",
    "service_type": "inpatient",
    "source": "TAT",
    "previous_referral_id": None,
    "transferred_from_id": None,
    "transferred_to_id": None,
    "rejection_reason": None,
    "client": {**CLIENT, "previous_referrals": 0},
    "response_due_at": "2026-11-05T03:00:00Z",
    "response_overdue": False,
    "responded_at": None,
    "admitted_at": None,
    "ended_at": None,
    "created_at": "2026-11-03T03:00:00Z",
    "updated_at": "2026-11-03T03:00:00Z",
}
HISTORY = [
    {"from_status": None, "to_status": "requested", "at": "2026-11-03T03:00:00Z"},
    {"from_status": "requested", "to_status": "accepted", "at": "2026-11-03T05:00:00Z"},
    {"from_status": "accepted", "to_status": "admitted", "at": "2026-11-04T02:00:00Z"},
    {"from_status": "admitted", "to_status": "completed", "at": "2026-11-20T02:00:00Z"},
]
INDICATOR_ROW = {
    "partner_id": "yayasan-karunia-insani",
    "reporting_rate": 1.0,
    "on_time_rate": 1.0,
    "acceptance_rate": 0.5,
    "median_response_hours": 2.5,
    "completion_rate": None,
    "dropout_rate": None,
    "occupancy": 0.25,
    "target_reached": 0.1,
    "figures": {
        "expected_reports": 1,
        "submitted_reports": 1,
        "on_time_reports": 1,
        "requested": 2,
        "accepted": 1,
        "answered": 2,
        "admitted": 1,
        "completed": 0,
        "dropped_out": 0,
        "exits": 0,
        "in_care_at_end": 3,
        "capacity": 12,
        "admitted_this_year": 4,
        "annual_target": 40,
    },
}


def valid(resource: dict) -> dict:
    """The resource as FHIR R4 reads it (fhir.resources raises on anything invalid)."""
    model = construct_fhir_element(resource["resourceType"], resource)
    assert model.resource_type == resource["resourceType"]
    return resource


def test_a_partner_is_an_organization_with_its_contacts_only_when_mitra_showed_them():
    organization = valid(fhir.organization(PARTNER))
    assert organization["active"] is True
    assert organization["meta"] == {"versionId": "3", "lastUpdated": "2026-11-02T03:00:00Z"}
    assert organization["type"][0]["coding"][0] == terms.PARTNER_KIND.coding("foundation")
    assert organization["address"][0]["district"] == "Rejang Lebong"
    assert organization["contact"][0]["telecom"][0]["value"] == "+6281234567890"
    hidden = valid(fhir.organization({**PARTNER, "contacts": None, "status": "inactive"}))
    assert "contact" not in hidden and hidden["active"] is False


def test_each_offer_is_a_healthcare_service_with_capacity_and_free_places_for_staff():
    services = [
        valid(s) for s in fhir.healthcare_services(PARTNER, {(PARTNER["id"], "inpatient"): 5})
    ]
    assert [s["id"] for s in services] == [
        "yayasan-karunia-insani.inpatient",
        "yayasan-karunia-insani.outpatient",
    ]
    extensions = {e["url"]: e for e in services[0]["extension"]}
    assert extensions[terms.CAPACITY.url]["valueUnsignedInt"] == 12
    assert extensions[terms.FREE_PLACES.url]["valueInteger"] == 7
    eligibility = [e["code"]["coding"][0]["code"] for e in services[0]["eligibility"]]
    assert eligibility == ["female", "adolescent", "adult"]
    assert services[1]["meta"]["lastUpdated"] == "2026-10-01T03:00:00Z"
    unseen = fhir.healthcare_services(PARTNER, None)
    assert all(e["url"] != terms.FREE_PLACES.url for s in unseen for e in s["extension"])
    assert fhir.split_service_id(services[0]["id"]) == (PARTNER["id"], "inpatient")
    assert fhir.split_service_id("yayasan-kipas.surgery") is None


@pytest.mark.parametrize(("state", "task_status"), sorted(fhir.TASK_STATUS.items()))
def test_every_referral_state_is_a_task_state_with_the_referral_state_as_business_status(
    state, task_status
):
    referral = {**REFERRAL, "status": state}
    if state == "rejected":
        referral["rejection_reason"] = "capacity_full"
    task = valid(fhir.task(referral))
    assert task["status"] == task_status
    assert task["businessStatus"]["coding"][0] == terms.REFERRAL_STATUS.coding(state)
    assert task["owner"] == {"reference": "Organization/yayasan-karunia-insani"}
    assert task["focus"] == {"reference": f"ServiceRequest/{REFERRAL['id']}"}
    assert task["for"] == {"reference": f"Patient/{CLIENT['id']}"}
    if state == "rejected":
        assert task["statusReason"]["coding"][0] == {
            "system": terms.REJECTION_REASON.url,
            "code": "capacity_full",
            "display": "Kapasitas penuh",
        }
    else:
        assert "statusReason" not in task
    assert ("restriction" in task) == (state == "requested")
    valid(fhir.service_request(referral))


def test_every_referral_state_has_a_task_and_a_request_state():
    assert set(fhir.TASK_STATUS) == set(codes.REFERRAL_STATUSES)
    assert set(fhir.REQUEST_STATUS) == set(codes.REFERRAL_STATUSES)


def test_a_tasks_history_is_a_version_per_transition_and_the_last_is_the_task_read():
    referral = {
        **REFERRAL,
        "status": "completed",
        "admitted_at": HISTORY[2]["at"],
        "ended_at": HISTORY[3]["at"],
        "updated_at": HISTORY[3]["at"],
    }
    versions = [valid(v) for v in fhir.task_versions(referral, HISTORY)]
    assert [v["status"] for v in versions] == ["requested", "accepted", "in-progress", "completed"]
    assert [v["meta"]["versionId"] for v in versions] == ["1", "2", "3", "4"]
    assert versions[2]["executionPeriod"] == {"start": HISTORY[2]["at"]}
    assert versions[-1] == fhir.task(referral, HISTORY)
    assert versions[-1]["executionPeriod"] == {"start": HISTORY[2]["at"], "end": HISTORY[3]["at"]}
    bundle = valid(history(BASE, f"{BASE}/Task/{referral['id']}/_history", versions))
    assert [e["resource"]["meta"]["versionId"] for e in bundle["entry"]] == ["4", "3", "2", "1"]
    assert bundle["entry"][-1]["request"] == {"method": "POST", "url": "Task"}


def test_a_rejection_in_the_history_carries_its_coded_reason():
    rejected = [
        HISTORY[0],
        {"from_status": "requested", "to_status": "rejected", "reason": "other", "at": "x"},
    ]
    referral = {**REFERRAL, "status": "rejected", "rejection_reason": "other"}
    versions = fhir.task_versions(referral, rejected)
    assert versions[1]["statusReason"]["coding"][0]["code"] == "other"
    assert "statusReason" not in versions[0]


def test_an_ended_task_carries_its_discharge_summary_as_coded_outputs():
    summary = {
        "outcome": "improved",
        "reasons": ["program_completed", "relocation"],
        "aftercare_plan": "Konseling keluarga.",
        "follow_up_on": "2026-12-01",
    }
    ended = [
        *({**h, "discharge": None} for h in HISTORY[:3]),
        {**HISTORY[3], "discharge": summary},
    ]
    referral = {**REFERRAL, "status": "completed", "updated_at": HISTORY[3]["at"]}
    versions = [valid(v) for v in fhir.task_versions(referral, ended)]
    assert all("output" not in v for v in versions[:3])
    outputs = versions[-1]["output"]
    assert [o["type"]["coding"][0]["code"] for o in outputs] == ["outcome", "reason", "reason"]
    assert outputs[0]["valueCodeableConcept"]["coding"][0] == terms.DISCHARGE_OUTCOME.coding(
        "improved"
    )
    assert outputs[0]["valueCodeableConcept"]["text"] == "Membaik"
    assert [o["valueCodeableConcept"]["coding"][0]["code"] for o in outputs[1:]] == [
        "program_completed",
        "relocation",
    ]
    assert "Konseling" not in repr(versions)
    assert "output" not in fhir.task(referral)  # without the history: not known
    assert terms.CODE_SYSTEMS["discharge-outcome"].codes is codes.DISCHARGE_OUTCOMES


def test_a_transferred_referrals_successor_replaces_its_request():
    request = valid(fhir.service_request({**REFERRAL, "transferred_from_id": "abc-1"}))
    assert request["replaces"] == [{"reference": "ServiceRequest/abc-1"}]
    assert request["code"]["coding"][0] == terms.SERVICE_TYPE.coding("inpatient")
    assert request["category"][0]["coding"][0]["code"] == "TAT"


def test_a_de_identified_referral_is_a_task_and_request_naming_no_client():
    """What rujukan answers a national key (client None) maps to no Patient at all."""
    referral = {**REFERRAL, "status": "rejected", "rejection_reason": "capacity_full"}
    referral["client"] = None
    task = valid(fhir.task(referral, HISTORY[:1]))
    request = valid(fhir.service_request(referral))
    assert "for" not in task and task["statusReason"]["coding"][0]["code"] == "capacity_full"
    assert request["subject"]["extension"] == [terms.masked()]
    assert "Patient" not in str(task) + str(request) and CLIENT["id"] not in str(request)


def test_a_patient_is_a_pseudonym_sex_and_age_group_and_identity_only_when_given():
    bare = valid(fhir.patient(CLIENT))
    assert bare["gender"] == "female"
    assert bare["identifier"] == [{"system": terms.PSEUDONYM_SYSTEM, "value": CLIENT["id"]}]
    assert "name" not in bare and "birthDate" not in bare
    assert bare["extension"][0]["valueCoding"]["code"] == "25-34"
    identity = {"nik": "1771014503950012", "name": "Siti", "phone": None, "birth_date": "x"}
    known = valid(fhir.patient({**CLIENT, "identity": identity}))
    assert {"use": "official", "system": terms.NIK_SYSTEM, "value": "1771014503950012"} in known[
        "identifier"
    ]
    assert known["name"] == [{"use": "official", "text": "Siti"}]
    assert "telecom" not in known and "birthDate" not in known


def test_each_indicator_is_a_measure_in_indonesian_and_english():
    measures = [valid(m) for m in fhir.measures()]
    indicators = [fhir.fhir_id(c) for c in codes.INDICATORS]
    assert [m["id"] for m in measures] == ["monev", *indicators, "monthly-recap"]
    for measure in measures[1:-1]:
        translation = measure["_description"]["extension"][0]["extension"]
        assert translation[0] == {"url": "lang", "valueCode": "en"}
        code = measure["group"][0]["code"]["coding"][0]["code"]
        assert measure["description"] == codes.INDICATOR_DEFINITIONS[code]
        assert translation[1]["valueString"] == codes.INDICATOR_DEFINITIONS_EN[code]


def test_a_partners_month_is_a_measure_report_with_its_indicators_and_report_counts():
    counts = {"start": 2, "admitted": 1, "completed": 0, "dropped_out": 0, "transferred_out": 0}
    report = {"status": "approved", "content": {"counts": {"total": {**counts, "end": 3}}}}
    measure_report = valid(fhir.measure_report(INDICATOR_ROW, "2026-02", report))
    assert measure_report["id"] == "yayasan-karunia-insani.2026-02"
    assert measure_report["period"] == {"start": "2026-02-01", "end": "2026-02-28"}
    assert measure_report["status"] == "complete"
    groups = {g["code"]["coding"][0]["code"]: g for g in measure_report["group"]}
    assert groups["acceptance_rate"]["measureScore"] == {"value": 0.5}
    assert [p["count"] for p in groups["acceptance_rate"]["population"]] == [1, 2]
    assert groups["median_response_hours"]["measureScore"]["unit"] == "h"
    assert "measureScore" not in groups["completion_rate"]
    assert groups["end"]["measureScore"] == {"value": 3}
    pending = valid(fhir.measure_report(INDICATOR_ROW, "2026-12", None))
    assert pending["status"] == "pending"
    assert {g["code"]["coding"][0]["code"] for g in pending["group"]} == set(codes.INDICATORS)
    assert fhir.split_report_id(pending["id"]) == ("yayasan-karunia-insani", "2026-12")


def test_code_systems_are_the_code_lists_and_extensions_have_their_definitions():
    for terms_ in terms.CODE_SYSTEMS.values():
        system = valid(terms.code_system(terms_))
        assert [c["code"] for c in system["concept"]] == list(terms_.codes)
    assert terms.CODE_SYSTEMS["rejection-reason"].codes is codes.REJECTION_REASONS
    for extension in terms.EXTENSIONS.values():
        definition = valid(terms.structure_definition(extension))
        assert definition["url"] == extension.url


def test_the_capability_statement_claims_exactly_the_registered_routes():
    statement = valid(capability_statement(FHIR_ROUTES, BASE))
    claimed = {
        (r["type"], i["code"]) for r in statement["rest"][0]["resource"] for i in r["interaction"]
    }
    registered = {(r.resource_type, r.interaction) for r in FHIR_ROUTES if r.resource_type}
    assert claimed == registered
    assert statement["fhirVersion"] == "4.0.1"


def test_an_error_is_an_operation_outcome_with_the_stable_code():
    outcome = valid(
        operation_outcome(404, "NOT_FOUND", "Data tidak ditemukan", "Tidak ada.", {"id": ["x"]})
    )
    assert outcome["issue"][0]["code"] == "not-found"
    assert outcome["issue"][0]["details"]["coding"][0] == {
        "system": terms.ERROR_SYSTEM,
        "code": "NOT_FOUND",
        "display": "Data tidak ditemukan",
    }
    assert outcome["issue"][1]["diagnostics"] == "id: x"
    assert operation_outcome(429, "RATE_LIMITED", "t", "d")["issue"][0]["code"] == "throttled"


def test_a_searchset_pages_with_links():
    bundle = valid(
        searchset(BASE, f"{BASE}/Organization", [fhir.organization(PARTNER)], f"{BASE}/n", 7)
    )
    assert bundle["total"] == 7
    assert [link["relation"] for link in bundle["link"]] == ["self", "next"]
    assert bundle["entry"][0]["fullUrl"] == f"{BASE}/Organization/yayasan-karunia-insani"


WIB = codes.LOCAL_TZ


@pytest.mark.parametrize(
    ("values", "window"),
    [
        (["2026-11"], (datetime(2026, 11, 1, tzinfo=WIB), datetime(2026, 12, 1, tzinfo=WIB))),
        (["ge2026-11-02"], (datetime(2026, 11, 2, tzinfo=WIB), None)),
        (["gt2026-11-02"], (datetime(2026, 11, 3, tzinfo=WIB), None)),
        (["lt2026"], (None, datetime(2026, 1, 1, tzinfo=WIB))),
        (["le2026-12"], (None, datetime(2027, 1, 1, tzinfo=WIB))),
        (
            ["ge2026-11-02T10:00:00Z", "lt2026-11-03"],
            (datetime(2026, 11, 2, 10, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=WIB)),
        ),
        (None, (None, None)),
    ],
)
def test_last_updated_reads_as_a_window_of_instants(values, window):
    assert date_window(values) == window


@pytest.mark.parametrize(
    "value", ["ne2026", "sa2026", "2026-13", "2026-02-30", "yesterday", "26", "1899", "ge2099"]
)
def test_a_date_that_cannot_be_read_is_refused(value):
    with pytest.raises(SearchRefused) as refused:
        date_window([value])
    assert refused.value.status == 400 and refused.value.code == "VALIDATION_ERROR"


def test_unknown_parameters_and_bad_pages_are_refused_and_known_ones_read():
    search = read_search({"status": ["requested,accepted"], "_count": ["5"]}, ["status"])
    assert search.any_of("status") == ["requested", "accepted"] and search.count == 5
    for bad in ({"nope": ["1"]}, {"_count": ["0"]}, {"_count": ["201"]}, {"_format": ["xml"]}):
        with pytest.raises(SearchRefused):
            read_search(bad, ["status"])
    assert token_codes(["http://x|a", "|b", "c", "other|d"], "http://x", "t") == {"a", "b", "c"}
    assert reference_id("Organization/yayasan-kipas", "Organization", "owner") == "yayasan-kipas"
    with pytest.raises(SearchRefused):
        reference_id("Patient/x", "Organization", "owner")


def test_string_search_matches_the_start_of_a_word_or_contains_or_exact():
    place = ["Jl. Merdeka No. 5, Curup", "Rejang Lebong"]
    assert matches_text("curup", place) and matches_text("rejang", place)
    assert not matches_text("ejang", place) and matches_text("ejang", place, "contains")
    assert matches_text("Rejang Lebong", place, "exact")
    assert not matches_text("rejang lebong", place, "exact")
