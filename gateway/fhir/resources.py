"""FHIR R4 resources made of what the services answer over RPC, in the shapes of the REST
contracts (bersinar.contracts): plain functions, no I/O. The mapping tables are in
docs/fhir.md."""

from __future__ import annotations

import calendar
from typing import Any

from bersinar import codes
from gateway.fhir import terms
from gateway.fhir.terms import (
    AGE_GROUP,
    CANONICAL,
    CAPACITY,
    FREE_PLACES,
    INDICATOR,
    MEASURE_POPULATION,
    MEASURE_SCORING,
    MEASURE_TYPE,
    NIK_SYSTEM,
    PARTNER_SYSTEM,
    PSEUDONYM_SYSTEM,
    PUBLISHED,
    PUBLISHER,
    REFERRAL_SYSTEM,
    REPORT_COUNT,
    TRANSLATION,
    UCUM,
)

# referral status -> Task.status (the lifecycle follows FHIR Task; a transfer ends this
# partner's task unfinished, a new linked referral carries the client on)
TASK_STATUS = {
    "requested": "requested",
    "accepted": "accepted",
    "rejected": "rejected",
    "cancelled": "cancelled",
    "admitted": "in-progress",
    "completed": "completed",
    "dropped_out": "failed",
    "transferred": "cancelled",
}
# referral status -> ServiceRequest.status
REQUEST_STATUS = {
    "requested": "active",
    "accepted": "active",
    "admitted": "active",
    "completed": "completed",
    "rejected": "revoked",
    "cancelled": "revoked",
    "dropped_out": "revoked",
    "transferred": "revoked",
}
GENDER = {"M": "male", "F": "female"}
# each indicator's numerator and denominator among the figures laporan answers with it
# (GET /api/v1/indicators); the median has none, it is a continuous variable in hours
POPULATIONS = {
    "reporting_rate": ("submitted_reports", "expected_reports"),
    "on_time_rate": ("on_time_reports", "expected_reports"),
    "acceptance_rate": ("accepted", "answered"),
    "completion_rate": ("completed", "exits"),
    "dropout_rate": ("dropped_out", "exits"),
    "occupancy": ("in_care_at_end", "capacity"),
    "target_reached": ("admitted_this_year", "annual_target"),
}
MONEV = "monev"
# the Bulk Data export's MeasureReports: laporan's monthly export, admissions by each of
# these dimensions and exits by outcome
RECAP = "monthly-recap"
RECAP_DIMENSIONS = ("by_sex", "by_age_group", "by_service_type", "by_source")


def reference(resource_type: str, resource_id: str, display: str | None = None) -> dict:
    ref = {"reference": f"{resource_type}/{resource_id}"}
    if display:
        ref["display"] = display
    return ref


def fhir_id(code: str) -> str:
    """A code as a FHIR id (letters, digits, '-' and '.')."""
    return code.replace("_", "-")


# --- the directory: Organization and HealthcareService ----------------------------------


def organization(partner: dict[str, Any]) -> dict[str, Any]:
    """A partner (GET /api/v1/partners/{id}). Its contacts (people, telecom) are there only
    when mitra showed them to the caller: BNNP staff and the partner itself."""
    resource: dict[str, Any] = {
        "resourceType": "Organization",
        "id": partner["id"],
        "meta": {"versionId": str(partner["version"]), "lastUpdated": partner["updated_at"]},
        "identifier": [{"system": PARTNER_SYSTEM, "value": partner["id"]}],
        "active": partner["status"] == "active",
        "type": [terms.PARTNER_KIND.concept(partner["kind"])],
        "name": partner["name"],
        "address": [_address(partner)],
    }
    contacts = [_contact(c) for c in partner.get("contacts") or []]
    if contacts:
        resource["contact"] = contacts
    return resource


def _address(partner: dict[str, Any]) -> dict[str, Any]:
    address = {"district": partner["kabupaten_kota"], "state": "Bengkulu", "country": "ID"}
    if partner.get("address"):
        address["text"] = partner["address"]
    return address


def _contact(contact: dict[str, Any]) -> dict[str, Any]:
    telecom = [
        {"system": system, "value": contact[key], "use": "work"}
        for key, system in (("phone", "phone"), ("whatsapp", "phone"), ("email", "email"))
        if contact.get(key)
    ]
    entry: dict[str, Any] = {
        "purpose": terms.CONTACT_ROLE.concept(contact["role"]),
        "name": {"text": contact["name"]},
    }
    if telecom:
        entry["telecom"] = telecom
    return entry


def service_id(partner_id: str, service_type: str) -> str:
    return f"{partner_id}.{service_type}"


