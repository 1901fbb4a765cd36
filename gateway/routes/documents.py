"""Printed documents as PDF (docs/documents.md): the surat rujukan of a referral and a
partner's monthly report. The services answer the data under their own refusal rules
(rujukan: who may see the referral, the letter's number, the audit of the identity read;
laporan: whose report); the gateway draws the page."""

from __future__ import annotations

from sqlalchemy import select
from werkzeug.wrappers import Response

from gateway.documents.letter import render_letter
from gateway.documents.pdf import Letterhead, drawn_off_the_hub
from gateway.documents.report import render_report
from gateway.http import endpoint
from gateway.models import ApiKey, ConsoleUser
from gateway.routes.referrals import REFERRAL_READERS
from gateway.routes.reports import REPORT_READERS

PDF = "application/pdf"
LETTER_ROUTE = "GET /api/v1/referrals/<string:referral_id>/letter.pdf"
REPORT_ROUTE = "GET /api/v1/reports/<string:partner_id>/<string:period>.pdf"
# the first admin key, from the environment, has no row to name it
ENV_ADMIN = "env-admin"


def pdf_response(content: bytes, filename: str) -> Response:
    # inline: a browser shows it, and saving it keeps the name
    return Response(
        content,
        mimetype=PDF,
        headers={
            "Content-Disposition": f'inline; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


class DocumentRoutes:
    @property
    def letterhead(self) -> Letterhead:
        return Letterhead.from_config(self.config)

    def signatory_name(self, actor: str) -> str:
        """A person named by the actor label a service keeps (``officer:<key id>``), by
        the name the gateway knows them by: a console account's full name, an API key's
        label; the label itself when the gateway knows no name."""
        _, _, key_id = actor.partition(":")
        with self.uow() as uow:
            if key_id.startswith("user:"):
                name = uow.session.scalar(
                    select(ConsoleUser.full_name).where(
                        ConsoleUser.username == key_id.removeprefix("user:")
                    )
                )
            elif key_id == ENV_ADMIN:
                name = "Administrator Bersinar"
            else:
                name = uow.session.scalar(select(ApiKey.label).where(ApiKey.id == key_id))
        return name or actor

    def partner_of(self, partner_id: str, caller) -> dict:
        return self.rpc("mitra", "get_partner", partner_id, caller.as_dict())

    @endpoint(
        "GET",
        "/api/v1/referrals/<string:referral_id>/letter.pdf",
        "Surat rujukan (PDF, A4) untuk mitra penerima, dengan identitas klien; nomornya "
        "diberikan pada cetak pertama dan tetap pada cetak ulang (setiap pembukaan dicatat "
        "di log audit)",
        roles=REFERRAL_READERS,
        produces=(PDF,),
        tags=("rujukan", "dokumen"),
    )
    def referral_letter(self, request, caller, data, params, referral_id):
        return self.letter_pdf(referral_id, caller)

    @endpoint(
        "GET",
        "/api/v1/reports/<string:partner_id>/<string:period>.pdf",
        "Laporan bulanan siap cetak dan tanda tangan (PDF, A4): angka, selisih dengan "
        "catatan rujukan, narasi, status dan riwayat persetujuan",
        roles=REPORT_READERS,
        produces=(PDF,),
        tags=("laporan", "dokumen"),
    )
    def report_pdf(self, request, caller, data, params, partner_id, period):
        return self.monthly_report_pdf(partner_id, period, caller)

    def letter_pdf(self, referral_id: str, caller) -> Response:
        referral = self.rpc("rujukan", "referral_letter", referral_id, caller.as_dict())
        partner = self.partner_of(referral["partner_id"], caller)
        signatory = self.signatory_name(referral.get("created_by") or "")
        content = drawn_off_the_hub(render_letter, referral, partner, signatory, self.letterhead)
        number = referral["letter"]["number"].replace("/", "-")
        return pdf_response(content, f"surat-rujukan-{number}.pdf")

    def monthly_report_pdf(self, partner_id: str, period: str, caller) -> Response:
        report = self.rpc("laporan", "get_report", partner_id, period, caller.as_dict())
        partner = self.partner_of(partner_id, caller)
        people = {
            actor: self.signatory_name(actor)
            for actor in {h.get("actor") or "" for h in report.get("history") or []}
        }
        content = drawn_off_the_hub(render_report, report, partner, self.letterhead, people)
        return pdf_response(content, f"laporan-{partner_id}-{period}.pdf")
