"""What schemathesis is told of Bersinar beyond its OpenAPI document, for
test_gateway_fuzz.py (loaded with ``SCHEMATHESIS_HOOKS``). The document states every
shape the server checks; two kinds of rule no JSON Schema can state remain:

1. Rules across fields of one request: a NIK agrees with the birth date and sex (and the
   birth date is a plausible one, given today; in a correction of a client's identity
   too, which names all three when it names one), a search's dates are in order, an
   agreement's dates are in order and it
   renews only an agreement that exists, a partner offers each service type once, an
   attachment's first bytes are those of the type it is sent as. Data
   the fuzzer generated as valid is made to keep them before it is sent (``before_call``,
   schemathesis' place for this), so that a refusal of what it sends is a real finding.
   For the same reason each request gets an Idempotency-Key of its own: a key already
   used for another request is refused by design (422 IDEMPOTENCY_KEY_REUSED).
2. Rules on the data's state: a partner that is not eligible for the client, a report
   that does not add up with last month's. The document lists, per operation, the code a
   422 carries for them (``x-codes``). ``positive_data_acceptance_beyond_state`` is
   schemathesis' positive_data_acceptance, which it replaces, except that such an answer
   to valid data counts as the state speaking (as a 409 would); any other refusal of
   valid data, VALIDATION_ERROR above all, still fails.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import date

import schemathesis
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import positive_data_acceptance
from schemathesis.transport.serialization import Binary

from bersinar.attachments import SIGNATURES
from harness.data import nik_for

IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9._:-]{1,100}")


def _is_positive(case) -> bool:
    return case.meta is not None and case.meta.generation.mode.is_positive


def _referral(body: dict) -> None:
    """rujukan's check_nik and check_birth_date: a NIK of Bengkulu (17) whose DDMMYY is
    the birth date (day + 40 for a woman), serial not 0000; born neither in the future
    nor more than 110 years ago."""
    client = body.get("client")
    if not isinstance(client, dict):
        return
    born, today = date.fromisoformat(client["birth_date"]), date.today()
    if born >= today or today.year - born.year > 100:
        born = born.replace(year=today.year - 40, day=min(born.day, 28))
        client["birth_date"] = born.isoformat()
    nik = client["nik"]
    client["nik"] = nik_for(born, client["sex"], region=f"17{nik[2:6]}", serial=int(nik[12:]))


def _correction(body: dict) -> None:
    """A correction of a client's identity is checked as a new referral's client is,
    the fields not sent taken from what is stored: one that names any of NIK, birth date
    and sex names all three, in agreement (the same rule as ``_referral``)."""
    if not {"nik", "birth_date", "sex"} & set(body):
        return
    body.setdefault("birth_date", "1990-01-05")
    body.setdefault("sex", "M")
    body.setdefault("nik", "1771050501900001")
    _referral({"client": body})


def _agreement(body: dict) -> None:
    """mitra's order of an agreement's dates, and a renewal of one it knows."""
    body["valid_until"] = max(body["signed_on"], body["valid_from"], body["valid_until"])
    if body.get("renews_agreement_id"):
        body["renews_agreement_id"] = None


def _services(body: dict) -> None:
    """One offer per service type."""
    if isinstance(body.get("services"), list):
        seen, kept = set(), []
        for offer in body["services"]:
            if offer["service_type"] not in seen:
                seen.add(offer["service_type"])
                kept.append(offer)
        body["services"] = kept


def _search(body: dict) -> None:
    """A client search's window of referral dates in order."""
    since, until = body.get("referred_from"), body.get("referred_until")
    if isinstance(since, str) and isinstance(until, str) and until < since:
        body["referred_until"] = since


RULES = {
    ("POST", "/api/v1/referrals"): _referral,
    ("POST", "/api/v1/clients/search"): _search,
    ("POST", "/api/v1/clients/{client_id}/corrections"): _correction,
    ("POST", "/api/v1/partners/{partner_id}/agreements"): _agreement,
    ("POST", "/api/v1/partners"): _services,
    ("PATCH", "/api/v1/partners/{partner_id}"): _services,
}


@schemathesis.hook
def before_call(context, case, kwargs):
    # only valid data: a case made invalid on purpose is sent as generated (a changed
    # case is validated again, and one that lacks its Authorization would pass for valid)
    signature = dict((kind, magic) for magic, kind in SIGNATURES).get(case.media_type or "")
    if not _is_positive(case):
        if signature is not None and isinstance(case.body, Binary):
            # an attachment made invalid: any bytes are bytes to a schema, so what makes
            # a file invalid here is a content that is no file of its type
            case.body = Binary(b"bukan berkas " + case.body.data)
        return
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and IDEMPOTENCY_KEY.fullmatch(key):
        case.headers["Idempotency-Key"] = f"{key[:60]}.{uuid.uuid4().hex}"
    if (
        signature is not None
        and isinstance(case.body, Binary)
        and not case.body.data.startswith(signature)
    ):
        case.body = Binary(signature + case.body.data)  # a file: its start says its type
    rule = RULES.get((case.method.upper(), case.path))
    if rule is not None and isinstance(case.body, dict):
        rule(case.body)


def _state_codes(case) -> list[str]:
    unprocessable = case.operation.definition.raw.get("responses", {}).get("422", {})
    return [code for code in unprocessable.get("x-codes", []) if code != "VALIDATION_ERROR"]


@schemathesis.check
def positive_data_acceptance_beyond_state(ctx, response, case):
    try:
        return positive_data_acceptance(ctx, response, case)
    except RejectedPositiveData:
        if response.status_code == 422:
            try:
                code = json.loads(response.content).get("code")
            except (ValueError, AttributeError):
                code = None
            if code in _state_codes(case):
                return None
        raise
