"""Every list and export answers as XLSX too (``format=xlsx`` or ``Accept``), read back
here as a spreadsheet program reads it (openpyxl): Indonesian column titles, typed cells,
a frozen header row, a sheet describing the columns, the same rows as the JSON answer,
and the same refusal rules (a partner's sheet holds its own referrals only)."""

from __future__ import annotations

import io
from datetime import datetime

import openpyxl
import pytest
import requests

from bersinar import codes
from harness.data import CLIENT_NAME, ISSUED_NIKS

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def read(response) -> openpyxl.Workbook:
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == XLSX
    assert response.headers["Content-Disposition"].endswith('.xlsx"')
    return openpyxl.load_workbook(io.BytesIO(response.content))


def table(book, name: str) -> list[dict]:
    sheet = book[name]
    assert sheet.freeze_panes == "A2"  # the header row stays in view
    header = [cell.value for cell in sheet[1]]
    return [dict(zip(header, row, strict=True)) for row in sheet.iter_rows(2, values_only=True)]


def described(book) -> dict[str, str]:
    rows = book["Keterangan"].iter_rows(2, values_only=True)
    return {title: meaning for title, meaning in rows if title and meaning}


def every_referral(system, key=None, **filters) -> list[dict]:
    items, cursor = [], None
    while True:
        params = {**filters, "limit": 200, **({"cursor": cursor} if cursor else {})}
        page = system.get("/api/v1/referrals", key=key, params=params).json()
        items += page["items"]
        if not (cursor := page["next_cursor"]):
            return items


def test_the_referral_list_as_a_workbook(edge, world):
    admitted = world.referral("admitted")
    rejected = world.referral()
    world.ok(
        edge.post(
            f"/api/v1/referrals/{rejected}/reject",
            {"reason": "capacity_full"},
            key=world.keys["partner"],
        )
    )
    book = read(edge.get("/api/v1/referrals", params={"format": "xlsx"}))
    rows = {row["Id rujukan"]: row for row in table(book, "Rujukan")}
    assert set(rows) == {r["id"] for r in every_referral(edge)}  # every page, not one
    row = rows[admitted]
    assert row["Status"] == "Dalam layanan"
    assert row["Jenis layanan"] == codes.SERVICE_TYPES["outpatient"]
    assert isinstance(row["Masuk layanan (WIB)"], datetime)
    assert isinstance(row["Dibuat (WIB)"], datetime)
    assert row["Terlambat dijawab"] is False
    assert isinstance(row["Rujukan sebelumnya"], int)
    assert row["Berakhir (WIB)"] is None
    assert rows[rejected]["Alasan penolakan"] == "Kapasitas penuh"
    assert "Pseudonim klien" in described(book)
    # no identity anywhere in the file
    cells = {str(v) for r in rows.values() for v in r.values()}
    assert CLIENT_NAME not in cells and not cells & set(ISSUED_NIKS)


def test_a_partner_s_workbook_holds_its_own_referrals_and_accept_asks_for_it(edge, world):
    own = world.referral()
    elsewhere = world.referral(partner=world.other)
    answer = requests.get(
        edge.base_url + "/api/v1/referrals",
        headers={**edge.headers(world.keys["partner"]), "Accept": XLSX},
        timeout=30,
    )
    ids = {row["Id rujukan"] for row in table(read(answer), "Rujukan")}
    assert own in ids and elsewhere not in ids
    assert {row["Mitra"] for row in table(read(answer), "Rujukan")} == {world.own}
    refused = edge.get(
        "/api/v1/referrals",
        key=world.keys["partner"],
        params={"format": "xlsx", "partner_id": world.other},
    )
    assert (refused.status_code, refused.json()["code"]) == (404, "NOT_FOUND")


def test_reports_indicators_and_the_export_as_workbooks(edge, world):
    period = world.report("submitted", True)
    reports = table(
        read(edge.get("/api/v1/reports", params={"period": period, "format": "xlsx"})),
        "Laporan",
    )
    listed = edge.get("/api/v1/reports", params={"period": period, "limit": 200}).json()
    assert len(reports) == len(listed["items"])
    mine = next(r for r in reports if r["Mitra"] == world.own)
    assert mine["Periode"] == period and mine["Versi"] == 1
    assert isinstance(mine["Jatuh tempo"], datetime) and isinstance(mine["Terkunci"], bool)
    assert mine["Status"] in ("Dikirim tepat waktu", "Dikirim terlambat")

    book = read(edge.get("/api/v1/indicators", params={"period": "2026-11", "format": "xlsx"}))
    indicators = table(book, "Indikator")
    province = next(r for r in indicators if r["Mitra"] == "PROVINSI")
    values = edge.get("/api/v1/indicators", params={"period": "2026-11"}).json()
    assert province["Tingkat pelaporan"] == values["province"]["reporting_rate"] is not None
    assert isinstance(province["Tingkat pelaporan"], int | float)  # a number, not text
    # the definitions are laporan's own
    assert described(book)["Tingkat pelaporan"] == values["definitions"]["reporting_rate"]

    export = edge.get("/api/v1/exports/monthly", params={"period": "2026-11"}).json()
    rows = table(
        read(edge.get("/api/v1/exports/monthly", params={"period": "2026-11", "format": "xlsx"})),
        "Rekap",
    )
    assert len(rows) == len(export["rows"])
    for row, source in zip(rows, export["rows"], strict=True):
        assert row["Disensor"] is source["suppressed"]
        assert row["Nilai"] == source["value"]  # a suppressed count stays empty


@pytest.mark.parametrize(
    "path, params",
    [
        ("/api/v1/referrals", {}),
        ("/api/v1/reports", {"period": "2026-11"}),
        ("/api/v1/indicators", {"period": "2026-11"}),
        ("/api/v1/exports/monthly", {"period": "2026-11"}),
    ],
)
def test_an_unknown_format_is_refused_by_name(edge, path, params):
    answer = edge.get(path, params={**params, "format": "ods"})
    assert (answer.status_code, answer.json()["code"]) == (422, "VALIDATION_ERROR")
    assert list(answer.json()["errors"]) == ["format"]
