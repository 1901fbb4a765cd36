"""The console's mapping of pages to the API's roles and of laporan's rules to the
report form (its accounts, in a database: tests/integration/test_console_accounts.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from werkzeug.datastructures import MultiDict

from gateway.console.pages import (
    REFERRAL_ACTIONS,
    REFERRAL_ROUTE,
    place_rule_messages,
    report_content,
)
from gateway.console.web import api_roles


def test_every_api_route_a_page_names_exists():
    """A page takes its roles from the API route it stands for: a misspelt route must
    fail here, not open a page to everyone."""
    source = (Path(__file__).parents[2] / "gateway" / "console" / "pages.py").read_text()
    named = set(re.findall(r'"((?:GET|POST|PUT|PATCH) /api/v1/[^"]*[^/])"', source))
    named |= {REFERRAL_ROUTE + route for _, route in REFERRAL_ACTIONS.values()}
    assert len(named) > 10
    for route in named:
        if "{command}" in route:
            for command in ("approve", "return"):
                assert api_roles(route.replace("{command}", command))
            continue
        assert api_roles(route), route
    with pytest.raises(LookupError):
        api_roles("POST /api/v1/tidak-ada")
    assert "partner" not in api_roles("POST /api/v1/referrals")


def test_report_form_fields_become_laporan_content_and_bad_numbers_stay_at_their_field():
    form = MultiDict({"total.start": "3", "total.end": "dua", "narrative": "Bulan ini."})
    content, errors = report_content(form)
    assert content["counts"]["total"]["start"] == 3
    assert content["counts"]["by_sex"]["F"]["admitted"] == 0
    assert errors == {"total.end": ["Isi dengan bilangan bulat."]}


def test_each_rule_message_is_placed_at_the_row_or_section_it_speaks_of():
    placed = place_rule_messages(
        {
            "balance": [
                "Total: awal 1 + masuk 1 − selesai 0 − putus 0 − dipindahkan 0 = 2, bukan akhir 3.",
                "Jenis kelamin perempuan: awal 0 + masuk 1 − selesai 0 − putus 0 − dipindahkan 0 "
                "= 1, bukan akhir 0.",
            ],
            "by_sex_sums_to_total": ["Jumlah masuk menurut jenis kelamin (1) tidak sama ..."],
            "narrative_required": ["Narasi laporan wajib diisi."],
        }
    )
    assert len(placed["total"]) == 1 and "bukan akhir 3" in placed["total"][0]
    assert len(placed["by_sex.F"]) == 1
    assert set(placed) == {"total", "by_sex.F", "by_sex", "narrative"}
