from __future__ import annotations

from bersinar.contracts import referrals as contracts
from gateway.http import KEYSET_PAGE, endpoint


class AuditRoutes:
    @endpoint(
        "GET",
        "/api/v1/audit",
        "Log audit pembacaan identitas klien: siapa, kapan, rujukan mana, mengapa",
        roles=("admin",),
        query=contracts.AuditQuery,
        response=contracts.AuditEntry(many=True),
        tags=("audit",),
        rules=KEYSET_PAGE,
    )
    def list_audit(self, request, caller, data, params):
        return self.rpc("rujukan", "list_audit", request.args.to_dict(), caller.as_dict())
