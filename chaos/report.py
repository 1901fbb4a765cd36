"""The figures of a run, written into docs/chaos.md between the markers of its kind
(full or short), so the page always shows the last run of each."""

from __future__ import annotations

import platform
import time
from pathlib import Path

from bersinar.config import ROOT

DOC = ROOT / "docs" / "chaos.md"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def markdown(results, settings, wall: float) -> str:
    kind = "short" if settings.short else "full"
    load = (
        f"{settings.referrals} referrals per case, {settings.workers} clients, "
        f"faults of {settings.fault_seconds:g} s; no request later than {settings.bound:g} s "
        f"after a case's fault; lost if the consumers then stay idle {settings.drain:g} s; "
        f"the burst {settings.burst:,} referrals at 20 connections"
    )
    lines = [
        f"Run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} ({kind}: {load}); "
        f"{wall:.0f} s in all; {platform.node()}, {_cores()} cores shared with other work.",
        "",
        "| case | requests | 201 | clean failures (retried) | 5xx not clean | lost | "
        "duplicated | recovery s (each fault) | caught up s | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.total('requests')} | {r.total('ok')} "
            f"| {r.total('clean_failures')} | {r.total('unclean_5xx')} | {r.lost} "
            f"| {r.duplicated} | {_fmt(r.recovery_s)} "
            f"({', '.join(_fmt(x) for x in r.recoveries) or '-'}) | {_fmt(r.catch_up_s)} "
            f"| {r.verdict} |"
        )
    notes = [f"- {r.name}: {n}" for r in results for n in r.notes]
    notes += [f"- {r.name}: FAIL {f}" for r in results for f in r.failures]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def write_docs(results, settings, wall: float, path: Path = DOC) -> None:
    kind = "short" if settings.short else "full"
    begin, end = f"<!-- chaos:{kind} -->", f"<!-- /chaos:{kind} -->"
    text = path.read_text()
    if begin not in text or end not in text:
        raise SystemExit(f"{path} lacks the markers {begin} ... {end}")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{begin}\n{markdown(results, settings, wall)}{end}{tail}")
    print(f"written: {path.relative_to(ROOT)} ({kind} run)")


def _cores() -> int:
    import os

    return os.cpu_count() or 0
