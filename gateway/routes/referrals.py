from __future__ import annotations

import logging

from bersinar import directory
from bersinar.codes import STAFF, referral_action_roles
from bersinar.contracts import referrals as contracts
from gateway import spreadsheets
from gateway.http import KEYSET_PAGE, endpoint, validated_json, without_page
from gateway.idempotency import request_key
from gateway.schemas import ReferralListQuery

# who may look at referrals at all; which ones, and what they may do to them, rujukan
# decides (a partner's operator: only its partner's referrals, others answer 404)
REFERRAL_READERS = ("admin", "officer", "partner")
# what rujukan checks of the partner that is to take the client (creating, accepting,
# transferring), besides its places (409 CAPACITY_FULL)
ELIGIBILITY = {
    "NOT_ELIGIBLE": "mitra tidak dikenal, tidak aktif, tidak melayani jenis kelamin atau "
    "jenis layanan klien, tidak punya PKS yang berlaku hari ini, atau (pada pengalihan) "
    "mitra yang sama"
}
# what rujukan checks of a discharge summary's follow-up day beyond its shape
FOLLOW_UP_RULE = {
    "DATE_OUT_OF_RANGE": "discharge.follow_up_on tidak sesudah hari layanan berakhir, atau "
    "lebih dari 365 hari sesudahnya"
}
# what rujukan checks of the consent of a new referral (or a transfer) beyond its shape
CONSENT = {
    "CONSENT_REQUIRED": "klien di bawah 18 tahun tanpa persetujuan wali (given_by guardian, "
    "guardian_name, guardian_relationship), atau klien yang telah mencabut persetujuannya "
    "tanpa persetujuan baru (given_at sesudah pencabutan)"
}
# the actions that take a place or give one back: after one, this process reads the
# partner's places taken at once (as after its own change of a partner), so the caller's
# next /partners/match here shows it; other processes hear it from rujukan's events
PLACE_ACTIONS = ("accept", "cancel", "complete", "drop_out", "transfer")


class _RpcReplyBodies(logging.Filter):
    """nameko's RPC proxy logs every reply body at DEBUG; a referral read carries the
    client's identity, which must never reach a log line."""

    MESSAGE = "RPC reply event complete %s %s"

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == self.MESSAGE and isinstance(record.args, tuple) and record.args:
            record.args = (record.args[0], "<isi balasan tidak dicatat>")
        return True


_rpc_log = logging.getLogger("nameko.rpc")
if not any(isinstance(f, _RpcReplyBodies) for f in _rpc_log.filters):
    _rpc_log.addFilter(_RpcReplyBodies())


