"""The monitoring dashboard's figures: each one a dataset (the numbers, shown as a table
and downloadable as CSV) and a chart drawn from it on the server as SVG with pygal, so
no script and no outside address is needed to read it."""

from __future__ import annotations

import csv
import io
import re
import sys
from dataclasses import dataclass, field
from typing import Any

import pygal
from markupsafe import Markup
from pygal.style import Style

from gateway.console import labels

# A chart is drawn WIDTH wide and never shown wider (console.css); on a phone it shrinks to
# the page, about 370 px of a 390 px screen, and its smallest text must stay >= 11 px there:
# FONT * 370 / WIDTH >= 11.
WIDTH = 480
FONT = 15
LEGEND_LINES = 3
BAR = 34  # px of height per bar, so value labels of neighbouring bars never overlap
STYLE = Style(
    background="white",
    plot_background="white",
    foreground="#1b1b1b",
    foreground_strong="#1b1b1b",
    foreground_subtle="#555",
    colors=("#0b5394", "#e69138", "#38761d", "#990000", "#674ea7", "#45818e"),
    font_family="DejaVu Sans, Arial, sans-serif",
    label_font_size=FONT,
    major_label_font_size=FONT,
    legend_font_size=FONT,
    value_font_size=FONT,
    title_font_size=FONT + 2,
)
_SCRIPT = re.compile(r"<script.*?</script>", re.DOTALL)

# pygal puts a finder for its map plugins (unused here) on sys.meta_path; it has no
# find_spec, so every failed import anywhere in the process then warns (ImportWarning)
sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "PluginImportFixer"]


@dataclass
class Dataset:
    key: str
    title: str
    columns: list[str]
    rows: list[list[Any]]
    note: str = ""
    chart: Markup | None = field(default=None, repr=False)


def to_csv(dataset: Dataset) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(dataset.columns)
    for row in dataset.rows:
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue()


def svg(chart) -> Markup | None:
    """pygal's SVG without its script (tooltips only; the numbers are in the table);
    None when no series has a value (pygal would draw a default axis of its own and a
    banner in 64 px type: the page says there is nothing to draw instead)."""
    if not any(v is not None for serie in chart.raw_series for v in serie[0]):
        return None
    return Markup(_SCRIPT.sub("", chart.render(is_unicode=True)))


def _chart(kind, title: str, percent: bool = False, bars: int = 5, **options):
    """A horizontal bar chart ``bars`` bars tall (pygal draws the first label at the
    bottom: callers give their rows through ``top_down`` to keep the tables' order)."""
    options.setdefault("show_legend", True)
    # one legend entry a line, never cut short
    legend = 30 * LEGEND_LINES if options["show_legend"] else 0
    return kind(
        title=title,
        style=STYLE,
        js=[],
        disable_xml_declaration=True,
        width=WIDTH,
        height=90 + legend + BAR * max(bars, 2),
        legend_at_bottom=True,
        print_values=True,
        print_values_position="top",
        value_formatter=(labels.percent if percent else lambda v: labels.number(v, 0)),
        truncate_label=-1,
        truncate_legend=-1,
        legend_at_bottom_columns=1,
        no_data_text="Belum ada data",
        **options,
    )


# the value axis of a share: three ticks, so their labels never run into each other
# beside long partner names on a phone
SHARE_TICKS = [0, 0.5, 1]


