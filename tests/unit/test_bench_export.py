"""The data-scale phase's Bulk Data export as the harness does it, against a local server
that answers as the gateway does: kick-off, 202s then the manifest, a file sent in many
writes (counted line by line, not kept), the DELETE whatever happened; and the report's
verdicts on the export's memory and growth."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench import export, report
from bench.results import Results

LINES = 2_345
LINE = b'{"resourceType":"Task","id":"x"}\n'


class FakeGateway(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str]] = []
    polls_before_done = 2
    failed = False

    def _send(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        FakeGateway.seen.append(("GET", self.path))
        base = f"http://127.0.0.1:{self.server.server_port}/fhir/R4"
        if self.path.startswith("/fhir/R4/$export?"):
            assert self.headers["Prefer"] == "respond-async"
            self._send(202, b"{}", **{"Content-Location": f"{base}/$export-status/e1"})
        elif self.path == "/fhir/R4/$export-status/e1":
            if sum(1 for _, p in FakeGateway.seen if p == self.path) <= self.polls_before_done:
                self._send(202, **{"X-Progress": "running"})
                return
            url = f"{base}/$export-file/e1/Task.ndjson"
            files = {"output": [], "error": [{"type": "OperationOutcome", "url": url}]}
            if not self.failed:
                files = {"output": [{"type": "Task", "url": url, "count": LINES}], "error": []}
            self._send(200, json.dumps(files).encode())
        elif self.path == "/fhir/R4/$export-file/e1/Task.ndjson":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, LINES, 500):  # the gateway's chunks
                block = LINE * min(500, LINES - start)
                self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self._send(404)

    def do_DELETE(self):
        FakeGateway.seen.append(("DELETE", self.path))
        self._send(202, b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def gateway(monkeypatch):
    monkeypatch.setattr(export, "POLL_S", 0.01)
    FakeGateway.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeGateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    FakeGateway.failed = False


def test_an_export_is_polled_to_its_manifest_its_file_counted_and_then_deleted(gateway):
    figures = export.export(gateway, "bsk_national", timeout=30)

    assert figures["files"] == {
        "Task": {"count": LINES, "lines": LINES, "bytes": LINES * len(LINE)}
    }
    assert figures["polls"] == 3
    assert figures["delete_status"] == 202
    assert FakeGateway.seen[0] == ("GET", "/fhir/R4/$export?_type=Task")
    assert FakeGateway.seen[-1] == ("DELETE", "/fhir/R4/$export-status/e1")


def test_an_export_that_fails_is_a_finding_and_is_deleted_all_the_same(gateway):
    FakeGateway.failed = True

    with pytest.raises(export.ExportFailed, match="the export failed"):
        export.export(gateway, "bsk_national", timeout=30)
    assert FakeGateway.seen[-1] == ("DELETE", "/fhir/R4/$export-status/e1")


def figures(referrals: int, seconds: float, gateway_kib: int, backend_kib: int) -> dict:
    return {
        "referrals": referrals,
        "export_s": seconds,
        "download_s": 0.0,
        "files": {"Task": {"count": referrals, "lines": referrals, "bytes": referrals * 800}},
        "rss_peak_kib": {"gateway": gateway_kib, "rujukan": 100 * 1024},
        "backend_peak_kib": {"rss_kib": backend_kib, "pss_kib": backend_kib // 4},
        "postgres_kib": {"processes": 9, "pss_kib": 40 * 1024, "rss_kib": 300 * 1024},
        "cpu": {},
    }


def test_the_targets_judge_the_two_largest_sizes_and_every_process_at_the_largest():
    results = Results()
    results.scale = [
        {"size": 10_000, "export": figures(10_000, 5.0, 130 * 1024, 50 * 1024)},
        {"size": 100_000, "export": figures(100_000, 20.0, 130 * 1024, 150 * 1024)},
        {"size": 1_000_000, "export": figures(1_000_000, 400.0, 140 * 1024, 210 * 1024)},
    ]

    memory, growth = report.export_targets(results)

    assert memory[0] == "export of 1M referrals: every process"
    assert memory[2:] == ("largest: PostgreSQL backend 210 MiB", "FAIL")
    assert "at 1M ÷ at 100k" in growth[0]
    assert growth[2:] == ("2.00× (0.20 → 0.40 s per 1,000)", "FAIL")
    assert "1,000,000 / 1,000,000" in report.export_table(results, markdown=False)


def test_a_failed_export_is_shown_and_leaves_the_targets_not_run():
    results = Results()
    results.scale = [{"size": 2_000, "export": {"referrals": 2_000, "error": "kick-off 500"}}]

    assert [row[3] for row in report.export_targets(results)] == [report.NOT_RUN] * 2
    assert "FAILED: kick-off 500" in report.export_table(results, markdown=True)
