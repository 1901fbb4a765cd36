"""The time a service sees. In production the system clock; in tests (and drills) a
file named by the ``CLOCK_FILE`` config key holding an RFC 3339 instant, so several
processes and instances share one controllable clock."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from nameko.extensions import DependencyProvider

from bersinar.envelope import parse_rfc3339, utcnow

# Bengkulu keeps Western Indonesian Time: "today" and a month are reckoned there.
LOCAL_TZ = ZoneInfo("Asia/Jakarta")


class SystemClock:
    def now(self) -> datetime:
        return utcnow()

    def today(self) -> date:
        return self.now().astimezone(LOCAL_TZ).date()


class FileClock(SystemClock):
    def __init__(self, path: str):
        self.path = Path(path)

    def now(self) -> datetime:
        return parse_rfc3339(self.path.read_text().strip())


def clock_from_config(config) -> SystemClock:
    path = str(config.get("CLOCK_FILE") or "")
    return FileClock(path) if path else SystemClock()


class Clock(DependencyProvider):
    def setup(self):
        self.clock = clock_from_config(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.clock
