"""Reading a PDF back for a test: its text, and its first page drawn to a picture, with
pypdfium2 (the PDF engine of Chromium, as a wheel: no system packages)."""

from __future__ import annotations

from dataclasses import dataclass

import pypdfium2 as pdfium


@dataclass(frozen=True)
class ReadBack:
    text: str  # every page's text, whitespace runs made one space
    pages: int
    inked: float  # the share of the first page's pixels that are not white once drawn


def read_pdf(content: bytes) -> ReadBack:
    assert content.startswith(b"%PDF-"), content[:40]
    pdf = pdfium.PdfDocument(content)
    try:
        text = "\n".join(page.get_textpage().get_text_range() for page in pdf)
        picture = pdf[0].render(scale=1).to_pil().convert("L")
        inked = sum(picture.histogram()[:200]) / (picture.width * picture.height)
        return ReadBack(" ".join(text.split()), len(pdf), inked)
    finally:
        pdf.close()