def split_service_id(resource_id: str) -> tuple[str, str] | None:
    partner_id, _, service_type = resource_id.rpartition(".")
    if not partner_id or service_type not in codes.SERVICE_TYPES:
        return None
    return partner_id, service_type


def healthcare_services(
    partner: dict[str, Any], occupied: dict[tuple[str, str], int] | None = None
) -> list[dict[str, Any]]:
    """A partner's service offers. ``occupied`` (places taken, by partner and service
    type) only for callers who may see occupancy: then each offer says its free places."""
    eligibility = [{"code": terms.SEX_SERVED.concept(partner["sex_served"])}]
    eligibility += [
        {"code": terms.SERVED_AGE_GROUP.concept(group)} for group in partner["age_groups"]
    ]
    services = []
    for offer in partner["services"]:
        kind = offer["service_type"]
        extension = [CAPACITY.of(offer["capacity"])]
        if occupied is not None:
            taken = occupied.get((partner["id"], kind), 0)
            extension.append(FREE_PLACES.of(offer["capacity"] - taken))
        services.append(
            {
                "resourceType": "HealthcareService",
                "id": service_id(partner["id"], kind),
                "meta": {"lastUpdated": offer["updated_at"]},
                "extension": extension,
                "active": partner["status"] == "active",
                "providedBy": reference("Organization", partner["id"], partner["name"]),
                "type": [terms.SERVICE_TYPE.concept(kind)],
                "name": f"{codes.label(codes.SERVICE_TYPES, kind)} - {partner['name']}",
                "comment": f"{partner.get('address') or ''} {partner['kabupaten_kota']}".strip(),
                "eligibility": eligibility,
            }
        )
    return services


# --- referrals: Task, ServiceRequest, Patient --------------------------------------------


def task(referral: dict[str, Any], history: list[dict[str, Any]] | None = None) -> dict:
    """A referral as the receiving partner's Task. With its ``history`` (GET
    /api/v1/referrals/{id}/history) the Task carries its version: one per transition."""
    resource = _task_at(referral, referral["status"], referral.get("rejection_reason"))
    resource["meta"] = {"lastUpdated": referral["updated_at"]}
    if history is not None:
        resource["meta"]["versionId"] = str(len(history))
    outputs = discharge_outputs(history)
    if outputs:
        resource["output"] = outputs
    return resource


def task_versions(referral: dict[str, Any], history: list[dict[str, Any]]) -> list[dict]:
    """Every version of the Task, oldest first: the state after each transition."""
    versions = []
    for n, entry in enumerate(history, start=1):
        reason = entry.get("reason") if entry["to_status"] == "rejected" else None
        version = _task_at(referral, entry["to_status"], reason, history[:n])
        version["meta"] = {"versionId": str(n), "lastUpdated": entry["at"]}
        version["lastModified"] = entry["at"]
        versions.append(version)
    if versions:  # the last version is the Task as it reads now
        versions[-1] = task(referral, history)
    return versions


def _task_at(
    referral: dict[str, Any],
    status: str,
    reason: str | None,
    history: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Task",
        "id": referral["id"],
        "identifier": [{"system": REFERRAL_SYSTEM, "value": referral["id"]}],
        "status": TASK_STATUS[status],
        "businessStatus": terms.REFERRAL_STATUS.concept(status),
        "intent": "order",
        "focus": reference("ServiceRequest", referral["id"]),
        "authoredOn": referral["created_at"],
        "lastModified": referral["updated_at"],
        "owner": reference("Organization", referral["partner_id"]),
    }
    if referral["client"] is not None:  # None: de-identified, for national systems
        resource["for"] = reference("Patient", referral["client"]["id"])
    if reason in codes.REJECTION_REASONS:
        resource["statusReason"] = terms.REJECTION_REASON.concept(reason)
    if status == "requested" and referral.get("response_due_at"):
        resource["restriction"] = {"period": {"end": referral["response_due_at"]}}
    started, ended = _care_period(referral, status, history)
    if started:
        resource["executionPeriod"] = {"start": started, **({"end": ended} if ended else {})}
    return resource


