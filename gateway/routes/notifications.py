from __future__ import annotations

from bersinar.codes import PEOPLE
from bersinar.contracts import notifications as contracts
from bersinar.errors import NotFound
from gateway.exceptions import RoleForbidden
from gateway.http import KEYSET_PAGE, endpoint, require, validated_json


def inbox_of(caller, partner_id: str | None = None, recipient: str | None = None) -> str | None:
    """Whose inbox a caller reads: a partner its own, an officer the officers', an admin
    any (one partner's, a role's, or all of them). A role's inbox a caller's role may
    never read is refused (403); another partner's inbox is as if absent (404)."""
    if caller.role == "partner":
        require(not recipient, "Mitra hanya melihat kotak masuknya sendiri.")
        if partner_id and partner_id != caller.partner_id:
            raise NotFound("Kotak masuk tidak ditemukan.")
        return f"partner:{caller.partner_id}"
    if caller.role == "officer":
        require(
            not partner_id and recipient in (None, "role:officer"),
            "Petugas melihat kotak masuk petugas.",
        )
        return "role:officer"
    if partner_id:
        return f"partner:{partner_id}"
    return recipient


class NotificationRoutes:
    @endpoint(
        "GET",
        "/api/v1/notifications",
        "Kotak masuk notifikasi pemanggil (filter unread=true untuk yang belum dibaca)",
        roles=PEOPLE,
        query=contracts.InboxQuery,
        response=contracts.NotificationPage,
        tags=("notifikasi",),
        rules=KEYSET_PAGE,
    )
    def list_notifications(self, request, caller, data, params):
        recipient = inbox_of(caller, params.get("partner_id"), params.get("recipient"))
        return self.rpc(
            "notifikasi",
            "list_notifications",
            recipient,
            params["limit"],
            params.get("cursor"),
            params.get("unread"),
        )

    @endpoint(
        "POST",
        "/api/v1/notifications/<string:notification_id>/read",
        "Tandai notifikasi sudah dibaca",
        roles=PEOPLE,
        response=contracts.Notification,
        tags=("notifikasi",),
    )
    def read_notification(self, request, caller, data, params, notification_id):
        return self._mark(caller, notification_id, True)

    @endpoint(
        "POST",
        "/api/v1/notifications/<string:notification_id>/unread",
        "Tandai notifikasi belum dibaca",
        roles=PEOPLE,
        response=contracts.Notification,
        tags=("notifikasi",),
    )
    def unread_notification(self, request, caller, data, params, notification_id):
        return self._mark(caller, notification_id, False)

    def _mark(self, caller, notification_id, read):
        recipient = None if caller.role == "admin" else inbox_of(caller)
        return self.rpc("notifikasi", "mark_read", notification_id, recipient, {"read": read})

    @endpoint(
        "GET",
        "/api/v1/notifications/deliveries",
        "Log pengiriman notifikasi: peristiwa, penerima, kanal, percobaan, status, galat",
        roles=("admin",),
        query=contracts.DeliveryQuery,
        response=contracts.DeliveryPage,
        tags=("notifikasi",),
        rules=KEYSET_PAGE,
    )
    def list_deliveries(self, request, caller, data, params):
        return self.rpc("notifikasi", "list_deliveries", request.args.to_dict())

    @endpoint(
        "GET",
        "/api/v1/notifications/deliveries/<string:delivery_id>",
        "Satu pengiriman dengan setiap percobaannya",
        roles=("admin",),
        response=contracts.Delivery,
        tags=("notifikasi",),
    )
    def get_delivery(self, request, caller, data, params, delivery_id):
        return self.rpc("notifikasi", "get_delivery", delivery_id)

    @endpoint(
        "GET",
        "/api/v1/notifications/preferences",
        "Kanal pilihan penerima per jenis peristiwa",
        roles=PEOPLE,
        query=contracts.PreferencesQuery,
        tags=("notifikasi",),
    )
    def get_preferences(self, request, caller, data, params):
        recipient = self._preference_owner(caller, params.get("recipient"))
        return self.rpc("notifikasi", "get_preferences", recipient)

    @endpoint(
        "PUT",
        "/api/v1/notifications/preferences",
        "Pilih kanal per jenis peristiwa (event_type '*' untuk semua)",
        roles=PEOPLE,
        body=contracts.PreferencesUpdate,
        example={"items": [{"event_type": "*", "channels": ["inbox", "email"]}]},
        tags=("notifikasi",),
    )
    def set_preferences(self, request, caller, data, params):
        recipient = self._preference_owner(caller, data.get("recipient"))
        return self.rpc("notifikasi", "set_preferences", recipient, validated_json(request))

    @staticmethod
    def _preference_owner(caller, requested: str | None) -> str:
        if caller.role == "admin":
            return requested or "role:admin"
        own = inbox_of(caller)
        if requested in (None, own):
            return own
        if caller.role == "partner" and requested.startswith("partner:"):
            raise NotFound("Pilihan penerima ini tidak ditemukan.")
        raise RoleForbidden("Hanya pilihan Anda sendiri yang dapat diatur.")
