"""What a benchmark run is asked (Settings), what it measures (Results) and the targets
it reports against: read by the run (bench.run) and by its report (bench.report), so
that neither needs the other."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.ops import OPERATIONS
from bersinar.config import ROOT, SERVICES
from harness.system import RELAYS

PROCESSES = (*SERVICES, "gateway", *RELAYS)

# The targets of the issue. Reported against, never asserted.
TARGET_RPS_AT_10 = 300.0
TARGET_P99_AT_10_MS = 80.0
TARGET_EVENTS_PER_S = 1500.0
TARGET_RSS_MIB = 200.0
TARGET_READ_PARTNER_RPS_AT_10 = 700.0
TARGET_LIST_P99_GROWTH = 1.5  # list p99 at the largest size / at the smallest
TARGET_INDICATORS_S = 1.0  # GET /indicators for a period at 1M referrals
TARGET_EXPORT_GROWTH = 1.5  # Bulk Data export s per 1,000 referrals at 1M / at 100k
# Bersinar / the plain-nameko baseline of the same run (issue 21), at 10 connections
TARGET_CREATE_RATIO = 1.0  # create req/s
TARGET_CREATE_P99_RATIO = 1.5
TARGET_READ_RATIO = 2.0  # read one partner req/s
TARGET_READ_P99_RATIO = 2.0
INDICATORS_PERIOD_OFFSET = 1  # the period of the indicators: the last month ended


@dataclass
class Settings:
    connections: tuple[int, ...] = (1, 10, 50)
    warmup: float = 3.0
    duration: float = 15.0
    operations: tuple[str, ...] = tuple(OPERATIONS)
    op_warmup: float = 2.0
    op_duration: float = 8.0
    events: int = 10_000
    event_timeout: float = 100.0  # cut shorter if the run's time budget is nearly spent
    drain_timeout: float = 30.0
    scale_sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    scale_requests: int = 600  # list requests counted per size and connection count
    scale_connections: tuple[int, ...] = (1, 10)
    indicator_calls: int = 5
    budget: float = 3600.0  # seconds; later phases are skipped past this, with a note
    short: bool = False
    calibrate: bool = True
    write_docs: bool = True
    docs_path: Path = ROOT / "docs" / "benchmarks.md"
    keep_logs: bool = False


@dataclass
class Results:
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    machine: dict = field(default_factory=dict)
    setup_s: dict = field(default_factory=dict)
    calibration: dict | None = None
    http: list[dict] = field(default_factory=list)
    ops: dict[str, list[dict]] = field(default_factory=dict)  # operation -> one per conn
    events: dict | None = None
    scale: list[dict] = field(default_factory=list)  # one per size
    rss_peak_kib: dict[str, dict[str, int]] = field(default_factory=dict)  # phase -> proc -> KiB
    rss_hwm_kib: dict[str, int] = field(default_factory=dict)
    # phase -> the embedded PostgreSQL's processes together: processes, pss_kib, rss_kib
    postgres_kib: dict[str, dict[str, int]] = field(default_factory=dict)
    cpu: dict[str, dict[str, float]] = field(default_factory=dict)  # phase -> group -> % core
    notes: list[str] = field(default_factory=list)
    cleanup: list[str] = field(default_factory=list)
    wall_s: float = 0.0
