"""The printed documents from the console's pages, for a signed-in person: the same
PDFs as the API's (gateway.routes.documents), under the same roles; and the referral a
letter's short code names."""

from __future__ import annotations

import re

from bersinar.contracts.referrals import is_plain_id
from bersinar.contracts.reports import PERIOD_PATTERN
from gateway.console.web import BASE, not_found, page, redirect, require_route
from gateway.routes.documents import LETTER_ROUTE, REPORT_ROUTE


class ConsoleDocumentRoutes:
    @page("GET", "/console/rujukan/<string:referral_id>/surat.pdf")
    def console_referral_letter(self, request, user, referral_id):
        require_route(user, LETTER_ROUTE)
        if not is_plain_id(referral_id):
            raise not_found()
        return self.letter_pdf(referral_id, user.caller)

    @page("GET", "/console/rujukan/kode")
    def console_referral_by_code(self, request, user):
        """The referral a letter's short code names (typed in on the referrals' page)."""
        require_route(user, "GET /api/v1/referrals/<string:referral_id>")
        code = request.args.get("kode", "")[:40]
        referral_id = self.rpc("rujukan", "referral_by_code", code, user.caller.as_dict())
        return redirect(f"{BASE}/rujukan/{referral_id}")

    @page("GET", "/console/laporan/<string:partner_id>/<string:period>.pdf")
    def console_report_pdf(self, request, user, partner_id, period):
        require_route(user, REPORT_ROUTE)
        if not is_plain_id(partner_id) or not re.fullmatch(PERIOD_PATTERN, period):
            raise not_found()
        return self.monthly_report_pdf(partner_id, period, user.caller)
