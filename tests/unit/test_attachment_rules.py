"""What an attachment may be (bersinar.attachments): judged by its first bytes, within
its size, declared as what it is; its name kept only as safe text with its type's
extension."""

from __future__ import annotations

import pytest

from bersinar.attachments import AttachmentRefused, AttachmentTooLarge, check, clean_filename

PDF, JPEG, PNG = b"%PDF-1.7\n...", b"\xff\xd8\xff\xdb...", b"\x89PNG\r\n\x1a\n..."


@pytest.mark.parametrize(
    "content, declared, found",
    [
        (PDF, "application/pdf", "application/pdf"),
        (JPEG, "image/jpeg", "image/jpeg"),
        (PNG, "image/png", "image/png"),
        (PNG, "application/octet-stream", "image/png"),  # no type said: the content says
        (PDF, "application/pdf; charset=binary", "application/pdf"),
        (PDF, None, "application/pdf"),
    ],
)
def test_a_pdf_jpeg_or_png_is_taken_as_what_its_content_is(content, declared, found):
    assert check(content, declared, 1000) == found


@pytest.mark.parametrize(
    "content, declared",
    [
        (b"<svg onload=alert(1)>", "image/png"),  # a name or a type is not a content
        (b"GIF89a", "image/gif"),
        (b"PK\x03\x04 a zip, a docx", "application/pdf"),
        (PNG, "application/pdf"),  # a PNG that says it is a PDF
        (b"", "application/pdf"),
        (b" %PDF-1.7", "application/pdf"),  # the signature is at the very start
    ],
)
def test_anything_else_is_refused_with_415(content, declared):
    with pytest.raises(AttachmentRefused) as refused:
        check(content, declared, 1000)
    assert (refused.value.status, refused.value.code) == (415, "UNSUPPORTED_MEDIA_TYPE")


def test_a_file_past_the_limit_is_refused_with_413():
    with pytest.raises(AttachmentTooLarge) as refused:
        check(PDF + bytes(2000), "application/pdf", 1000)
    assert refused.value.status == 413
    assert check(PDF + bytes(1000 - len(PDF)), "application/pdf", 1000) == "application/pdf"


@pytest.mark.parametrize(
    "name, content_type, kept",
    [
        ("Persetujuan Budi.pdf", "application/pdf", "Persetujuan Budi.pdf"),
        ("scan", "image/jpeg", "scan.jpg"),
        ('../../etc/passwd"\r\nX-Evil: 1', "application/pdf", "etc_passwd_X-Evil_ 1.pdf"),
        ("", "image/png", "lampiran.png"),
        (None, "application/pdf", "lampiran.pdf"),
        ("laporan.exe", "application/pdf", "laporan.exe.pdf"),
    ],
)
def test_a_file_name_is_kept_as_safe_text_with_its_type_s_extension(name, content_type, kept):
    assert clean_filename(name, content_type) == kept


def test_a_download_s_name_fits_a_header_and_keeps_its_letters():
    from gateway.routes.attachments import disposition

    header = disposition("Persetujuan Rénata 日本.pdf")
    header.encode("latin-1")  # a header holds Latin-1 only
    assert header == (
        'attachment; filename="Persetujuan R_nata __.pdf"; '
        "filename*=UTF-8''Persetujuan%20R%C3%A9nata%20%E6%97%A5%E6%9C%AC.pdf"
    )