def discharge_outputs(history: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """How care ended, as Task.output: the discharge summary's outcome and each reason,
    coded (the entry of the history that ended care carries them; the plan never)."""
    summary = next((h["discharge"] for h in history or () if h.get("discharge")), None)
    if not summary:
        return []
    outputs = [
        {
            "type": terms.DISCHARGE_OUTPUT.concept("outcome"),
            "valueCodeableConcept": terms.DISCHARGE_OUTCOME.concept(summary["outcome"]),
        }
    ]
    outputs += [
        {
            "type": terms.DISCHARGE_OUTPUT.concept("reason"),
            "valueCodeableConcept": terms.DISCHARGE_REASON.concept(reason),
        }
        for reason in summary.get("reasons") or []
    ]
    return outputs


def _care_period(
    referral: dict[str, Any], status: str, history: list[dict[str, Any]] | None
) -> tuple[str | None, str | None]:
    """When the client was in the partner's care: from admission to the end of it."""
    if history is None:
        started = referral.get("admitted_at")
        return started, referral.get("ended_at") if started and status != "admitted" else None
    started = next((h["at"] for h in history if h["to_status"] == "admitted"), None)
    return started, history[-1]["at"] if started and status != "admitted" else None


def service_request(referral: dict[str, Any]) -> dict[str, Any]:
    """What was asked of the partner: a service of a type for the client, from a source."""
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": referral["id"],
        "meta": {"lastUpdated": referral["updated_at"]},
        "identifier": [{"system": REFERRAL_SYSTEM, "value": referral["id"]}],
        "status": REQUEST_STATUS[referral["status"]],
        "intent": "order",
        "category": [terms.REFERRAL_SOURCE.concept(referral["source"])],
        "code": terms.SERVICE_TYPE.concept(referral["service_type"]),
        "subject": _subject(referral),
        "authoredOn": referral["created_at"],
        "performer": [reference("Organization", referral["partner_id"])],
    }
    if referral.get("transferred_from_id"):
        resource["replaces"] = [reference("ServiceRequest", referral["transferred_from_id"])]
    return resource


def _subject(referral: dict[str, Any]) -> dict[str, Any]:
    """The client as a Patient; a de-identified referral (national systems) names none:
    the reference says only that the subject is withheld."""
    if referral["client"] is None:
        return {"extension": [terms.masked()], "display": "Klien (tidak diidentifikasi)"}
    return reference("Patient", referral["client"]["id"])


def patient(client: dict[str, Any]) -> dict[str, Any]:
    """The client: pseudonym, sex and age group; NIK and name only when rujukan gave the
    identity (GET /api/v1/referrals/{id}, which writes the read to the audit log)."""
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": client["id"],
        "extension": [AGE_GROUP.of(terms.CLIENT_AGE_GROUP.coding(client["age_group"]))],
        "identifier": [{"system": PSEUDONYM_SYSTEM, "value": client["id"]}],
        "gender": GENDER.get(client["sex"], "unknown"),
    }
    identity = client.get("identity")
    if identity:
        resource["identifier"].append(
            {"use": "official", "system": NIK_SYSTEM, "value": identity["nik"]}
        )
        resource["name"] = [{"use": "official", "text": identity["name"]}]
    return resource


# --- monitoring: Measure and MeasureReport -----------------------------------------------


def translated(indonesian: str, english: str) -> tuple[str, dict[str, Any]]:
    """A text in Indonesian with its English translation (FHIR's translation extension)."""
    return indonesian, {
        "extension": [
            {
                "url": TRANSLATION,
                "extension": [
                    {"url": "lang", "valueCode": "en"},
                    {"url": "content", "valueString": english},
                ],
            }
        ]
    }


def measure_url(measure_id: str) -> str:
    return f"{CANONICAL}/Measure/{measure_id}"


def _name(code: str) -> str:
    return "".join(part.capitalize() for part in code.split("_"))


def _indicator_group(code: str) -> dict[str, Any]:
    description, translation = translated(
        codes.INDICATOR_DEFINITIONS[code], codes.INDICATOR_DEFINITIONS_EN[code]
    )
    group: dict[str, Any] = {
        "code": INDICATOR.concept(code),
        "description": description,
        "_description": translation,
    }
    # the criteria name the figure of GET /api/v1/indicators that the population counts
    if code in POPULATIONS:
        parts = zip(("numerator", "denominator"), POPULATIONS[code], strict=True)
    else:
        parts = zip(("measure-population", "measure-observation"), ("answered", code), strict=True)
    group["population"] = [
        {"code": population(kind), "criteria": {"language": "text/plain", "expression": figure}}
        for kind, figure in parts
    ]
    return group


def population(kind: str) -> dict[str, Any]:
    return {"coding": [{"system": MEASURE_POPULATION, "code": kind}]}


def measure(code: str) -> dict[str, Any]:
    """One indicator, with its definition in Indonesian and English."""
    description, translation = translated(
        codes.INDICATOR_DEFINITIONS[code], codes.INDICATOR_DEFINITIONS_EN[code]
    )
    scoring = "ratio" if code in POPULATIONS else "continuous-variable"
    return {
        **measure_base(
            fhir_id(code), _name(code), codes.INDICATORS[code], description, translation
        ),
        "scoring": {"coding": [{"system": MEASURE_SCORING, "code": scoring}]},
        "type": [{"coding": [{"system": MEASURE_TYPE, "code": "outcome"}]}],
        "group": [_indicator_group(code)],
    }


