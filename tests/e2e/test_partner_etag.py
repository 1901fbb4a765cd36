"""Partner directory reads answer with an ETag and 304 to a matching If-None-Match
(issue 21): a repeated read of unchanged data carries no body, a change gives a new
tag, and one caller's tag is not another's when they may see different fields."""

from __future__ import annotations

import requests


def conditional_get(system, path: str, key: str | None = None, tag: str | None = None):
    headers = system.headers(key)
    if tag is not None:
        headers["If-None-Match"] = tag
    return requests.get(system.base_url + path, headers=headers, timeout=10)


def new_partner(system, name: str = "Yayasan Tanda Versi") -> str:
    answer = system.post(
        "/api/v1/partners",
        {
            "name": name,
            "kind": "foundation",
            "kabupaten_kota": "Kaur",
            "sex_served": "all",
            "services": [{"service_type": "outpatient", "capacity": 6}],
            "contacts": [{"name": "Petugas Kontak", "role": "head", "email": "k@contoh.id"}],
        },
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def test_an_unchanged_partner_answers_304_and_a_changed_one_a_new_tag(system):
    partner_id = new_partner(system)
    path = f"/api/v1/partners/{partner_id}"
    first = conditional_get(system, path)
    assert first.status_code == 200
    tag = first.headers["ETag"]
    assert first.headers["Vary"] == "Authorization"

    again = conditional_get(system, path, tag=tag)
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["ETag"] == tag
    # weak comparison, and a list of tags, as RFC 9110 asks of If-None-Match
    assert conditional_get(system, path, tag=f'"other", W/{tag}').status_code == 304

    changed = system.session_patch(path, {"address": "Jl. Baru No. 2, Bintuhan"})
    assert changed.status_code == 200, changed.text
    after = conditional_get(system, path, tag=tag)
    assert after.status_code == 200
    assert after.json()["address"] == "Jl. Baru No. 2, Bintuhan"
    assert after.headers["ETag"] != tag


def test_a_tag_is_the_callers_own_view(system):
    partner_id = new_partner(system)
    path = f"/api/v1/partners/{partner_id}"
    staff = conditional_get(system, path)
    assert "contacts" in staff.json()
    other = system.new_key("partner", partner_id="yayasan-dwin-foundation")
    # another partner's operator sees no contacts: the staff's tag is not its answer
    seen = conditional_get(system, path, key=other, tag=staff.headers["ETag"])
    assert seen.status_code == 200
    assert "contacts" not in seen.json()
    assert seen.headers["ETag"] != staff.headers["ETag"]


def test_the_list_and_the_match_answer_304_too(system):
    for path in ("/api/v1/partners", "/api/v1/partners/match?sex=M&service_type=outpatient"):
        first = conditional_get(system, path)
        assert first.status_code == 200, first.text
        assert conditional_get(system, path, tag=first.headers["ETag"]).status_code == 304


def test_a_refusal_carries_no_tag(system):
    missing = conditional_get(system, "/api/v1/partners/tidak-ada", tag="*")
    assert missing.status_code == 404
    assert "ETag" not in missing.headers
