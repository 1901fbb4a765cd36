"""The canonical addresses of Bersinar's FHIR artefacts, its CodeSystems (each one made
of a code list of bersinar.codes, never a copy) and the StructureDefinitions of the
extensions it defines."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bersinar import codes

# where Bersinar's own FHIR artefacts are named (a canonical URL is a name, not a fetch)
CANONICAL = "https://bersinar.bnn.go.id/fhir"
# the NIK as SATUSEHAT names it
NIK_SYSTEM = "https://fhir.kemkes.go.id/id/nik"
PSEUDONYM_SYSTEM = f"{CANONICAL}/sid/client-pseudonym"
PARTNER_SYSTEM = f"{CANONICAL}/sid/partner"
REFERRAL_SYSTEM = f"{CANONICAL}/sid/referral"
# the stable codes of the API's problems, in an OperationOutcome's details
ERROR_SYSTEM = "https://bersinar.bnn.go.id/problems"
# HL7's own code systems used here
MEASURE_POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"
MEASURE_SCORING = "http://terminology.hl7.org/CodeSystem/measure-scoring"
MEASURE_TYPE = "http://terminology.hl7.org/CodeSystem/measure-type"
UCUM = "http://unitsofmeasure.org"
TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"
DATA_ABSENT_REASON = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
# when this version of the interface's conformance resources was written
PUBLISHED = "2026-12-04"
PUBLISHER = "BNN Provinsi Bengkulu"


@dataclass(frozen=True)
class Terms:
    """A CodeSystem of Bersinar: one code list of bersinar.codes and what it codes."""

    id: str
    name: str
    title: str
    codes: Mapping[str, str]
    description: str

    @property
    def url(self) -> str:
        return f"{CANONICAL}/CodeSystem/{self.id}"

    def coding(self, code: str) -> dict[str, str]:
        return {"system": self.url, "code": code, "display": codes.label(self.codes, code)}

    def concept(self, code: str) -> dict[str, Any]:
        return {"coding": [self.coding(code)], "text": codes.label(self.codes, code)}


REFERRAL_STATUS = Terms(
    "referral-status",
    "ReferralStatus",
    "Status rujukan",
    codes.REFERRAL_STATUSES,
    "Status rujukan Bersinar (Task.businessStatus); Task.status mengikuti tabel di docs/fhir.md.",
)
REJECTION_REASON = Terms(
    "rejection-reason",
    "RejectionReason",
    "Alasan penolakan rujukan",
    codes.REJECTION_REASONS,
    "Alasan mitra menolak rujukan (Task.statusReason).",
)
DISCHARGE_OUTCOME = Terms(
    "discharge-outcome",
    "DischargeOutcome",
    "Hasil akhir layanan",
    codes.DISCHARGE_OUTCOMES,
    "Keadaan klien saat layanan berakhir menurut ringkasan akhir layanan (Task.output).",
)
DISCHARGE_REASON = Terms(
    "discharge-reason",
    "DischargeReason",
    "Alasan layanan berakhir",
    codes.DISCHARGE_REASONS,
    "Mengapa layanan berakhir menurut ringkasan akhir layanan (Task.output).",
)
# what each Task.output of an ended referral is (Task.output.type)
DISCHARGE_OUTPUT = Terms(
    "discharge-output",
    "DischargeOutput",
    "Isi ringkasan akhir layanan",
    {"outcome": "Hasil akhir layanan", "reason": "Alasan layanan berakhir"},
    "Jenis keluaran Task yang berakhir (Task.output.type): hasil akhir dan alasannya.",
)
SERVICE_TYPE = Terms(
    "service-type",
    "ServiceType",
    "Jenis layanan rehabilitasi",
    codes.SERVICE_TYPES,
    "Jenis layanan (HealthcareService.type, ServiceRequest.code).",
)
REFERRAL_SOURCE = Terms(
    "referral-source",
    "ReferralSource",
    "Asal rujukan",
    codes.REFERRAL_SOURCES,
    "Dari mana klien dirujuk (ServiceRequest.category).",
)
PARTNER_KIND = Terms(
    "partner-kind",
    "PartnerKind",
    "Jenis lembaga mitra",
    codes.PARTNER_KINDS,
    "Jenis lembaga rehabilitasi mitra (Organization.type).",
)
SEX_SERVED = Terms(
    "sex-served",
    "SexServed",
    "Jenis kelamin yang dilayani",
    codes.SEX_SERVED,
    "Siapa yang dilayani mitra menurut jenis kelamin (HealthcareService.eligibility).",
)
SERVED_AGE_GROUP = Terms(
    "served-age-group",
    "ServedAgeGroup",
    "Kelompok umur yang dilayani",
    codes.SERVED_AGE_GROUPS,
    "Kelompok umur yang dilayani mitra (HealthcareService.eligibility).",
)
CLIENT_AGE_GROUP = Terms(
    "client-age-group",
    "ClientAgeGroup",
    "Kelompok umur klien",
    codes.CLIENT_AGE_GROUPS,
    "Kelompok umur klien saat dirujuk (ekstensi client-age-group pada Patient).",
)
CONTACT_ROLE = Terms(
    "contact-role",
    "ContactRole",
    "Peran kontak mitra",
    codes.CONTACT_ROLES,
    "Peran orang yang dapat dihubungi di mitra (Organization.contact.purpose).",
)
INDICATOR = Terms(
    "indicator",
    "Indicator",
    "Indikator monev",
    codes.INDICATORS,
    "Indikator monitoring dan evaluasi per mitra per bulan (Measure, MeasureReport.group).",
)
REPORT_COUNT = Terms(
    "report-count",
    "ReportCount",
    "Angka laporan bulanan",
    codes.MEASURES,
    "Angka jumlah klien pada laporan bulanan mitra (MeasureReport.group).",
)
CODE_SYSTEMS = {
    t.id: t
    for t in (
        REFERRAL_STATUS,
        REJECTION_REASON,
        DISCHARGE_OUTCOME,
        DISCHARGE_REASON,
        DISCHARGE_OUTPUT,
        SERVICE_TYPE,
        REFERRAL_SOURCE,
        PARTNER_KIND,
        SEX_SERVED,
        SERVED_AGE_GROUP,
        CLIENT_AGE_GROUP,
        CONTACT_ROLE,
        INDICATOR,
        REPORT_COUNT,
    )
}


def masked() -> dict[str, Any]:
    """FHIR's data-absent-reason extension: the element is withheld on purpose."""
    return {"url": DATA_ABSENT_REASON, "valueCode": "masked"}


