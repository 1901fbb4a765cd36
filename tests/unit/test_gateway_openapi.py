"""The OpenAPI document says what the gateway and the services check: the shapes in it
are the ones that validate, and the server refuses what it forbids."""

from __future__ import annotations

import re
import sys
from datetime import date

import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

import gateway.service  # noqa: F401 - registers every route
from bersinar.attachments import CONTENT_TYPES
from bersinar.contracts import NOT_BLANK
from bersinar.contracts.notifications import WEBHOOK_URL, WebhookCreate
from bersinar.contracts.partners import AgreementTermination
from bersinar.contracts.referrals import ConsentInput, RejectInput, SubstanceScore
from bersinar.contracts.reports import PERIOD, ReportInput
from bersinar.errors import NotFound, ValidationFailed
from gateway.http import ROUTES, check_path, page_of
from gateway.openapi import NO_NUL, build_spec
from gateway.schemas import PATH_PARAMETERS, ApiKeyCreate, ReturnInput
from services.laporan.domain import valid_period
from services.rujukan.domain import check_nik


@pytest.fixture(scope="module")
def spec():
    return build_spec()


def allows(schema: dict, value) -> bool:
    """What a client generated from the document accepts (ECMA regular expressions:
    ``$`` is the end of the text)."""
    return jsonschema_rs.Draft4Validator(schema).is_valid(value)


def operations(spec):
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            yield method, path, operation


def test_period_states_its_pattern_and_range_and_the_server_refuses_the_rest(spec):
    path = spec["paths"]["/api/v1/reports/{partner_id}/{period}"]["get"]
    period = next(p for p in path["parameters"] if p["name"] == "period")
    query = next(
        p for p in spec["paths"]["/api/v1/indicators"]["get"]["parameters"] if p["name"] == "period"
    )
    assert period["schema"]["pattern"] == query["schema"]["pattern"]
    for text in ("2000-01", "2026-12", "2099-12"):
        assert allows(period["schema"], text) and PERIOD(text) and valid_period(text)
    for text in ("9999-13", "2026-13", "2026-00", "1999-12", "2100-01", "2026-12\n", "٢٠٢٦-01"):
        assert not allows(period["schema"], text), text
        assert not valid_period(text), text
        with pytest.raises(ValidationError):
            PERIOD(text)
        with pytest.raises(ValidationFailed):
            check_path({"partner_id": "yayasan-kipas", "period": text})


def test_every_path_argument_has_a_shape_the_gateway_checks(spec):
    for method, path, operation in operations(spec):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                schema = parameter["schema"]
                assert "pattern" in schema or "enum" in schema, (method, path, parameter)
    check_path(
        {"partner_id": "yayasan-kipas", "referral_id": "0f8fad5b-d9cb-469f-a165-70867728950e"}
    )
    for name, value in (
        ("partner_id", "match"),  # the route /api/v1/partners/match
        ("partner_id", "Yayasan Kipas"),
        ("referral_id", "tidak-ada"),
        ("key_id", "0f8fad5b-d9cb-469f-a165-70867728950e\n"),
        ("filename", "../__init__.py"),
    ):
        with pytest.raises(NotFound):
            check_path({name: value})
    assert set(PATH_PARAMETERS) == {name for route in ROUTES for name in route.path_arguments}


def test_every_operation_has_an_id_and_every_answer_it_can_give(spec):
    ids = [operation["operationId"] for _, _, operation in operations(spec)]
    assert len(ids) == len(set(ids)) == len(ROUTES)
    problem = {"$ref": "#/components/schemas/Problem"}
    for method, path, operation in operations(spec):
        responses = operation["responses"]
        if "security" in operation:
            assert {"401", "403", "404", "422", "429", "503"} <= set(responses), (method, path)
        if "requestBody" in operation:
            assert {"400", "413", "415"} <= set(responses), (method, path)
            taken = set(operation["requestBody"]["content"])
            # a JSON body, or a file: an attachment, judged by its content
            assert taken in ({"application/json"}, set(CONTENT_TYPES)), (method, path)
        for status, response in responses.items():
            if status >= "400":
                assert response["content"]["application/problem+json"]["schema"] == problem
    assert "Retry-After" in spec["paths"]["/api/v1/partners"]["get"]["responses"]["429"]["headers"]


