"""The operations measured beside creation: read a partner, read a referral, list
referrals (filtered, cursor pages), accept a referral, submit a monthly report. Each is a
plan of requests for the load generator (bench/loadgen.py), built from this run's own
data, run at each connection count like the create phase."""

from __future__ import annotations

import json
from datetime import date
from urllib.parse import urlencode

from sqlalchemy import text

from services.mitra.domain import SEED_PARTNERS

# name -> (what it is, the operation as the API spells it)
OPERATIONS = {
    "read_partner": "GET /api/v1/partners/{id}",
    "read_referral": "GET /api/v1/referrals/{id}",
    "list_referrals": "GET /api/v1/referrals?status=&partner_id=&cursor=",
    "accept_referral": "POST /api/v1/referrals/{id}/accept (the partner's operator key)",
    "submit_report": "PUT /api/v1/reports/{partner_id}/{period}",
}
# where a phase's events must have reached before the next phase (service, event type,
# consumers)
EVENTS_OF = {
    "accept_referral": ("rujukan", "referral_accepted", ("laporan", "notifikasi")),
    "submit_report": ("laporan", "report_submitted", ("notifikasi",)),
}
# laporan owes a report for a month only if a PKS was valid in it and the month is on
# or after REPORT_START_PERIOD; the seeded PKS of 2023-05-30 gives each partner ~40
# months. For a distinct (partner, month) per submission the run gives laporan's read
# model one more agreement per partner from 2000 (its own database, nothing else sees
# it) and starts reports in 2000-01: ~1,600 months to submit before any is resubmitted.
REPORTS_FROM = date(2000, 1, 1)
REPORT_ENV = {
    "REPORT_START_PERIOD": REPORTS_FROM.strftime("%Y-%m"),
    "REPORT_LOCK_AFTER_DAYS": "100000",
    # no report_overdue for every month since 2000 in the middle of the run
    "REPORT_CHECK_INTERVAL": "86400",
}
LIST_PAGE = 50
LIST_PAGES = 3  # first page and cursor pages followed per filter
ZERO = dict.fromkeys(("start", "admitted", "completed", "dropped_out", "transferred_out", "end"), 0)
REPORT_BODY = json.dumps(
    {
        "counts": {"total": ZERO},
        "services_delivered": {"counselling_sessions": 4, "group_sessions": 1, "home_visits": 0},
        "capacity_building": {"activities": 0, "staff_trained": 0},
        "narrative": "Laporan uji beban.",
    }
)
PARTNERS = tuple(p.id for p in SEED_PARTNERS)


def months_since(first: date, today: date) -> list[str]:
    """Every month from ``first`` to the last one that has ended, oldest first."""
    months, year, month = [], first.year, first.month
    while (year, month) < (today.year, today.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def rotate(items: list, offset: int) -> list:
    if not items:
        return items
    offset %= len(items)
    return items[offset:] + items[:offset]


class Operations:
    """Plans and keys of the operation phases, for one Bench."""

    def __init__(self, bench):
        self.bench = bench
        self.partner_keys: dict[str, str] = {}
        self.sent: dict[str, int] = {}  # requests sent so far per operation (plans rotate)
        self.list_urls: list[str] = []

    # -- preparation -----------------------------------------------------------------

    def prepare(self) -> None:
        system = self.bench.system
        for partner_id in PARTNERS:
            response = system.post(
                "/api/v1/api-keys",
                {"role": "partner", "partner_id": partner_id, "label": f"bench {partner_id}"},
            )
            if response.status_code != 201:
                raise RuntimeError(f"partner key: {response.status_code} {response.text[:300]}")
            self.partner_keys[partner_id] = response.json()["key"]
        with self.bench.engines["laporan"].begin() as connection:
            for partner_id in PARTNERS:
                connection.execute(
                    text(
                        "INSERT INTO agreements (agreement_id, partner_id, number, valid_from, "
                        "valid_until, terminated_on, annual_target) VALUES (:id, :partner, "
                        "'BENCH', :start, '2099-12-31', NULL, NULL)"
                    ),
                    {"id": f"bench-{partner_id}", "partner": partner_id, "start": REPORTS_FROM},
                )

    def walk_list(self, filters: list[dict], pages: int = LIST_PAGES) -> list[str]:
        """The URL of each filter's first page and of the cursor pages after it."""
        urls = []
        for query in filters:
            cursor = None
            for _ in range(pages):
                params = {**query, "limit": LIST_PAGE, **({"cursor": cursor} if cursor else {})}
                url = "/api/v1/referrals?" + urlencode(params)
                response = self.bench.system.get(url)
                if response.status_code != 200:
                    raise RuntimeError(f"{url}: {response.status_code} {response.text[:300]}")
                urls.append(url)
                cursor = response.json().get("next_cursor")
                if not cursor:
                    break
        return urls

    @staticmethod
    def list_filters(statuses: tuple[str, ...]) -> list[dict]:
        """Per partner: one status, and all statuses; across partners: each status, and
        no filter at all."""
        filters: list[dict] = []
        for n, partner_id in enumerate(PARTNERS):
            filters.append({"partner_id": partner_id, "status": statuses[n % len(statuses)]})
            filters.append({"partner_id": partner_id})
        filters += [{"status": s} for s in statuses] + [{}]
        return filters

    # -- plans ---------------------------------------------------------------------------

    def plan(self, operation: str) -> dict:
        """``{"headers": [...], "requests": [...], "cycle": bool}`` for the next phase."""
        admin = {"Authorization": f"Bearer {self.bench.admin_key}"}
        offset = self.sent.get(operation, 0)
        if operation == "read_partner":
            requests = [["GET", f"/api/v1/partners/{p}", None, 0] for p in PARTNERS]
            return {"headers": [admin], "requests": requests, "cycle": True}
        if operation == "read_referral":
            ids = self.referral_ids("ORDER BY created_at DESC LIMIT 5000")
            requests = [["GET", f"/api/v1/referrals/{i}", None, 0] for i in ids]
            return {"headers": [admin], "requests": rotate(requests, offset), "cycle": True}
        if operation == "list_referrals":
            if not self.list_urls:
                self.list_urls = self.walk_list(self.list_filters(("requested",)))
            requests = [["GET", url, None, 0] for url in self.list_urls]
            return {"headers": [admin], "requests": rotate(requests, offset), "cycle": True}
        if operation == "accept_referral":
            headers = [{"Authorization": f"Bearer {self.partner_keys[p]}"} for p in PARTNERS]
            rows = self.bench.rows(
                "rujukan",
                "SELECT id, partner_id FROM referrals WHERE status = 'requested' "
                "ORDER BY created_at, id",
            )
            requests = [
                ["POST", f"/api/v1/referrals/{rid}/accept", None, PARTNERS.index(partner)]
                for rid, partner in rows
            ]
            return {"headers": headers, "requests": requests, "cycle": False}
        if operation == "submit_report":
            months = months_since(REPORTS_FROM, date.today())
            requests = [
                ["PUT", f"/api/v1/reports/{p}/{m}", REPORT_BODY, 0]
                for m in months
                for p in PARTNERS
            ]
            # each (partner, month) once; after ~1,600 the plan comes round again: a
            # resubmission, which the API allows until a report is approved
            return {"headers": [admin], "requests": rotate(requests, offset), "cycle": True}
        raise ValueError(operation)

    def referral_ids(self, order: str) -> list[str]:
        return [row[0] for row in self.bench.rows("rujukan", f"SELECT id FROM referrals {order}")]
