"""The surat rujukan through the gateway, against the processes of `make run`: an
officer prints the letter of a referral (numbered then), the receiving partner opens it
with the same number from the API and from the console and reaches the referral by the
short code the letter prints, another partner meets nothing, and every opening is in the
audit log."""

from __future__ import annotations

import re
import subprocess
from datetime import date

from harness.data import CLIENT_NAME, referral_body
from harness.system import BIN
from tests.support.console import signed_in_session
from tests.support.pdf import read_pdf

KARUNIA = "yayasan-karunia-insani"
PASSWORD = "sandi-uji-cetak-1"
NUMBER = re.compile(r"R/(\d+)/([IVX]+)/KA/RH\.00/(\d{4})/BNNP")


def console_operator(system, partner_id: str):
    """An operator of ``partner_id`` signed in to the console (an account made as an
    admin makes one: ``bersinar users create``)."""
    username = f"cetak.{partner_id}"
    made = subprocess.run(
        [str(BIN / "bersinar"), "users", "create", username, "--role", "partner"]
        + ["--partner", partner_id, "--password-stdin"],
        env=system.env,
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr
    return signed_in_session(system, username, PASSWORD)


def test_an_officer_prints_the_letter_and_the_partner_opens_the_same_one(system):
    officer = system.new_key("officer", label="Dewi Anggraini")
    karunia = system.new_key("partner", KARUNIA)
    kipas = system.new_key("partner", "yayasan-kipas")
    body = referral_body(partner_id=KARUNIA, sex="F", birth_date=date(1993, 7, 9))
    made = system.post("/api/v1/referrals", body, key=officer)
    assert made.status_code == 201, made.text
    rid = made.json()["id"]
    path = f"/api/v1/referrals/{rid}/letter.pdf"

    printed = system.get(path, key=officer)
    assert printed.status_code == 200, printed.text
    assert printed.headers["Content-Type"] == "application/pdf"
    letter = read_pdf(printed.content)
    number = NUMBER.search(letter.text)
    assert number, letter.text
    for expected in (
        "Pimpinan Yayasan Karunia Insani Foundation",
        CLIENT_NAME,
        "Jenis layanan : Rawat inap",
        "Dewi Anggraini",  # the officer who made the referral signs
    ):
        assert expected in letter.text, expected
    # the QR code's address, printed under it (wrapped where the line ends)
    assert f"/console/rujukan/{rid}" in letter.text.replace(" ", "")
    assert 0.01 < letter.inked < 0.5
    assert number.group(0).replace("/", "-") in printed.headers["Content-Disposition"]

    # the receiving partner's reprint carries the same number
    again = system.get(path, key=karunia)
    assert again.status_code == 200, again.text
    assert number.group(0) in read_pdf(again.content).text
    # another partner meets a referral that does not exist
    refused = system.get(path, key=kipas)
    assert (refused.status_code, refused.json()["code"]) == (404, "NOT_FOUND")
    assert refused.headers["Content-Type"].startswith("application/problem+json")

    # from the console: the partner's operator opens the same letter
    operator = console_operator(system, KARUNIA)
    page = operator.get(f"{system.base_url}/console/rujukan/{rid}", timeout=10)
    assert f"/console/rujukan/{rid}/surat.pdf" in page.text
    from_console = operator.get(f"{system.base_url}/console/rujukan/{rid}/surat.pdf", timeout=15)
    assert from_console.status_code == 200
    assert number.group(0) in read_pdf(from_console.content).text
    # and reaches the referral by the short code its letter prints
    code = re.search(r"Kode rujukan: ([0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4})", letter.text)
    by_code = operator.get(
        f"{system.base_url}/console/rujukan/kode", params={"kode": code.group(1)}, timeout=10
    )
    assert by_code.status_code == 200 and by_code.url.endswith(f"/console/rujukan/{rid}")
    stranger = console_operator(system, "yayasan-kipas")
    elsewhere = stranger.get(
        f"{system.base_url}/console/rujukan/kode", params={"kode": code.group(1)}, timeout=10
    )
    assert elsewhere.status_code == 404

    # every opening is an identity read in the audit log
    audit = system.get("/api/v1/audit", params={"referral_id": rid}).json()["items"]
    printed_by = [a["actor_role"] for a in audit if a["purpose"].startswith("cetak surat rujukan")]
    assert sorted(printed_by) == ["officer", "partner", "partner"]
