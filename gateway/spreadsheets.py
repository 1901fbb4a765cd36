"""Lists and exports as XLSX workbooks (XlsxWriter) for people who file them: Indonesian
column titles, typed cells (dates as dates, numbers as numbers, yes/no as booleans), codes
in words, a frozen header row, and a sheet ``Keterangan`` that describes every column.

Rows are written as they come (XlsxWriter's constant-memory mode keeps one row at a time
and puts the sheet in a temporary file), so a long list paged from its service never
sits whole in memory; the finished workbook is sent from a temporary file in chunks."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO, Any

import xlsxwriter
from werkzeug.wrappers import Response

from bersinar import codes
from bersinar.codes import LOCAL_TZ

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Excel's own limit of a sheet name
_SHEET_NAME_MAX = 31
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Column:
    """One column: where its value is in a row (``client.sex`` reaches into ``client``),
    its title, its kind (text, int, float, percent, date, datetime, bool) and what it
    means. ``labels``: the words of a code list, shown instead of the code."""

    key: str
    title: str
    kind: str
    description: str
    labels: Mapping[str, str] | None = None
    width: int = 18

    def value(self, row: Mapping[str, Any]) -> Any:
        value: Any = row
        for part in self.key.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if value is None:
            return None
        if self.labels is not None:
            return self.labels.get(value, value)
        if self.kind == "date":
            return date.fromisoformat(str(value)[:10])
        if self.kind == "datetime":
            # Excel has no time zones: the time of day in Bengkulu, as the title says
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            return moment.astimezone(LOCAL_TZ).replace(tzinfo=None)
        return value


@dataclass(frozen=True)
class Sheet:
    name: str
    title: str
    columns: tuple[Column, ...]
    # said once under the column descriptions (a rule that concerns the whole sheet)
    note: str = ""


def workbook(sheet: Sheet, rows: Iterable[Mapping[str, Any]]) -> IO[bytes]:
    """The workbook of ``rows`` in a temporary file, at its start."""
    out = tempfile.TemporaryFile()
    book = xlsxwriter.Workbook(
        out,
        {"constant_memory": True, "tmpdir": tempfile.gettempdir(), "remove_timezone": True},
    )
    book.set_properties({"title": sheet.title, "author": "Bersinar BNNP Bengkulu"})
    formats = {
        "header": book.add_format({"bold": True, "bg_color": "#DDE7F0", "text_wrap": True}),
        "date": book.add_format({"num_format": "yyyy-mm-dd"}),
        "datetime": book.add_format({"num_format": "yyyy-mm-dd hh:mm"}),
        "percent": book.add_format({"num_format": "0.0%"}),
        "float": book.add_format({"num_format": "0.00"}),
    }
    data = book.add_worksheet(sheet.name[:_SHEET_NAME_MAX])
    for index, column in enumerate(sheet.columns):
        data.set_column(index, index, column.width)
        data.write_string(0, index, column.title, formats["header"])
    data.freeze_panes(1, 0)
    written = 0
    for written, row in enumerate(rows, start=1):
        for index, column in enumerate(sheet.columns):
            _write(data, written, index, column, column.value(row), formats)
    if written:
        data.autofilter(0, 0, written, len(sheet.columns) - 1)
    _describe(book.add_worksheet("Keterangan"), sheet, formats["header"])
    book.close()
    out.seek(0)
    return out


def _write(sheet, row: int, col: int, column: Column, value: Any, formats) -> None:
    if value is None:
        sheet.write_blank(row, col, None)
    elif column.kind == "bool":
        sheet.write_boolean(row, col, bool(value))
    elif column.kind in ("date", "datetime"):
        sheet.write_datetime(row, col, value, formats[column.kind])
    elif column.kind in ("int", "float", "percent"):
        sheet.write_number(row, col, value, formats.get(column.kind))
    else:
        sheet.write_string(row, col, str(value))


def _describe(sheet, described: Sheet, header) -> None:
    sheet.set_column(0, 0, 28)
    sheet.set_column(1, 1, 90)
    sheet.write_string(0, 0, "Kolom", header)
    sheet.write_string(0, 1, "Arti", header)
    for row, column in enumerate(described.columns, start=1):
        sheet.write_string(row, 0, column.title)
        meaning = column.description
        if column.labels:
            meaning += " Kode: " + "; ".join(f"{k} = {v}" for k, v in column.labels.items()) + "."
        sheet.write_string(row, 1, meaning)
    if described.note:
        sheet.write_string(len(described.columns) + 2, 0, "Catatan", header)
        sheet.write_string(len(described.columns) + 2, 1, described.note)


def _chunks(handle: IO[bytes]) -> Iterator[bytes]:
    try:
        while chunk := handle.read(_CHUNK):
            yield chunk
    finally:
        handle.close()


def xlsx_response(sheet: Sheet, rows: Iterable[Mapping[str, Any]], filename: str) -> Response:
    handle = workbook(sheet, rows)
    return Response(
        _chunks(handle),
        mimetype=XLSX,
        headers={"Content-Disposition": f'attachment; filename="{filename}.xlsx"'},
        direct_passthrough=True,
    )


def wants_xlsx(request, params: Mapping[str, Any]) -> bool:
    """``format=xlsx``, or no format asked and an ``Accept`` that prefers XLSX."""
    if params.get("format"):
        return params["format"] == "xlsx"
    best = request.accept_mimetypes.best_match(["application/json", XLSX])
    return best == XLSX


# --- the sheets ---------------------------------------------------------------------------

_WHEN = "Waktu di Bengkulu (WIB)."

REFERRALS = Sheet(
    "Rujukan",
    "Daftar rujukan",
    (
        Column("id", "Id rujukan", "text", "Pengenal rujukan.", width=38),
        Column("status", "Status", "text", "Status rujukan.", codes.REFERRAL_STATUSES),
        Column("partner_id", "Mitra", "text", "Id mitra penerima.", width=24),
        Column("service_type", "Jenis layanan", "text", "Layanan.", codes.SERVICE_TYPES),
        Column("source", "Sumber rujukan", "text", "Asal rujukan.", codes.REFERRAL_SOURCES),
        Column("client.id", "Pseudonim klien", "text", "Bukan identitas.", width=38),
        Column("client.sex", "Jenis kelamin", "text", "Jenis kelamin klien.", codes.SEXES),
        Column("client.age_group", "Kelompok umur", "text", "Umur saat dirujuk."),
        Column("client.previous_referrals", "Rujukan sebelumnya", "int", "Episode terdahulu."),
        Column(
            "rejection_reason",
            "Alasan penolakan",
            "text",
            "Bila ditolak.",
            codes.REJECTION_REASONS,
        ),
        Column("created_at", "Dibuat (WIB)", "datetime", _WHEN),
        Column("response_due_at", "Batas jawaban (WIB)", "datetime", _WHEN),
        Column("response_overdue", "Terlambat dijawab", "bool", "Melewati batas jawaban."),
        Column("responded_at", "Dijawab (WIB)", "datetime", _WHEN),
        Column("admitted_at", "Masuk layanan (WIB)", "datetime", _WHEN),
        Column("ended_at", "Berakhir (WIB)", "datetime", _WHEN),
    ),
    note="Tanpa nama dan NIK klien: identitas hanya dibuka per rujukan dan dicatat.",
)

REPORTS = Sheet(
    "Laporan",
    "Laporan bulanan mitra",
    (
        Column("partner_id", "Mitra", "text", "Id mitra.", width=24),
        Column("period", "Periode", "text", "Bulan laporan, YYYY-MM."),
        Column("status", "Status", "text", "Status laporan.", codes.REPORT_STATUSES),
        Column("timeliness", "Ketepatan waktu", "text", "Kiriman pertama.", codes.REPORT_STATUSES),
        Column("due_on", "Jatuh tempo", "date", "Tanggal terakhir kiriman tepat waktu."),
        Column("locks_after", "Terkunci sesudah", "date", "Sesudah ini hanya petugas membuka."),
        Column("locked", "Terkunci", "bool", "Periode terkunci hari ini."),
        Column("reopened", "Dibuka kembali", "bool", "Dibuka kembali oleh petugas."),
        Column("version", "Versi", "int", "Kiriman ke berapa."),
        Column("submitted_at", "Dikirim (WIB)", "datetime", _WHEN),
        Column(
            "reconciliation_differences",
            "Selisih dengan catatan",
            "int",
            "Angka yang berbeda dari catatan rujukan.",
        ),
    ),
)

EXPORT_NOTE = (
    "Tanpa identitas. Angka 1 sampai ambang sensor dikurangi satu dikosongkan (kolom "
    "Disensor = TRUE), begitu pula sel terkecil berikutnya bila jumlahnya akan membukanya."
)


def export_sheet(threshold: int) -> Sheet:
    return Sheet(
        "Rekap",
        "Rekap bulanan untuk BNN pusat",
        (
            Column("period", "Periode", "text", "Bulan, YYYY-MM."),
            Column("partner_id", "Mitra", "text", "Id mitra.", width=24),
            Column("kabupaten_kota", "Kabupaten/kota", "text", "Wilayah mitra.", width=24),
            Column("measure", "Ukuran", "text", "Apa yang dihitung.", width=24),
            Column("category", "Kategori", "text", "Pembagian ukuran.", width=24),
            Column("value", "Nilai", "int", "Jumlah; kosong bila disensor."),
            Column("suppressed", "Disensor", "bool", f"Ambang sensor {threshold}."),
        ),
        note=EXPORT_NOTE,
    )


def indicator_sheet(definitions: Mapping[str, str]) -> Sheet:
    """One column per indicator, its definition the one laporan states."""
    kinds = {"median_response_hours": "float"}
    return Sheet(
        "Indikator",
        "Indikator monev",
        (
            Column("partner_id", "Mitra", "text", "Id mitra; PROVINSI untuk seluruh provinsi."),
            *(
                Column(
                    name,
                    codes.INDICATORS.get(name, name),
                    kinds.get(name, "percent"),
                    definition,
                )
                for name, definition in definitions.items()
            ),
        ),
    )


def table_sheet(
    name: str, columns: list[str], rows: list[list[Any]], note: str = ""
) -> tuple[Sheet, list[dict[str, Any]]]:
    """A table as the console shows it (titled columns, rows of values) as a sheet: a
    column of numbers is typed as numbers, any other as text."""

    def kind(index: int) -> str:
        values = [row[index] for row in rows if row[index] is not None]
        if values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            return "float" if any(isinstance(v, float) for v in values) else "int"
        return "text"

    sheet = Sheet(
        name,
        name,
        tuple(
            Column(str(i), title, kind(i), title, width=max(14, min(40, len(title) + 4)))
            for i, title in enumerate(columns)
        ),
        note=note,
    )
    return sheet, [{str(i): v for i, v in enumerate(row)} for row in rows]
