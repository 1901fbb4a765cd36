"""The FHIR Bulk Data export of the data-scale phase, done over HTTP as a national system
does it (docs/fhir.md#bulk-data-export): kick-off with ``Prefer: respond-async``, the
status URL polled until the manifest, every NDJSON file of the manifest downloaded, then
the export deleted. The files are read as a stream and only their lines and bytes
counted: the harness never holds a file, so its own memory says nothing about the
system's. A thread samples the resident memory of the system's processes and of the
embedded PostgreSQL's backends meanwhile (the harness's own thread is busy reading)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import requests

from harness import procstat

FHIR = "/fhir/R4"
TYPES = ("Task",)  # the referrals; ServiceRequest is not an export type (bulk.EXPORT_TYPES)
POLL_S = 0.5  # finer than the Retry-After (2 s): the manifest's time is measured
READ_BYTES = 1 << 16
SAMPLE_S = 0.25
BACKENDS_EVERY_S = 1.0  # PSS costs the kernel a walk of every mapping (procstat.RssSampler)


class ExportFailed(RuntimeError):
    """The system did not deliver the export (refused, failed, or not done in time): a
    finding of the run, noted, not a broken harness."""


def national_key(base_url: str, admin_key: str) -> str:
    """An API key of the role docs/fhir.md gives national systems, made by the admin."""
    response = requests.post(
        f"{base_url}/api/v1/api-keys",
        json={"role": "national", "label": "bench national export"},
        headers={"Authorization": f"Bearer {admin_key}"},
        timeout=30,
    )
    if response.status_code != 201:
        raise RuntimeError(f"national key: {response.status_code} {response.text[:300]}")
    return response.json()["key"]


def _kick_off(base_url: str, headers: dict[str, str]) -> str:
    response = requests.get(
        f"{base_url}{FHIR}/$export",
        params={"_type": ",".join(TYPES)},
        headers={**headers, "Prefer": "respond-async"},
        timeout=60,
    )
    if response.status_code != 202:
        raise ExportFailed(f"kick-off answered {response.status_code}: {response.text[:300]}")
    return response.headers["Content-Location"]


def _manifest(status_url: str, headers: dict[str, str], deadline: float) -> tuple[dict, int]:
    """The manifest once the export is complete, and how many times the status was read."""
    polls = 0
    while time.monotonic() < deadline:
        response = requests.get(status_url, headers=headers, timeout=60)
        polls += 1
        if response.status_code == 200:
            return response.json(), polls
        if response.status_code != 202:
            raise ExportFailed(f"status answered {response.status_code}: {response.text[:300]}")
        time.sleep(POLL_S)
    raise ExportFailed(f"no manifest after {polls} polls: the export did not finish in time")


def _download(url: str, headers: dict[str, str]) -> tuple[int, int]:
    """(lines, bytes) of one NDJSON file, read a block at a time and counted, not kept."""
    lines = size = 0
    with requests.get(url, headers=headers, stream=True, timeout=300) as response:
        if response.status_code != 200:
            raise ExportFailed(f"file answered {response.status_code}: {response.text[:300]}")
        for block in response.iter_content(READ_BYTES):
            lines += block.count(b"\n")
            size += len(block)
    return lines, size


def export(base_url: str, key: str, timeout: float) -> dict[str, Any]:
    """One whole export: seconds from kick-off to manifest and of the downloads, the
    manifest's count, the lines and bytes downloaded per type, and the DELETE's status.
    An export started is deleted whatever happens after its kick-off."""
    headers = {"Authorization": f"Bearer {key}"}
    started = time.perf_counter()
    status_url = _kick_off(base_url, headers)
    try:
        manifest, polls = _manifest(status_url, headers, time.monotonic() + timeout)
        manifested = time.perf_counter()
        if manifest.get("error"):
            raise ExportFailed(f"the export failed: {manifest['error']}")
        files = {}
        for output in manifest["output"]:
            lines, size = _download(output["url"], headers)
            files[output["type"]] = {"count": output["count"], "lines": lines, "bytes": size}
        downloaded = time.perf_counter()
    finally:
        deleted = requests.delete(status_url, headers=headers, timeout=60).status_code
    return {
        "types": list(TYPES),
        "export_s": manifested - started,
        "download_s": downloaded - manifested,
        "polls": polls,
        "files": files,
        "delete_status": deleted,
    }


class MemoryWatch:
    """Peak resident memory while an export runs, sampled in a thread of its own:
    ``sampler`` (the system's processes and the PostgreSQL tree, as every phase samples
    them) every SAMPLE_S, and each backend of ``backends()`` alone (the largest VmRSS
    and PSS of any one) every BACKENDS_EVERY_S, since "every process" includes them."""

    def __init__(self, sampler: procstat.RssSampler, backends: Callable[[], list[int]]):
        self.sampler = sampler
        self.backends = backends
        self.backend_peak = {"rss_kib": 0, "pss_kib": 0}
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="export-memory", daemon=True)

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        last_backends = float("-inf")
        try:
            while not self._stop.is_set():
                self.sampler.sample()
                if time.monotonic() - last_backends >= BACKENDS_EVERY_S:
                    last_backends = time.monotonic()
                    self._sample_backends()
                self._stop.wait(SAMPLE_S)
        except BaseException as exc:  # told by the caller after the export
            self.error = exc

    def _sample_backends(self) -> None:
        for pid in self.backends():
            rss, _ = procstat.rss_kib(pid)
            self.backend_peak["rss_kib"] = max(self.backend_peak["rss_kib"], rss)
            self.backend_peak["pss_kib"] = max(self.backend_peak["pss_kib"], procstat.pss_kib(pid))


def per_thousand(figures: dict[str, Any]) -> float | None:
    """Seconds per 1,000 referrals of a whole export (to manifest, then downloaded)."""
    referrals = figures.get("referrals") or 0
    if "export_s" not in figures or not referrals:
        return None
    return (figures["export_s"] + figures["download_s"]) / (referrals / 1000)
