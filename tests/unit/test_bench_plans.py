"""The benchmark's load generator follows a plan of requests: each request once with its
own key (accepting each referral of a pool once), or round and round (reads); and the
plans of the operation phases are built from the months and partners they name."""

from __future__ import annotations

import io
import json
import threading
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.ops import PARTNERS, Operations, months_since, rotate
from harness import loadgen


class Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str, str, bytes]] = []

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        Recorder.seen.append((self.command, self.path, self.headers.get("Authorization", ""), body))
        reply = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    Recorder.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def run_plan(monkeypatch, tmp_path, port: int, plan: dict, connections: int, duration: float):
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    monkeypatch.setattr("sys.stdin", io.StringIO("go\n"))
    return loadgen.run(
        {
            "host": "127.0.0.1",
            "port": port,
            "path": "/unused",
            "connections": connections,
            "warmup": 0.0,
            "duration": duration,
            "plan": str(path),
        }
    )


def test_a_plan_not_cycled_sends_each_request_once_with_its_own_key(server, monkeypatch, tmp_path):
    plan = {
        "headers": [{"Authorization": "Bearer one"}, {"Authorization": "Bearer two"}],
        "requests": [["POST", f"/api/v1/referrals/r{i}/accept", None, i % 2] for i in range(40)]
        + [["PUT", "/api/v1/reports/p/2026-10", '{"counts": {}}', 0]],
        "cycle": False,
    }
    figures = run_plan(monkeypatch, tmp_path, server, plan, connections=4, duration=60.0)

    assert figures["plan_used_up"] is True
    assert figures["completed"] == figures["ok"] == 41
    accepts = sorted((p, key) for method, p, key, _ in Recorder.seen if method == "POST")
    assert accepts == sorted(
        (f"/api/v1/referrals/r{i}/accept", "Bearer one" if i % 2 == 0 else "Bearer two")
        for i in range(40)
    )
    assert ("PUT", "/api/v1/reports/p/2026-10", "Bearer one", b'{"counts": {}}') in Recorder.seen


def test_a_cycled_plan_comes_round_again(server, monkeypatch, tmp_path):
    plan = {
        "headers": [{}],
        "requests": [
            ["GET", "/api/v1/partners/a", None, 0],
            ["GET", "/api/v1/partners/b", None, 0],
        ],
        "cycle": True,
    }
    figures = run_plan(monkeypatch, tmp_path, server, plan, connections=2, duration=0.5)

    assert figures["plan_used_up"] is False
    assert figures["sent_total"] > 2
    assert {path for _, path, _, _ in Recorder.seen} == {"/api/v1/partners/a", "/api/v1/partners/b"}


def test_months_to_report_end_with_the_last_month_ended():
    assert months_since(date(2025, 11, 1), date(2026, 2, 14)) == [
        "2025-11",
        "2025-12",
        "2026-01",
    ]
    assert months_since(date(2026, 2, 1), date(2026, 2, 28)) == []


def test_a_plan_starts_where_the_previous_phase_stopped():
    assert rotate([1, 2, 3, 4], 5) == [2, 3, 4, 1]
    assert rotate([], 3) == []


def test_list_filters_cover_each_partner_each_status_and_none():
    filters = Operations.list_filters(("requested", "admitted"))
    assert {f.get("partner_id") for f in filters} == {*PARTNERS, None}
    assert {"status": "admitted"} in filters and {} in filters
    assert {"partner_id": PARTNERS[1], "status": "admitted"} in filters