def measure_base(
    measure_id: str, name: str, title: str, description: str, translation: dict[str, Any]
) -> dict[str, Any]:
    return {
        "resourceType": "Measure",
        "id": measure_id,
        "url": measure_url(measure_id),
        "name": name,
        "title": title,
        "status": "active",
        "date": PUBLISHED,
        "publisher": PUBLISHER,
        "language": "id",
        "description": description,
        "_description": translation,
    }


def monev_measure() -> dict[str, Any]:
    """Every indicator and the counts of the monthly report, per partner and month: what
    each MeasureReport reports."""
    description, translation = translated(
        "Indikator monev dan angka laporan bulanan satu mitra pada satu bulan.",
        "The monitoring indicators and monthly report counts of one partner in one month.",
    )
    groups = [_indicator_group(code) for code in codes.INDICATORS]
    groups += [
        {"code": REPORT_COUNT.concept(code), "description": words}
        for code, words in codes.MEASURES.items()
    ]
    return {
        **measure_base(MONEV, "Monev", "Monev mitra rehabilitasi", description, translation),
        "type": [{"coding": [{"system": MEASURE_TYPE, "code": "composite"}]}],
        "relatedArtifact": [
            {"type": "composed-of", "resource": measure_url(fhir_id(code))}
            for code in codes.INDICATORS
        ],
        "group": groups,
    }


def recap_measure() -> dict[str, Any]:
    """What every exported MeasureReport reports: the monthly export's admissions by
    dimension and exits by outcome, small cells suppressed."""
    description, translation = translated(
        "Rekap bulanan terdeidentifikasi satu mitra: klien masuk menurut dimensi dan "
        "keluar menurut hasil; sel kecil disembunyikan.",
        "One partner's de-identified monthly recap: admissions by dimension and exits by "
        "outcome; small cells suppressed.",
    )
    base = measure_base(RECAP, "MonthlyRecap", "Rekap bulanan", description, translation)
    return {
        **base,
        "scoring": {"coding": [{"system": MEASURE_SCORING, "code": "cohort"}]},
        "group": [
            {
                "code": {"text": "admitted"},
                "stratifier": [{"code": {"text": name}} for name in RECAP_DIMENSIONS],
            },
            {"code": {"text": "outcomes"}, "stratifier": [{"code": {"text": "outcome"}}]},
        ],
    }


def measures() -> list[dict[str, Any]]:
    return [monev_measure(), *(measure(code) for code in codes.INDICATORS), recap_measure()]


def report_id(partner_id: str, period: str) -> str:
    return f"{partner_id}.{period}"


def split_report_id(resource_id: str) -> tuple[str, str] | None:
    partner_id, _, period = resource_id.rpartition(".")
    return (partner_id, period) if partner_id and period else None


def measure_report(
    row: dict[str, Any], period: str, report: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One partner's month: ``row`` is its entry in GET /api/v1/indicators, ``report``
    its monthly report (GET /api/v1/reports/{partner}/{period}); the report's counts are
    there once it was sent. Complete once the report is approved."""
    year, month = (int(part) for part in period.split("-"))
    last = calendar.monthrange(year, month)[1]
    groups = [_indicator_score(code, row) for code in codes.INDICATORS]
    content = (report or {}).get("content") or {}
    total = (content.get("counts") or {}).get("total") or {}
    groups += [
        {"code": REPORT_COUNT.concept(code), "measureScore": {"value": total[code]}}
        for code in codes.MEASURES
        if code in total
    ]
    return {
        "resourceType": "MeasureReport",
        "id": report_id(row["partner_id"], period),
        "status": "complete" if (report or {}).get("status") == "approved" else "pending",
        "type": "summary",
        "measure": measure_url(MONEV),
        "reporter": reference("Organization", row["partner_id"]),
        "period": {"start": f"{period}-01", "end": f"{period}-{last:02d}"},
        "group": groups,
    }


def _indicator_score(code: str, row: dict[str, Any]) -> dict[str, Any]:
    figures = row.get("figures") or {}
    group: dict[str, Any] = {"code": INDICATOR.concept(code)}
    if code in POPULATIONS:
        group["population"] = [
            {"code": population(kind), "count": int(figures.get(figure) or 0)}
            for kind, figure in zip(("numerator", "denominator"), POPULATIONS[code], strict=True)
        ]
    value = row.get(code)
    if value is not None:
        score: dict[str, Any] = {"value": value}
        if code not in POPULATIONS:
            score.update({"unit": "h", "system": UCUM, "code": "h"})
        group["measureScore"] = score
    return group
