"""Test data that passes the domain's checks: NIKs that agree with birth date and sex."""

from __future__ import annotations

import itertools
from datetime import date

_serial = itertools.count(1)
CLIENT_NAME = "Klien Uji"
ISSUED_NIKS: list[str] = []  # every NIK handed out in this process, to look for in logs


def nik_for(birth_date: date, sex: str, region: str = "177101", serial: int | None = None) -> str:
    day = birth_date.day + (40 if sex == "F" else 0)
    number = next(_serial) if serial is None else serial
    return (
        f"{region}{day:02d}{birth_date.month:02d}{birth_date.year % 100:02d}{number % 9999 + 1:04d}"
    )


def referral_body(
    partner_id: str = "yayasan-kipas",
    sex: str = "M",
    birth_date: date = date(1994, 3, 17),
    service_type: str = "inpatient",
    serial: int | None = None,
    **overrides,
) -> dict:
    nik = nik_for(birth_date, sex, serial=serial)
    ISSUED_NIKS.append(nik)
    body = {
        "client": {
            "nik": nik,
            "name": CLIENT_NAME,
            "birth_date": birth_date.isoformat(),
            "sex": sex,
            "phone": "081234567890",
        },
        "source": "TAT",
        "service_type": service_type,
        "partner_id": partner_id,
        "consent": {"given": True, "given_by": "client"},
    }
    body.update(overrides)
    return body


def transfer_body(partner_id: str, reason: str | None = None, **overrides) -> dict:
    """A transfer to ``partner_id``: the adult client's consent to disclose to it and the
    discharge summary of the episode it ends."""
    body: dict = {
        "partner_id": partner_id,
        "consent": {"given": True, "given_by": "client"},
        "discharge": {"outcome": "referred_onward", "reasons": ["relocation"]},
    }
    if reason:
        body["reason"] = reason
    body.update(overrides)
    return body


def referral_bundle(
    partner_id: str = "yayasan-karunia-insani",
    sex: str = "F",
    birth_date: date = date(1995, 3, 5),
    service_type: str = "inpatient",
    identifier: str | None = "R-2026-0001",
    consent: bool = True,
    serial: int | None = None,
) -> dict:
    """A referral as a national system sends it to /fhir/R4: a FHIR transaction Bundle of
    a Patient (NIK, name, sex, birth date), a ServiceRequest, a Task and a Consent."""
    from gateway.fhir import terms

    nik = nik_for(birth_date, sex, serial=serial)
    ISSUED_NIKS.append(nik)
    patient, request = (f"urn:uuid:0000000{n}-0000-4000-8000-000000000000" for n in (1, 2))
    partner = {"reference": f"Organization/{partner_id}"}

    def entry(n: int, resource: dict) -> dict:
        kind = resource["resourceType"]
        return {
            "fullUrl": f"urn:uuid:0000000{n}-0000-4000-8000-000000000000",
            "resource": resource,
            "request": {"method": "POST", "url": kind},
        }

    entries = [
        entry(
            1,
            {
                "resourceType": "Patient",
                "identifier": [{"system": terms.NIK_SYSTEM, "value": nik}],
                "name": [{"given": ["Klien"], "family": "Uji"}],
                "gender": {"M": "male", "F": "female"}[sex],
                "birthDate": birth_date.isoformat(),
                "telecom": [{"system": "phone", "value": "081298765432"}],
            },
        ),
        entry(
            2,
            {
                "resourceType": "ServiceRequest",
                "status": "active",
                "intent": "order",
                "category": [{"coding": [terms.REFERRAL_SOURCE.coding("TAT")]}],
                "code": {"coding": [terms.SERVICE_TYPE.coding(service_type)]},
                "subject": {"reference": patient},
                "performer": [partner],
            },
        ),
        entry(
            3,
            {
                "resourceType": "Task",
                "status": "requested",
                "intent": "order",
                "focus": {"reference": request},
                "for": {"reference": patient},
                "owner": partner,
            },
        ),
    ]
    if consent:
        entries.append(
            entry(
                4,
                {
                    "resourceType": "Consent",
                    "status": "active",
                    "scope": {"coding": [{"code": "treatment"}]},
                    "category": [{"coding": [{"code": "INFA"}]}],
                    "patient": {"reference": patient},
                    "dateTime": "2026-11-03T10:00:00+07:00",
                    "policyRule": {"coding": [{"code": "OPTIN"}]},
                },
            )
        )
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    if identifier is not None:
        bundle["identifier"] = {"system": "https://sistem.bnn.go.id/rujukan", "value": identifier}
    return bundle
