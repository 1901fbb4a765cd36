from __future__ import annotations

from bersinar.contracts import referrals as contracts
from gateway.http import endpoint, raw_json
from gateway.routes import STAFF


class ReferralRoutes:
    @endpoint(
        "POST",
        "/api/v1/referrals",
        "Buat rujukan",
        roles=STAFF,
        body=contracts.ReferralCreate,
        response=contracts.Referral,
        status=201,
        tags=("rujukan",),
    )
    def create_referral(self, request, caller, data, params):
        # the service validates the same contract again: send what the caller sent
        return self.rpc("rujukan", "create_referral", raw_json(request), caller.actor)
