"""wrk (the Debian package) for the phases whose requests need no plan of distinct
bodies: closed loop, keep-alive, the paths of a phase taken in turn by a Lua script, the
figures written by the script's ``done`` as one JSON line."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

MARK = "WRKJSON "
SCRIPT = """\
local paths = {%(paths)s}
local i = 0
wrk.method = %(method)s
%(body)s
%(headers)s
request = function()
  i = i %% #paths + 1
  return wrk.format(nil, paths[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%(mark)s{"requests": %%d, "duration_us": %%d, "non_2xx": %%d, "socket_errors": %%d, '
    .. '"p50_us": %%d, "p90_us": %%d, "p99_us": %%d, "max_us": %%d, "mean_us": %%f}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
"""


def available() -> bool:
    return shutil.which("wrk") is not None


def _lua(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid Lua string literal here


def script(paths, method: str, headers: dict[str, str], body: str | None) -> str:
    return SCRIPT % {
        "paths": ", ".join(_lua(p) for p in paths),
        "method": _lua(method),
        "body": f"wrk.body = {_lua(body)}" if body is not None else "",
        "headers": "\n".join(f"wrk.headers[{_lua(k)}] = {_lua(v)}" for k, v in headers.items()),
        "mark": MARK,
    }


def start(
    base_url: str,
    paths,
    connections: int,
    seconds: float,
    script_file: Path,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: str | None = None,
) -> subprocess.Popen:
    """wrk running for ``seconds`` (whole seconds, at least one); read it with
    ``figures``."""
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    script_file.write_text(script(paths, method, all_headers, body))
    threads = min(2, connections)
    return subprocess.Popen(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, math.ceil(seconds))}s",
            "--timeout",
            "30s",
            "-s",
            str(script_file),
            base_url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def figures(process: subprocess.Popen, connections: int) -> dict:
    """The loadgen's figures (harness/loadgen.py), from wrk's JSON line."""
    output, _ = process.communicate(timeout=120)
    line = next((ln for ln in output.splitlines() if ln.startswith(MARK)), None)
    if line is None:
        raise RuntimeError(f"wrk gave no figures: {output[-500:]}")
    raw = json.loads(line[len(MARK) :])
    seconds = raw["duration_us"] / 1e6
    ok = raw["requests"] - raw["non_2xx"]
    statuses = {"2xx": ok}
    if raw["non_2xx"]:
        statuses["non-2xx"] = raw["non_2xx"]
    if raw["socket_errors"]:
        statuses["socket errors"] = raw["socket_errors"]
    return {
        "connections": connections,
        "duration": seconds,
        "plan_used_up": False,
        "completed": raw["requests"],
        "ok": ok,
        "ok_per_s": ok / seconds if seconds else 0.0,
        "statuses": statuses,
        "errors": [],
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "mean_ms": raw["mean_us"] / 1000,
        "sent_total": raw["requests"],
        "generator": "wrk",
    }