def ticks(values: list[float | None], most: int = 6) -> list[int]:
    """At most ``most`` round ticks (steps of 1, 2 or 5 times a power of ten) from 0 past
    the largest value: a phone shows the axis about 200 px long, and more labels would
    run into each other."""
    top = max([v for v in values if v is not None] + [1])
    wanted = top / (most - 1)
    power = 1
    while power * 10 <= wanted:
        power *= 10
    step = next(n * power for n in (1, 2, 5, 10) if n * power >= wanted)
    return list(range(0, int(-(-top // step) * step) + 1, int(step)))


def top_down(values: list[Any]) -> list[Any]:
    """Rows in the order of the table, for a horizontal bar chart (drawn bottom-up)."""
    return list(reversed(values))


def duration_unit(hours: list[float | None]) -> tuple[str, float]:
    """Minutes when every value is under two hours (0.02 h reads as "1 menit", not
    "0,0"), else hours: the unit's name and the factor from hours."""
    known = [h for h in hours if h is not None]
    if known and max(known) < 2:
        return "menit", 60.0
    return "jam", 1.0


def funnel(figures: dict[str, int], period: str) -> Dataset:
    stages = [
        ("Diminta", figures.get("requested", 0)),
        ("Diterima", figures.get("accepted", 0)),
        ("Masuk layanan", figures.get("admitted", 0)),
        ("Selesai", figures.get("completed", 0)),
        ("Putus layanan", figures.get("dropped_out", 0)),
    ]
    data = Dataset(
        "corong",
        f"Corong rujukan, {labels.period_name(period)}",
        ["Tahap", "Jumlah"],
        [[name, count] for name, count in stages],
        "Rujukan yang diminta, diterima, masuk, selesai dan putus pada bulan itu (provinsi).",
    )
    chart = _chart(
        pygal.HorizontalBar,
        data.title,
        bars=len(stages),
        show_legend=False,
        y_labels=ticks([count for _, count in stages]),
    )
    chart.x_labels = top_down([name for name, _ in stages])
    chart.add("Jumlah", top_down([count for _, count in stages]))
    data.chart = svg(chart)
    return data


def response_times(rows: list[dict[str, Any]], names: dict[str, str], period: str) -> Dataset:
    rows = sorted(rows, key=lambda r: names.get(r["partner_id"], r["partner_id"]))
    unit, factor = duration_unit([r.get("median_response_hours") for r in rows])
    digits = 0 if unit == "menit" else 1

    def scaled(hours: float | None) -> float | int | None:
        if hours is None:
            return None
        return round(hours * factor) if unit == "menit" else round(hours * factor, digits)

    data = Dataset(
        "waktu-respons",
        f"Median waktu jawab rujukan ({unit}), {labels.period_name(period)}",
        ["Mitra", f"Median {unit}", "Rujukan dijawab"],
        [
            [
                names.get(r["partner_id"], r["partner_id"]),
                scaled(r.get("median_response_hours")),
                r["figures"].get("answered", 0),
            ]
            for r in rows
        ],
        "Dari permintaan sampai diterima atau ditolak; kosong bila tidak ada yang dijawab.",
    )
    chart = _chart(
        pygal.HorizontalBar,
        data.title,
        bars=len(rows),
        show_legend=False,
        y_labels=ticks([row[1] for row in data.rows], most=3),  # "12 menit" is wide
    )
    chart.value_formatter = lambda v: f"{labels.number(v, 0 if v == int(v) else digits)} {unit}"
    chart.x_labels = top_down([row[0] for row in data.rows])
    chart.add(f"Median {unit}", top_down([row[1] for row in data.rows]))
    data.chart = svg(chart)
    return data


def occupancy(items: list[dict[str, Any]], names: dict[str, str]) -> Dataset:
    rows = [
        [
            names.get(i["partner_id"], i["partner_id"]),
            labels.label(labels.SERVICE_TYPE, i["service_type"]),
            i["occupied"],
            i["capacity"],
            round(i["occupied"] / i["capacity"], 4) if i["capacity"] else None,
        ]
        for i in sorted(items, key=lambda i: (names.get(i["partner_id"], ""), i["service_type"]))
    ]
    data = Dataset(
        "okupansi",
        "Keterisian layanan per mitra (saat ini)",
        ["Mitra", "Layanan", "Terisi", "Kapasitas", "Keterisian"],
        rows,
        "Klien diterima atau dalam layanan dibagi kapasitas layanan itu.",
    )
    partners = list(dict.fromkeys(row[0] for row in rows))
    services = [s for s in labels.SERVICE_TYPE.values() if any(row[1] == s for row in rows)]
    chart = _chart(
        pygal.HorizontalBar,
        data.title,
        percent=True,
        bars=len(partners) * max(len(services), 1),
        range=(0, 1),
        y_labels=SHARE_TICKS,
    )
    chart.x_labels = top_down(partners)
    for service in services:
        by_partner = {row[0]: row[4] for row in rows if row[1] == service}
        chart.add(service, top_down([by_partner.get(p) for p in partners]))
    data.chart = svg(chart)
    return data


def outcomes(rows: list[dict[str, Any]], names: dict[str, str], period: str) -> Dataset:
    rows = sorted(rows, key=lambda r: names.get(r["partner_id"], r["partner_id"]))
    data = Dataset(
        "hasil",
        f"Tingkat selesai dan putus layanan, {labels.period_name(period)}",
        ["Mitra", "Selesai", "Putus", "Keluar layanan", "Tingkat selesai", "Tingkat putus"],
        [
            [
                names.get(r["partner_id"], r["partner_id"]),
                r["figures"].get("completed", 0),
                r["figures"].get("dropped_out", 0),
                r["figures"].get("exits", 0),
                r.get("completion_rate"),
                r.get("dropout_rate"),
            ]
            for r in rows
        ],
        "Dibagi klien yang keluar layanan (selesai + putus + dipindahkan) pada bulan itu.",
    )
    chart = _chart(
        pygal.HorizontalBar,
        data.title,
        percent=True,
        bars=2 * len(rows),
        range=(0, 1),
        y_labels=SHARE_TICKS,
    )
    chart.x_labels = top_down([row[0] for row in data.rows])
    chart.add("Tingkat selesai", top_down([row[4] for row in data.rows]))
    chart.add("Tingkat putus", top_down([row[5] for row in data.rows]))
    data.chart = svg(chart)
    return data


def compliance(
    reports_by_period: dict[str, list[dict[str, Any]]], names: dict[str, str]
) -> Dataset:
    """Partner × month: on time, late, missing. The grid itself is the chart: each cell
    coloured and worded, so it reads at a glance and without colour."""
    periods = sorted(reports_by_period)
    grid: dict[str, dict[str, dict[str, Any]]] = {}
    for period, reports in reports_by_period.items():
        for report in reports:
            grid.setdefault(report["partner_id"], {})[period] = report
    rows = []
    for partner_id in sorted(grid, key=lambda p: names.get(p, p)):
        row: list[Any] = [names.get(partner_id, partner_id)]
        for period in periods:
            report = grid[partner_id].get(period)
            row.append(_compliance_word(report))
        rows.append(row)
    return Dataset(
        "kepatuhan",
        "Kepatuhan pelaporan per mitra dan bulan",
        ["Mitra", *[labels.period_name(p) for p in periods]],
        rows,
        "Tepat waktu, terlambat atau belum dikirim; kosong bila tidak ada laporan yang diharapkan.",
    )


def _compliance_word(report: dict[str, Any] | None) -> str:
    if report is None:
        return ""
    status = report.get("status")
    if status == "approved":
        on_time = report.get("timeliness") == "submitted_on_time"
        return "Disetujui (tepat waktu)" if on_time else "Disetujui (terlambat)"
    return labels.label(labels.REPORT_STATUS, status)


def compliance_class(word: str) -> str:
    if not word:
        return "none"
    if "tepat waktu" in word.lower():
        return "ok"
    if word.startswith("Belum jatuh"):
        return "open"
    if word.startswith("Belum dikirim"):
        return "missing"
    return "late"
