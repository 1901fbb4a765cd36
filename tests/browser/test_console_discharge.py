"""Ending care in the console: the partner's operator completes a referral with its
discharge summary (outcome, reasons, aftercare plan, follow-up day), refused at the
fields with what was typed kept, then read on the referral's page. At desktop and phone
widths, each page checked with axe; screenshots kept."""

from __future__ import annotations

from datetime import date

import pytest

from gateway.console.labels import day
from tests.browser.conftest import PASSWORD, Person, status_of
from tests.browser.test_console_rules import make_account
from tests.browser.test_console_without_dead_ends import (
    PHONE,
    admitted_at_kipas,
    serious_violations,
)

PLAN = "Konseling keluarga dua pekan sekali di puskesmas terdekat."


@pytest.fixture(scope="module")
def accounts(system):
    make_account(system, "operator.ringkasan", "partner", "yayasan-kipas")
    system.ringkasan_key = system.new_key("partner", "yayasan-kipas", "ringkasan")
    return system


@pytest.mark.parametrize("width, viewport", [("desktop", None), ("ponsel", PHONE)])
def test_a_partner_completes_care_with_a_discharge_summary(accounts, browser, width, viewport):
    system = accounts
    referral_id = admitted_at_kipas(system, system.ringkasan_key)
    operator = Person(browser, system, f"ringkasan-{width}", viewport=viewport)
    try:
        operator.sign_in("operator.ringkasan", PASSWORD)
        page = operator.page
        operator.go(f"/console/rujukan/{referral_id}")
        operator.submit("a:has-text('Selesai')")
        assert page.inner_text("h1") == "Catat klien selesai layanan?"
        assert "Ringkasan akhir layanan" in page.inner_text("#ringkasan")
        assert serious_violations(page) == []
        operator.shot(f"80-selesai-ringkasan-{width}")

        # nothing chosen: refused at the outcome and the reasons, the plan typed kept
        page.fill("#aftercare_plan", PLAN)
        page.locator("#follow_up_on").evaluate("e => e.value = '2099-01-01'")
        operator.submit("button:has-text('Ya, catat selesai')")
        assert "Pilih hasil akhir layanan." in page.inner_text("#err-outcome")
        assert "sedikitnya satu alasan" in page.inner_text("#err-reasons")
        assert page.input_value("#aftercare_plan") == PLAN
        assert status_of(system, referral_id) == "admitted"
        assert serious_violations(page) == []
        operator.shot(f"81-selesai-ringkasan-belum-lengkap-{width}")

        # a follow-up day too far: rujukan refuses it at its field, the choices kept
        page.select_option("#outcome", "improved")
        page.check("input[name=reasons][value=program_completed]")
        page.check("input[name=reasons][value=relocation]")
        operator.submit("button:has-text('Ya, catat selesai')")
        assert "paling lama 365 hari" in page.inner_text("#err-follow_up_on")
        assert page.input_value("#outcome") == "improved"
        assert page.is_checked("input[name=reasons][value=relocation]")
        assert page.input_value("#aftercare_plan") == PLAN
        assert status_of(system, referral_id) == "admitted"
        operator.shot(f"82-selesai-tindak-lanjut-salah-{width}")

        page.locator("#follow_up_on").evaluate("e => e.value = e.min")
        follow_up = date.fromisoformat(page.input_value("#follow_up_on"))
        operator.submit("button:has-text('Ya, catat selesai')")
        assert "Klien tercatat selesai layanan." in page.inner_text("main")
        summary = page.inner_text("#ringkasan-akhir")
        for words in ("Membaik", "Program selesai", "Pindah domisili", PLAN, day(follow_up)):
            assert words in summary, words
        assert "improved" not in summary and "program_completed" not in summary
        assert "Membaik" in page.inner_text(".history")
        assert serious_violations(page) == []
        operator.shot(f"83-selesai-ringkasan-tercatat-{width}")
    finally:
        operator.close()
    # the month's report shows how care ended, from the summaries
    period = system.get(f"/api/v1/referrals/{referral_id}").json()["ended_at"][:7]
    reader = Person(browser, system, f"ringkasan-laporan-{width}", viewport=viewport)
    try:
        reader.sign_in("operator.ringkasan", PASSWORD)
        reader.go(f"/console/laporan/yayasan-kipas/{period}")
        ended = reader.page.inner_text("#klien-keluar")
        assert "Membaik" in ended and "Program selesai" in ended
        assert serious_violations(reader.page) == []
        reader.shot(f"84-laporan-klien-keluar-{width}")
    finally:
        reader.close()
    stored = system.get(f"/api/v1/referrals/{referral_id}").json()["discharge"]
    assert stored["outcome"] == "improved"
    assert stored["reasons"] == ["program_completed", "relocation"]
    assert stored["follow_up_on"] == follow_up.isoformat()
