"""rujukan's own Prometheus metrics, at module level (one registry per process). Labels
are partner, service type and status only: never anything about a client.

Counters and histograms are fed from the events a unit of work committed (so a rolled
back change is never counted); the occupancy gauges are read from the database by the
deadline timer, so every instance reports the same figures.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from bersinar.envelope import parse_rfc3339
from bersinar.metrics import replace_samples

HOUR = 3600.0
# from minutes to a month: responses are due in 48 h, stays last weeks
DURATION_BUCKETS = tuple(
    h * HOUR for h in (0.25, 1, 2, 4, 8, 12, 24, 48, 72, 24 * 7, 24 * 14, 24 * 30)
)

REFERRALS = Counter(
    "bersinar_referrals_total",
    "Referrals entering a status (requested, accepted, ..., transferred)",
    ["partner_id", "service_type", "status"],
)
RESPONSE_TIME = Histogram(
    "bersinar_referral_response_seconds",
    "Time from a referral's request to the partner's answer (accept or reject)",
    ["partner_id", "service_type"],
    buckets=DURATION_BUCKETS,
)
ADMISSION_TIME = Histogram(
    "bersinar_referral_admission_seconds",
    "Time from a referral's request to the client's admission",
    ["partner_id", "service_type"],
    buckets=DURATION_BUCKETS,
)
OVERDUE = Counter(
    "bersinar_referral_responses_overdue_total",
    "Requests a partner did not answer by their deadline (once per referral)",
    ["partner_id", "service_type"],
)
OCCUPIED = Gauge(
    "bersinar_partner_occupancy",
    "Places taken (referrals accepted or admitted) per partner and service",
    ["partner_id", "service_type"],
)
CAPACITY = Gauge(
    "bersinar_partner_capacity",
    "Places offered per partner and service (from mitra)",
    ["partner_id", "service_type"],
)
DEADLINE_SCANS = Counter(
    "bersinar_referral_deadline_scans_total", "Runs of the response-deadline check", ["service"]
)

STATUS_OF_EVENT = {
    "referral_requested": "requested",
    "referral_accepted": "accepted",
    "referral_rejected": "rejected",
    "referral_cancelled": "cancelled",
    "referral_admitted": "admitted",
    "referral_completed": "completed",
    "referral_dropped_out": "dropped_out",
    "referral_transferred": "transferred",
}


def _seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return max(0.0, (parse_rfc3339(end) - parse_rfc3339(start)).total_seconds())


def observe_committed(events: list[tuple[dict[str, Any], str]]) -> None:
    """Count what a committed unit of work emitted."""
    for envelope, _ in events:
        data = envelope["data"]
        labels = (data["partner_id"], data["service_type"])
        event_type = envelope["event_type"]
        if event_type == "referral_response_overdue":
            OVERDUE.labels(*labels).inc()
            continue
        status = STATUS_OF_EVENT.get(event_type)
        if status is None:
            continue
        REFERRALS.labels(*labels, status).inc()
        if status in ("accepted", "rejected"):
            elapsed = _seconds_between(data["requested_at"], data["responded_at"])
            if elapsed is not None:
                RESPONSE_TIME.labels(*labels).observe(elapsed)
        if status == "admitted":
            elapsed = _seconds_between(data["requested_at"], data["admitted_at"])
            if elapsed is not None:
                ADMISSION_TIME.labels(*labels).observe(elapsed)


def set_occupancy(rows: list[tuple[str, str, int, int]]) -> None:
    """The gauges become exactly ``rows``: a partner or service no longer offered
    disappears from them."""
    replace_samples(OCCUPIED, {(p, s): occupied for p, s, occupied, _ in rows})
    replace_samples(CAPACITY, {(p, s): capacity for p, s, _, capacity in rows})
