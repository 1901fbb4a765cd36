"""The figures of a run as a plain-text table (printed) and as docs/benchmarks.md."""

from __future__ import annotations

import dataclasses
from typing import Any

from bench.export import per_thousand
from bench.ops import OPERATIONS
from bench.results import (
    PROCESSES,
    TARGET_CREATE_P99_RATIO,
    TARGET_CREATE_RATIO,
    TARGET_EVENTS_PER_S,
    TARGET_EXPORT_GROWTH,
    TARGET_INDICATORS_S,
    TARGET_LIST_P99_GROWTH,
    TARGET_P99_AT_10_MS,
    TARGET_READ_P99_RATIO,
    TARGET_READ_PARTNER_RPS_AT_10,
    TARGET_READ_RATIO,
    TARGET_RPS_AT_10,
    TARGET_RSS_MIB,
    Results,
    Settings,
)

NOT_RUN = "not run"


def as_dict(results: Results) -> dict[str, Any]:
    return dataclasses.asdict(results)


def _mib(kib: int | None) -> str:
    return f"{kib / 1024:.0f}" if kib else "-"


def _phase_labels(results: Results) -> list[str]:
    return list(results.rss_peak_kib)


def _verdict(ok: bool | None) -> str:
    return NOT_RUN if ok is None else ("PASS" if ok else "FAIL")


def targets(results: Results) -> list[tuple[str, str, str, str]]:
    """(target, measured, verdict) rows."""
    rows = []
    at10 = next((h for h in results.http if h["connections"] == 10), None)
    rows.append(
        (
            "POST /api/v1/referrals at 10 connections",
            f">= {TARGET_RPS_AT_10:.0f} req/s",
            f"{at10['ok_per_s']:.0f} req/s" if at10 else "-",
            _verdict(at10["ok_per_s"] >= TARGET_RPS_AT_10 if at10 else None),
        )
    )
    rows.append(
        (
            "p99 latency at 10 connections",
            f"< {TARGET_P99_AT_10_MS:.0f} ms",
            f"{at10['p99_ms']:.0f} ms" if at10 else "-",
            _verdict(at10["p99_ms"] < TARGET_P99_AT_10_MS if at10 else None),
        )
    )
    partner = next((h for h in results.ops.get("read_partner", []) if h["connections"] == 10), None)
    rows.append(
        (
            "GET /api/v1/partners/{id} at 10 connections",
            f">= {TARGET_READ_PARTNER_RPS_AT_10:.0f} req/s",
            f"{partner['ok_per_s']:.0f} req/s" if partner else "-",
            _verdict(partner["ok_per_s"] >= TARGET_READ_PARTNER_RPS_AT_10 if partner else None),
        )
    )
    rows.append(
        (
            "its p99 latency at 10 connections",
            f"<= {TARGET_P99_AT_10_MS:.0f} ms",
            f"{partner['p99_ms']:.0f} ms" if partner else "-",
            _verdict(partner["p99_ms"] <= TARGET_P99_AT_10_MS if partner else None),
        )
    )
    rows += ratio_targets(at10, partner)
    rows += scale_targets(results)
    rows += export_targets(results)
    events = results.events
    rows.append(
        (
            "events end to end (outbox → relay → both consumers)",
            f">= {TARGET_EVENTS_PER_S:.0f} events/s",
            f"{events['end_to_end_per_s']:.0f} events/s" if events else "-",
            _verdict(
                events["complete"] and events["end_to_end_per_s"] >= TARGET_EVENTS_PER_S
                if events
                else None
            ),
        )
    )
    peaks = {}
    for phase in results.rss_peak_kib.values():
        for name, kib in (phase or {}).items():
            peaks[name] = max(peaks.get(name, 0), kib)
    for name, kib in results.rss_hwm_kib.items():
        peaks[name] = max(peaks.get(name, 0), kib)
    if peaks:
        worst = max(peaks, key=peaks.get)
        rows.append(
            (
                "resident memory of every process under load",
                f"< {TARGET_RSS_MIB:.0f} MiB",
                f"largest: {worst} {peaks[worst] / 1024:.0f} MiB",
                _verdict(all(k / 1024 < TARGET_RSS_MIB for k in peaks.values())),
            )
        )
    else:
        rows.append(
            (
                "resident memory of every process under load",
                f"< {TARGET_RSS_MIB:.0f} MiB",
                "-",
                NOT_RUN,
            )
        )
    return rows


