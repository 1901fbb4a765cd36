"""The CapabilityStatement, made of the routes that are registered: it claims exactly
the interactions and search parameters served, nothing else."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gateway.fhir.terms import CANONICAL, PUBLISHED, PUBLISHER
from gateway.fhir.web import FHIR_JSON, FhirRoute

BULK_DATA = "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"
# what each resource type is here, for the integrator reading the statement
DOCUMENTATION = {
    "Organization": "Mitra rehabilitasi (GET /api/v1/partners); kontak hanya untuk petugas, "
    "admin dan mitra itu sendiri.",
    "HealthcareService": "Layanan yang ditawarkan mitra, dengan kapasitas dan (untuk petugas "
    "dan admin) tempat kosong sebagai ekstensi.",
    "Task": "Rujukan sebagai tugas mitra penerima; status mengikuti status rujukan. "
    "Kunci national membaca tanpa klien (tanpa for, tanpa tautan antar-episode).",
    "ServiceRequest": "Apa yang diminta dari mitra pada rujukan; untuk kunci national "
    "subject disamarkan (data-absent-reason masked).",
    "Patient": "Klien: pseudonim, jenis kelamin, kelompok umur; NIK dan nama hanya untuk "
    "yang boleh melihat identitas, dan setiap pembacaan dicatat di log audit.",
    "Measure": "Indikator monev (definisi dalam bahasa Indonesia dan Inggris).",
    "MeasureReport": "Indikator dan angka laporan satu mitra pada satu bulan.",
    "StructureDefinition": "Ekstensi yang didefinisikan Bersinar.",
    "CodeSystem": "Daftar kode Bersinar.",
}


def capability_statement(routes: Iterable[FhirRoute], base: str) -> dict[str, Any]:
    by_type: dict[str, dict[str, Any]] = {}
    system, operations = [], []
    for route in routes:
        if route.operation is not None:
            operations.append({"name": route.operation[0], "definition": route.operation[1]})
            continue
        if route.resource_type is None:
            if route.interaction is not None:
                system.append({"code": route.interaction})
            continue
        entry = by_type.setdefault(
            route.resource_type,
            {
                "type": route.resource_type,
                "documentation": DOCUMENTATION.get(route.resource_type, ""),
                "interaction": [],
                "searchParam": [],
            },
        )
        entry["interaction"].append({"code": route.interaction})
        for param in route.params:
            entry["searchParam"].append(
                {"name": param.name, "type": param.type, "documentation": param.documentation}
            )
        if route.interaction in ("vread", "history-instance"):
            entry["versioning"] = "versioned"
            entry["readHistory"] = True
    resources = []
    for entry in by_type.values():
        if not entry["searchParam"]:
            del entry["searchParam"]
        resources.append(entry)
    return {
        "resourceType": "CapabilityStatement",
        "id": "bersinar",
        "url": f"{CANONICAL}/CapabilityStatement/bersinar",
        "name": "Bersinar",
        "title": "Bersinar: antarmuka FHIR R4 untuk sistem nasional",
        "status": "active",
        "date": PUBLISHED,
        "publisher": PUBLISHER,
        "kind": "instance",
        "implementation": {
            "description": "Bersinar, jaringan lembaga rehabilitasi mitra BNNP Bengkulu",
            "url": base,
        },
        "fhirVersion": "4.0.1",
        "format": [FHIR_JSON, "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": "Baca dan cari; rujukan masuk sebagai Bundle transaction; "
                "ekspor Bulk Data ($export, Prefer: respond-async) untuk national dan admin. "
                "Setiap permintaan (kecuali metadata) membawa Authorization: Bearer <kunci "
                "API>; peran dan aturan penolakan sama dengan /api/v1. Halaman: _count "
                "(1-200) dan tautan next.",
                "security": {
                    "cors": False,
                    "description": "Kunci API Bersinar sebagai Bearer token (docs/fhir.md).",
                },
                "resource": resources,
                **({"interaction": system} if system else {}),
                **({"operation": operations} if operations else {}),
            }
        ],
        **({"instantiates": [BULK_DATA]} if operations else {}),
    }
