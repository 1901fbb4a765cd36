"""What every printed document of the gateway shares: A4, the province's letterhead, a
font that covers Indonesian text, numbered pages. fpdf2 draws it (pure Python, no system
libraries); the font is DejaVu Sans, kept in ``fonts/`` under its own licence
(``fonts/LICENSE``: Bitstream Vera terms, DejaVu changes in the public domain), so a
fresh machine prints the same as this one."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import eventlet
import segno
from eventlet import tpool
from fpdf import FPDF
from fpdf.enums import XPos, YPos

FONT_DIR = Path(__file__).with_name("fonts")
FONT = "DejaVu"
# the lines people expect from the distance
AGENCY = "BADAN NARKOTIKA NASIONAL REPUBLIK INDONESIA"
OFFICE = "BADAN NARKOTIKA NASIONAL PROVINSI BENGKULU"


def drawn_off_the_hub(draw, *args) -> bytes:
    """Drawing a page is a few hundred milliseconds of pure Python: inside the gateway
    (eventlet) it runs on a thread of its own, which the interpreter switches away from
    every few milliseconds, so the hub goes on serving other requests meanwhile."""
    if eventlet.patcher.is_monkey_patched("thread"):
        return tpool.execute(draw, *args)
    return draw(*args)


@dataclass(frozen=True)
class Letterhead:
    """The office's address and place of writing (DOCUMENT_ADDRESS, DOCUMENT_CITY), and
    the address documents point back to (PUBLIC_BASE_URL)."""

    address: str = "Provinsi Bengkulu"
    city: str = "Bengkulu"
    public_base_url: str = "http://127.0.0.1:8000"

    @classmethod
    def from_config(cls, config) -> Letterhead:
        default = cls()
        return cls(
            str(config.get("DOCUMENT_ADDRESS") or default.address),
            str(config.get("DOCUMENT_CITY") or default.city),
            str(config.get("PUBLIC_BASE_URL") or default.public_base_url).rstrip("/"),
        )


class Document(FPDF):
    """An A4 page with the letterhead on the first page and the page number on each."""

    LINE = 5.5

    def __init__(self, title: str, head: Letterhead):
        super().__init__(orientation="P", unit="mm", format="A4")
        self.head = head
        self.add_font(FONT, "", str(FONT_DIR / "DejaVuSans.ttf"))
        self.add_font(FONT, "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
        self.set_title(title)
        self.set_author(OFFICE.title())
        self.set_creator("Bersinar")
        self.set_margins(20, 15, 20)
        self.set_auto_page_break(True, margin=18)
        self.add_page()
        self.letterhead()

    # --- the frame --------------------------------------------------------------------

    def letterhead(self) -> None:
        self.set_font(FONT, "B", 12)
        self.line_of(AGENCY, align="C")
        self.set_font(FONT, "B", 13)
        self.line_of(OFFICE, align="C")
        self.set_font(FONT, "", 9)
        self.line_of(self.head.address, align="C")
        y = self.get_y() + 1.5
        self.set_line_width(0.8)
        self.line(self.l_margin, y, self.w - self.r_margin, y)
        self.set_line_width(0.2)
        self.line(self.l_margin, y + 1.2, self.w - self.r_margin, y + 1.2)
        self.set_y(y + 5)
        self.set_font(FONT, "", 10)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(FONT, "", 8)
        self.cell(0, 5, f"Halaman {self.page_no()} dari {{nb}}", align="R")

    # --- writing ----------------------------------------------------------------------

    def line_of(self, text: str, h: float | None = None, align: str = "L", bold=False) -> None:
        """One line (wrapped when too long) across the page."""
        if bold:
            self.set_font(FONT, "B")
        self.multi_cell(0, h or self.LINE, text, align=align, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        if bold:
            self.set_font(FONT, "")

    def heading(self, text: str) -> None:
        self.ln(2)
        self.set_font(FONT, "B", 11)
        self.line_of(text)
        self.set_font(FONT, "", 10)

    def fields(self, rows: list[tuple[str, str]], label_width: float = 48, indent=0.0) -> None:
        """``label : value`` lines, the values lined up and wrapped in their column."""
        for label, value in rows:
            self.set_x(self.l_margin + indent)
            self.cell(label_width, self.LINE, label)
            self.cell(4, self.LINE, ":")
            self.multi_cell(0, self.LINE, value or "-", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def grid(self, header: tuple[str, ...], rows: list[tuple[str, ...]], widths=None) -> None:
        """A bordered table; the first row repeats on a new page."""
        self.set_font(FONT, "", 9)
        with self.table(
            col_widths=widths,
            text_align="LEFT",
            line_height=self.LINE,
            first_row_as_headings=True,
        ) as table:
            for values in (header, *rows):
                row = table.row()
                for value in values:
                    row.cell(str(value))
        self.set_font(FONT, "", 10)

    def qr(self, content: str, x: float, y: float, size: float) -> None:
        """A QR code of ``content``: a PNG drawn by segno (pure Python)."""
        png = io.BytesIO()
        segno.make(content, error="m").save(png, kind="png", scale=8, border=2)
        png.seek(0)
        self.image(png, x=x, y=y, w=size, h=size)

    def bytes(self) -> bytes:
        return bytes(self.output())
