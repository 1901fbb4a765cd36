"""The dashboard's figures: each chart is drawn from the same rows its table and CSV
show, as SVG with no script and no outside address."""

from __future__ import annotations

import csv
import io
import re

from gateway.console import charts

NAMES = {"yayasan-pesona": "Yayasan Pesona", "yayasan-kipas": "Yayasan Kipas"}
ROWS = [
    {
        "partner_id": "yayasan-pesona",
        "median_response_hours": 5.5,
        "completion_rate": 0.5,
        "dropout_rate": 0.25,
        "figures": {"answered": 2, "completed": 2, "dropped_out": 1, "exits": 4},
    },
    {
        "partner_id": "yayasan-kipas",
        "median_response_hours": None,
        "completion_rate": None,
        "dropout_rate": None,
        "figures": {"answered": 0, "completed": 0, "dropped_out": 0, "exits": 0},
    },
]


def every_dataset():
    figures = {"requested": 7, "accepted": 5, "admitted": 4, "completed": 2, "dropped_out": 1}
    occupancy = [
        {
            "partner_id": "yayasan-pesona",
            "service_type": "outpatient",
            "occupied": 3,
            "capacity": 12,
        },
        {"partner_id": "yayasan-kipas", "service_type": "inpatient", "occupied": 0, "capacity": 0},
    ]
    reports = {
        "2027-02": [{"partner_id": "yayasan-pesona", "status": "missing"}],
        "2027-03": [
            {
                "partner_id": "yayasan-pesona",
                "status": "approved",
                "timeliness": "submitted_on_time",
            },
            {"partner_id": "yayasan-kipas", "status": "submitted_late"},
        ],
    }
    return [
        charts.funnel(figures, "2027-03"),
        charts.response_times(ROWS, NAMES, "2027-03"),
        charts.occupancy(occupancy, NAMES),
        charts.compliance(reports, NAMES),
        charts.outcomes(ROWS, NAMES, "2027-03"),
    ]


def test_every_chart_is_svg_without_script_or_outside_address():
    for dataset in every_dataset():
        if dataset.chart is None:
            continue
        svg = str(dataset.chart)
        assert svg.startswith("<svg"), dataset.key
        assert "<script" not in svg and "http://" not in svg.split("-->")[-1]
        assert "https://" not in svg


def test_a_csv_has_the_rows_of_the_table():
    funnel, _, occupancy, compliance, outcomes = every_dataset()
    rows = list(csv.reader(io.StringIO(charts.to_csv(funnel))))
    assert rows[0] == ["Tahap", "Jumlah"]
    assert ["Diminta", "7"] in rows and ["Masuk layanan", "4"] in rows
    occupied = list(csv.reader(io.StringIO(charts.to_csv(occupancy))))
    assert ["Yayasan Kipas", "Rawat inap", "0", "0", ""] in occupied  # no capacity: no rate
    assert ["Yayasan Pesona", "Rawat jalan", "3", "12", "0.25"] in occupied
    by_partner = {row[0]: row for row in csv.reader(io.StringIO(charts.to_csv(outcomes)))}
    assert by_partner["Yayasan Kipas"][4] == ""  # nobody left care: no rate


def test_the_compliance_grid_is_partner_by_month_in_words():
    grid = every_dataset()[3]
    assert grid.columns == ["Mitra", "Februari 2027", "Maret 2027"]
    assert grid.rows == [
        ["Yayasan Kipas", "", "Dikirim terlambat"],
        ["Yayasan Pesona", "Belum dikirim (terlambat)", "Disetujui (tepat waktu)"],
    ]
    assert [charts.compliance_class(w) for w in grid.rows[1][1:]] == ["missing", "ok"]


def test_short_response_times_are_in_minutes_with_their_real_values():
    quick = [
        {**ROWS[0], "median_response_hours": 0.02},
        {**ROWS[1], "median_response_hours": 0.5},
    ]
    times = charts.response_times(quick, NAMES, "2027-03")
    assert times.title.startswith("Median waktu jawab rujukan (menit)")
    assert times.columns[1] == "Median menit"
    assert times.rows == [["Yayasan Kipas", 30, 0], ["Yayasan Pesona", 1, 2]]
    assert "0,0" not in str(times.chart) and "30 menit" in str(times.chart)
    slow = charts.response_times(ROWS, NAMES, "2027-03")
    assert slow.columns[1] == "Median jam" and "5,5 jam" in str(slow.chart)
    assert "0,0" not in str(slow.chart)  # whole ticks read "2 jam"


def test_bars_run_top_down_in_the_order_of_their_table():
    """pygal draws the first label at the bottom: the charts hand it their rows reversed,
    so the top bar is the table's first row."""
    for dataset in every_dataset():
        if dataset.chart is None or dataset.key == "okupansi":
            continue
        svg = str(dataset.chart)
        axis = svg[svg.index('class="axis y') :]  # a horizontal chart's labels
        axis = axis[: axis.index('class="axis x')]
        drawn = re.findall(r"<text[^>]*y=\"([0-9.]+)\"[^>]*>([^<]+)</text>", axis)
        top_first = [name for _, name in sorted(drawn, key=lambda t: float(t[0]))]
        assert top_first == [str(row[0]) for row in dataset.rows], dataset.key


def test_value_axes_have_few_ticks_and_legends_are_whole():
    assert charts.ticks([57]) == [0, 20, 40, 60]
    assert charts.ticks([57], most=3) == [0, 50, 100]
    assert charts.ticks([None, 0]) == [0, 1]
    assert charts.ticks([3]) == [0, 1, 2, 3]
    occupancy = every_dataset()[2]
    svg = str(occupancy.chart)
    axis = svg[svg.index('class="axis x') :]
    assert len(re.findall(r"<text[^>]*>[^<]+%</text>", axis[: axis.index("</g></g>")])) <= 3
    assert "Rawat jalan" in svg and "…" not in svg


def test_a_chart_with_no_value_is_not_drawn():
    empty = [{**ROWS[1]}]
    assert charts.outcomes(empty, NAMES, "2027-03").chart is None
    assert charts.response_times(empty, NAMES, "2027-03").chart is None
    assert charts.outcomes(ROWS, NAMES, "2027-03").chart is not None
