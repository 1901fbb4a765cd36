"""The console's mapping of pages to the API's roles and of laporan's rules to the
report form (its accounts, in a database: tests/integration/test_console_accounts.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from werkzeug.datastructures import MultiDict

from gateway.console import labels
from gateway.console.pages import (
    REFERRAL_ACTIONS,
    REFERRAL_ROUTE,
    Pager,
    activity_payload,
    agreement_payload,
    draft_of,
    form_page,
    place_rule_messages,
    report_content,
    termination_payload,
    transition_payload,
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
    form = MultiDict(
        {
            "total.start": "3",
            "total.end": "dua",
            "total.admitted": "٣",  # a digit, but not one the API takes
            "total.completed": "+1",
            "narrative": "Bulan ini.",
        }
    )
    content, errors = report_content(form)
    assert content["counts"]["total"]["start"] == 3
    assert content["counts"]["by_sex"]["F"]["admitted"] == 0
    whole = ["Isi dengan bilangan bulat (angka 0-9)."]
    assert errors == {"total.end": whole, "total.admitted": whole, "total.completed": whole}


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


C1 = "11111111-1111-4111-8111-111111111111"
C2 = "22222222-2222-4222-8222-222222222222"


def test_pages_of_a_list_keep_its_filters_and_a_way_back():
    first = Pager.of(MultiDict(), 50)
    links = first.links("/console/rujukan", {"status": "requested"}, C1)
    assert links["number"] == 1 and links["previous"] is None
    assert links["next"] == f"/console/rujukan?status=requested&cursor={C1}&sebelumnya="
    second = Pager.of(MultiDict({"cursor": C1, "sebelumnya": ""}), 50)
    links = second.links("/console/rujukan", {"status": "requested"}, C2)
    assert links["number"] == 2 and links["first"] == 51
    assert links["previous"] == "/console/rujukan?status=requested"
    assert links["next"].endswith(f"cursor={C2}&sebelumnya=%2C{C1}")
    third = Pager.of(MultiDict({"cursor": C2, "sebelumnya": f",{C1}"}), 50)
    links = third.links("/console/rujukan", {}, None)
    assert links["number"] == 3 and links["next"] is None
    assert links["previous"] == f"/console/rujukan?cursor={C1}&sebelumnya="


def test_a_forms_post_address_leads_back_to_the_page_that_shows_it():
    assert (
        form_page("/console/laporan/kipas/2027-03/kembalikan") == "/console/laporan/kipas/2027-03"
    )
    assert form_page("/console/laporan/kipas/2027-03") == "/console/laporan/kipas/2027-03"
    assert form_page(f"/console/rujukan/{C1}/terima") == f"/console/rujukan/{C1}/terima"
    assert form_page("/console/rujukan/baru/ubah") == "/console/rujukan/baru"
    assert form_page("/console/mitra/kipas/kontak/2/hapus") == "/console/mitra/kipas"
    assert form_page("/console/mitra/kipas/pks") == "/console/mitra/kipas"
    assert (
        form_page(f"/console/mitra/kipas/pks/{C1}/akhiri")
        == f"/console/mitra/kipas/pks/{C1}/akhiri"
    )
    assert form_page("/console/mitra/kipas/kegiatan") == "/console/mitra/kipas/kegiatan"
    assert form_page(f"/console/pengguna/{C1}/sandi") == "/console/pengguna"
    # secrets and the old session's token are never carried through a sign-in
    form = MultiDict({"csrf": "t", "password": "p", "note": "n", "draft.x": "1"})
    assert draft_of(form) == {"note": "n", "draft.x": "1"}
    assert draft_of(form, "draft.") == {"x": "1"}


def test_a_referral_action_asks_what_it_records():
    assert transition_payload("reject", MultiDict({"reason": "other"}))[1] == {
        "note": ["Tulis alasannya bila memilih Alasan lain."]
    }
    assert transition_payload("reject", MultiDict())[1]["reason"] == ["Pilih alasan penolakan."]
    assert transition_payload("cancel", MultiDict())[1] == {"note": ["Tulis alasan pembatalan."]}
    transfer = [
        ("partner_id", "yayasan-pesona"),
        ("note", "Dekat keluarga."),
        ("outcome", "referred_onward"),
        ("reasons", "relocation"),
        ("reasons", "transferred_to_partner"),
    ]
    payload, errors = transition_payload("transfer", MultiDict(transfer))
    assert list(errors) == ["consent"]  # a transfer discloses: the client's consent first
    payload, errors = transition_payload(
        "transfer", MultiDict([*transfer, ("consent", "ya"), ("given_by", "client")])
    )
    assert errors == {} and payload == {
        "partner_id": "yayasan-pesona",
        "reason": "Dekat keluarga.",
        "consent": {"given": True, "given_by": "client"},
        "discharge": {
            "outcome": "referred_onward",
            "reasons": ["relocation", "transferred_to_partner"],
        },
    }
    payload, errors = transition_payload("admit", MultiDict({"admitted_on": "2027-04-02"}))
    assert errors == {} and payload == {"admitted_on": "2027-04-02"}
    assert "admitted_on" in transition_payload("admit", MultiDict({"admitted_on": "kemarin"}))[1]


def test_an_ending_asks_for_its_discharge_summary():
    assert transition_payload("complete", MultiDict())[1] == {
        "outcome": ["Pilih hasil akhir layanan."],
        "reasons": ["Pilih sedikitnya satu alasan layanan berakhir."],
    }
    form = MultiDict(
        [
            ("outcome", "improved"),
            ("reasons", "program_completed"),
            ("reasons", "bukan-kode"),  # a code no list holds is left out
            ("aftercare_plan", "  Konseling tiap pekan.  "),
            ("follow_up_on", "2027-05-01"),
        ]
    )
    payload, errors = transition_payload("complete", form)
    assert errors == {}
    assert payload == {
        "discharge": {
            "outcome": "improved",
            "reasons": ["program_completed"],
            "aftercare_plan": "Konseling tiap pekan.",
            "follow_up_on": "2027-05-01",
        }
    }
    wrong = MultiDict(
        [("outcome", "improved"), ("reasons", "medical"), ("follow_up_on", "bulan depan")]
    )
    assert set(transition_payload("drop_out", wrong)[1]) == {"follow_up_on", "note"}
    assert "discharge" not in transition_payload("cancel", MultiDict({"note": "x"}))[0]


def test_people_read_names_and_months_not_codes():
    people = {"rina": "Rina Marlina"}
    assert labels.actor_name("officer:user:rina", people) == "Rina Marlina (Petugas BNNP)"
    assert labels.actor_name("partner:9f1c", people).startswith("Sistem lain lewat kunci API")
    text = labels.inbox_text(
        f"Laporan periode 2027-03 dari mitra yayasan-pesona, rujukan {C1} <b>, 2027-03-31",
        {"yayasan-pesona": "Yayasan Pesona"},
        "/console",
    )
    assert "periode Maret 2027 dari mitra Yayasan Pesona" in text
    assert f'<a href="/console/rujukan/{C1}">11111111</a>' in text
    assert "&lt;b&gt;" in text and "2027-03-31" in text


def test_a_new_agreement_and_its_ending_are_refused_at_their_fields_in_indonesian():
    form = MultiDict(
        [
            ("pks.number", "PK"),
            ("pks.signed_on", "2027-01-10"),
            ("pks.valid_from", "kemarin"),
            ("pks.valid_until", "2029-01-31"),
            ("pks.annual_target", "40 klien"),
        ]
    )
    payload, errors = agreement_payload(form)
    assert set(errors) == {"pks.number", "pks.valid_from", "pks.scope", "pks.annual_target"}
    assert errors["pks.scope"] == ["Pilih sedikitnya satu ruang lingkup."]
    form = MultiDict(
        [
            ("pks.number", "PKS/BNNP-BKL/2027/001"),
            ("pks.signed_on", "2027-01-10"),
            ("pks.valid_from", "2027-02-01"),
            ("pks.valid_until", "2027-01-31"),
            ("pks.scope", "rehabilitation"),
            ("pks.scope", "reporting"),
            ("pks.annual_target", "40"),
        ]
    )
    payload, errors = agreement_payload(form)
    assert errors == {"pks.valid_until": ["Isi tanggal berakhir, sesudah tanggal mulai berlaku."]}
    assert payload["scope"] == ["rehabilitation", "reporting"] and payload["annual_target"] == 40
    _, errors = termination_payload(MultiDict({"reason": "  ", "terminated_on": ""}))
    assert errors == {"reason": ["Tulis alasan PKS diakhiri (3-1000 huruf)."]}
    payload, errors = termination_payload(
        MultiDict({"reason": "Mitra tutup.", "terminated_on": ""})
    )
    assert errors == {} and payload == {"reason": "Mitra tutup.", "terminated_on": None}


SCORES = {f"score.{d}": "70" for d in ("availability", "access", "acceptability", "quality")}


def test_an_activitys_scores_belong_to_a_supervision_visit_all_five_or_none():
    base = {"held_on": "2027-03-10", "title": "Kunjungan supervisi triwulan I"}
    visit = MultiDict({**base, "kind": "supervision_visit", **SCORES})
    _, errors = activity_payload(visit)
    assert errors == {"score.continuity": ["Isi skor 0-100."]}
    visit["score.continuity"] = "85"
    payload, errors = activity_payload(visit)
    assert errors == {} and payload["scores"]["continuity"] == 85
    training = MultiDict({**base, "kind": "training", "participants": "Andi\n\n Sari \n"})
    payload, errors = activity_payload(training)
    assert errors == {} and payload["participants"] == ["Andi", "Sari"]
    assert "scores" not in payload
    _, errors = activity_payload(MultiDict({**base, "kind": "training", **SCORES}))
    assert errors == {"scores": ["Skor hanya untuk kunjungan supervisi: kosongkan skornya."]}
    _, errors = activity_payload(MultiDict({"kind": "piknik", "held_on": "", "title": "x"}))
    assert set(errors) == {"kind", "held_on", "title"}
