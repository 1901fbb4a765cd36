"""FHIR Bulk Data export (system level, docs/fhir.md#bulk-data-export): the kick-off's
parameters, the NDJSON files written chunk by chunk, the de-identified resources and the
completion manifest. Plain functions, no I/O; gateway.fhir.exports runs the jobs."""

from __future__ import annotations

import calendar
import json
import re
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from typing import Any

from bersinar.envelope import parse_rfc3339, rfc3339
from gateway.fhir import resources, terms
from gateway.fhir.search import Search, refuse

# what an export may hold, in the order the files are written
EXPORT_TYPES = ("Organization", "HealthcareService", "Task", "MeasureReport")
OUTPUT_FORMATS = ("application/fhir+ndjson", "application/ndjson", "ndjson")
NDJSON = "application/fhir+ndjson"
# a FHIR instant: a full time of day and a zone
_INSTANT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})"
)
# the CodeSystem of each stratum's codes, where Bersinar has one
STRATUM_CODES = {
    "by_age_group": terms.CLIENT_AGE_GROUP,
    "by_service_type": terms.SERVICE_TYPE,
    "by_source": terms.REFERRAL_SOURCE,
}


def wants_async(prefer: str | None) -> bool:
    """``Prefer: respond-async`` (RFC 7240: a comma list of preferences)."""
    return any(p.split(";")[0].strip() == "respond-async" for p in (prefer or "").split(","))


def read_kickoff(search: Search) -> tuple[tuple[str, ...], datetime | None]:
    """The types asked for (``_type``, a comma list; all of them when absent, in
    EXPORT_TYPES' order) and ``_since`` (an instant), or a 400 naming the parameter."""
    output = search.one("_outputFormat")
    if output is not None and output not in OUTPUT_FORMATS:
        raise refuse("_outputFormat", f"hanya {', '.join(OUTPUT_FORMATS)}.")
    wanted: set[str] = set()
    for value in search.values.get("_type", []):
        wanted |= {t.strip() for t in value.split(",")}
    unknown = sorted(wanted - set(EXPORT_TYPES))
    if unknown:
        raise refuse("_type", f"jenis tidak didukung: {unknown}; hanya {', '.join(EXPORT_TYPES)}.")
    types = tuple(t for t in EXPORT_TYPES if not wanted or t in wanted)
    since = search.one("_since")
    if since is not None:  # a "+" of the zone sent unencoded reads as a space
        since = since.replace(" ", "+")
    if since is None:
        return types, None
    if not _INSTANT.fullmatch(since):
        raise refuse("_since", "instant FHIR, mis. 2026-11-01T00:00:00+07:00.")
    try:
        moment = parse_rfc3339(since)
    except ValueError:
        raise refuse("_since", "waktu tidak ada di kalender.") from None
    if not 1900 <= moment.year <= 2098:
        raise refuse("_since", "tahun 1900 sampai 2098.")
    return types, moment


def months(first: date, last: date) -> list[str]:
    """Every month from ``first``'s to ``last``'s, as YYYY-MM, oldest first."""
    found, year, month = [], first.year, first.month
    while (year, month) <= (last.year, last.month):
        found.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found


class NdjsonChunks:
    """One resource type's NDJSON file, cut into chunks of at most ``lines`` lines: feed
    resources, store each chunk ``add`` hands back, then the one ``close`` hands back.
    Nothing but the chunk being filled is held."""

    def __init__(self, lines: int = 500):
        self.limit = lines
        self.buffer: list[str] = []
        self.count = 0

    def add(self, resource: dict[str, Any]) -> tuple[int, str] | None:
        self.buffer.append(json.dumps(resource, ensure_ascii=False, separators=(",", ":")))
        self.count += 1
        return self.close() if len(self.buffer) >= self.limit else None

    def close(self) -> tuple[int, str] | None:
        """The lines not handed back yet, as (how many, text), or None."""
        if not self.buffer:
            return None
        chunk = (len(self.buffer), "\n".join(self.buffer) + "\n")
        self.buffer = []
        return chunk


