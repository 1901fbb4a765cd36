"""The partner directory as the API shows it, made from a directory entry: plain rules
that mitra (which owns partners) and the gateway's read model (which answers partner
reads from a copy, gateway/readmodel.py) both apply, so the two answer alike.

A directory entry is what mitra holds of one partner, in JSON form (it crosses RPC):
the public fields, ``version`` (grows with every change the directory shows), the
service offers, the agreements with their dates (their status and days to expiry are
reckoned on the day of the read, not stored), and the contacts, people whom only BNNP
staff and the partner itself may see (``may_see_contacts``).

Matching is here too: which partners may take a client (eligibility) and in what order
they are offered. rujukan applies it to the referrals it stores (create, accept,
transfer, its ``match_partners``) and the gateway's read model to GET
/api/v1/partners/match, with the places taken that rujukan counts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from bersinar.codes import STAFF

EXPIRING_WITHIN_DAYS = 90

PUBLIC_FIELDS = (
    "id",
    "name",
    "kind",
    "kabupaten_kota",
    "address",
    "sex_served",
    "age_groups",
    "status",
    "accreditation",
    "version",
)
AGREEMENT_FIELDS = (
    "id",
    "partner_id",
    "number",
    "signed_on",
    "valid_from",
    "valid_until",
    "scope",
    "annual_target",
    "renews_agreement_id",
)


def agreement_status(
    valid_from: date, valid_until: date, today: date, terminated: bool = False
) -> str:
    if terminated:
        return "terminated"
    if today < valid_from:
        return "draft"
    if today > valid_until:
        return "expired"
    if (valid_until - today).days <= EXPIRING_WITHIN_DAYS:
        return "expiring"
    return "active"


def days_to_expiry(valid_until: date, today: date) -> int:
    return (valid_until - today).days


def serves_sex(sex_served: str, client_sex: str) -> bool:
    return sex_served == "all" or (sex_served, client_sex) in {("male", "M"), ("female", "F")}


def may_see_contacts(caller: dict[str, Any] | None, partner_id: str) -> bool:
    """Contacts (people) are shown to BNNP staff and to the partner's own operator only."""
    caller = caller or {}
    return caller.get("role") in STAFF or (
        caller.get("role") == "partner" and caller.get("partner_id") == partner_id
    )


def render_agreement(agreement: dict[str, Any], today: date) -> dict[str, Any]:
    """An agreement of an entry as the API shows it, its status reckoned on ``today``."""
    valid_from = date.fromisoformat(agreement["valid_from"])
    valid_until = date.fromisoformat(agreement["valid_until"])
    terminated = agreement.get("terminated_on") is not None
    return {
        **{field: agreement[field] for field in AGREEMENT_FIELDS},
        "status": agreement_status(valid_from, valid_until, today, terminated),
        "document_ref": agreement.get("document_ref"),
        "terminated_on": agreement.get("terminated_on"),
        "termination_reason": agreement.get("termination_reason"),
        "days_to_expiry": days_to_expiry(valid_until, today),
    }


def render_partner(entry: dict[str, Any], today: date, show_contacts: bool) -> dict[str, Any]:
    """The partner as the API shows it; contacts only when ``show_contacts``."""
    resource = {field: entry[field] for field in PUBLIC_FIELDS}
    resource["age_groups"] = list(entry["age_groups"] or [])
    resource["services"] = [dict(offer) for offer in entry["services"]]
    resource["agreements"] = [render_agreement(a, today) for a in entry["agreements"]]
    resource["updated_at"] = entry["updated_at"]
    if show_contacts:
        resource["contacts"] = [dict(contact) for contact in entry["contacts"]]
    return resource


def partner_view(
    entry: dict[str, Any], today: date, caller: dict[str, Any] | None
) -> dict[str, Any]:
    """One partner as this caller may see it."""
    return render_partner(entry, today, may_see_contacts(caller, entry["id"]))


def matches(entry: dict[str, Any], filters: dict[str, Any]) -> bool:
    """Whether a partner is in the list under these filters (``PartnerFilter``, loaded).
    ``has_capacity`` is declared capacity: places taken are counted for /partners/match."""
    if filters.get("kabupaten_kota") and entry["kabupaten_kota"] != filters["kabupaten_kota"]:
        return False
    if filters.get("status") and entry["status"] != filters["status"]:
        return False
    if filters.get("sex") and not serves_sex(entry["sex_served"], filters["sex"]):
        return False
    offers = {o["service_type"]: o["capacity"] for o in entry["services"]}
    wanted = filters.get("service_type")
    if wanted and wanted not in offers:
        return False
    if filters.get("has_capacity") is not None:
        capacity = offers.get(wanted, 0) if wanted else sum(offers.values())
        has = entry["status"] == "active" and capacity > 0
        if has != filters["has_capacity"]:
            return False
    return True


