from __future__ import annotations

from marshmallow import fields

from bersinar import codes, directory
from bersinar.codes import STAFF
from bersinar.contracts import one_of
from bersinar.contracts import partners as contracts
from gateway.http import endpoint, page_of, validated_json, without_page
from gateway.schemas import Page


class PartnerQuery(contracts.PartnerFilter, Page):
    pass


class ActivityQuery(Page):
    kind = fields.String(validate=one_of(codes.ACTIVITY_KINDS))


class PartnerRoutes:
    @endpoint(
        "GET",
        "/api/v1/partners",
        "Daftar mitra",
        roles=tuple(codes.ROLES),
        query=PartnerQuery,
        response=contracts.Partner(many=True),
        conditional=True,
        tags=("mitra",),
    )
    def list_partners(self, request, caller, data, params):
        filters = without_page(params)
        entries = self.directory.all()  # gateway/readmodel.py; None until loaded
        if entries is None:
            partners = self.rpc("mitra", "list_partners", filters, caller.as_dict())
        else:
            partners = directory.list_view(entries, filters, self.clock.today(), caller.as_dict())
        return page_of(partners, params)

    @endpoint(
        "POST",
        "/api/v1/partners",
        "Daftarkan mitra",
        roles=STAFF,
        body=contracts.PartnerCreate,
        response=contracts.Partner,
        status=201,
        creates={"partner_id": "/id"},
        example={
            "name": "Yayasan Harapan Baru",
            "kind": "foundation",
            "address": "Jl. Contoh No. 1, Kota Bengkulu",
            "kabupaten_kota": "Kota Bengkulu",
            "sex_served": "all",
            "services": [{"service_type": "outpatient", "capacity": 20}],
        },
        tags=("mitra",),
    )
    def register_partner(self, request, caller, data, params):
        partner = self.rpc("mitra", "register_partner", validated_json(request), caller.actor)
        self.refresh_partner(partner["id"])  # this process's reads show it at once
        return partner

    @endpoint(
        "GET",
        "/api/v1/occupancy",
        "Tempat terisi dan kapasitas setiap layanan setiap mitra (rujukan aktif)",
        roles=STAFF,
        tags=("rujukan", "mitra"),
    )
    def occupancy(self, request, caller, data, params):
        return {"items": self.rpc("rujukan", "occupancy")}

    @endpoint(
        "GET",
        "/api/v1/partners/<string:partner_id>",
        "Satu mitra",
        roles=tuple(codes.ROLES),
        response=contracts.Partner,
        conditional=True,
        tags=("mitra",),
    )
    def get_partner(self, request, caller, data, params, partner_id):
        entry = self.directory.entry(partner_id)
        if entry is None:  # not loaded yet, or registered a moment ago elsewhere
            return self.rpc("mitra", "get_partner", partner_id, caller.as_dict())
        return directory.partner_view(entry, self.clock.today(), caller.as_dict())

    @endpoint(
        "PATCH",
        "/api/v1/partners/<string:partner_id>",
        "Ubah mitra (operator mitra: hanya kontak dan kapasitas miliknya)",
        roles=(*STAFF, "partner"),
        body=contracts.PartnerPatch,
        response=contracts.Partner,
        example={"services": [{"service_type": "outpatient", "capacity": 25}]},
        tags=("mitra",),
    )
    def update_partner(self, request, caller, data, params, partner_id):
        partner = self.rpc(
            "mitra", "update_partner", partner_id, validated_json(request), caller.as_dict()
        )
        self.refresh_partner(partner_id)
        return partner

    @endpoint(
        "GET",
        "/api/v1/partners/<string:partner_id>/agreements",
        "PKS sebuah mitra",
        roles=(*STAFF, "partner"),
        query=Page,
        response=contracts.Agreement(many=True),
        tags=("mitra",),
    )
    def list_agreements(self, request, caller, data, params, partner_id):
        return page_of(self.rpc("mitra", "list_agreements", partner_id, caller.as_dict()), params)

    @endpoint(
        "POST",
        "/api/v1/partners/<string:partner_id>/agreements",
        "Catat PKS (atau perpanjangannya)",
        roles=STAFF,
        body=contracts.AgreementInput,
        response=contracts.Agreement,
        status=201,
        creates={"agreement_id": "/id"},
        example={
            "number": "PKS/BNNP-BKL/2026/017",
            "signed_on": "2026-01-10",
            "valid_from": "2026-02-01",
            "valid_until": "2028-01-31",
            "annual_target": 40,
        },
        tags=("mitra",),
    )
    def sign_agreement(self, request, caller, data, params, partner_id):
        agreement = self.rpc(
            "mitra", "sign_agreement", partner_id, validated_json(request), caller.actor
        )
        self.refresh_partner(partner_id)
        return agreement

    @endpoint(
        "POST",
        "/api/v1/partners/<string:partner_id>/agreements/<string:agreement_id>/terminate",
        "Akhiri PKS sebelum waktunya",
        roles=STAFF,
        body=contracts.AgreementTermination,
        response=contracts.Agreement,
        example={"reason": "Mitra berhenti beroperasi."},
        tags=("mitra",),
    )
    def terminate_agreement(self, request, caller, data, params, partner_id, agreement_id):
        agreement = self.rpc(
            "mitra",
            "terminate_agreement",
            partner_id,
            agreement_id,
            validated_json(request),
            caller.actor,
        )
        self.refresh_partner(partner_id)
        return agreement

    @endpoint(
        "GET",
        "/api/v1/partners/<string:partner_id>/activities",
        "Kegiatan penguatan dan monitoring sebuah mitra",
        roles=(*STAFF, "partner"),
        query=ActivityQuery,
        response=contracts.Activity(many=True),
        tags=("mitra",),
    )
    def list_activities(self, request, caller, data, params, partner_id):
        activities = self.rpc(
            "mitra", "list_activities", partner_id, caller.as_dict(), params.get("kind")
        )
        return page_of(activities, params)

    @endpoint(
        "POST",
        "/api/v1/partners/<string:partner_id>/activities",
        "Catat kegiatan penguatan atau kunjungan supervisi",
        roles=STAFF,
        body=contracts.ActivityInput,
        response=contracts.Activity,
        status=201,
        tags=("mitra",),
    )
    def record_activity(self, request, caller, data, params, partner_id):
        return self.rpc(
            "mitra", "record_activity", partner_id, validated_json(request), caller.actor
        )

    @endpoint(
        "GET",
        "/api/v1/partners/<string:partner_id>/scores",
        "Skor kunjungan supervisi dari waktu ke waktu",
        roles=(*STAFF, "partner"),
        tags=("mitra",),
    )
    def score_history(self, request, caller, data, params, partner_id):
        return self.rpc("mitra", "score_history", partner_id, caller.as_dict())
