"""Cursor pagination of the gateway's collections: pages in a stable order, no item twice
or lost, a cursor not of its shape refused."""

from __future__ import annotations

import pytest

from harness.data import referral_body
from harness.wait import eventually


def walk(system, path, limit, **params):
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        response = system.get(path, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= limit
        seen += [item["id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return seen, pages


@pytest.fixture(scope="module", autouse=True)
def some_of_everything(system):
    for n in range(3):
        made = system.post("/api/v1/api-keys", {"role": "officer", "label": f"halaman {n}"})
        assert made.status_code == 201, made.text
    for _ in range(5):
        body = referral_body(partner_id="yayasan-pesona", service_type="outpatient")
        made = system.post("/api/v1/referrals", body)
        assert made.status_code == 201, made.text
        read = system.get(f"/api/v1/referrals/{made.json()['id']}")  # an identity read: audited
        assert read.status_code == 200, read.text
    eventually(
        lambda: (
            len(
                system.get("/api/v1/notifications", params={"partner_id": "yayasan-pesona"}).json()[
                    "items"
                ]
            )
            >= 5
        ),
        "the partner's inbox",
    )


# the first three are paged by the gateway from a bounded list, the others by keyset in
# the service that owns them
PAGED = [
    ("/api/v1/partners", {}),
    ("/api/v1/api-keys", {}),
    ("/api/v1/partners/yayasan-kipas/agreements", {}),
    ("/api/v1/referrals", {}),
    ("/api/v1/notifications", {"partner_id": "yayasan-pesona"}),
    ("/api/v1/notifications/deliveries", {}),
    ("/api/v1/audit", {}),
]


@pytest.mark.parametrize("path, params", PAGED, ids=[p for p, _ in PAGED])
def test_pages_cover_a_collection_once_in_order(system, path, params):
    # the whole collection in pages of the largest size, then again in small pages
    whole, _ = walk(system, path, limit=200, **params)
    assert whole, path
    limit = 2 if len(whole) <= 100 else 50  # other tests may have filled it
    seen, pages = walk(system, path, limit=limit, **params)
    print(f"\n[pages] {path}: {len(whole)} items in {pages} page(s) of {limit}")
    # newest first: what arrived between the two walks may lead the second one
    assert len(set(seen)) == len(seen)
    assert seen[len(seen) - len(whole) :] == whole
    assert pages == max(1, -(-len(seen) // limit))


@pytest.mark.parametrize(
    "path, code",
    [
        ("/api/v1/partners", "VALIDATION_ERROR"),  # not the shape of its cursors
        ("/api/v1/referrals", "UNKNOWN_CURSOR"),  # the shape of an id, of no referral
        ("/api/v1/audit", "UNKNOWN_CURSOR"),
    ],
)
def test_an_unknown_cursor_is_refused(system, path, code):
    unknown = system.get(path, params={"cursor": "tidak-ada"})
    assert (unknown.status_code, unknown.json()["code"]) == (422, code)
    assert "cursor" in unknown.json()["errors"]


def test_a_page_too_large_is_refused(system):
    huge = system.get("/api/v1/partners", params={"limit": 5000})
    assert huge.status_code == 422 and "limit" in huge.json()["errors"]
