"""bersinar/logs.py: a component's process prints nothing but JSON lines, whatever
writes (logging, print, standard error, warnings, eventlet's hub, an uncaught
exception), each with an RFC 3339 time in UTC."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

from bersinar.config import ROOT

SCRIPT = textwrap.dedent(
    """
    import warnings
    warnings.filterwarnings("ignore", message="(?s).*Eventlet is deprecated")
    import eventlet
    eventlet.monkey_patch()
    import logging, sys, warnings
    from bersinar.context import correlated
    from bersinar.logs import setup_logging

    setup_logging("probe")
    with correlated("corr-12345678"):
        logging.getLogger("probe").info("access", extra={"status": 200, "duration_ms": 1.5})
    print("a library's print")
    sys.stderr.write("a library's complaint\\n")
    warnings.warn("a warning")

    def boom():
        raise ValueError("a greenthread that raises")

    eventlet.spawn(boom)
    eventlet.sleep(0.05)
    raise RuntimeError("the end")
    """
)


def test_every_line_a_process_prints_is_json():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0  # the uncaught exception still ends the process
    assert done.stderr == ""
    records = [json.loads(line) for line in done.stdout.splitlines()]
    for record in records:
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", record["time"]), record
        assert record["service"] == "probe"
    by_name = {r["name"]: r for r in records}
    assert by_name["probe"]["correlation_id"] == "corr-12345678"
    assert (by_name["probe"]["status"], by_name["probe"]["duration_ms"]) == (200, 1.5)
    assert by_name["stdout"]["message"] == "a library's print"
    assert by_name["stderr"]["message"] == "a library's complaint"
    assert "a warning" in by_name["py.warnings"]["message"]
    assert "a greenthread that raises" in by_name["eventlet.hub"]["exc_info"]
    assert "the end" in by_name["bersinar.uncaught"]["exc_info"]