def ratio_targets(create: dict | None, read: dict | None) -> list[tuple[str, str, str, str]]:
    """Bersinar against the plain-nameko baseline measured right after it (issue 21)."""
    rows = []
    for what, h, rate, p99 in (
        ("POST /api/v1/referrals", create, TARGET_CREATE_RATIO, TARGET_CREATE_P99_RATIO),
        ("GET /api/v1/partners/{id}", read, TARGET_READ_RATIO, TARGET_READ_P99_RATIO),
    ):
        ratio = h.get("ratio") if h else None
        p99_ratio = h.get("p99_ratio") if h else None
        base = (h or {}).get("baseline") or {}
        rows.append(
            (
                f"{what} / baseline's {base.get('kind', '')} req/s at 10 connections",
                f">= {rate:g}×",
                f"{ratio:.2f}× ({h['ok_per_s']:.0f} / {base['ok_per_s']:.0f})" if ratio else "-",
                _verdict(ratio >= rate if ratio else None),
            )
        )
        rows.append(
            (
                "its p99 / the baseline's p99 at 10 connections",
                f"<= {p99:g}×",
                f"{p99_ratio:.2f}× ({h['p99_ms']:.0f} / {base['p99_ms']:.0f} ms)"
                if p99_ratio
                else "-",
                _verdict(p99_ratio <= p99 if p99_ratio else None),
            )
        )
    return rows


def baseline_cells(h: dict) -> list[str]:
    """The baseline's figures of a phase and the ratios (Bersinar / baseline)."""
    base = h.get("baseline")
    if not base:
        return ["-"] * 5
    return [
        f"{base['ok_per_s']:.0f}",
        f"{base['p99_ms']:.1f}",
        f"{h['ratio']:.2f}×" if h.get("ratio") else "-",
        f"{h['p99_ratio']:.2f}×" if h.get("p99_ratio") else "-",
        largest_rss(base.get("rss_peak_kib")),
    ]


BASELINE_HEADER = [
    "baseline req/s",
    "baseline p99 ms",
    "ratio req/s",
    "ratio p99",
    "baseline largest RSS (MiB)",
]


def _growth(low: float, high: float, limit: float) -> tuple[float, str]:
    """How many times ``low`` became ``high``, and whether that is within ``limit``."""
    growth = high / low if low else float("inf")
    return growth, _verdict(growth <= limit)


def scale_targets(results: Results) -> list[tuple[str, str, str, str]]:
    rows = []
    sizes = results.scale
    smallest, largest = (sizes[0], sizes[-1]) if len(sizes) >= 2 else (None, None)
    for connections in ("1", "10"):
        if smallest and connections in smallest["list"] and connections in largest["list"]:
            low = smallest["list"][connections]["p99_ms"]
            high = largest["list"][connections]["p99_ms"]
            growth, verdict = _growth(low, high, TARGET_LIST_P99_GROWTH)
            measured = f"{growth:.2f}× ({low:.0f} → {high:.0f} ms)"
        else:
            measured, verdict = "-", NOT_RUN
        rows.append(
            (
                f"list p99 at {_size(largest)} vs {_size(smallest)} referrals, {connections} conn",
                f"<= {TARGET_LIST_P99_GROWTH}×",
                measured,
                verdict,
            )
        )
    indicators = largest["indicators"] if largest else None
    rows.append(
        (
            f"GET /api/v1/indicators for a period at {_size(largest)} referrals",
            f"<= {TARGET_INDICATORS_S:.0f} s",
            f"{indicators['median_ms']:.0f} ms (first {indicators['first_ms']:.0f} ms)"
            if indicators
            else "-",
            _verdict(
                indicators["median_ms"] <= TARGET_INDICATORS_S * 1000
                and all(s == 200 for s in indicators["statuses"])
                if indicators
                else None
            ),
        )
    )
    return rows


def export_targets(results: Results) -> list[tuple[str, str, str, str]]:
    """The Bulk Data export at the largest size in bounded memory (every Bersinar
    process and every PostgreSQL backend alone), and its time per 1,000 referrals at
    the largest size against the one below it."""
    done = [e for e in results.scale if "export_s" in (e.get("export") or {})]
    largest = done[-1] if done else None
    if largest:
        figures = largest["export"]
        peaks = {n: k for n, k in figures["rss_peak_kib"].items() if n in PROCESSES}
        peaks["PostgreSQL backend"] = figures["backend_peak_kib"]["rss_kib"]
        worst = max(peaks, key=peaks.get)
        memory = f"largest: {worst} {peaks[worst] / 1024:.0f} MiB"
        memory_ok = all(k / 1024 < TARGET_RSS_MIB for k in peaks.values())
    else:
        memory, memory_ok = "-", None
    rows = [
        (
            f"export of {_size(largest)} referrals: every process",
            f"< {TARGET_RSS_MIB:.0f} MiB",
            memory,
            _verdict(memory_ok),
        )
    ]
    below = done[-2] if len(done) >= 2 else None
    if below:
        high, low = per_thousand(largest["export"]), per_thousand(below["export"])
        growth, verdict = _growth(low, high, TARGET_EXPORT_GROWTH)
        measured = f"{growth:.2f}× ({low:.2f} → {high:.2f} s per 1,000)"
    else:
        measured, verdict = "-", NOT_RUN
    rows.append(
        (
            f"export time grows linearly: s per 1,000 referrals at {_size(largest)} ÷ at "
            f"{_size(below)}",
            f"<= {TARGET_EXPORT_GROWTH}×",
            measured,
            verdict,
        )
    )
    return rows


