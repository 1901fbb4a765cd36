"""The partner directory as the API shows it, made from a directory entry: plain rules
that mitra (which owns partners) and the gateway's read model (which answers partner
reads from a copy, gateway/readmodel.py) both apply, so the two answer alike.

A directory entry is what mitra holds of one partner, in JSON form (it crosses RPC):
the public fields, ``version`` (grows with every change the directory shows), the
service offers, the agreements with their dates (their status and days to expiry are
reckoned on the day of the read, not stored), and the contacts, people whom only BNNP
staff and the partner itself may see (``may_see_contacts``)."""

from __future__ import annotations

from datetime import date
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
    ``has_capacity`` is declared capacity: places taken are rujukan's (/partners/match)."""
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
