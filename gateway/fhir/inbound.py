"""An inbound referral: a FHIR ``transaction`` Bundle of a Patient, a ServiceRequest, a
Task and a Consent read into the body of POST /api/v1/referrals, and the
``transaction-response`` Bundle made of the referral rujukan created. Plain functions."""

from __future__ import annotations

from typing import Any

from bersinar.errors import ValidationFailed
from gateway.fhir import terms
from gateway.fhir.resources import GENDER

SEX = {gender: sex for sex, gender in GENDER.items()}
ACCEPTED = ("Patient", "ServiceRequest", "Task", "Consent")


class TransactionRefused(ValidationFailed):
    """A Bundle that is not a referral as docs/fhir.md describes it: FHIR answers 400."""

    status = 400


def _refuse(where: str, message: str) -> TransactionRefused:
    return TransactionRefused(f"{where}: {message}", errors={where: [message]})


def _dict(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _refuse(where, "harus berupa objek JSON.")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _refuse(where, "harus berupa daftar.")
    return value


def _code(concept: Any, system: terms.Terms, where: str) -> str:
    """The code of ``system`` in a CodeableConcept."""
    for coding in _list(_dict(concept or {}, where).get("coding"), f"{where}.coding"):
        coding = _dict(coding, f"{where}.coding")
        if coding.get("system") == system.url and isinstance(coding.get("code"), str):
            return coding["code"]
    raise _refuse(where, f"perlu kode dari {system.url}.")


def _organization(reference: Any, where: str) -> str:
    target = _dict(reference or {}, where).get("reference")
    if not isinstance(target, str) or not target.startswith("Organization/"):
        raise _refuse(where, "perlu rujukan Organization/<id mitra>.")
    return target.removeprefix("Organization/")


def _points_to(reference: Any, full_url: str, where: str) -> None:
    if _dict(reference or {}, where).get("reference") != full_url:
        raise _refuse(where, f"harus merujuk {full_url} dalam Bundle ini.")


def _entries(bundle: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Each resource type's (fullUrl, resource): one of each, POSTed to its type."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for n, entry in enumerate(_list(bundle.get("entry"), "Bundle.entry")):
        where = f"Bundle.entry[{n}]"
        entry = _dict(entry, where)
        resource = _dict(entry.get("resource"), f"{where}.resource")
        kind = resource.get("resourceType")
        if kind not in ACCEPTED:
            raise _refuse(f"{where}.resource", f"hanya {', '.join(ACCEPTED)}.")
        if kind in found:
            raise _refuse(f"{where}.resource", f"{kind} hanya boleh satu.")
        request = _dict(entry.get("request"), f"{where}.request")
        if request.get("method") != "POST" or request.get("url") != kind:
            raise _refuse(f"{where}.request", f"harus POST {kind}.")
        full_url = entry.get("fullUrl")
        if not isinstance(full_url, str) or not full_url.startswith("urn:uuid:"):
            raise _refuse(f"{where}.fullUrl", "harus urn:uuid:<uuid>.")
        found[kind] = (full_url, resource)
    for kind in ("Patient", "ServiceRequest", "Task"):
        if kind not in found:
            raise _refuse("Bundle.entry", f"{kind} wajib ada.")
    return found


def bundle_key(bundle: dict[str, Any]) -> str | None:
    """What names this sending of a referral: ``Bundle.identifier`` (system|value)."""
    identifier = bundle.get("identifier")
    if identifier is None:
        return None
    identifier = _dict(identifier, "Bundle.identifier")
    value = identifier.get("value")
    if not isinstance(value, str) or not value.strip():
        raise _refuse("Bundle.identifier.value", "wajib diisi.")
    return f"{identifier.get('system') or ''}|{value}"


def referral_from_transaction(bundle: Any) -> dict[str, Any]:
    """The body of POST /api/v1/referrals that the Bundle stands for (checked there by
    the same contract and rules)."""
    bundle = _dict(bundle, "Bundle")
    if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "transaction":
        raise _refuse("Bundle.type", "harus Bundle bertipe transaction.")
    entries = _entries(bundle)
    patient_url, patient = entries["Patient"]
    request_url, service_request = entries["ServiceRequest"]
    _, task = entries["Task"]
    _points_to(service_request.get("subject"), patient_url, "ServiceRequest.subject")
    _points_to(task.get("focus"), request_url, "Task.focus")
    if task.get("for") is not None:
        _points_to(task.get("for"), patient_url, "Task.for")
    if task.get("status") != "requested" or task.get("intent") != "order":
        raise _refuse("Task", "status requested dan intent order.")
    partner_id = _organization(task.get("owner"), "Task.owner")
    for n, performer in enumerate(_list(service_request.get("performer"), "performer")):
        if _organization(performer, f"ServiceRequest.performer[{n}]") != partner_id:
            raise _refuse(f"ServiceRequest.performer[{n}]", "harus mitra Task.owner.")
    categories = _list(service_request.get("category"), "ServiceRequest.category")
    if len(categories) != 1:
        raise _refuse("ServiceRequest.category", "satu asal rujukan.")
    return {
        "client": _client(patient),
        "source": _code(categories[0], terms.REFERRAL_SOURCE, "ServiceRequest.category"),
        "service_type": _code(
            service_request.get("code"), terms.SERVICE_TYPE, "ServiceRequest.code"
        ),
        "partner_id": partner_id,
        "consent": _consent(entries.get("Consent")),
    }


def _client(patient: dict[str, Any]) -> dict[str, Any]:
    niks = [
        i.get("value")
        for i in _list(patient.get("identifier"), "Patient.identifier")
        if isinstance(i, dict) and i.get("system") == terms.NIK_SYSTEM
    ]
    if len(niks) != 1:
        raise _refuse("Patient.identifier", f"satu NIK ({terms.NIK_SYSTEM}).")
    names = _list(patient.get("name"), "Patient.name")
    if not names:
        raise _refuse("Patient.name", "wajib ada.")
    name = _dict(names[0], "Patient.name")
    text = name.get("text") or " ".join(
        [*_list(name.get("given"), "Patient.name.given"), name.get("family") or ""]
    )
    if patient.get("gender") not in SEX:
        raise _refuse("Patient.gender", "male atau female.")
    client = {
        "nik": niks[0],
        "name": str(text).strip(),
        "birth_date": patient.get("birthDate"),
        "sex": SEX[patient["gender"]],
    }
    phones = [
        t.get("value")
        for t in _list(patient.get("telecom"), "Patient.telecom")
        if isinstance(t, dict) and t.get("system") == "phone"
    ]
    if phones:
        client["phone"] = phones[0]
    return client


def _consent(entry: tuple[str, dict[str, Any]] | None) -> dict[str, Any]:
    """Consent recorded when the Bundle carries an active Consent; without one, the
    referral is refused as on /api/v1 (CONSENT_REQUIRED)."""
    if entry is None:
        return {"given": False}
    consent = entry[1]
    recorded: dict[str, Any] = {"given": consent.get("status") == "active"}
    if consent.get("dateTime"):
        recorded["given_at"] = consent["dateTime"]
    return recorded


def transaction_response(bundle: dict[str, Any], referral: dict[str, Any]) -> dict[str, Any]:
    """The answer to each entry, in the order sent: where the referral can be read."""
    where = {
        "Patient": f"Patient/{referral['client']['id']}",
        "ServiceRequest": f"ServiceRequest/{referral['id']}",
        "Task": f"Task/{referral['id']}/_history/1",
    }
    entries = []
    for entry in bundle["entry"]:
        kind = entry["resource"]["resourceType"]
        response: dict[str, Any] = {"status": "201 Created", "lastModified": referral["created_at"]}
        if kind in where:
            response["location"] = where[kind]
        entries.append({"response": response})
    return {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}
