"""FHIR Bulk Data export, system level (docs/fhir.md#bulk-data-export): kick-off, status
polling, cancel and the NDJSON files, for national systems and admins. The files hold
de-identified resources only: partners without contacts, services, referral states with
the client as a pseudonym keyed by the export's own random key (never stored), and
laporan's monthly export with its small cells suppressed."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from werkzeug.http import http_date as format_http_date
from werkzeug.wrappers import Response

from bersinar.codes import local_date
from bersinar.envelope import rfc3339, utcnow
from bersinar.errors import DomainError, NotFound
from gateway.exceptions import BadRequest, RateLimited
from gateway.fhir import bulk, exports
from gateway.fhir import resources as fhir
from gateway.fhir.exports import ExportJobs
from gateway.fhir.web import FHIR_JSON, SearchParameter, base_url, fhir_endpoint
from gateway.models import FhirExport

EXPORTERS = ("admin", "national")
EXPORT_DEFINITION = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"
KICKOFF_PARAMS = (
    SearchParameter("_type", "token", "Jenis sumber daya, dipisah koma."),
    SearchParameter("_since", "date", "Hanya yang berubah sejak instant ini."),
    SearchParameter("_outputFormat", "token", "application/fhir+ndjson (bawaan)."),
)
OUTCOME_FILE = "OperationOutcome"
FIRST_MONTH = date(2000, 1, 1)  # the first month laporan keeps figures of


def _information(text: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "information", "code": "informational", "diagnostics": text}],
    }


def _fhir_reply(payload: dict[str, Any], status: int, **headers: str) -> Response:
    reply = Response(json.dumps(payload, ensure_ascii=False), status=status, mimetype=FHIR_JSON)
    reply.headers.update(headers)
    return reply


class ExportRunning(RateLimited):
    """One export at a time per API key (Bulk Data: 429 while one is in progress)."""

    def __init__(self):
        super().__init__(retry_after=10)
        self.detail = "Ekspor sebelumnya dengan kunci ini masih berjalan; tunggu atau batalkan."


def _failure_text(exc: BaseException) -> str:
    """Why an export failed, in words safe to show (a domain error's own message)."""
    if isinstance(exc, DomainError):
        return f"Ekspor gagal: {exc}"
    return "Ekspor gagal karena kesalahan internal; mintalah ekspor baru."


class FhirBulkRoutes:
    export_jobs = ExportJobs()

    def _export(self, export_id: str, caller) -> FhirExport:
        with self.uow() as uow:
            job = exports.find(uow, export_id, caller.key_id)
            if job is not None:
                uow.session.expunge(job)
        if job is None:
            raise NotFound(f"Ekspor {export_id} tidak ditemukan.")
        return job

    @fhir_endpoint(
        "/$export",
        roles=EXPORTERS,
        params=KICKOFF_PARAMS,
        operation=("export", EXPORT_DEFINITION),
    )
    def fhir_export(self, request, caller, search):
        """Kick-off: 202 and the status URL in Content-Location; the export runs in a
        greenthread of this process."""
        if not bulk.wants_async(request.headers.get("Prefer")):
            raise BadRequest("Ekspor Bulk Data memerlukan header Prefer: respond-async.")
        types, since = bulk.read_kickoff(search)
        job = FhirExport(
            id=str(uuid.uuid4()),
            api_key_id=caller.key_id,
            status="accepted",
            request_url=request.url,
            types=",".join(types),
            since=since,
            transaction_time=self.clock.now(),
            created_at=utcnow(),
            runner=self.export_jobs.runner,
            heartbeat_at=utcnow(),
            progress="",
        )
        with self.uow() as uow:
            # finished_at is the host's time, as the Expires header (transactionTime is the
            # system clock's, as the stamps _since compares)
            exports.purge_finished(uow, utcnow() - timedelta(days=exports.KEEP_DAYS))
            if exports.running_for(uow, caller.key_id):
                raise ExportRunning()
            exports.create(uow, job)
            uow.commit()
        sources = self._sources(caller, types, since, job.transaction_time)
        lines = int(self.config.get("FHIR_EXPORT_CHUNK_LINES") or 500)
        export_id = job.id
        self.export_jobs.spawn(
            export_id, lambda: exports.run(self.uow, export_id, sources, lines, _failure_text)
        )
        status_url = f"{base_url(request)}/$export-status/{export_id}"
        return _fhir_reply(
            _information("Ekspor diterima; pantau alamat pada Content-Location."),
            202,
            **{"Content-Location": status_url},
        )

    @fhir_endpoint("/$export-status/<string:export_id>", roles=EXPORTERS)
    def fhir_export_status(self, request, caller, search, export_id):
        """202 with X-Progress while it runs; then the manifest (an export that failed:
        no output, its OperationOutcome as the error file)."""
        job = self._export(export_id, caller)
        if job.status in exports.UNFINISHED:
            reply = Response(status=202)
            reply.headers.update({"X-Progress": job.progress or job.status, "Retry-After": "2"})
            return reply
        files = f"{base_url(request)}/$export-file/{export_id}"
        outputs, errors = [], []
        if job.status == "failed":
            errors.append((OUTCOME_FILE, f"{files}/{OUTCOME_FILE}.ndjson", 1))
        else:
            with self.uow() as uow:
                written = exports.counts(uow, export_id)
            outputs = [
                (t, f"{files}/{t}.ndjson", written[t])
                for t in job.types.split(",")
                if written.get(t)
            ]
        body = bulk.manifest(job.transaction_time, job.request_url, outputs, errors)
        reply = Response(json.dumps(body, ensure_ascii=False), mimetype="application/json")
        expires = (job.finished_at or utcnow()) + timedelta(days=exports.KEEP_DAYS)
        reply.headers["Expires"] = format_http_date(expires)
        return reply

    @fhir_endpoint("/$export-status/<string:export_id>", roles=EXPORTERS, method="DELETE")
    def fhir_export_cancel(self, request, caller, search, export_id):
        """Cancel (or, once done, delete) an export and its files: 202."""
        with self.uow() as uow:
            job = exports.find(uow, export_id, caller.key_id)
            if job is None:
                raise NotFound(f"Ekspor {export_id} tidak ditemukan.")
            exports.remove(uow, job)
            uow.commit()
        return _fhir_reply(_information("Ekspor dibatalkan dan berkasnya dihapus."), 202)

    @fhir_endpoint("/$export-file/<string:export_id>/<string:file_name>", roles=EXPORTERS)
    def fhir_export_file(self, request, caller, search, export_id, file_name):
        """One NDJSON file, streamed chunk by chunk, for the key that asked for it."""
        job = self._export(export_id, caller)
        resource_type, _, suffix = file_name.partition(".")
        if suffix != "ndjson":
            raise NotFound(f"Berkas {file_name} tidak ada.")
        if resource_type == OUTCOME_FILE and job.status == "failed":
            body = json.dumps(json.loads(job.error), ensure_ascii=False) + "\n"
            return Response(body, mimetype=bulk.NDJSON)
        if job.status != "complete" or resource_type not in job.types.split(","):
            raise NotFound(f"Berkas {file_name} tidak ada.")
        with self.uow() as uow:
            numbers = exports.chunk_numbers(uow, export_id, resource_type)
        chunks = exports.read_chunks(self.uow, export_id, resource_type, numbers)
        return Response(chunks, mimetype=bulk.NDJSON)

    # --- what an export holds, each a stream read page by page ---------------------------

    def _sources(self, caller, types, since, transaction_time):
        make = {
            "Organization": self._export_organizations,
            "HealthcareService": self._export_services,
            "Task": self._export_tasks,
            "MeasureReport": self._export_reports,
        }
        for resource_type in types:
            yield resource_type, make[resource_type](caller, since, transaction_time)

    def _export_organizations(self, caller, since, now) -> Iterator[dict[str, Any]]:
        for partner in self._partners(caller):
            resource = bulk.organization(partner)
            if bulk.changed_since(resource, since):
                yield resource

    def _export_services(self, caller, since, now) -> Iterator[dict[str, Any]]:
        occupied = self._occupied(caller)
        for partner in self._partners(caller):
            for service in fhir.healthcare_services(partner, occupied):
                if bulk.changed_since(service, since):
                    yield service

    def _export_tasks(self, caller, since, now) -> Iterator[dict[str, Any]]:
        """Every referral changed since, a page at a time, its client a pseudonym keyed by
        a key made for this export alone and kept nowhere."""
        filters: dict[str, Any] = {"limit": 200, "pseudonym_key": secrets.token_hex(32)}
        if since is not None:
            filters["updated_from"] = rfc3339(since)
        while True:
            page = self.rpc("rujukan", "list_referrals", filters, caller.as_dict())
            for referral in page["items"]:
                yield fhir.task(referral)
            if not page["next_cursor"]:
                return
            filters["cursor"] = page["next_cursor"]

    def _export_reports(self, caller, since, now) -> Iterator[dict[str, Any]]:
        """laporan's monthly export of each month from ``since``'s (or the last
        FHIR_EXPORT_MONTHS) to this one, as laporan suppressed it."""
        today = local_date(now)
        if since is not None:
            first = local_date(since)
        else:
            back = int(self.config.get("FHIR_EXPORT_MONTHS") or 24) - 1
            first = today.replace(day=1)
            for _ in range(back):
                first = (first - timedelta(days=1)).replace(day=1)
        for period in bulk.months(max(first, FIRST_MONTH), today):
            recap = self.rpc("laporan", "monthly_export", period)
            for row in recap["partners"]:
                yield bulk.recap_report(row, period, recap["suppression_threshold"])