def test_links_lead_from_a_created_resource_to_what_acts_on_it(spec):
    by_id = {operation["operationId"]: (path, operation) for _, path, operation in operations(spec)}
    created = spec["paths"]["/api/v1/api-keys"]["post"]["responses"]["201"]["links"]
    assert created == {
        "RevokeApiKey": {
            "operationId": "revoke_api_key",
            "parameters": {"key_id": "$response.body#/id"},
        }
    }
    referral = spec["paths"]["/api/v1/referrals"]["post"]["responses"]["201"]["links"]
    assert {"GetReferral", "AcceptReferral", "CancelReferral", "TransferReferral"} <= set(referral)
    terminate = spec["paths"]["/api/v1/partners/{partner_id}/agreements"]["post"]["responses"][
        "201"
    ]["links"]["TerminateAgreement"]
    assert terminate["parameters"] == {
        "partner_id": "$request.path.partner_id",
        "agreement_id": "$response.body#/id",
    }
    for _, _, operation in operations(spec):
        for response in operation["responses"].values():
            for link in response.get("links", {}).values():
                path, _ = by_id[link["operationId"]]
                assert set(link["parameters"]) == set(re.findall(r"{(\w+)}", path))


def test_rules_across_fields_are_in_the_document(spec):
    schemas = spec["components"]["schemas"]
    assert schemas["PartnerPatch"]["minProperties"] == 1
    assert schemas["ConsentInput"]["properties"]["given"]["enum"] == [True]
    key_roles = [
        branch["properties"]["role"]["enum"] for branch in schemas["ApiKeyCreate"]["oneOf"]
    ]
    assert key_roles == [["partner"], ["admin", "officer", "national", "ops"]]
    by_sex = schemas["ReportCounts"]["properties"]["by_sex"]
    assert set(by_sex["properties"]) == {"M", "F"} and by_sex["additionalProperties"] is False
    scores = schemas["ActivityInput"]["properties"]["scores"]
    assert scores["additionalProperties"] is False and len(scores["required"]) == 5
    assessment = schemas["ReferralCreate"]["properties"]["assessment"]
    assert assessment == {
        "default": None,
        "allOf": [{"$ref": "#/components/schemas/AssessmentInput"}],
        "nullable": True,
    }
    assert schemas["Counts"]["properties"]["start"]["minimum"] == 0
    assert schemas["ReportInput"]["required"] == ["counts", "narrative"]
    assert schemas["ReturnInput"]["required"] == ["comment"]
    unprocessable = spec["paths"]["/api/v1/referrals"]["post"]["responses"]["422"]
    # a minor without a guardian, a client who withdrew consent: the consent's rules
    assert unprocessable["x-codes"] == ["VALIDATION_ERROR", "NOT_ELIGIBLE", "CONSENT_REQUIRED"]
    withdrawal = spec["paths"]["/api/v1/referrals/{referral_id}/consent/withdraw"]["post"]
    assert withdrawal["responses"]["422"]["x-codes"] == ["VALIDATION_ERROR", "DATE_OUT_OF_RANGE"]
    search = schemas["ClientSearch"]
    assert search["anyOf"] == [{"required": ["nik"]}, {"required": ["name"]}]
    # a free text without a pattern of its own holds no NUL, which the server refuses
    assert schemas["PartnerCreate"]["properties"]["name"]["pattern"] == NO_NUL


