from __future__ import annotations

from bersinar.contracts import notifications as contracts
from bersinar.errors import WebhookTargetRefused
from gateway.http import endpoint, page_of, validated_json
from gateway.schemas import Page

SUBSCRIBERS = ("admin", "national")


class WebhookRoutes:
    @endpoint(
        "POST",
        "/api/v1/webhooks",
        "Langganan webhook: peristiwa dikirim ke alamat https publik sebagai JSON bertanda "
        "tangan Standard Webhooks (header webhook-id, webhook-timestamp, webhook-signature); "
        "rahasia ditampilkan sekali. Peran national hanya boleh berlangganan "
        + ", ".join(contracts.NATIONAL_EVENT_TYPES)
        + " (lainnya 403)",
        roles=SUBSCRIBERS,
        body=contracts.WebhookCreate,
        response=contracts.WebhookCreated,
        status=201,
        creates={"subscription_id": "/id"},
        rules={
            WebhookTargetRefused.code: "alamat yang tidak boleh dituju: bukan https, atau "
            "nama atau alamat yang menuju mesin ini, jaringan privat, link-local atau layanan "
            "metadata awan (kecuali host yang diizinkan admin), atau nama yang tidak ada di DNS"
        },
        example={
            "url": "https://penerima.example/bersinar/peristiwa",
            "event_types": ["referral_requested", "report_submitted"],
        },
        tags=("webhook",),
    )
    def create_webhook(self, request, caller, data, params):
        return self.rpc("notifikasi", "create_webhook", validated_json(request), caller.as_dict())

    @endpoint(
        "GET",
        "/api/v1/webhooks",
        "Daftar langganan webhook (national: miliknya sendiri)",
        roles=SUBSCRIBERS,
        query=Page,
        response=contracts.Webhook(many=True),
        tags=("webhook",),
    )
    def list_webhooks(self, request, caller, data, params):
        listed = self.rpc("notifikasi", "list_webhooks", caller.as_dict())
        return page_of(listed["items"], params)

    @endpoint(
        "DELETE",
        "/api/v1/webhooks/<string:subscription_id>",
        "Hapus langganan webhook; pengiriman yang tertunda dibatalkan",
        roles=SUBSCRIBERS,
        response=contracts.Webhook,
        tags=("webhook",),
    )
    def delete_webhook(self, request, caller, data, params, subscription_id):
        return self.rpc("notifikasi", "delete_webhook", subscription_id, caller.as_dict())
