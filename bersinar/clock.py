"""The time a service sees. In production the system clock; in tests (and drills) a
file named by the ``CLOCK_FILE`` config key holding an RFC 3339 instant, so several
processes and instances share one controllable clock."""

from __future__ import annotations

import os
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

from nameko.extensions import DependencyProvider

from bersinar.codes import local_date
from bersinar.envelope import parse_rfc3339, rfc3339, utcnow


class SystemClock:
    def now(self) -> datetime:
        return utcnow()

    def today(self) -> date:
        return local_date(self.now())


class FileClock(SystemClock):
    """The instant in the file. A file caught while someone writes it without
    ``write_clock`` (empty or half-written) reads as the instant read last, or, before any,
    is read again for up to a second: moving the clock never fails a request."""

    def __init__(self, path: str):
        self.path = Path(path)
        self._last: datetime | None = None

    def now(self) -> datetime:
        deadline = time.monotonic() + 1.0
        while True:
            try:
                self._last = parse_rfc3339(self.path.read_text().strip())
                return self._last
            except ValueError:
                if self._last is not None:
                    return self._last
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)


def write_clock(path: str | Path, moment: datetime) -> None:
    """Set a clock file at once: the new instant is written beside it and renamed over
    it, so a reader sees the old instant or the new one, never an empty file."""
    path = Path(path)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(rfc3339(moment))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def clock_from_config(config) -> SystemClock:
    path = str(config.get("CLOCK_FILE") or "")
    return FileClock(path) if path else SystemClock()


class Clock(DependencyProvider):
    def setup(self):
        self.clock = clock_from_config(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.clock
