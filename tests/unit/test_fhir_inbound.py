"""An inbound referral as a FHIR transaction Bundle, without a broker: the Bundle reads
into the body of POST /api/v1/referrals (which the same contract then checks), anything
else is refused naming where, and the answer is a valid transaction-response."""

from __future__ import annotations

import copy

import pytest
from fhir.resources import construct_fhir_element

from bersinar.contracts.referrals import ReferralCreate
from gateway.fhir.inbound import (
    TransactionRefused,
    bundle_key,
    referral_from_transaction,
    transaction_response,
)
from harness.data import referral_bundle

PATIENT = "urn:uuid:00000001-0000-4000-8000-000000000000"
NIK = "1771014503950012"  # a woman born 5 March 1995, number 12


def transaction(**changes) -> dict:
    """A referral of a woman to Karunia's inpatient service, as a national system sends it."""
    return {**referral_bundle(serial=11), **changes}


def test_the_sample_is_a_valid_fhir_r4_transaction():
    construct_fhir_element("Bundle", transaction())


def test_a_transaction_reads_as_the_body_of_post_referrals():
    payload = referral_from_transaction(transaction())
    assert payload == {
        "client": {
            "nik": NIK,
            "name": "Klien Uji",
            "birth_date": "1995-03-05",
            "sex": "F",
            "phone": "081298765432",
        },
        "source": "TAT",
        "service_type": "inpatient",
        "partner_id": "yayasan-karunia-insani",
        "consent": {"given": True, "given_at": "2026-11-03T10:00:00+07:00"},
    }
    ReferralCreate().load(payload)  # the REST contract reads it
    assert bundle_key(transaction()) == "https://sistem.bnn.go.id/rujukan|R-2026-0001"
    assert bundle_key(transaction(identifier=None)) is None


def test_without_an_active_consent_the_consent_is_not_given():
    bundle = transaction()
    bundle["entry"].pop()
    assert referral_from_transaction(bundle)["consent"] == {"given": False}
    bundle = transaction()
    bundle["entry"][3]["resource"]["status"] = "rejected"
    assert referral_from_transaction(bundle)["consent"]["given"] is False


def _spoil(path, value):
    bundle = copy.deepcopy(transaction())
    node = bundle
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return bundle


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        (("type",), "batch", "Bundle.type"),
        (("entry", 0, "resource", "identifier"), [], "Patient.identifier"),
        (("entry", 0, "resource", "gender"), "other", "Patient.gender"),
        (("entry", 0, "resource", "name"), KeyError, "Patient.name"),
        (
            ("entry", 1, "resource", "code"),
            {"coding": [{"code": "inpatient"}]},
            "ServiceRequest.code",
        ),
        (("entry", 1, "resource", "subject"), {"reference": "Patient/x"}, "ServiceRequest.subject"),
        (
            ("entry", 1, "resource", "performer"),
            [{"reference": "Organization/yayasan-kipas"}],
            "ServiceRequest.performer[0]",
        ),
        (("entry", 2, "resource", "owner"), {"reference": "Practitioner/x"}, "Task.owner"),
        (("entry", 2, "resource", "status"), "accepted", "Task"),
        (("entry", 2, "resource", "focus"), {"reference": PATIENT}, "Task.focus"),
        (("entry", 2, "request", "method"), "PUT", "Bundle.entry[2].request"),
        (("entry", 2, "fullUrl"), "Task/1", "Bundle.entry[2].fullUrl"),
        (("entry", 3, "resource", "resourceType"), "Observation", "Bundle.entry[3].resource"),
        (("entry", 2), KeyError, "Bundle.entry"),
        (("identifier",), {"system": "x"}, "Bundle.identifier.value"),
    ],
)
def test_anything_else_is_refused_naming_where(path, value, where):
    bundle = _spoil(path, value)
    with pytest.raises(TransactionRefused) as refused:
        referral_from_transaction(bundle)
        bundle_key(bundle)
    assert refused.value.status == 400 and refused.value.code == "VALIDATION_ERROR"
    assert where in refused.value.errors


def test_the_answer_says_where_each_entry_can_be_read():
    referral = {
        "id": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "client": {"id": "5f0c7f0e-8c1e-4a57-9a8e-0b6d7f1e2a31"},
        "created_at": "2026-11-03T03:00:00Z",
    }
    answer = transaction_response(transaction(), referral)
    construct_fhir_element("Bundle", answer)
    assert [e["response"].get("location") for e in answer["entry"]] == [
        "Patient/5f0c7f0e-8c1e-4a57-9a8e-0b6d7f1e2a31",
        "ServiceRequest/0f8fad5b-d9cb-469f-a165-70867728950e",
        "Task/0f8fad5b-d9cb-469f-a165-70867728950e/_history/1",
        None,
    ]
    assert {e["response"]["status"] for e in answer["entry"]} == {"201 Created"}