def _size(entry: dict | None) -> str:
    if not entry:
        return "?"
    n = entry["size"]
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n / 1000:g}k"


def ops_table(results: Results, markdown: bool) -> str:
    header = [
        "operation",
        "connections",
        "req/s (2xx)",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "other statuses",
        "machine CPU",
        "busiest (% of one core)",
        "events caught up after",
        "largest RSS (MiB)",
        *BASELINE_HEADER,
    ]
    rows = []
    for operation, phases in results.ops.items():
        for h in phases:
            cpu = h.get("cpu") or {}
            other = {k: v for k, v in h["statuses"].items() if not k.startswith("2")}
            rows.append(
                [
                    OPERATIONS.get(operation, operation).split(" (")[0],
                    str(h["connections"]),
                    f"{h['ok_per_s']:.0f}" + (" (pool used up)" if h.get("plan_used_up") else ""),
                    f"{h['p50_ms']:.1f}",
                    f"{h['p90_ms']:.1f}",
                    f"{h['p99_ms']:.1f}",
                    f"{h['max_ms']:.0f}",
                    ", ".join(f"{k}×{v}" for k, v in other.items()) or "none",
                    f"{cpu.get('machine', 0):.0f}% of {100 * int(cpu.get('machine_cores', 1))}%",
                    _busiest(cpu),
                    f"{h['drain_s']:.1f} s" if "drain_s" in h else "-",
                    largest_rss(h.get("rss_peak_kib")),
                    *baseline_cells(h),
                ]
            )
    return _table(header, rows, markdown) if rows else "(operation phases not run)"


def scale_table(results: Results, markdown: bool) -> str:
    if not results.scale:
        return "(data-scale phase not run)"
    header = [
        "referrals",
        "load s (added)",
        "list c=1 p50 / p99 ms",
        "list c=10 p50 / p99 ms",
        "list c=10 req/s",
        "other statuses",
        "indicators first / median / max ms",
    ]
    rows = []
    for e in results.scale:
        lists = e["list"]

        def cell(c: str, e=lists) -> str:
            f = e.get(c)
            return f"{f['p50_ms']:.1f} / {f['p99_ms']:.1f}" if f else "-"

        other = {}
        for f in lists.values():
            for k, v in f["statuses"].items():
                if not k.startswith("2"):
                    other[k] = other.get(k, 0) + v
        ind = e["indicators"]
        rows.append(
            [
                f"{e['referrals']:,}",
                f"{e['load_s']:.0f} (+{e['added']:,})",
                cell("1"),
                cell("10"),
                f"{lists['10']['ok_per_s']:.0f}" if "10" in lists else "-",
                ", ".join(f"{k}×{v}" for k, v in other.items()) or "none",
                f"{ind['first_ms']:.0f} / {ind['median_ms']:.0f} / {ind['max_ms']:.0f}"
                + ("" if all(s == 200 for s in ind["statuses"]) else f" {ind['statuses']}"),
            ]
        )
    return _table(header, rows, markdown)


def export_table(results: Results, markdown: bool) -> str:
    """The Bulk Data export at each size: its times, what it delivered, and the peak
    memory and busiest processes while it ran."""
    header = [
        "referrals",
        "Task lines (manifest / downloaded)",
        "MiB",
        "kick-off → manifest s",
        "download s",
        "s per 1,000",
        "gateway / rujukan RSS (MiB)",
        "largest RSS (MiB)",
        "largest PostgreSQL backend RSS / PSS (MiB)",
        "PostgreSQL PSS sum (MiB)",
        "busiest (% of one core)",
    ]
    rows = []
    for e in results.scale:
        figures = e.get("export")
        if not figures:
            continue
        if "error" in figures:
            failed = f"FAILED: {figures['error'][:80]}"
            rows.append([f"{figures['referrals']:,}", failed] + ["-"] * (len(header) - 2))
            continue
        task = figures["files"].get("Task", {"count": 0, "lines": 0, "bytes": 0})
        peaks = figures["rss_peak_kib"]
        backend = figures["backend_peak_kib"]
        mismatch = task["count"] != figures["referrals"] or task["lines"] != figures["referrals"]
        rows.append(
            [
                f"{figures['referrals']:,}",
                f"{task['count']:,} / {task['lines']:,}" + (" MISMATCH" if mismatch else ""),
                f"{task['bytes'] / 2**20:.0f}",
                f"{figures['export_s']:.1f}",
                f"{figures['download_s']:.1f}",
                f"{per_thousand(figures):.3f}",
                f"{_mib(peaks.get('gateway'))} / {_mib(peaks.get('rujukan'))}",
                largest_rss(peaks),
                f"{_mib(backend['rss_kib'])} / {_mib(backend['pss_kib'])}",
                _mib(figures["postgres_kib"].get("pss_kib")),
                _busiest(figures.get("cpu")),
            ]
        )
    return _table(header, rows, markdown) if rows else "(export not run)"