def code_system(terms: Terms) -> dict[str, Any]:
    return {
        "resourceType": "CodeSystem",
        "id": terms.id,
        "url": terms.url,
        "name": terms.name,
        "title": terms.title,
        "status": "active",
        "date": PUBLISHED,
        "publisher": PUBLISHER,
        "description": terms.description,
        "language": "id",
        "caseSensitive": True,
        "content": "complete",
        "count": len(terms.codes),
        "concept": [{"code": code, "display": words} for code, words in terms.codes.items()],
    }


# --- extensions ------------------------------------------------------------------------


@dataclass(frozen=True)
class Extension:
    """An extension Bersinar defines: a single value of one type on one resource."""

    id: str
    name: str
    title: str
    context: str
    value_type: str
    description: str

    @property
    def url(self) -> str:
        return f"{CANONICAL}/StructureDefinition/{self.id}"

    def of(self, value: Any) -> dict[str, Any]:
        key = "value" + self.value_type[0].upper() + self.value_type[1:]
        return {"url": self.url, key: value}


CAPACITY = Extension(
    "capacity",
    "Capacity",
    "Kapasitas layanan",
    "HealthcareService",
    "unsignedInt",
    "Jumlah tempat (klien) yang disediakan mitra untuk layanan ini, menurut data mitra.",
)
FREE_PLACES = Extension(
    "free-places",
    "FreePlaces",
    "Tempat kosong",
    "HealthcareService",
    "integer",
    "Kapasitas dikurangi rujukan yang diterima atau sedang dilayani saat dibaca (bisa "
    "negatif bila kapasitas diturunkan). Hanya untuk petugas dan admin, seperti "
    "GET /api/v1/occupancy.",
)
AGE_GROUP = Extension(
    "client-age-group",
    "ClientAgeGroup",
    "Kelompok umur klien",
    "Patient",
    "coding",
    f"Kelompok umur klien saat dirujuk, berkode dari {CLIENT_AGE_GROUP.url}; tanggal "
    "lahir tidak pernah dikirim.",
)
SUPPRESSION = Extension(
    "small-cell-threshold",
    "SmallCellThreshold",
    "Ambang sel kecil",
    "MeasureReport",
    "unsignedInt",
    "Pada rekap bulanan ekspor Bulk Data: hitungan dari 1 sampai ambang ini dikurangi satu "
    "disembunyikan (data-absent-reason masked), juga sel kedua yang bisa dihitung balik "
    "dari total, seperti GET /api/v1/exports/monthly.",
)
EXTENSIONS = {e.id: e for e in (CAPACITY, FREE_PLACES, AGE_GROUP, SUPPRESSION)}


def structure_definition(extension: Extension) -> dict[str, Any]:
    value: dict[str, Any] = {
        "id": "Extension.value[x]",
        "path": "Extension.value[x]",
        "min": 1,
        "type": [{"code": extension.value_type}],
    }
    return {
        "resourceType": "StructureDefinition",
        "id": extension.id,
        "url": extension.url,
        "name": extension.name,
        "title": extension.title,
        "status": "active",
        "date": PUBLISHED,
        "publisher": PUBLISHER,
        "description": extension.description,
        "fhirVersion": "4.0.1",
        "kind": "complex-type",
        "abstract": False,
        "context": [{"type": "element", "expression": extension.context}],
        "type": "Extension",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Extension",
        "derivation": "constraint",
        "differential": {
            "element": [
                {
                    "id": "Extension",
                    "path": "Extension",
                    "short": extension.title,
                    "definition": extension.description,
                    "min": 0,
                    "max": "1",
                },
                {"id": "Extension.extension", "path": "Extension.extension", "max": "0"},
                {"id": "Extension.url", "path": "Extension.url", "fixedUri": extension.url},
                value,
            ]
        },
    }
