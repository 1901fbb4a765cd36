"""The gateway's one error table, and the referral contract it validates with."""

from __future__ import annotations

import json
import logging

import pytest
from marshmallow import ValidationError

from bersinar.contracts.referrals import ReferralCreate
from bersinar.entrypoints import RemoteDomainError
from bersinar.errors import CapacityFull, DomainError, NotFound, ValidationFailed
from gateway.http import ROUTES, response_for_error

PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}


def answer(exc):
    response = response_for_error(exc)
    assert response.mimetype == "application/problem+json"
    body = json.loads(response.get_data(as_text=True))
    assert PROBLEM_KEYS <= set(body)
    assert body["status"] == response.status_code
    return response.status_code, body


def referral(**changes):
    body = {
        "client": {
            "nik": "1771011708900001",
            "name": "Budi Santoso",
            "birth_date": "1990-08-17",
            "sex": "M",
        },
        "source": "TAT",
        "service_type": "inpatient",
        "partner_id": "yayasan-kipas",
        "consent": {"given": True},
    }
    body.update(changes)
    return body


def validation_error(data) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        ReferralCreate().load(data)
    return caught.value


@pytest.mark.parametrize(
    "data",
    [
        referral(client={**referral()["client"], "nik": "123"}, service_type="spa"),
        referral(consent={"given": "ya"}, extra=1),
        {"client": [1, 2]},
        [referral()],
        "rujukan",
    ],
)
def test_a_referral_body_refused_by_rujukan_is_answered_as_the_gateway_would(data):
    """POST /api/v1/referrals is validated once, by rujukan (``validated_by``): its
    refusal crosses RPC as a RemoteDomainError (JSON on the wire) and must be answered
    exactly as the gateway's own validation with the same contract answered it."""
    exc = validation_error(data)
    error = ValidationFailed(errors=exc.normalized_messages())  # rujukan's Rpc entrypoint
    wire = json.loads(json.dumps([error.code, error.status, error.title, error.detail,
                                  error.errors]))  # fmt: skip
    assert answer(RemoteDomainError(*wire)) == answer(exc)
    import gateway.service  # noqa: F401  (registers the routes)

    create = next(r for r in ROUTES if (r.method, r.path) == ("POST", "/api/v1/referrals"))
    assert (create.validated_by, create.body) == ("rujukan", ReferralCreate)


# --- response_for_error ----------------------------------------------------------------


def test_marshmallow_validation_error_is_422_with_errors_by_field():
    exc = validation_error(
        referral(client={**referral()["client"], "nik": "123"}, service_type="spa")
    )
    status, body = answer(exc)
    assert status == 422
    assert body["code"] == "VALIDATION_ERROR"
    assert set(body["errors"]) == {"client", "service_type"}
    assert set(body["errors"]["client"]) == {"nik"}


def test_not_found_is_404():
    status, body = answer(NotFound("Rujukan tidak ditemukan."))
    assert (status, body["code"]) == (404, "NOT_FOUND")
    assert body["detail"] == "Rujukan tidak ditemukan."


def test_remote_domain_error_keeps_its_code_and_status():
    status, body = answer(RemoteDomainError("CAPACITY_FULL", 409, "t", "d"))
    assert (status, body["code"], body["title"], body["detail"]) == (409, "CAPACITY_FULL", "t", "d")
    assert "errors" not in body


def test_remote_domain_error_carries_its_errors():
    status, body = answer(
        RemoteDomainError("NOT_ELIGIBLE", "422", "t", "d", {"partner_id": ["tidak aktif"]})
    )
    assert (status, body["code"]) == (422, "NOT_ELIGIBLE")
    assert body["errors"] == {"partner_id": ["tidak aktif"]}


def test_subclass_of_a_domain_error_maps_by_isinstance():
    class ReferralNotFound(NotFound):
        pass

    class WaitingListFull(CapacityFull):
        pass

    assert answer(ReferralNotFound())[1]["code"] == "NOT_FOUND"
    assert answer(ReferralNotFound())[0] == 404
    assert answer(WaitingListFull())[0] == 409
    assert answer(WaitingListFull())[1]["code"] == "CAPACITY_FULL"


def test_a_new_domain_error_answers_with_its_own_code_and_status():
    class Gone(DomainError):
        code = "GONE"
        status = 410

    status, body = answer(Gone("Sudah dihapus."))
    assert (status, body["code"]) == (410, "GONE")


@pytest.mark.parametrize(
    "exc",
    [
        RuntimeError("secret 1771011708900001 at /srv/db"),
        KeyError("nik_hmac"),
        ZeroDivisionError("division by zero"),
    ],
)
def test_unexpected_exception_is_500_without_its_message(exc, caplog):
    with caplog.at_level(logging.CRITICAL, logger="gateway.http"):
        status, body = answer(exc)
    assert (status, body["code"]) == (500, "INTERNAL_ERROR")
    text = json.dumps(body)
    assert str(exc).strip("'") not in text
    assert type(exc).__name__ not in text


# --- the referral contract -------------------------------------------------------------


def test_a_whole_referral_is_accepted():
    loaded = ReferralCreate().load(referral())
    assert loaded["consent"]["given"] is True
    assert loaded["client"]["sex"] == "M"


def test_unknown_field_is_refused():
    assert "priority" in validation_error(referral(priority="high")).normalized_messages()


def test_unknown_field_inside_the_client_is_refused():
    client = {**referral()["client"], "religion": "-"}
    errors = validation_error(referral(client=client)).normalized_messages()
    assert "religion" in errors["client"]


def test_fifteen_digit_nik_is_refused():
    client = {**referral()["client"], "nik": "177101170890001"}
    errors = validation_error(referral(client=client)).normalized_messages()
    assert set(errors) == {"client"}
    assert set(errors["client"]) == {"nik"}


def test_sex_other_than_m_or_f_is_refused():
    client = {**referral()["client"], "sex": "X"}
    errors = validation_error(referral(client=client)).normalized_messages()
    assert set(errors["client"]) == {"sex"}


def test_missing_consent_is_refused():
    body = referral()
    del body["consent"]
    assert set(validation_error(body).normalized_messages()) == {"consent"}


def test_consent_without_given_is_refused():
    errors = validation_error(referral(consent={"given_by": "client"})).normalized_messages()
    assert "given" in errors["consent"]