def explain_table(results: Results, markdown: bool) -> str:
    header = ["referrals", "filter (first page, newest first)", "index used", "execution ms"]
    rows = [
        [
            f"{e['referrals']:,}",
            x["filter"],
            ", ".join(x["indexes"]) or ", ".join(x["nodes"]),
            f"{x['execution_ms']:.2f}",
        ]
        for e in results.scale
        for x in e.get("explain", [])
    ]
    return _table(header, rows, markdown) if rows else "(no plans)"


def _table(header: list[str], rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = [
            "| " + " | ".join(header) + " |",
            "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|",
        ]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=True)]

    def line(cells):
        return "  ".join(
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join(
        [line(header), "  ".join("-" * w for w in widths)] + [line(row) for row in rows]
    )


def _busiest(cpu: dict[str, float] | None, count: int = 3) -> str:
    if not cpu:
        return "-"
    items = [
        (k, v) for k, v in cpu.items() if k in PROCESSES or k.startswith(("postgres", "rabbitmq"))
    ]
    items.sort(key=lambda kv: -kv[1])
    return ", ".join(f"{k} {v:.0f}%" for k, v in items[:count])


def largest_rss(peaks: dict[str, int] | None) -> str:
    if not peaks:
        return "-"
    name = max(peaks, key=peaks.get)
    return f"{name} {peaks[name] / 1024:.0f}"


def http_table(results: Results, markdown: bool) -> str:
    header = [
        "connections",
        "req/s (201)",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "other statuses",
        "generator CPU",
        "machine CPU",
        "CPU ms/referral (all / rujukan)",
        "rujukan DB sessions (run / lock / idle-in-tx)",
        "busiest (% of one core)",
        "consumers caught up after",
        "largest RSS (MiB)",
        *BASELINE_HEADER,
    ]
    rows = []
    for h in results.http:
        cpu = results.cpu.get(h["label"]) or {}
        other = {k: v for k, v in h["statuses"].items() if k not in ("200", "201")}
        rows.append(
            [
                str(h["connections"]),
                f"{h['ok_per_s']:.0f}",
                f"{h['p50_ms']:.1f}",
                f"{h['p90_ms']:.1f}",
                f"{h['p99_ms']:.1f}",
                f"{h['max_ms']:.0f}",
                ", ".join(f"{k}×{v}" for k, v in other.items()) or "none",
                f"{h['generator_cpu_pct']:.0f}%",
                f"{cpu.get('machine', 0):.0f}% of {100 * int(cpu.get('machine_cores', 1))}%",
                f"{h.get('system_cpu_ms_per_request') or 0:.1f} / "
                f"{h.get('rujukan_cpu_ms_per_request') or 0:.1f}",
                " / ".join(
                    f"{(h.get('rujukan_db_sessions') or {}).get(k, 0):.1f}"
                    for k in ("running", "lock_wait", "idle_in_tx")
                ),
                _busiest(cpu),
                f"{h.get('drain_s', 0):.1f} s",
                largest_rss(results.rss_peak_kib.get(h["label"])),
                *baseline_cells(h),
            ]
        )
    return _table(header, rows, markdown)


def events_table(results: Results, markdown: bool) -> str:
    events = results.events
    if not events:
        return "(events phase not run)"
    header = ["rows", "stage", "done after s", "rate /s"]
    rows = []
    for stage, title in (
        ("relay", "relay published (confirmed)"),
        ("laporan", "laporan handled (inbox)"),
        ("notifikasi", "notifikasi handled (inbox)"),
    ):
        secs = events["seconds"].get(stage)
        rows.append(
            [
                str(events["n"]),
                title,
                f"{secs:.2f}" if secs else "not finished",
                f"{events['rates'].get(stage, 0):.0f}",
            ]
        )
    rows.append(
        [
            str(events["n"]),
            "**end to end**" if markdown else "END TO END",
            f"{events['end_to_end_s']:.2f}" if events["end_to_end_s"] else "not finished",
            f"{events['end_to_end_per_s']:.0f}",
        ]
    )
    base = events.get("baseline")
    if base:
        rows.append(
            [
                str(base["n"]),
                "baseline: plain-nameko consumer (a row per event)",
                f"{base['seconds']:.2f}",
                f"{base['rate']:.0f}",
            ]
        )
        rows.append(["", "end to end / baseline", "", f"{events['ratio']:.2f}×"])
    return (
        _table(header, rows, markdown)
        + ("\n\n" if markdown else "\n")
        + "largest resident memory during this phase: "
        + largest_rss(results.rss_peak_kib.get("events"))
        + " MiB"
    )


def memory_table(results: Results, markdown: bool) -> str:
    phases = _phase_labels(results)
    header = [
        "process",
        *[f"{p} (MiB)" for p in phases],
        "VmHWM (MiB)",
        f"< {TARGET_RSS_MIB:.0f} MiB",
    ]
    rows = []
    for name in PROCESSES:
        values = [(results.rss_peak_kib.get(p) or {}).get(name) for p in phases]
        hwm = results.rss_hwm_kib.get(name)
        worst = max([v or 0 for v in values] + [hwm or 0])
        rows.append(
            [
                name,
                *[_mib(v) for v in values],
                _mib(hwm),
                "PASS" if worst and worst / 1024 < TARGET_RSS_MIB else ("FAIL" if worst else "-"),
            ]
        )
    # the database is not a Bersinar process: shown, not held to the target
    database = [results.postgres_kib.get(p) or {} for p in phases]
    if any(database):
        processes = max(d.get("processes", 0) for d in database)
        for key, what in (
            ("pss_kib", "PSS, shared memory counted once"),
            ("rss_kib", "sum of VmRSS"),
        ):
            rows.append(
                [
                    f"embedded PostgreSQL, up to {processes} processes ({what})",
                    *[_mib(d.get(key)) for d in database],
                    "-",
                    "not a target",
                ]
            )
    return _table(header, rows, markdown)


def cpu_table(results: Results, markdown: bool) -> str:
    phases = [p for p in results.cpu if results.cpu[p]]
    names = list(PROCESSES) + [
        "postgres (backends)",
        "postgres (server processes)",
        "rabbitmq",
        "load generator",
        "bench harness",
        "interrupts (no process)",
        "steal (hypervisor)",
        "other (rest of machine)",
        "machine",
    ]
    header = ["process", *[f"{p}" for p in phases]]
    rows = []
    for name in names:
        values = [(results.cpu[p] or {}).get(name) for p in phases]
        if all(v is None for v in values):
            continue
        rows.append([name, *[f"{v:.0f}" if v is not None else "-" for v in values]])
    return _table(header, rows, markdown)


def targets_table(results: Results, markdown: bool) -> str:
    return _table(
        ["target", "wanted", "measured", "verdict"],
        [list(row) for row in targets(results)],
        markdown,
    )


def calibration_line(results: Results) -> str:
    if not results.calibration:
        return "load generator ceiling: not measured"
    parts = [
        f"{c} conn: {f['ok_per_s']:.0f} req/s at p50 {f['p50_ms']:.2f} ms, generator CPU "
        f"{f['generator_cpu_pct']:.0f}% of a core"
        for c, f in results.calibration.items()
    ]
    return "load generator ceiling (same generator against a canned local server): " + "; ".join(
        parts
    )


def header_line(results: Results) -> str:
    m = results.machine
    return (
        f"{results.started:%Y-%m-%d %H:%M} UTC; nproc {m.get('nproc')}; {m.get('cpu_model')}; "
        f"free -g: {m.get('free_g')}; load average before "
        f"{' '.join(m.get('loadavg_before', []))}, after "
        f"{' '.join(m.get('loadavg_after', []))}; "
        f"Python {m.get('python')}; whole run {results.wall_s:.0f} s"
    )


def text(results: Results, settings: Settings) -> str:
    parts = [
        "=" * 100,
        "BERSINAR BENCHMARK  " + header_line(results),
        "=" * 100,
        f"POST /api/v1/referrals, closed loop, keep-alive, {settings.warmup:.0f} s warm-up + "
        f"{settings.duration:.0f} s counted per row",
        http_table(results, False),
        "",
        calibration_line(results),
        "",
        f"Operations, closed loop, keep-alive, {settings.op_warmup:g} s warm-up + "
        f"{settings.op_duration:g} s counted per row",
        ops_table(results, False),
        "",
        f"Data scale: list referrals ({settings.scale_requests} requests per row and connection "
        "count) and GET /api/v1/indicators for the last month ended",
        scale_table(results, False),
        explain_table(results, False),
        "",
        "FHIR Bulk Data export at each size (national key, _type=Task: kick-off, poll, "
        "every file streamed, DELETE)",
        export_table(results, False),
        "",
        f"Outbox -> relay -> consumers: {settings.events} referral_requested rows committed in "
        f"one transaction to rujukan's outbox",
        events_table(results, False),
        "",
        "Resident memory (peak VmRSS sampled every 0.25 s during each phase; VmHWM at the end)",
        memory_table(results, False),
        "",
        "CPU during each phase, % of ONE core (the machine total is out of nproc x 100%)",
        cpu_table(results, False),
        "",
        "Targets",
        targets_table(results, False),
    ]
    if results.notes:
        parts += ["", "Notes:"] + [f"- {n}" for n in results.notes]
    parts += ["", "Cleanup: " + "; ".join(results.cleanup)]
    return "\n".join(parts)


METHOD = """\
`python -m bench` (or `make bench`) builds a system of its own and removes it afterwards:
a fresh RabbitMQ vhost `bersinar-bench-<run>` and the system as `make run` starts it
(`harness/system.py`: `bersinar run` with `BERSINAR_VAR=bench/results/run-<run>`):
supervisord, the embedded PostgreSQL (its data in that folder, removed at the end; the
default set-up, no `<SERVICE>_DATABASE_URL`), `bersinar setup` (databases, migrations,
queues, partners seeded), then the nine processes (`bersinar serve <component>` ×5,
`bersinar relay <service>` ×4). Everything is on 127.0.0.1. A process that dies during
the run (supervisord gives it a new PID) ends the run.

- **Seeding.** After `bersinar setup` the harness waits until rujukan's partner read model
  holds all five partners (a referral POST stops answering 422 "Mitra tidak dikenal").
  The seeded capacities (10–40 places per offer) would turn the load into 409
  CAPACITY_FULL after ~280 referrals, so every offer in rujukan's partner read model (the
  run's own database) is raised to 1,000,000; one probe referral per (partner, service
  type) must then answer 201.
- **HTTP phases.** `POST /api/v1/referrals` with the admin key, at 1, 10 and 50
  connections, closed loop (each connection sends the next request when the answer is
  read), HTTP/1.1 keep-alive, 3 s warm-up then 15 s counted. Bodies come from
  `harness/data.py` `referral_body`, spread over every (partner, service type) of
  the seed, and every NIK is distinct (serial and birth date vary), so no request is a
  returning client. Only requests *completed* inside the counted window count; req/s
  counts 201 answers only. Between phases the harness waits until both consumers have
  handled every `referral_requested` so far, so a backlog does not load the next phase.
- **Load generators.** wrk (the Debian package; `make bench` and `make bench-short`
  install it through `bench/install-tools.sh`, `bench/wrk.py` drives it: two threads,
  closed loop, keep-alive, the paths of a phase taken in turn by a Lua script) for every
  phase whose requests need no plan of distinct bodies: reading a partner, reading a
  referral, listing referrals, and the baseline's phases. `harness/loadgen.py` (Python,
  one thread and one `http.client` connection per simulated connection) where a phase
  needs distinct requests: creating referrals (a distinct NIK each), accepting (a distinct
  referral each) and submitting reports (a distinct month each). The Python generator's
  ceiling is measured first against a canned local server, and the generators' CPU during
  each phase is printed: a generator is not the bottleneck when its ceiling is far above
  the measured rate and its CPU is a small share of the machine.
- **Baseline.** In the same run, on the same RabbitMQ (a vhost of its own,
  `bersinar-bench-<run>-baseline`) and the same embedded PostgreSQL (a database of its
  own, `bench_baseline`), three plain-nameko processes (`bench/baseline/app.py`, nothing
  of Bersinar's layers, imported by no service): an `@http` gateway calling one RPC that
  reads one row (`GET /items/<n>`, the five seeded rows in turn), or one that inserts one
  row and dispatches one event to one consumer that inserts one row (`POST /items`).
  Right after each of Bersinar's phases, at the same connection count and for as long,
  wrk measures the baseline's read (after a read phase) or create (after a create,
  accept or submit phase); each phase prints Bersinar's figure, the baseline's, their
  ratios (req/s and p99, Bersinar / baseline), the baseline's CPU per request (its three
  processes, the PostgreSQL backends and RabbitMQ) and the resident memory of both
  sides' processes. The targets compare the two at 10 connections: reading a partner
  ≥ 2× the baseline's read with p99 ≤ 2× its p99; creating a referral ≥ 1.0× the
  baseline's create with p99 ≤ 1.5× its p99. On a shared machine a ratio measured
  seconds apart judges the code better than an absolute figure.
- **Operation phases.** Then, each at 1, 10 and 50 connections (2 s warm-up + 8 s
  counted), closed loop like the create phase, from a plan of requests built from the
  run's own data: `GET /api/v1/partners/{id}` (the five partners in turn, admin key);
  `GET /api/v1/referrals/{id}` (the newest 5,000 referrals in turn; each read writes an
  audit row, as in production); `GET /api/v1/referrals` filtered and paginated (per
  partner with and without `status=requested`, per status, unfiltered; the first page of
  50 and the two cursor pages after it, walked by the harness beforehand);
  `POST /api/v1/referrals/{id}/accept` with the receiving partner's own operator key
  (keys made through `POST /api/v1/api-keys`), each request on a distinct referral still
  `requested` (those the create phases made; a phase stops early, marked "pool used up",
  when none is left); `PUT /api/v1/reports/{partner_id}/{period}` with a consistent report
  (all counts nought), each request a distinct (partner, month): laporan owes a report
  only for months on or after `REPORT_START_PERIOD` in which a PKS is valid, so the run
  sets `REPORT_START_PERIOD=2000-01`, `REPORT_LOCK_AFTER_DAYS=100000`,
  `REPORT_CHECK_INTERVAL=86400` (no overdue notices for 26 years mid-run) and gives
  laporan's read model one more agreement per partner from 2000 (its own database): about
  1,600 distinct months before a report would be resubmitted. After accept and submit
  the harness waits until their events reached every consumer.
- **Data-scale phase.** Last, rujukan and laporan grow to 10k, then 100k, then 1M
  referrals. `bench/scale.py` generates them inside PostgreSQL (`INSERT … SELECT` over
  `generate_series`, chunks of 100k, rujukan and laporan in parallel, then `VACUUM
  ANALYZE`): every referral's partner, service, sex, source and age follow from its number;
  its request time is spread evenly from 2024-01-01 to now, and its life (cancelled before
  an answer 5 %, rejected 12 %, else accepted, admitted, then completed, dropped out or
  transferred after a stay of 14–120 days) happens only as far as the clock has come, so
  recent referrals are still requested, accepted or in care and older ones ended, like a
  real three-year registry. rujukan gets clients (real Fernet ciphertexts and key id of
  clients the API made in this run, round-robin; a distinct 64-hex NIK digest each),
  referrals and their history (the request and the latest transition); laporan gets the
  referral record its event handlers would have written, with the same ids. At each size:
  a warm-up pass over the list URLs, then a fixed number of list requests (600) at 1 and
  at 10 connections over the first page and two cursor pages of each filter (per partner
  with one status and with none, per status, unfiltered), `EXPLAIN ANALYZE` of the list
  query, and 5 sequential `GET /api/v1/indicators?period=<last month ended>` (first call
  shown apart; the verdict uses the median of the others).
- **Bulk Data export.** At each size, after the list and the indicators, a FHIR Bulk Data
  export of every referral as a national system makes it (`bench/export.py`): a key of
  role `national` (made once through `POST /api/v1/api-keys` with the admin key), the
  kick-off `GET /fhir/R4/$export?_type=Task` with `Prefer: respond-async` (a referral is
  a Task; ServiceRequest is no export type), its `Content-Location` polled every 0.5 s
  until the manifest, every NDJSON file of the manifest downloaded as a stream (64 KiB
  blocks whose newlines and bytes are counted, nothing kept), then `DELETE` on the status
  URL. Measured: seconds from kick-off to manifest and of the downloads, the manifest's
  count and the lines downloaded (both must equal `count(*)` of rujukan's referrals at
  that moment; a difference is a note of the run, as is an export that fails), the
  bytes, and, sampled in a thread of the harness every 0.25 s, the peak resident memory
  of every process, the PostgreSQL tree (as in every phase) and, every second, of each
  backend of the components' databases alone; CPU per process over the export. The
  targets: every process (each PostgreSQL backend too) under 200 MiB during the export
  at the largest size, and its seconds per 1,000 referrals (to manifest plus download) at
  the largest size within 1.5× of the size below it.
- **Events phase.** N `referral_requested` rows (payloads built by
  `services/rujukan/handlers.py` `referral_event_data`, through
  `harness/produced.py`) are written to rujukan's outbox
  through `bersinar.db.UnitOfWorkFactory` + `uow.emit` in one transaction; the clock starts
  when it commits. The relay figure is the last `published_at`; a consumer's is the last
  `handled_at` of its inbox rows for those events; end to end is when both consumers have
  all N. Rates are N / those seconds. Then N events go straight to the baseline's
  exchange at once (persistent, one channel) and the baseline's consumer (nameko's own
  prefetch, one transaction per event) is timed until it has inserted all N rows: the
  table shows its rate and end to end / that rate.
- **Memory and CPU.** Through psutil (`harness/procstat.py`): the resident memory of
  every process, sampled every 0.25 s during each phase (peak shown), plus its VmHWM at
  the end. The embedded PostgreSQL (the postmaster and every process it started) apart,
  as two sums: of PSS (shared memory divided among the processes sharing it, so counted
  once) and of resident memory (shared memory counted in each). CPU time of each process
  over each counted window, in % of one core, for every process, the embedded
  PostgreSQL's backends of the components' databases and its own server processes, the
  RabbitMQ server and the generator; "other" is the rest of the machine (the machine is
  shared). Each create phase also prints every process's CPU per referral (its CPU
  over the window ÷ the referrals created in it) and its share of the whole
  (`cpu_ms_per_request_by_process` in `latest.json`).
"""


def markdown(results: Results, settings: Settings) -> str:
    from bench.notes import NOTES

    m = results.machine
    parts = [
        "# Benchmarks",
        "",
        "Throughput, latency and memory of Bersinar on one machine, measured by `bench/`.",
        "Targets (from the issue): at least 300 referrals/s at 10 connections with p99 under "
        "80 ms; at least 700 req/s reading a partner at 10 connections with p99 ≤ 80 ms; at "
        "least 1,500 events/s end to end through outbox → relay → consumers; list p99 at 1M "
        "referrals within 1.5× of 10k; the indicators of a period at 1M referrals in ≤ 1 s; "
        "a FHIR Bulk Data export of 1M referrals with every process under 200 MB resident "
        "and its time linear (seconds per 1,000 referrals at 1M within 1.5× of 100k); "
        "every process under 200 MB resident. Since issue 21 the run also measures a "
        "plain-nameko baseline doing the same hops beside it (Method: Baseline) and reports "
        "each phase as a ratio to it: reading a partner ≥ 2× the baseline's read (p99 ≤ 2×), "
        "creating a referral ≥ 1.0× its create (p99 ≤ 1.5×).",
        "",
        "## How to run",
        "",
        "```",
        "make bench            # = .venv/bin/python -m bench (the full suite)",
        "make bench-short      # = .venv/bin/python -m bench --short --no-docs (what CI runs)",
        ".venv/bin/python -m bench --help    # --duration, --warmup, --connections, --events,",
        "    # --operations, --op-duration, --op-warmup, --sizes, --scale-requests, --budget,",
        "    # --no-docs (do not rewrite this file), --keep-logs",
        "```",
        "",
        "Needs RabbitMQ (guest/guest, `rabbitmqctl` on the PATH) on 127.0.0.1, as `make test` "
        "does, wrk (the make targets install the Debian package as root), and about 2 GB "
        "free under `bench/results/` for the 1M referrals. "
        "The full suite takes 20–30 minutes (loading 1M referrals: 3–4 of them, exporting "
        "them: 4–7), stops by itself, prints the tables below, rewrites this file and "
        "leaves the raw figures in "
        "`bench/results/latest.json` (git-ignored). It never asserts: the verdicts are for "
        "reading. `--short` runs every phase with small counts (1 and 10 connections, 1 s + "
        "3 s per create row, 0.5 s + 2.5 s per operation, 500 events, 2k and 5k referrals) in "
        "about two minutes; CI runs it after `make test` (`.ci/run`), so the harness cannot "
        "rot: it exits non-zero only when the harness itself breaks, never on a missed "
        "target. Neither run is part of `make test` or makes timed assertions.",
        "",
        "## Method",
        "",
        METHOD,
        "## Figures of the last run",
        "",
        f"- date: {results.started:%Y-%m-%d %H:%M} UTC; whole run {results.wall_s:.0f} s",
        f"- machine: `nproc` = {m.get('nproc')} ({m.get('cpu_model')}); `free -g`: "
        f"`{m.get('free_g')}`; load average before the run "
        f"{' '.join(m.get('loadavg_before', []))}, after {' '.join(m.get('loadavg_after', []))}"
        f"; kernel {m.get('kernel')}; "
        f"Python {m.get('python')}",
        f"- {calibration_line(results)}",
        "",
        "### Targets",
        "",
        targets_table(results, True),
        "",
        f"### POST /api/v1/referrals ({settings.warmup:.0f} s warm-up + {settings.duration:.0f} s "
        "counted per row)",
        "",
        http_table(results, True),
        "",
        f"### Operations ({settings.op_warmup:g} s warm-up + {settings.op_duration:g} s counted "
        "per row)",
        "",
        ops_table(results, True),
        "",
        "### Data scale: list and indicators at 10k, 100k and 1M referrals",
        "",
        f"Each list row: {settings.scale_requests} requests per connection count over the "
        "first page and two cursor pages of every filter; the indicators: "
        f"{settings.indicator_calls} sequential calls for the last month ended.",
        "",
        scale_table(results, True),
        "",
        "What PostgreSQL does for the list query at each size (`EXPLAIN ANALYZE`, first page):",
        "",
        explain_table(results, True),
        "",
        "### FHIR Bulk Data export at each size",
        "",
        "A national key's `GET /fhir/R4/$export?_type=Task` (`Prefer: respond-async`), the "
        "status polled every 0.5 s until the manifest, every file downloaded as a stream "
        "(lines counted), then `DELETE`; memory sampled every 0.25 s meanwhile.",
        "",
        export_table(results, True),
        "",
        f"### Outbox → relay → consumers ({settings.events:,} rows, one commit)",
        "",
        events_table(results, True),
        "",
        "### Resident memory, MiB (peak VmRSS per phase; VmHWM at the end)",
        "",
        memory_table(results, True),
        "",
        "### CPU per counted window, % of one core "
        f"(the machine has {m.get('nproc')} cores = {100 * int(m.get('nproc') or 1)}%)",
        "",
        cpu_table(results, True),
        "",
    ]
    if results.notes:
        parts += ["Notes of this run:", ""] + [f"- {n}" for n in results.notes] + [""]
    parts += ["## Where the time goes", "", NOTES]
    return "\n".join(parts)