def list_view(
    entries: list[dict[str, Any]],
    filters: dict[str, Any],
    today: date,
    caller: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    """The partners under these filters, by name then id, each as this caller may see it."""
    chosen = sorted((e for e in entries if matches(e, filters)), key=lambda e: (e["name"], e["id"]))
    return [partner_view(entry, today, caller) for entry in chosen]


# --- matching -----------------------------------------------------------------------------

# the statuses of a referral that hold one of its partner's places
ACTIVE_STATUSES = ("accepted", "admitted")


@dataclass(frozen=True)
class PartnerTerms:
    """What eligibility sees of a partner: its status, whom it serves, its places by
    service type and the days its agreements count (first and last, both included)."""

    partner_id: str
    status: str
    sex_served: str
    capacities: dict[str, int]
    agreements: tuple[tuple[date, date], ...]


def agreement_period(
    valid_from: date, valid_until: date, terminated_on: date | None
) -> tuple[date, date]:
    """The days an agreement counts: a termination ends it on the day before
    ``terminated_on``, whatever its end date said."""
    if terminated_on is None:
        return valid_from, valid_until
    return valid_from, min(valid_until, terminated_on - timedelta(days=1))


def ineligibility(partner: PartnerTerms, sex: str, service_type: str, today: date) -> list[str]:
    """Why the partner may not take this client today, in words for people; empty when
    it may."""
    reasons = []
    if partner.status != "active":
        reasons.append("Mitra sedang tidak aktif.")
    if not serves_sex(partner.sex_served, sex):
        reasons.append("Mitra tidak melayani klien dengan jenis kelamin ini.")
    if service_type not in partner.capacities:
        reasons.append("Mitra tidak menyediakan layanan ini.")
    if not any(start <= today <= end for start, end in partner.agreements):
        reasons.append("Mitra tidak memiliki perjanjian kerja sama yang berlaku hari ini.")
    return reasons


@dataclass(frozen=True)
class Candidate:
    """A partner offered for a client, with the places of the service taken now."""

    partner: PartnerTerms
    partner_name: str
    kabupaten_kota: str
    occupied: int


def rank_partners(
    candidates: Iterable[Candidate],
    sex: str,
    service_type: str,
    today: date,
    kabupaten_kota: str | None = None,
) -> list[dict[str, Any]]:
    """Eligible partners with a free place, best first: the client's own kabupaten/kota
    first, then the most free places, then by name (and id, so that two answers to one
    question are alike whatever order the candidates came in)."""
    ranked = []
    for candidate in candidates:
        terms = candidate.partner
        if ineligibility(terms, sex, service_type, today):
            continue
        capacity = terms.capacities.get(service_type, 0)
        free = capacity - candidate.occupied
        if free <= 0:
            continue
        same_area = bool(kabupaten_kota) and (
            candidate.kabupaten_kota.casefold() == str(kabupaten_kota).casefold()
        )
        ranked.append(
            {
                "partner_id": terms.partner_id,
                "partner_name": candidate.partner_name,
                "kabupaten_kota": candidate.kabupaten_kota,
                "sex_served": terms.sex_served,
                "service_type": service_type,
                "capacity": capacity,
                "occupied": candidate.occupied,
                "free": free,
                "same_kabupaten_kota": same_area,
            }
        )
    ranked.sort(
        key=lambda m: (
            not m["same_kabupaten_kota"],
            -m["free"],
            m["partner_name"],
            m["partner_id"],
        )
    )
    return ranked


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def partner_terms(entry: dict[str, Any]) -> PartnerTerms:
    """A directory entry as eligibility sees it."""
    return PartnerTerms(
        partner_id=entry["id"],
        status=entry["status"],
        sex_served=entry["sex_served"],
        capacities={offer["service_type"]: int(offer["capacity"]) for offer in entry["services"]},
        agreements=tuple(
            agreement_period(
                date.fromisoformat(agreement["valid_from"]),
                date.fromisoformat(agreement["valid_until"]),
                _day(agreement.get("terminated_on")),
            )
            for agreement in entry["agreements"]
        ),
    )


def match_view(
    entries: Iterable[dict[str, Any]],
    occupied: Mapping[str, Mapping[str, int]],
    query: dict[str, Any],
    today: date,
) -> list[dict[str, Any]]:
    """GET /api/v1/partners/match from directory entries and the places taken
    (``occupied``: partner id -> service type -> places), for a ``MatchQuery``."""
    service_type = query["service_type"]
    candidates = (
        Candidate(
            partner=partner_terms(entry),
            partner_name=entry["name"],
            kabupaten_kota=entry["kabupaten_kota"],
            occupied=occupied.get(entry["id"], {}).get(service_type, 0),
        )
        for entry in entries
    )
    return rank_partners(candidates, query["sex"], service_type, today, query.get("kabupaten_kota"))
