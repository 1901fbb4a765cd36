"""Abuse limits and idempotent retries at the gateway, with the real broker and
PostgreSQL."""

from __future__ import annotations

import requests
from sqlalchemy import func, select

from gateway.service import GatewayService
from services.mitra.models import Partner
from services.mitra.service import MitraService


def start(container_factory, make_config, **gateway_config):
    container_factory(MitraService, make_config("mitra")).start()
    gateway = container_factory(GatewayService, make_config("gateway", **gateway_config))
    gateway.start()
    base = f"http://{gateway.config['WEB_SERVER_ADDRESS']}"
    return base, {"Authorization": f"Bearer {gateway.config['ADMIN_KEY']}"}


def new_key(base, admin, role="officer"):
    response = requests.post(
        f"{base}/api/v1/api-keys", headers=admin, json={"role": role, "label": "limits"}, timeout=10
    )
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['key']}"}


def test_a_key_over_its_rate_gets_429_with_retry_after(
    container_factory, make_config, clean_databases
):
    base, admin = start(container_factory, make_config, RATE_LIMIT_PER_MINUTE=6, RATE_LIMIT_BURST=4)
    first, second = new_key(base, admin), new_key(base, admin)
    answers = [requests.get(f"{base}/api/v1/partners", headers=first, timeout=10) for _ in range(6)]
    statuses = [a.status_code for a in answers]
    print(f"\n[rate limit] burst 4, 6 requests: {statuses}")
    assert statuses[:4] == [200] * 4
    assert statuses[4:] == [429, 429]
    assert answers[4].json()["code"] == "RATE_LIMITED"
    assert 1 <= int(answers[4].headers["Retry-After"]) <= 10
    # another key is not held back by the first one's use
    assert requests.get(f"{base}/api/v1/partners", headers=second, timeout=10).status_code == 200


def test_a_retried_post_with_the_same_idempotency_key_creates_one_partner(
    container_factory, make_config, clean_databases
):
    base, admin = start(container_factory, make_config)
    officer = new_key(base, admin)
    body = {
        "name": "Yayasan Sekali Saja",
        "kind": "foundation",
        "kabupaten_kota": "Lebong",
        "sex_served": "all",
    }
    headers = {**officer, "Idempotency-Key": "retry-1"}
    first = requests.post(f"{base}/api/v1/partners", headers=headers, json=body, timeout=10)
    again = requests.post(f"{base}/api/v1/partners", headers=headers, json=body, timeout=10)
    assert first.status_code == again.status_code == 201, first.text
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    with clean_databases["mitra"]() as uow:
        count = uow.session.scalar(
            select(func.count()).select_from(Partner).where(Partner.name == "Yayasan Sekali Saja")
        )
    assert count == 1

    other_body = requests.post(
        f"{base}/api/v1/partners",
        headers=headers,
        json={**body, "kabupaten_kota": "Kaur"},
        timeout=10,
    )
    assert (other_body.status_code, other_body.json()["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")
    # the same key from another API key is another request altogether
    other_caller = requests.post(
        f"{base}/api/v1/partners",
        headers={**new_key(base, admin), "Idempotency-Key": "retry-1"},
        json={**body, "name": "Yayasan Lain Lagi"},
        timeout=10,
    )
    assert other_caller.status_code == 201
    bad = requests.post(
        f"{base}/api/v1/partners",
        headers={**officer, "Idempotency-Key": "spasi tidak boleh"},
        json=body,
        timeout=10,
    )
    assert (bad.status_code, bad.json()["code"]) == (400, "BAD_REQUEST")
