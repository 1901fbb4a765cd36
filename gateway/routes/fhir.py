"""The FHIR R4 read interface (/fhir/R4, docs/fhir.md): the same RPCs as /api/v1, under
the same roles, answered as FHIR resources made by gateway.fhir.resources."""

from __future__ import annotations

import re
from typing import Any

from bersinar import codes
from bersinar.codes import STAFF
from bersinar.contracts.referrals import ReferralCreate
from bersinar.contracts.reports import PERIOD_PATTERN
from bersinar.envelope import rfc3339
from bersinar.errors import NotFound
from gateway.fhir import inbound, terms
from gateway.fhir import resources as fhir
from gateway.fhir.capability import capability_statement
from gateway.fhir.search import (
    Search,
    boolean,
    date_window,
    history,
    matches_text,
    page_link,
    reference_id,
    refuse,
    searchset,
    string_parameter,
    token_codes,
    within,
)
from gateway.fhir.web import FHIR_ROUTES, SearchParameter, base_url, fhir_endpoint, read_body
from gateway.http import page_of
from gateway.idempotency import request_key
from gateway.routes.referrals import REFERRAL_READERS

EVERYONE = tuple(codes.ROLES)
# who follows referral states: national systems too, de-identified by rujukan (no client,
# no link between one person's episodes); the client (Patient) stays REFERRAL_READERS'
STATE_READERS = (*REFERRAL_READERS, "national")
TASK_STATUSES = "http://hl7.org/fhir/task-status"
# every code of FHIR R4's Task.status: one that no referral state maps to matches nothing
FHIR_TASK_STATUSES = (
    "draft",
    "requested",
    "received",
    "accepted",
    "rejected",
    "ready",
    "cancelled",
    "in-progress",
    "on-hold",
    "failed",
    "completed",
    "entered-in-error",
)

ID = SearchParameter("_id", "token", "Id sumber daya.")
LAST_UPDATED = SearchParameter(
    "_lastUpdated",
    "date",
    "Perubahan terakhir; awalan eq, ge, gt, le, lt; tanpa zona berarti WIB.",
)
ACTIVE = SearchParameter("active", "token", "true: mitra berstatus aktif.")
ADDRESS = SearchParameter(
    "address",
    "string",
    "Teks lokasi: alamat atau kabupaten/kota mitra (awal kata; :contains, :exact).",
)
ORGANIZATION_PARAMS = (
    ID,
    LAST_UPDATED,
    ACTIVE,
    SearchParameter("type", "token", f"Jenis mitra ({terms.PARTNER_KIND.url})."),
    SearchParameter("name", "string", "Nama mitra (awal kata; :contains, :exact)."),
    ADDRESS,
)
SERVICE_PARAMS = (
    ID,
    LAST_UPDATED,
    ACTIVE,
    SearchParameter("service-type", "token", f"Jenis layanan ({terms.SERVICE_TYPE.url})."),
    SearchParameter("organization", "reference", "Mitra penyedia (Organization/<id>)."),
    ADDRESS,
)
TASK_PARAMS = (
    SearchParameter("status", "token", "Task.status (dipisah koma: salah satu)."),
    SearchParameter("owner", "reference", "Mitra penerima (Organization/<id>)."),
    LAST_UPDATED,
)
REPORT_PARAMS = (
    SearchParameter("period", "date", "Bulan YYYY-MM (bawaan: bulan ini, WIB)."),
    SearchParameter("reporter", "reference", "Mitra (Organization/<id>)."),
)


def _self_url(request) -> str:
    return request.base_url + (f"?{request.query_string.decode()}" if request.query_string else "")


def _paged(request, search: Search, items: list[dict[str, Any]]) -> dict[str, Any]:
    """A searchset of one page of a bounded list filtered here."""
    if search.cursor is not None and not search.cursor.isdigit():
        raise refuse("_cursor", "tidak dikenal.")
    page = page_of(items, {"limit": search.count, "cursor": search.cursor})
    following = None
    if page["next_cursor"]:
        following = page_link(
            request.base_url, request.args.to_dict(flat=False), page["next_cursor"]
        )
    return searchset(base_url(request), _self_url(request), page["items"], following, len(items))


