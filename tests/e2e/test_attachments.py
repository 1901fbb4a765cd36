"""Attachments of referrals, agreements and monthly reports, against the processes of
`make run`: a PDF, JPEG or PNG goes in and comes back byte for byte; a file is judged by
its content (not its name or declared type) and by its size; another partner's are as if
absent; a referral's are sealed at rest and every read of one is in the audit log; an
admin removes one with a reason and the record of it stays (docs/attachments.md)."""

from __future__ import annotations

import hashlib

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.e2e.edge import ATTACHMENT_KINDS, PDF

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(64)) + b"\xff\xd9"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(40)


def send(system, path, content, content_type, key=None, **params):
    return requests.post(
        system.base_url + path,
        data=content,
        params=params,
        headers={**system.headers(key), "Content-Type": content_type},
        timeout=30,
    )


def stored(system, component: str, sql: str, **params):
    engine = create_engine(system.urls[component])
    try:
        with engine.connect() as connection:
            return connection.execute(text(sql), params).all()
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def places(edge, world):
    """One object of each kind that takes attachments, all of the matrix's own partner."""
    agreements = edge.get(f"/api/v1/partners/{world.own}/agreements").json()["items"]
    return {
        "referral": f"/api/v1/referrals/{world.referral()}/attachments",
        "agreement": f"/api/v1/partners/{world.own}/agreements/{agreements[0]['id']}/attachments",
        "report": f"/api/v1/reports/{world.own}/2026-11/attachments",
    }


@pytest.mark.parametrize("owner", sorted(ATTACHMENT_KINDS))
@pytest.mark.parametrize(
    "content, content_type", [(PDF, "application/pdf"), (JPEG, "image/jpeg"), (PNG, "image/png")]
)
def test_a_file_goes_in_and_comes_back_as_it_was(edge, places, owner, content, content_type):
    made = send(
        edge,
        places[owner],
        content,
        content_type,
        kind=ATTACHMENT_KINDS[owner],
        filename="Berkas Uji",
    )
    assert made.status_code == 201, made.text
    attachment = made.json()
    assert attachment["content_type"] == content_type
    assert attachment["size"] == len(content)
    assert attachment["sha256"] == hashlib.sha256(content).hexdigest()
    assert attachment["filename"].startswith("Berkas Uji.")
    listed = edge.get(places[owner]).json()["items"]
    assert attachment["id"] in [a["id"] for a in listed]
    assert all("content" not in a for a in listed)
    fetched = edge.get(f"{places[owner]}/{attachment['id']}")
    assert fetched.status_code == 200, fetched.text
    assert fetched.content == content
    assert fetched.headers["Content-Type"] == content_type
    assert fetched.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    "content, content_type, status",
    [
        (b"<html><script>alert(1)</script></html>", "application/pdf", 415),  # by content
        (PNG, "application/pdf", 415),  # a PNG declared as a PDF
        (b"MZ\x90\x00 an executable", "application/octet-stream", 415),
        (b"", "application/pdf", 400),
        (PDF + bytes(5 * 1024 * 1024), "application/pdf", 413),
    ],
)
def test_what_is_not_a_pdf_jpeg_or_png_is_refused_and_nothing_stored(
    edge, places, content, content_type, status
):
    before = stored(edge, "rujukan", "SELECT count(*) FROM attachments")
    answer = send(edge, places["referral"], content, content_type, kind="consent_form")
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    assert stored(edge, "rujukan", "SELECT count(*) FROM attachments") == before


def test_the_kind_must_be_one_of_the_object_s(edge, places):
    answer = send(edge, places["report"], PDF, "application/pdf", kind="consent_form")
    assert (answer.status_code, answer.json()["code"]) == (422, "VALIDATION_ERROR")
    assert list(answer.json()["errors"]) == ["kind"]


def test_another_partner_reaches_no_attachment_and_the_own_partner_does(edge, world, places):
    made = send(edge, places["referral"], PDF, "application/pdf", kind="consent_form").json()
    one = f"{places['referral']}/{made['id']}"
    other, own = world.keys["other_partner"], world.keys["partner"]
    for path in (places["referral"], one, places["agreement"], places["report"]):
        answer = edge.get(path, key=other)
        assert (answer.status_code, answer.json()["code"]) == (404, "NOT_FOUND"), path
    assert edge.get(one, key=own).content == PDF
    refused = send(edge, places["report"], PDF, "application/pdf", key=other, kind="evidence")
    assert refused.status_code == 404


def test_a_referral_s_file_is_sealed_at_rest_and_every_read_is_audited(edge, places):
    made = send(edge, places["referral"], PDF, "application/pdf", kind="consent_form").json()
    [(content,)] = stored(
        edge, "rujukan", "SELECT content FROM attachments WHERE id = :id", id=made["id"]
    )
    assert b"%PDF" not in bytes(content)  # the clients' cipher, not the file
    referral_id = places["referral"].split("/")[4]
    for _ in range(2):
        assert edge.get(f"{places['referral']}/{made['id']}").status_code == 200
    audit = edge.get("/api/v1/audit", params={"referral_id": referral_id}).json()["items"]
    reads = [a for a in audit if a["purpose"] == f"unduh lampiran {made['id']}"]
    assert len(reads) == 2


def test_an_admin_removes_a_file_with_a_reason_and_its_record_stays(edge, world, places):
    made = send(edge, places["referral"], PDF, "application/pdf", kind="consent_form").json()
    one = f"{edge.base_url}{places['referral']}/{made['id']}"
    officer = requests.delete(
        one,
        json={"reason": "Salah unggah."},
        headers=edge.headers(world.keys["officer"]),
        timeout=10,
    )
    assert (officer.status_code, officer.json()["code"]) == (403, "FORBIDDEN")
    without_reason = requests.delete(one, json={}, headers=edge.headers(), timeout=10)
    assert without_reason.status_code == 422
    removed = requests.delete(
        one, json={"reason": "Berkas milik klien lain."}, headers=edge.headers(), timeout=10
    )
    assert removed.status_code == 200, removed.text
    assert removed.json()["removed_reason"] == "Berkas milik klien lain."
    gone = edge.get(f"{places['referral']}/{made['id']}")
    assert (gone.status_code, gone.json()["code"]) == (409, "ATTACHMENT_REMOVED")
    listed = {a["id"]: a for a in edge.get(places["referral"]).json()["items"]}
    assert listed[made["id"]]["removed_at"] is not None
    [(size,)] = stored(
        edge,
        "rujukan",
        "SELECT length(content) FROM attachments WHERE id = :id",
        id=made["id"],
    )
    assert size == 0  # the content is erased
    referral_id = places["referral"].split("/")[4]
    audit = edge.get("/api/v1/audit", params={"referral_id": referral_id}).json()["items"]
    assert any(
        a["purpose"] == f"hapus lampiran {made['id']}: Berkas milik klien lain." for a in audit
    )