def chunked(items: Iterable[dict[str, Any]], lines: int = 500) -> Iterator[tuple[int, str]]:
    """``items`` as NDJSON chunks (NdjsonChunks over an iterable)."""
    writer = NdjsonChunks(lines)
    for item in items:
        chunk = writer.add(item)
        if chunk:
            yield chunk
    rest = writer.close()
    if rest:
        yield rest


def changed_since(resource: dict[str, Any], since: datetime | None) -> bool:
    return since is None or parse_rfc3339(resource["meta"]["lastUpdated"]) >= since


def organization(partner: dict[str, Any]) -> dict[str, Any]:
    """A partner as an export carries it: no contact (people and their telephones), for
    every reader."""
    resource = resources.organization(partner)
    resource.pop("contact", None)
    return resource


def recap_report(row: dict[str, Any], period: str, threshold: int) -> dict[str, Any]:
    """A partner's month of laporan's monthly export as a MeasureReport: its figures as
    laporan gives them (a suppressed cell, None, is masked, never worked out here)."""
    year, month = (int(part) for part in period.split("-"))
    last = calendar.monthrange(year, month)[1]
    admitted = {
        "code": {"text": "admitted"},
        "population": [_count(resources.population("initial-population"), row["admitted_total"])],
        "stratifier": [
            {
                "code": [{"text": name}],
                "stratum": _strata(row["admitted"].get(name, {}), STRATUM_CODES.get(name)),
            }
            for name in resources.RECAP_DIMENSIONS
        ],
    }
    outcomes = {
        "code": {"text": "outcomes"},
        "stratifier": [{"code": [{"text": "outcome"}], "stratum": _strata(row["outcomes"], None)}],
    }
    return {
        "resourceType": "MeasureReport",
        "id": f"recap.{resources.report_id(row['partner_id'], period)}",
        "extension": [terms.SUPPRESSION.of(threshold)],
        "status": "complete",
        "type": "summary",
        "measure": resources.measure_url(resources.RECAP),
        "reporter": resources.reference("Organization", row["partner_id"]),
        "period": {"start": f"{period}-01", "end": f"{period}-{last:02d}"},
        "group": [admitted, outcomes],
    }


def _count(population_code: dict[str, Any], value: int | None) -> dict[str, Any]:
    if value is None:
        return {"code": population_code, "extension": [terms.masked()]}
    return {"code": population_code, "count": value}


def _strata(cells: dict[str, int | None], kind: terms.Terms | None) -> list[dict[str, Any]]:
    strata = []
    for code, value in cells.items():
        concept: dict[str, Any] = {"text": code}
        if kind is not None and code in kind.codes:
            concept = kind.concept(code)
        if value is None:
            strata.append({"value": concept, "extension": [terms.masked()]})
        else:
            strata.append({"value": concept, "measureScore": {"value": value}})
    return strata


def manifest(
    transaction_time: datetime,
    request_url: str,
    outputs: list[tuple[str, str, int]],
    errors: list[tuple[str, str, int]] = (),
) -> dict[str, Any]:
    """The completion manifest: ``outputs`` and ``errors`` as (type, url, count)."""
    return {
        "transactionTime": rfc3339(transaction_time),
        "request": request_url,
        "requiresAccessToken": True,
        "output": [{"type": t, "url": url, "count": n} for t, url, n in outputs],
        "error": [{"type": t, "url": url, "count": n} for t, url, n in errors],
    }


def progress(done: Iterable[str], types: Iterable[str]) -> str:
    types = list(types)
    finished = [t for t in types if t in set(done)]
    return f"{len(finished)}/{len(types)} jenis selesai"


def failure(detail: str) -> dict[str, Any]:
    """Why an export failed, as the OperationOutcome of its error file."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "fatal",
                "code": "exception",
                "details": {
                    "coding": [
                        {"system": terms.ERROR_SYSTEM, "code": "EXPORT_FAILED", "display": detail}
                    ]
                },
                "diagnostics": detail,
            }
        ],
    }
