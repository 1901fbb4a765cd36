"""The log folder of a run (``var/log``): every line of every file in it is a JSON object
with its time in UTC (RFC 3339, milliseconds), a level and a message."""

from __future__ import annotations

import json
import re
from pathlib import Path

TIME_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def check_log_folder(log_dir: Path) -> dict[str, int]:
    """Fails on the first line that is not such an object; the lines checked, by file
    (rotated files included)."""
    checked = {}
    for path in sorted(p for p in Path(log_dir).iterdir() if p.is_file()):
        lines = path.read_text(errors="replace").splitlines()
        for number, line in enumerate(lines, 1):
            where = f"{path.name} line {number}"
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise AssertionError(f"{where} not JSON: {line[:300]}") from exc
            assert isinstance(record, dict), where
            assert TIME_UTC.match(str(record.get("time"))), (where, record.get("time"))
            assert record.get("level") and "message" in record, (where, record)
        checked[path.name] = len(lines)
    return checked
