"""A system of the tests' own for the e2e suites that change data freely and read it at a
fixed time (tests/e2e/test_refusals.py, tests/e2e/test_spreadsheets.py): the processes
of `make run` on a vhost and databases of their own, with the clock file at 4 December
2026, and the objects those suites need, made through the API."""

from __future__ import annotations

import itertools
import time

import requests

import gateway.service  # noqa: F401  (declaring the routes fills ROUTES)
from gateway.http import ROUTES
from harness.data import referral_body
from harness.system import System

# the system's clock: 4 December 2026, 10:00 in Bengkulu. November 2026 has ended and is
# not yet locked; earlier months of the year are locked (REPORT_LOCK_AFTER_DAYS 30).
NOW = "2026-12-04T03:00:00Z"
REPORT = "/api/v1/reports/<string:partner_id>/<string:period>"
# the smallest file an attachment takes (bersinar.attachments judges it by its start)
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
# a kind of attachment each kind of object takes (bersinar.codes.ATTACHMENT_KINDS)
ATTACHMENT_KINDS = {
    "referral": "consent_form",
    "agreement": "signed_agreement",
    "report": "evidence",
}
# a month with nothing to report, consistent by every rule: the operation's own example
EMPTY_MONTH = next(r.example for r in ROUTES if (r.method, r.path) == ("PUT", REPORT))
_serial = itertools.count(1)


class World:
    """Objects made through the API: two partners of its own (``own``, whose objects the
    suites use, and ``other``), a key of each role, referrals in each state, reports,
    notifications."""

    def __init__(self, system: System):
        self.system = system
        self.keys = {
            "admin": system.admin_key,
            "officer": system.new_key("officer", label="matriks"),
            "national": system.new_key("national", label="matriks"),
            "ops": system.new_key("ops", label="matriks"),
        }
        self.own = self.partner("Yayasan Matriks Sendiri")
        self.other = self.partner("Yayasan Matriks Lain")
        self.keys["partner"] = system.new_key("partner", self.own, label="matriks")
        self.keys["other_partner"] = system.new_key("partner", self.other, label="matriks")
        self.reports = self._report_slots()
        self._wait_known()

    def ok(self, response: requests.Response, status: int = 200) -> dict:
        assert response.status_code == status, response.text
        return response.json()

    def partner(self, name: str) -> str:
        body = {
            "name": name,
            "kind": "foundation",
            "kabupaten_kota": "Kota Bengkulu",
            "sex_served": "all",
            "services": [
                {"service_type": "outpatient", "capacity": 500},
                {"service_type": "inpatient", "capacity": 500},
            ],
        }
        partner_id = self.ok(self.system.post("/api/v1/partners", body), 201)["id"]
        self.ok(self.system.post(f"/api/v1/partners/{partner_id}/agreements", self.terms()), 201)
        return partner_id

    @staticmethod
    def terms() -> dict:
        return {
            "number": f"PKS/MATRIKS/{serial()}",
            "signed_on": "2025-12-15",
            "valid_from": "2026-01-01",
            "valid_until": "2027-12-31",
        }

    def _wait_known(self, timeout: float = 60) -> None:
        """rujukan and laporan learn new partners from mitra's events."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            made = self.system.post(
                "/api/v1/referrals", referral_body(partner_id=self.own, service_type="outpatient")
            )
            report = self.system.get(f"/api/v1/reports/{self.own}/2026-11")
            if made.status_code == 201 and report.status_code == 200:
                return
            time.sleep(0.3)
        raise TimeoutError("rujukan or laporan never learnt the matrix's partners")

    # --- referrals ----------------------------------------------------------------------

    PATH = {"accepted": ["accept"], "admitted": ["accept", "admit"]}

    def referral(self, status: str = "requested", partner: str | None = None) -> str:
        made = self.system.post(
            "/api/v1/referrals",
            referral_body(partner_id=partner or self.own, service_type="outpatient"),
        )
        referral_id = self.ok(made, 201)["id"]
        for action in self.PATH.get(status, []):
            self.ok(self.system.post(f"/api/v1/referrals/{referral_id}/{action}"))
        return referral_id

    def client(self) -> str:
        """The pseudonym of the client of a new referral to the own partner."""
        made = self.system.post(
            "/api/v1/referrals", referral_body(partner_id=self.own, service_type="outpatient")
        )
        return self.ok(made, 201)["client"]["id"]

    # --- reports --------------------------------------------------------------------------

    def _report_slots(self):
        """Months of the own partner not yet touched: each report cell takes its own."""
        return iter(f"2026-{month:02d}" for month in range(1, 12))

    def report(self, state: str, real: bool) -> str:
        """A month of the own partner's in ``state``: ``due`` (nothing sent, open),
        ``locked`` (nothing sent, past its lock), ``submitted``. A cell that is to be
        refused before the month is looked at (``real`` false) gets any month."""
        if not real:
            return "2026-11"
        period = next(self.reports)
        if state == "locked":
            assert period < "2026-11"
            return period
        if period != "2026-11":
            reason = {"comment": "Dibuka untuk uji."}
            self.ok(self.system.post(f"/api/v1/reports/{self.own}/{period}/reopen", reason))
        if state == "submitted":
            answer = requests.put(
                f"{self.system.base_url}/api/v1/reports/{self.own}/{period}",
                json=EMPTY_MONTH,
                headers=self.system.headers(),
                timeout=10,
            )
            self.ok(answer)
        return period

    # --- notifications, keys, webhooks ---------------------------------------------------

    def notification(self, inbox: str) -> str:
        """A notification in ``inbox`` (``partner`` for the own partner's, or a role's)."""
        query = {"partner_id": self.own} if inbox == "partner" else {"recipient": f"role:{inbox}"}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            items = self.ok(self.system.get("/api/v1/notifications", params=query))["items"]
            if items:
                return items[0]["id"]
            time.sleep(0.3)
        raise TimeoutError(f"no notification reached {inbox}")

    def delivery(self) -> str:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            items = self.ok(self.system.get("/api/v1/notifications/deliveries"))["items"]
            if items:
                return items[0]["id"]
            time.sleep(0.3)
        raise TimeoutError("no delivery recorded")

    def api_key(self) -> str:
        made = self.system.post("/api/v1/api-keys", {"role": "ops", "label": "matriks hapus"})
        return self.ok(made, 201)["id"]

    def subscription(self, caller: str) -> str:
        key = self.keys[caller] if caller in ("admin", "national") else self.system.admin_key
        made = self.system.post("/api/v1/webhooks", self.webhook(), key=key)
        return self.ok(made, 201)["id"]

    def agreement(self) -> str:
        """The own partner's first agreement."""
        listed = self.system.get(f"/api/v1/partners/{self.own}/agreements")
        return self.ok(listed)["items"][0]["id"]

    def attachment(self, path: str, kind: str) -> str:
        """A PDF attached (by an admin) at ``path`` (an object's attachments)."""
        made = requests.post(
            self.system.base_url + path,
            data=PDF,
            params={"kind": kind},
            headers={**self.system.headers(), "Content-Type": "application/pdf"},
            timeout=30,
        )
        return self.ok(made, 201)["id"]

    @staticmethod
    def webhook() -> dict:
        return {"url": "http://127.0.0.1:9/matriks", "event_types": ["partner_registered"]}


def serial() -> int:
    """A number no other object of this run has taken (names, agreement numbers)."""
    return next(_serial)
