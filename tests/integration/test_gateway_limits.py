"""Abuse limits and idempotent retries at the gateway, with the real broker and
PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

import requests
from sqlalchemy import func, select, update

from bersinar.envelope import utcnow
from gateway import idempotency
from gateway.models import IdempotencyRecord
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
    # that refusal did not become the key's answer: the first request still gets its own
    third = requests.post(f"{base}/api/v1/partners", headers=headers, json=body, timeout=10)
    assert (third.status_code, third.json()) == (201, first.json())
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


def test_an_unanswered_claim_answers_in_progress_then_is_taken_over_once_stale(
    container_factory, make_config, clean_databases
):
    """A request whose answer could not be recorded (its gateway died, the database went
    away) leaves a claim without an answer; retries are told "in progress" (and that is
    not recorded as the answer), and once the claim is older than any request may take
    a retry is carried out."""
    base, admin = start(container_factory, make_config)
    made = requests.post(
        f"{base}/api/v1/api-keys", headers=admin, json={"role": "officer", "label": "x"}, timeout=10
    ).json()
    partner = {"name": "Yayasan Tertinggal", "kind": "foundation", "kabupaten_kota": "Kaur"}
    body = json.dumps({**partner, "sex_served": "all"}).encode()
    digest = idempotency.request_hash("POST", "/api/v1/partners?", body)
    with clean_databases["gateway"]() as uow:  # the claim of a request that never answered
        assert (
            idempotency.begin(uow, made["id"], "lost-1", "POST", "/api/v1/partners", digest) is None
        )
    headers = {
        "Authorization": f"Bearer {made['key']}",
        "Idempotency-Key": "lost-1",
        "Content-Type": "application/json",
    }

    def post():
        return requests.post(f"{base}/api/v1/partners", headers=headers, data=body, timeout=10)

    for _ in range(2):
        busy = post()
        assert (busy.status_code, busy.json()["code"]) == (409, "IDEMPOTENCY_IN_PROGRESS")
    with clean_databases["gateway"]() as uow:
        record = uow.session.get(IdempotencyRecord, (made["id"], "lost-1"))
        assert record.status is None  # still a claim, not an answer
        uow.session.execute(  # older than 3 x RPC_TIMEOUT
            update(IdempotencyRecord).values(created_at=utcnow() - timedelta(minutes=5))
        )
        uow.commit()
    taken = post()
    assert taken.status_code == 201, taken.text
    replayed = post()
    assert (replayed.status_code, replayed.json()) == (201, taken.json())
