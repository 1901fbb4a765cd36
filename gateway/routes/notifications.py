from __future__ import annotations

from bersinar.contracts import notifications as contracts
from gateway import schemas
from gateway.http import endpoint, require


class NotificationRoutes:
    @endpoint(
        "GET",
        "/api/v1/notifications",
        "Kotak masuk notifikasi pemanggil",
        roles=("admin", "officer", "partner"),
        query=schemas.NotificationQuery,
        response=contracts.Notification(many=True),
        tags=("notifikasi",),
    )
    def list_notifications(self, request, caller, data, params):
        if caller.role == "partner":
            recipient = f"partner:{caller.partner_id}"
        elif caller.role == "officer":
            require(not params.get("partner_id"), "Petugas melihat kotak masuk petugas.")
            recipient = "role:officer"
        else:
            recipient = f"partner:{params['partner_id']}" if params.get("partner_id") else None
        return self.rpc(
            "notifikasi", "list_notifications", recipient, params["limit"], params.get("cursor")
        )
