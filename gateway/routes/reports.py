"""Monthly partner reports, monitoring indicators and the national export (laporan)."""

from __future__ import annotations

import csv
import io

from werkzeug.wrappers import Response

from bersinar.codes import STAFF
from bersinar.contracts import reports as contracts
from gateway import spreadsheets
from gateway.http import endpoint, page_of, validated_json, without_page
from gateway.schemas import Page, ReturnInput, list_format

# which reports, and what may be done to them, laporan decides again (a partner's
# operator: its own partner only; another partner's answers 404)
REPORT_READERS = (*STAFF, "partner")
EXPORT_READERS = (*STAFF, "national")
CSV_COLUMNS = (
    "period",
    "partner_id",
    "kabupaten_kota",
    "measure",
    "category",
    "value",
    "suppressed",
)


class ReportPageQuery(contracts.ReportQuery, Page):
    format = list_format("xlsx")


class IndicatorQuery(contracts.PeriodQuery):
    format = list_format("xlsx")


class ReportRoutes:
    @endpoint(
        "GET",
        "/api/v1/reports",
        "Laporan bulanan yang diharapkan pada satu periode",
        roles=REPORT_READERS,
        query=ReportPageQuery,
        response=contracts.Report(many=True),
        tags=("laporan",),
        produces=("application/json", spreadsheets.XLSX),
    )
    def list_reports(self, request, caller, data, params):
        filters = {k: v for k, v in without_page(params).items() if k != "format"}
        reports = self.rpc("laporan", "list_reports", filters, caller.as_dict())
        if spreadsheets.wants_xlsx(request, params):
            return spreadsheets.xlsx_response(
                spreadsheets.REPORTS, reports, f"laporan-{params['period']}"
            )
        return page_of(reports, params)

    @endpoint(
        "GET",
        "/api/v1/reports/<string:partner_id>/<string:period>",
        "Satu laporan: isi, isian awal dari rujukan, selisih, versi dan riwayat",
        roles=REPORT_READERS,
        response=contracts.Report,
        tags=("laporan",),
    )
    def get_report(self, request, caller, data, params, partner_id, period):
        return self.rpc("laporan", "get_report", partner_id, period, caller.as_dict())

    @endpoint(
        "PUT",
        "/api/v1/reports/<string:partner_id>/<string:period>",
        "Kirim (atau kirim ulang) laporan bulanan; yang tidak konsisten ditolak dengan aturannya",
        roles=("partner", "admin"),
        body=contracts.ReportInput,
        response=contracts.Report,
        creates={"partner_id": "/partner_id", "period": "/period"},
        example={
            "counts": {
                "total": {
                    "start": 0,
                    "admitted": 0,
                    "completed": 0,
                    "dropped_out": 0,
                    "transferred_out": 0,
                    "end": 0,
                }
            },
            "narrative": "Tidak ada klien pada bulan ini.",
        },
        rules={
            "REPORT_INCONSISTENT": "angka tidak seimbang atau tidak sama dengan jumlahnya, "
            "awal bulan tidak sama dengan akhir bulan laporan lalu, klien di luar layanan "
            "mitra, narasi kosong (aturan yang dilanggar disebut di errors)"
        },
        tags=("laporan",),
    )
    def submit_report(self, request, caller, data, params, partner_id, period):
        return self.rpc(
            "laporan",
            "submit_report",
            partner_id,
            period,
            validated_json(request),
            caller.as_dict(),
        )

    @endpoint(
        "POST",
        "/api/v1/reports/<string:partner_id>/<string:period>/approve",
        "Setujui laporan (komentar boleh ada)",
        roles=STAFF,
        body=contracts.ReviewInput,
        body_required=False,
        response=contracts.Report,
        tags=("laporan",),
    )
    def approve_report(self, request, caller, data, params, partner_id, period):
        return self.rpc(
            "laporan", "review_report", partner_id, period, "approve", data, caller.as_dict()
        )

    @endpoint(
        "POST",
        "/api/v1/reports/<string:partner_id>/<string:period>/return",
        "Kembalikan laporan dengan komentar",
        roles=STAFF,
        body=ReturnInput,
        example={"comment": "Angka klien masuk belum sesuai dengan rujukan."},
        response=contracts.Report,
        tags=("laporan",),
    )
    def return_report(self, request, caller, data, params, partner_id, period):
        return self.rpc(
            "laporan", "review_report", partner_id, period, "return", data, caller.as_dict()
        )

    @endpoint(
        "POST",
        "/api/v1/reports/<string:partner_id>/<string:period>/reopen",
        "Buka kembali periode yang terkunci atau laporan yang sudah disetujui, dengan "
        "alasan (comment, wajib); laporan yang disetujui kembali berstatus dikembalikan",
        roles=STAFF,
        body=contracts.ReopenInput,
        example={"comment": "Mitra terkendala listrik padam saat tenggat."},
        response=contracts.Report,
        tags=("laporan",),
    )
    def reopen_report(self, request, caller, data, params, partner_id, period):
        return self.rpc("laporan", "reopen_report", partner_id, period, data, caller.as_dict())

    @endpoint(
        "GET",
        "/api/v1/indicators",
        "Indikator monev per mitra dan provinsi (definisi di setiap bidang)",
        roles=STAFF,
        query=IndicatorQuery,
        response=contracts.Indicators,
        tags=("laporan",),
        produces=("application/json", spreadsheets.XLSX),
    )
    def indicators(self, request, caller, data, params):
        values = self.rpc("laporan", "indicators", params["period"])
        if not spreadsheets.wants_xlsx(request, params):
            return values
        rows = [*values["partners"], {**values["province"], "partner_id": "PROVINSI"}]
        return spreadsheets.xlsx_response(
            spreadsheets.indicator_sheet(values["definitions"]),
            rows,
            f"indikator-{params['period']}",
        )

    @endpoint(
        "GET",
        "/api/v1/exports/monthly",
        "Rekap bulanan tanpa identitas untuk BNN pusat (JSON, CSV atau XLSX)",
        roles=EXPORT_READERS,
        query=contracts.ExportQuery,
        response=contracts.MonthlyExport,
        tags=("laporan",),
        produces=("application/json", "text/csv", spreadsheets.XLSX),
    )
    def monthly_export(self, request, caller, data, params):
        recap = self.rpc("laporan", "monthly_export", params["period"])
        if spreadsheets.wants_xlsx(request, params):
            return spreadsheets.xlsx_response(
                spreadsheets.export_sheet(recap["suppression_threshold"]),
                recap["rows"],
                f"rekap-{params['period']}",
            )
        if params["format"] in (None, "json"):
            return recap
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in recap["rows"]:
            writer.writerow({**row, "suppressed": "true" if row["suppressed"] else "false"})
        return Response(
            out.getvalue(),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="rekap-{params["period"]}.csv"'},
        )
