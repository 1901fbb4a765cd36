"""Cursor pagination of the gateway's collections: pages in a stable order, no item twice
or lost, a cursor not of its shape refused."""

from __future__ import annotations

import pytest


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
def some_keys(system):
    for n in range(3):
        made = system.post("/api/v1/api-keys", {"role": "officer", "label": f"halaman {n}"})
        assert made.status_code == 201, made.text


@pytest.mark.parametrize(
    "path", ["/api/v1/partners", "/api/v1/api-keys", "/api/v1/partners/yayasan-kipas/agreements"]
)
def test_pages_cover_a_collection_once_in_order(system, path):
    whole = system.get(path, params={"limit": 200}).json()["items"]
    assert whole, path
    seen, pages = walk(system, path, limit=2)
    print(f"\n[pages] {path}: {len(whole)} items in {pages} page(s) of 2")
    assert seen == [item["id"] for item in whole]
    assert pages == max(1, -(-len(whole) // 2))


def test_a_cursor_not_of_its_shape_and_a_page_too_large_are_refused(system):
    unknown = system.get("/api/v1/partners", params={"cursor": "tidak-ada"})
    assert (unknown.status_code, unknown.json()["code"]) == (422, "VALIDATION_ERROR")
    assert "cursor" in unknown.json()["errors"]
    huge = system.get("/api/v1/partners", params={"limit": 5000})
    assert huge.status_code == 422 and "limit" in huge.json()["errors"]
