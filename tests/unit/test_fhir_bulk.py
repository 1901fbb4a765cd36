"""The plain parts of the FHIR Bulk Data export: the kick-off's parameters, the NDJSON
chunks, the de-identified resources and the manifest, each valid FHIR R4."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from fhir.resources import construct_fhir_element

from gateway.fhir import bulk, resources, terms
from gateway.fhir.search import SearchRefused, read_search

KNOWN = ("_type", "_since", "_outputFormat")
RECAP_ROW = {
    "partner_id": "yayasan-kipas",
    "partner_name": "Yayasan Kipas",
    "kabupaten_kota": "Kota Bengkulu",
    "admitted_total": None,
    "admitted": {
        "by_sex": {"F": None, "M": 7},
        "by_age_group": {"25-34": 6, "unknown": None},
        "by_service_type": {"inpatient": 7},
        "by_source": {"TAT": None, "IPWL": None},
    },
    "outcomes": {"completed": 0, "dropped_out": None, "transferred_out": None},
}


def kickoff(**args):
    return bulk.read_kickoff(read_search({k: [v] for k, v in args.items()}, KNOWN))


def test_a_kick_off_reads_its_types_in_order_and_its_instant():
    assert kickoff() == (bulk.EXPORT_TYPES, None)
    types, since = kickoff(_type="MeasureReport,Task", _since="2026-11-01T00:00:00+07:00")
    assert types == ("Task", "MeasureReport")
    assert since == datetime(2026, 10, 31, 17, 0, tzinfo=UTC)
    # a "+" sent unencoded in a query arrives as a space
    assert kickoff(_since="2026-11-01T00:00:00 07:00")[1] == since


@pytest.mark.parametrize(
    "args,named",
    [
        ({"_type": "Patient"}, "_type"),
        ({"_type": "Task,"}, "_type"),
        ({"_since": "2026-11-01"}, "_since"),
        ({"_since": "2026-11-01T10:00"}, "_since"),
        ({"_since": "2026-11-01T10:00:00"}, "_since"),
        ({"_since": "2026-02-30T10:00:00Z"}, "_since"),
        ({"_outputFormat": "text/csv"}, "_outputFormat"),
    ],
)
def test_a_kick_off_that_cannot_be_read_names_the_parameter(args, named):
    with pytest.raises(SearchRefused) as refused:
        kickoff(**args)
    assert named in refused.value.errors


def test_respond_async_is_read_among_other_preferences():
    assert bulk.wants_async("respond-async")
    assert bulk.wants_async("return=minimal, respond-async; wait=10")
    assert not bulk.wants_async(None) and not bulk.wants_async("respond-sync")


def test_ndjson_is_cut_into_chunks_of_whole_lines_and_nothing_is_lost():
    items = [{"resourceType": "Basic", "id": str(n), "text": "é\nx"} for n in range(7)]
    chunks = list(bulk.chunked(items, lines=3))
    assert [count for count, _ in chunks] == [3, 3, 1]
    lines = "".join(text for _, text in chunks).splitlines()
    assert [json.loads(line) for line in lines] == items
    writer = bulk.NdjsonChunks(lines=2)
    assert writer.add(items[0]) is None and writer.add(items[1])[0] == 2
    assert writer.close() is None and writer.count == 2


def test_an_exported_partner_carries_no_contact():
    partner = {
        "id": "yayasan-kipas",
        "version": 2,
        "updated_at": "2026-11-02T03:00:00Z",
        "status": "active",
        "kind": "foundation",
        "name": "Yayasan Kipas",
        "address": "Jl. Melati 1",
        "kabupaten_kota": "Kota Bengkulu",
        "contacts": [{"role": "manager", "name": "Budi", "phone": "0811111111"}],
    }
    organization = bulk.organization(partner)
    construct_fhir_element("Organization", organization)
    assert "contact" not in organization and "0811111111" not in json.dumps(organization)
    assert bulk.changed_since(organization, datetime(2026, 11, 2, 3, tzinfo=UTC))
    assert not bulk.changed_since(organization, datetime(2026, 11, 2, 4, tzinfo=UTC))


def test_a_recap_is_a_measure_report_with_laporans_suppressed_cells_masked():
    report = bulk.recap_report(RECAP_ROW, "2026-02", 5)
    construct_fhir_element("MeasureReport", report)
    construct_fhir_element("Measure", resources.recap_measure())
    assert report["id"] == "recap.yayasan-kipas.2026-02"
    assert report["period"] == {"start": "2026-02-01", "end": "2026-02-28"}
    assert report["extension"] == [terms.SUPPRESSION.of(5)]
    admitted, outcomes = report["group"]
    assert admitted["population"][0]["extension"] == [terms.masked()]
    assert "count" not in admitted["population"][0]
    by_sex = {s["value"]["text"]: s for s in admitted["stratifier"][0]["stratum"]}
    assert by_sex["M"]["measureScore"] == {"value": 7}
    assert by_sex["F"]["extension"] == [terms.masked()] and "measureScore" not in by_sex["F"]
    by_age = admitted["stratifier"][1]["stratum"]
    assert by_age[0]["value"]["coding"][0]["system"] == terms.CLIENT_AGE_GROUP.url
    assert by_age[1]["value"] == {"text": "unknown"}
    done = {s["value"]["text"]: s for s in outcomes["stratifier"][0]["stratum"]}
    assert done["completed"]["measureScore"] == {"value": 0}


def test_the_manifest_lists_each_file_with_its_count():
    made = bulk.manifest(
        datetime(2026, 11, 3, 3, tzinfo=UTC),
        "http://x/fhir/R4/$export?_type=Task",
        [("Task", "http://x/fhir/R4/$export-file/e/Task.ndjson", 3)],
    )
    assert made == {
        "transactionTime": "2026-11-03T03:00:00Z",
        "request": "http://x/fhir/R4/$export?_type=Task",
        "requiresAccessToken": True,
        "output": [
            {"type": "Task", "url": "http://x/fhir/R4/$export-file/e/Task.ndjson", "count": 3}
        ],
        "error": [],
    }
    construct_fhir_element("OperationOutcome", bulk.failure("Ekspor gagal."))


def test_the_months_of_an_export():
    assert bulk.months(date(2025, 11, 20), date(2026, 2, 1)) == [
        "2025-11",
        "2025-12",
        "2026-01",
        "2026-02",
    ]
    assert bulk.months(date(2026, 3, 1), date(2026, 2, 1)) == []