def _admitted(resource: dict[str, Any], search: Search, types: set[str] | None) -> bool:
    """The parameters Organization and HealthcareService share."""
    ids = token_codes(search.any_of("_id"), None, "_id")
    if ids is not None and resource["id"] not in ids:
        return False
    stamp = resource["meta"]["lastUpdated"]
    if "_lastUpdated" in search.values and not within(
        stamp, date_window(search.values["_lastUpdated"])
    ):
        return False
    active = boolean(search.one("active"), "active")
    if active is not None and resource["active"] != active:
        return False
    kinds = {c["code"] for t in resource["type"] for c in t["coding"]}
    return types is None or bool(kinds & types)


class FhirRoutes:
    def _partners(self, caller) -> list[dict[str, Any]]:
        return self.rpc("mitra", "list_partners", {}, caller.as_dict())

    def _occupied(self, caller) -> dict[tuple[str, str], int] | None:
        """Places taken, only for those /api/v1/occupancy answers (staff)."""
        if caller.role not in STAFF:
            return None
        return {(p, s): taken for p, s, taken, _ in self.rpc("rujukan", "occupancy")}

    # --- conformance -------------------------------------------------------------------

    @fhir_endpoint("/metadata", roles=None)
    def fhir_metadata(self, request, caller, search):
        return capability_statement(FHIR_ROUTES, base_url(request))

    @fhir_endpoint(
        "/StructureDefinition",
        roles=EVERYONE,
        resource_type="StructureDefinition",
        interaction="search-type",
    )
    def fhir_structure_definitions(self, request, caller, search):
        definitions = [terms.structure_definition(e) for e in terms.EXTENSIONS.values()]
        return _paged(request, search, definitions)

    @fhir_endpoint(
        "/StructureDefinition/<string:resource_id>",
        roles=EVERYONE,
        resource_type="StructureDefinition",
        interaction="read",
    )
    def fhir_structure_definition(self, request, caller, search, resource_id):
        if resource_id not in terms.EXTENSIONS:
            raise NotFound(f"StructureDefinition {resource_id} tidak ada.")
        return terms.structure_definition(terms.EXTENSIONS[resource_id])

    @fhir_endpoint(
        "/CodeSystem", roles=EVERYONE, resource_type="CodeSystem", interaction="search-type"
    )
    def fhir_code_systems(self, request, caller, search):
        systems = [terms.code_system(t) for t in terms.CODE_SYSTEMS.values()]
        return _paged(request, search, systems)

    @fhir_endpoint(
        "/CodeSystem/<string:resource_id>",
        roles=EVERYONE,
        resource_type="CodeSystem",
        interaction="read",
    )
    def fhir_code_system(self, request, caller, search, resource_id):
        if resource_id not in terms.CODE_SYSTEMS:
            raise NotFound(f"CodeSystem {resource_id} tidak ada.")
        return terms.code_system(terms.CODE_SYSTEMS[resource_id])

    # --- the directory -------------------------------------------------------------------

    @fhir_endpoint(
        "/Organization",
        roles=EVERYONE,
        resource_type="Organization",
        interaction="search-type",
        params=ORGANIZATION_PARAMS,
    )
    def fhir_organizations(self, request, caller, search):
        types = token_codes(search.any_of("type"), terms.PARTNER_KIND.url, "type")
        name, address = string_parameter(search, "name"), string_parameter(search, "address")
        found = []
        for partner in self._partners(caller):
            resource = fhir.organization(partner)
            if not _admitted(resource, search, types):
                continue
            if name and not matches_text(name[0], [partner["name"]], name[1]):
                continue
            place = [partner.get("address"), partner["kabupaten_kota"]]
            if address and not matches_text(address[0], place, address[1]):
                continue
            found.append(resource)
        return _paged(request, search, found)

    @fhir_endpoint(
        "/Organization/<string:resource_id>",
        roles=EVERYONE,
        resource_type="Organization",
        interaction="read",
    )
    def fhir_organization(self, request, caller, search, resource_id):
        return fhir.organization(self.rpc("mitra", "get_partner", resource_id, caller.as_dict()))

    @fhir_endpoint(
        "/HealthcareService",
        roles=EVERYONE,
        resource_type="HealthcareService",
        interaction="search-type",
        params=SERVICE_PARAMS,
    )
    def fhir_healthcare_services(self, request, caller, search):
        types = token_codes(search.any_of("service-type"), terms.SERVICE_TYPE.url, "service-type")
        owner = reference_id(search.one("organization"), "Organization", "organization")
        address = string_parameter(search, "address")
        occupied = self._occupied(caller)
        found = []
        for partner in self._partners(caller):
            if owner is not None and partner["id"] != owner:
                continue
            place = [partner.get("address"), partner["kabupaten_kota"]]
            if address and not matches_text(address[0], place, address[1]):
                continue
            found += [
                service
                for service in fhir.healthcare_services(partner, occupied)
                if _admitted(service, search, types)
            ]
        return _paged(request, search, found)

    @fhir_endpoint(
        "/HealthcareService/<string:resource_id>",
        roles=EVERYONE,
        resource_type="HealthcareService",
        interaction="read",
    )
    def fhir_healthcare_service(self, request, caller, search, resource_id):
        wanted = fhir.split_service_id(resource_id)
        if wanted is None:
            raise NotFound(f"HealthcareService {resource_id} tidak ditemukan.")
        partner = self.rpc("mitra", "get_partner", wanted[0], caller.as_dict())
        for service in fhir.healthcare_services(partner, self._occupied(caller)):
            if service["id"] == resource_id:
                return service
        raise NotFound(f"HealthcareService {resource_id} tidak ditemukan.")

    # --- referrals ---------------------------------------------------------------------

    @fhir_endpoint(
        "/Task",
        roles=STATE_READERS,
        resource_type="Task",
        interaction="search-type",
        params=TASK_PARAMS,
    )
    def fhir_tasks(self, request, caller, search):
        filters: dict[str, Any] = {"limit": search.count}
        if search.cursor:
            filters["cursor"] = search.cursor
        wanted = token_codes(search.any_of("status"), TASK_STATUSES, "status")
        if wanted is not None:
            unknown = wanted - set(FHIR_TASK_STATUSES)
            if unknown:
                raise refuse("status", f"kode Task.status tidak dikenal: {sorted(unknown)}.")
            statuses = [s for s, task in fhir.TASK_STATUS.items() if task in wanted]
            if not statuses:
                return searchset(base_url(request), _self_url(request), [], None, 0)
            filters["statuses"] = statuses
        owner = reference_id(search.one("owner"), "Organization", "owner")
        if owner is not None:
            filters["partner_id"] = owner
        lower, upper = date_window(search.values.get("_lastUpdated"))
        if lower is not None:
            filters["updated_from"] = rfc3339(lower)
        if upper is not None:
            filters["updated_before"] = rfc3339(upper)
        page = self.rpc("rujukan", "list_referrals", filters, caller.as_dict())
        following = None
        if page["next_cursor"]:
            following = page_link(
                request.base_url, request.args.to_dict(flat=False), page["next_cursor"]
            )
        tasks = [fhir.task(referral) for referral in page["items"]]
        return searchset(base_url(request), _self_url(request), tasks, following)

    def _referral(self, caller, referral_id: str) -> dict[str, Any]:
        return self.rpc("rujukan", "get_referral_summary", referral_id, caller.as_dict())

    def _history(self, caller, referral_id: str) -> list[dict[str, Any]]:
        return self.rpc("rujukan", "referral_history", referral_id, caller.as_dict())["items"]

    @fhir_endpoint(
        "/Task/<string:resource_id>",
        roles=STATE_READERS,
        resource_type="Task",
        interaction="read",
    )
    def fhir_task(self, request, caller, search, resource_id):
        referral = self._referral(caller, resource_id)
        return fhir.task(referral, self._history(caller, resource_id))

    @fhir_endpoint(
        "/Task/<string:resource_id>/_history",
        roles=STATE_READERS,
        resource_type="Task",
        interaction="history-instance",
    )
    def fhir_task_history(self, request, caller, search, resource_id):
        referral = self._referral(caller, resource_id)
        versions = fhir.task_versions(referral, self._history(caller, resource_id))
        return history(base_url(request), _self_url(request), versions)

    @fhir_endpoint(
        "/Task/<string:resource_id>/_history/<string:version_id>",
        roles=STATE_READERS,
        resource_type="Task",
        interaction="vread",
    )
    def fhir_task_version(self, request, caller, search, resource_id, version_id):
        referral = self._referral(caller, resource_id)
        versions = fhir.task_versions(referral, self._history(caller, resource_id))
        if not version_id.isdigit() or not 1 <= int(version_id) <= len(versions):
            raise NotFound(f"Versi {version_id} dari Task {resource_id} tidak ada.")
        return versions[int(version_id) - 1]

    @fhir_endpoint(
        "/ServiceRequest/<string:resource_id>",
        roles=STATE_READERS,
        resource_type="ServiceRequest",
        interaction="read",
    )
    def fhir_service_request(self, request, caller, search, resource_id):
        return fhir.service_request(self._referral(caller, resource_id))

    @fhir_endpoint(
        "/Patient/<string:resource_id>",
        roles=REFERRAL_READERS,
        resource_type="Patient",
        interaction="read",
    )
    def fhir_patient(self, request, caller, search, resource_id):
        """The client of the newest referral the caller may see; its identity as GET
        /api/v1/referrals/{id} gives it (and audits the read)."""
        newest = self.rpc(
            "rujukan", "list_referrals", {"client_id": resource_id, "limit": 1}, caller.as_dict()
        )["items"]
        if not newest:
            raise NotFound(f"Patient {resource_id} tidak ditemukan.")
        referral = self.rpc("rujukan", "get_referral", newest[0]["id"], caller.as_dict(), None)
        return fhir.patient(referral["client"])

    @fhir_endpoint("", roles=STAFF, interaction="transaction", method="POST")
    def fhir_transaction(self, request, caller, search):
        """A referral sent in as a transaction Bundle: created by rujukan through the
        same contract and rules as POST /api/v1/referrals. ``Bundle.identifier`` names
        the sending: the same Bundle sent again answers with the referral made first."""
        bundle = read_body(self, request)
        schema = ReferralCreate()
        payload = schema.dump(schema.load(inbound.referral_from_transaction(bundle)))
        sending = inbound.bundle_key(bundle)
        key = f"fhir:{caller.key_id}:{sending}" if sending else request_key(request, caller)
        referral = self.rpc(
            "rujukan", "create_referral", payload, caller.as_dict(), request_key=key
        )
        return inbound.transaction_response(bundle, referral)

    # --- monitoring ----------------------------------------------------------------------

    @fhir_endpoint("/Measure", roles=EVERYONE, resource_type="Measure", interaction="search-type")
    def fhir_measures(self, request, caller, search):
        return _paged(request, search, fhir.measures())

    @fhir_endpoint(
        "/Measure/<string:resource_id>",
        roles=EVERYONE,
        resource_type="Measure",
        interaction="read",
    )
    def fhir_measure(self, request, caller, search, resource_id):
        for measure in fhir.measures():
            if measure["id"] == resource_id:
                return measure
        raise NotFound(f"Measure {resource_id} tidak ada.")

    def _month(self, period: str, partner_id: str | None, caller) -> list[dict[str, Any]]:
        """The MeasureReports of a month: laporan's indicators, and the counts of each
        report sent (a partner owing no report that month has indicators only)."""
        rows = self.rpc("laporan", "indicators", period)["partners"]
        filters = {"period": period, "partner_id": partner_id}
        summaries = {
            r["partner_id"]: r
            for r in self.rpc("laporan", "list_reports", filters, caller.as_dict())
        }
        reports = []
        for row in rows:
            if partner_id is not None and row["partner_id"] != partner_id:
                continue
            report = summaries.get(row["partner_id"])
            if report and report["version"]:
                report = self.rpc(
                    "laporan", "get_report", row["partner_id"], period, caller.as_dict()
                )
            reports.append(fhir.measure_report(row, period, report))
        return reports

    @fhir_endpoint(
        "/MeasureReport",
        roles=STAFF,
        resource_type="MeasureReport",
        interaction="search-type",
        params=REPORT_PARAMS,
    )
    def fhir_measure_reports(self, request, caller, search):
        period = (search.one("period") or self.clock.today().strftime("%Y-%m")).removeprefix("eq")
        if not re.fullmatch(PERIOD_PATTERN, period):
            raise refuse("period", "bulan YYYY-MM (tahun 2000-2099).")
        partner_id = reference_id(search.one("reporter"), "Organization", "reporter")
        return _paged(request, search, self._month(period, partner_id, caller))

    @fhir_endpoint(
        "/MeasureReport/<string:resource_id>",
        roles=STAFF,
        resource_type="MeasureReport",
        interaction="read",
    )
    def fhir_measure_report(self, request, caller, search, resource_id):
        wanted = fhir.split_report_id(resource_id)
        if wanted is None or not re.fullmatch(PERIOD_PATTERN, wanted[1]):
            raise NotFound(f"MeasureReport {resource_id} tidak ditemukan.")
        found = self._month(wanted[1], wanted[0], caller)
        if not found:
            raise NotFound(f"MeasureReport {resource_id} tidak ditemukan.")
        return found[0]