def test_what_the_document_forbids_the_contracts_refuse():
    with pytest.raises(ValidationError):
        ApiKeyCreate().load({"role": "ops", "label": "x", "partner_id": "yayasan-kipas"})
    with pytest.raises(ValidationError):
        ApiKeyCreate().load({"role": "partner", "label": "x"})
    for sent in ("true", 1, "yes"):
        with pytest.raises(ValidationError):
            ConsentInput().load({"given": sent})
    with pytest.raises(ValidationError):
        SubstanceScore().load({"substance": "ganja", "score": "5"})
    RejectInput().load({"reason": "other", "note": " alasan "})
    # dates and times as RFC 3339 writes them, which is what `format` means
    for day in ("20260105", "2026-W01-1", "2026-02-30"):
        with pytest.raises(ValidationError):
            AgreementTermination().load({"reason": "selesai", "terminated_on": day})
    for moment in ("2026-01-05 00:00:00Z", "2026-01-05T00:00Z", "0001-01-01T00:00:00+23:59"):
        with pytest.raises(ValidationError):
            ConsentInput().load({"given": True, "given_at": moment})
    assert ConsentInput().load({"given": True, "given_at": "2026-01-05t07:00:00z"})["given_at"]
    with pytest.raises(ValidationError):
        ReportInput().load({"counts": {"total": {}}, "narrative": "x", "extra": 1})
    ReturnInput().load({"comment": "Perbaiki angka."})


def test_not_blank_is_what_strip_leaves_something_of():
    not_blank = re.compile(NOT_BLANK)
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        if 0xD800 <= code <= 0xDFFF:
            continue
        expected = char != "\x00" and bool(char.strip())
        assert bool(not_blank.fullmatch(char)) == expected, hex(code)
    assert not_blank.fullmatch("  ada isi\n") and not not_blank.fullmatch("isi\x00")
    # and a client reading the document agrees, on every blank and a few that are not
    document = {"type": "string", "pattern": NOT_BLANK}
    blanks = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
    assert not any(allows(document, f"{blank}{blank}") for blank in blanks)
    assert all(allows(document, f" {kept} ") for kept in ("a", "\ufeff", "\u200b", "."))


@settings(max_examples=200, deadline=None)
@given(st.from_regex(WEBHOOK_URL, fullmatch=True).filter(lambda url: len(url) <= 500))
def test_every_webhook_address_the_document_allows_is_taken(url):
    WebhookCreate().load({"url": url, "event_types": ["referral_requested"]})


@pytest.mark.parametrize("url", ["http://a.b", "http://a?", "HTTP://a", "ftp://a", "http://-a"])
def test_a_webhook_address_the_document_forbids_is_refused(url):
    assert not allows({"type": "string", "pattern": WEBHOOK_URL}, url)
    with pytest.raises(ValidationError):
        WebhookCreate().load({"url": url, "event_types": ["referral_requested"]})


def test_a_page_cursor_of_the_right_shape_is_always_a_page():
    items = [{"id": str(n)} for n in range(5)]
    first = page_of(items, {"limit": 2})
    assert first == {"items": items[:2], "next_cursor": "2"}
    assert page_of(items, {"limit": 2, "cursor": "4"}) == {"items": items[4:], "next_cursor": None}
    assert page_of(items, {"limit": 2, "cursor": "999999"}) == {"items": [], "next_cursor": None}


def test_every_example_in_the_document_passes_the_checks_it_stands_for(spec):
    examples = [route for route in ROUTES if route.example is not None]
    assert len(examples) >= 10
    for route in examples:
        route.body().load(route.example)
    for name, parameter in PATH_PARAMETERS.items():
        example = parameter.field.metadata.get("example")
        if example is not None:
            check_path({name: example})
    body = spec["paths"]["/api/v1/referrals"]["post"]["requestBody"]["content"]["application/json"]
    client = body["example"]["client"]
    check_nik(client["nik"], date.fromisoformat(client["birth_date"]), client["sex"])