class ReferralRoutes:
    @endpoint(
        "POST",
        "/api/v1/referrals",
        "Buat rujukan",
        roles=STAFF,
        body=contracts.ReferralCreate,
        response=contracts.Referral,
        status=201,
        creates={"referral_id": "/id"},
        rules={**ELIGIBILITY, **CONSENT},
        validated_by="rujukan",
        example={
            "client": {
                "nik": "1771050501900001",
                "name": "Budi Santoso",
                "birth_date": "1990-01-05",
                "sex": "M",
            },
            "source": "TAT",
            "service_type": "outpatient",
            "partner_id": "yayasan-pesona",
            "consent": {"given": True},
        },
        tags=("rujukan",),
    )
    def create_referral(self, request, caller, data, params):
        # rujukan is sent the body as sent: it reads it through the route's contract at
        # its own edge, the only validation (the same 422 answers). The request key makes
        # a repeat of this request (the caller's retry with the same Idempotency-Key after
        # a 503, or the same RPC delivered twice) return the referral the first one made.
        return self.rpc(
            "rujukan",
            "create_referral",
            validated_json(request),
            caller.as_dict(),
            request_key=request_key(request, caller),
        )

    @endpoint(
        "GET",
        "/api/v1/referrals",
        "Daftar rujukan (mitra: hanya rujukan kepadanya), tanpa identitas klien; "
        "format=xlsx: seluruh daftar yang tersaring sebagai lembar kerja",
        roles=REFERRAL_READERS,
        query=ReferralListQuery,
        response=contracts.Referral(many=True),
        tags=("rujukan",),
        rules=KEYSET_PAGE,
        produces=("application/json", spreadsheets.XLSX),
    )
    def list_referrals(self, request, caller, data, params):
        filters = {k: v for k, v in request.args.to_dict().items() if k != "format"}
        if not spreadsheets.wants_xlsx(request, params):
            return self.rpc("rujukan", "list_referrals", filters, caller.as_dict())
        return spreadsheets.xlsx_response(
            spreadsheets.REFERRALS,
            self._every_referral(without_page(filters), caller.as_dict()),
            "rujukan",
        )

    @endpoint(
        "POST",
        "/api/v1/clients/search",
        "Cari klien menurut NIK atau nama, dengan rujukannya (mitra: hanya kliennya); "
        "NIK di badan permintaan, tidak di URL; setiap klien yang tampil dicatat di log audit",
        roles=REFERRAL_READERS,
        body=contracts.ClientSearch,
        response=contracts.ClientSearchResult,
        tags=("rujukan",),
        example={"name": "Budi Santoso", "status": "admitted"},
    )
    def search_clients(self, request, caller, data, params):
        return self.rpc("rujukan", "search_clients", validated_json(request), caller.as_dict())

    def _every_referral(self, filters, actor):
        """Every referral the filters select, page by page (keyset), as they are written."""
        cursor = None
        while True:
            page = self.rpc(
                "rujukan", "list_referrals", {**filters, "limit": 200, "cursor": cursor}, actor
            )
            yield from page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return

    @endpoint(
        "GET",
        "/api/v1/referrals/<string:referral_id>",
        "Satu rujukan dengan identitas klien (setiap pembacaan dicatat di log audit)",
        roles=REFERRAL_READERS,
        query=contracts.ReferralReadQuery,
        response=contracts.ReferralDetail,
        tags=("rujukan",),
    )
    def get_referral(self, request, caller, data, params, referral_id):
        return self.rpc(
            "rujukan", "get_referral", referral_id, caller.as_dict(), params.get("purpose")
        )

    @endpoint(
        "POST",
        "/api/v1/referrals/<string:referral_id>/consent/withdraw",
        "Catat pencabutan persetujuan klien (atas pernyataan klien): sejak itu mitra tidak "
        "melihat identitas klien dan rujukan baru memerlukan persetujuan baru",
        roles=STAFF,
        body=contracts.ConsentWithdrawal,
        body_required=False,
        rules={"DATE_OUT_OF_RANGE": "withdrawn_on sesudah hari ini atau sebelum rujukan dibuat"},
        response=contracts.ConsentWithdrawn,
        tags=("rujukan",),
    )
    def withdraw_consent(self, request, caller, data, params, referral_id):
        return self.rpc(
            "rujukan", "withdraw_consent", referral_id, validated_json(request), caller.as_dict()
        )

    @endpoint(
        "POST",
        "/api/v1/referrals/<string:referral_id>/undo",
        "Batalkan langkah terakhir rujukan (admin), dengan alasan dan status yang dilihat: "
        "rujukan kembali ke status sebelumnya; 409 NOTHING_TO_UNDO bila belum pernah "
        "berpindah status, STATUS_CHANGED bila statusnya sudah lain, UNDO_NOT_POSSIBLE bila "
        "rujukan baru hasil pengalihan sudah ditanggapi, CAPACITY_FULL bila kembali aktif "
        "tanpa tempat",
        roles=("admin",),
        body=contracts.UndoInput,
        response=contracts.ReferralUndone,
        example={"expected_status": "admitted", "reason": "Salah pilih rujukan saat mencatat."},
        tags=("rujukan",),
    )
    def undo_transition(self, request, caller, data, params, referral_id):
        undone = self.rpc(
            "rujukan", "undo_transition", referral_id, validated_json(request), caller.as_dict()
        )
        self.refresh_occupancy(undone["partner_id"])
        return undone

    @endpoint(
        "POST",
        "/api/v1/clients/<string:client_id>/corrections",
        "Koreksi identitas klien (admin), dengan alasan: dicatat di riwayat setiap "
        "rujukannya dan di log audit; 409 NIK_IN_USE bila NIK milik klien lain, "
        "NOTHING_CHANGED bila sama dengan yang tersimpan",
        roles=("admin",),
        body=contracts.ClientCorrection,
        response=contracts.ClientCorrected,
        example={"name": "Budi Santoso", "reason": "Nama salah ketik saat rujukan dibuat."},
        tags=("rujukan",),
    )
    def correct_client(self, request, caller, data, params, client_id):
        return self.rpc(
            "rujukan", "correct_client", client_id, validated_json(request), caller.as_dict()
        )

    @endpoint(
        "GET",
        "/api/v1/referrals/<string:referral_id>/history",
        "Riwayat status rujukan: siapa, kapan, mengapa",
        roles=REFERRAL_READERS,
        response=contracts.ReferralHistory,
        tags=("rujukan",),
    )
    def referral_history(self, request, caller, data, params, referral_id):
        return self.rpc("rujukan", "referral_history", referral_id, caller.as_dict())

    def _transition(self, request, caller, referral_id, action, payload):
        moved = self.rpc(
            "rujukan", "transition_referral", referral_id, action, payload, caller.as_dict()
        )
        if action in PLACE_ACTIONS:
            self.refresh_occupancy(moved["partner_id"])
        return moved

    @endpoint(
        "POST",
        "/api/v1/referrals/<string:referral_id>/accept",
        "Terima rujukan (mitra penerima)",
        roles=referral_action_roles("accept"),
        body=contracts.TransitionInput,
        body_required=False,
        rules=ELIGIBILITY,
        response=contracts.Referral,
        tags=("rujukan",),
    )
    def accept_referral(self, request, caller, data, params, referral_id):
        return self._transition(request, caller, referral_id, "accept", data)

    @endpoint(
        "POST",
        "/api/v1/referrals/<string:referral_id>/reject",
        "Tolak rujukan dengan alasan berkode (mitra penerima)",
        roles=referral_action_roles("reject"),
        body=contracts.RejectInput,
        response=contracts.Referral,
        example={"reason": "capacity_full", "note": "Rawat jalan penuh sampai akhir bulan."},
        tags=("rujukan",),
    )
    def reject_referral(self, request, caller, data, params, referral_id):
        return self._transition(request, caller, referral_id, "reject", validated_json(request))

    @endpoint(
        "POST",
        "/api/v1/referrals/<string:referral_id>/admit",
        "Klien masuk layanan (mitra penerima)",
        roles=referral_action_roles("admit"),
        body=contracts.AdmitInput,
        body_required=False,
        response=contracts.Referral,
        tags=("rujukan",),
        rules={"DATE_OUT_OF_RANGE": "admitted_on sesudah hari ini atau sebelum rujukan diterima"},
    )
    def admit_referral(self, request, caller, data, params, referral_id):
        # the body as sent (the day as text), read again through the contract by rujukan
        body = validated_json(request) or {}
        return self._transition(request, caller, referral_id, "admit", body)

    @endpoint(
        "POST",
        "/api/v1/referrals/<string:referral_id>/complete",
        "Klien selesai layanan, dengan ringkasan akhir layanan (mitra penerima)",
        roles=referral_action_roles("complete"),
        body=contracts.EndingInput,
        response=contracts.Referral,
        example={"discharge": {"outcome": "improved", "reasons": ["program_completed"]}},
        rules=FOLLOW_UP_RULE,
        tags=("rujukan",),
    )
    def complete_referral(self, request, caller, data, params, referral_id):
        # the body as sent (the follow-up day as text), read again by rujukan
        body = validated_json(request)
        return self._transition(request, caller, referral_id, "complete", body)

    @endpoint(
        "POST",
        "/api/v1/referrals/<string:referral_id>/drop-out",
        "Klien putus layanan, dengan ringkasan akhir layanan (mitra penerima)",
        roles=referral_action_roles("drop_out"),
        body=contracts.EndingInput,
        response=contracts.Referral,
        example={"discharge": {"outcome": "unchanged", "reasons": ["lost_contact"]}},
        rules=FOLLOW_UP_RULE,
        tags=("rujukan",),
    )
    def drop_out_referral(self, request, caller, data, params, referral_id):
        body = validated_json(request)
        return self._transition(request, caller, referral_id, "drop_out", body)

    @endpoint(
        "POST",
        "/api/v1/referrals/<string:referral_id>/cancel",
        "Batalkan rujukan (petugas)",
        roles=referral_action_roles("cancel"),
        body=contracts.TransitionInput,
        body_required=False,
        response=contracts.Referral,
        tags=("rujukan",),
    )
    def cancel_referral(self, request, caller, data, params, referral_id):
        return self._transition(request, caller, referral_id, "cancel", data)

    @endpoint(
        "POST",
        "/api/v1/referrals/<string:referral_id>/transfer",
        "Alihkan klien ke mitra lain: rujukan baru yang tertaut (petugas)",
        roles=referral_action_roles("transfer"),
        body=contracts.TransferInput,
        response=contracts.ReferralTransition,
        creates={"referral_id": "/transferred_to/id"},
        rules={**ELIGIBILITY, **FOLLOW_UP_RULE, **CONSENT},
        example={
            "partner_id": "yayasan-kipas",
            "reason": "Klien pindah domisili.",
            "consent": {"given": True, "given_by": "client"},
            "discharge": {
                "outcome": "referred_onward",
                "reasons": ["relocation", "transferred_to_partner"],
            },
        },
        tags=("rujukan",),
    )
    def transfer_referral(self, request, caller, data, params, referral_id):
        return self._transition(request, caller, referral_id, "transfer", validated_json(request))

    @endpoint(
        "GET",
        "/api/v1/partners/match",
        "Mitra yang memenuhi syarat untuk klien, terbaik lebih dulu",
        roles=STAFF,
        query=contracts.MatchQuery,
        response=contracts.PartnerMatch(many=True),
        tags=("rujukan", "mitra"),
        conditional=True,
    )
    def match_partners(self, request, caller, data, params):
        # gateway/readmodel.py: the directory and the places taken; None until loaded
        entries, occupied = self.directory.all(), self.directory.occupancy.held()
        if entries is None or occupied is None:
            return {"items": self.rpc("rujukan", "match_partners", request.args.to_dict())}
        return {"items": directory.match_view(entries, occupied, params, self.clock.today())}
