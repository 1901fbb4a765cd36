"""rujukan's referral lifecycle on the real broker (the run's vhost) and PostgreSQL, in
one process: the gateway over real HTTP, mitra, one or two rujukan instances, the relays.

- the lifecycle through the gateway, another partner's key seeing none of it, the audit
  log, and a scan of everything logged, published, stored in the outbox and exported as
  metrics for the client's name, NIK and phone;
- two operators accepting the last place at the same moment: exactly one wins;
- the response deadline: two instances, one shared file clock, one event per referral;
- the partner read model following mitra's events (capacity, termination, old versions).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime, timedelta

import eventlet
import pytest
import requests
from nameko.standalone.events import event_dispatcher
from nameko.testing.services import entrypoint_hook
from prometheus_client import REGISTRY, generate_latest
from sqlalchemy import func, select, text

from bersinar.clock import write_clock
from bersinar.relay import amqp_connection
from gateway.service import GatewayService
from harness import produced
from harness.data import CLIENT_NAME, referral_body
from services.mitra.service import MitraService
from services.rujukan.models import AccessAudit, PartnerView, Referral, ReferralHistory
from services.rujukan.service import RujukanService
from tests.integration.conftest import partners_known, wait_until

START = datetime(2026, 6, 15, 3, 0, tzinfo=UTC)  # 10:00 WIB, inside the seeded PKS
KARUNIA = "yayasan-karunia-insani"


class FileClock:
    """The instant every rujukan instance of the test reads (config CLOCK_FILE)."""

    def __init__(self, path):
        self.path = path
        self.set(START)

    def set(self, moment: datetime) -> None:
        write_clock(self.path, moment)


class Published:
    """A queue of the test's own bound to every rujukan event: what the relay published."""

    def __init__(self, amqp_uri: str, name: str):
        self.connection = amqp_connection(amqp_uri)
        self.connection.connect()
        self.channel = self.connection.channel()
        self.name = name
        self.channel.exchange_declare("rujukan.events", "topic", durable=True, auto_delete=False)
        self.channel.queue_declare(name, durable=False, auto_delete=False)
        self.channel.queue_bind(name, "rujukan.events", "#")
        self.messages: list[tuple[str, str]] = []

    def drain(self) -> list[dict]:
        while True:
            message = self.channel.basic_get(self.name, no_ack=True)
            if message is None:
                break
            payload = message.body
            if isinstance(payload, bytes):
                payload = payload.decode()
            self.messages.append((message.delivery_info["routing_key"], payload))
        return [json.loads(body) for _, body in self.messages]

    def of_type(self, event_type: str) -> list[dict]:
        return [e for e in self.drain() if e["event_type"] == event_type]

    def close(self) -> None:
        self.channel.queue_delete(self.name)
        self.connection.close()


@pytest.fixture
def clock(tmp_path):
    return FileClock(tmp_path / "clock")


@pytest.fixture
def published(amqp_uri, test_run_id, seeded):
    queue = Published(amqp_uri, f"test-rujukan-all-{test_run_id}")
    yield queue
    queue.close()


@pytest.fixture
def rujukan_config(make_config, clock):
    def make(**overrides):
        return make_config(
            "rujukan",
            CLOCK_FILE=str(clock.path),
            RESPONSE_DEADLINE_CHECK_SECONDS=0.1,
            **overrides,
        )

    return make


class Stack:
    def __init__(self, base, admin_key, dbs, rujukan):
        self.base = base
        self.admin_key = admin_key
        self.dbs = dbs
        self.rujukan = rujukan
        self.errors: list[str] = []  # every problem body answered, to scan for identity

    def call(self, method, path, key=None, **kwargs):
        response = requests.request(
            method,
            self.base + path,
            headers={"Authorization": f"Bearer {key or self.admin_key}"},
            timeout=15,
            **kwargs,
        )
        if response.status_code >= 400:
            self.errors.append(response.text)
        return response

    def key(self, role, partner_id=None):
        response = self.call(
            "POST",
            "/api/v1/api-keys",
            json={"role": role, "partner_id": partner_id, "label": f"{role} {partner_id}"},
        )
        assert response.status_code == 201, response.text
        return response.json()["key"]

    def create(self, key, **body):
        return self.call("POST", "/api/v1/referrals", key, json=referral_body(**body))

    def act(self, key, referral_id, action, body=None):
        return self.call("POST", f"/api/v1/referrals/{referral_id}/{action}", key, json=body)

    def snapshot(self):
        """What a refused request could have changed."""
        with self.dbs["rujukan"]() as uow:
            return (
                uow.session.execute(
                    text("SELECT id, status, updated_at FROM referrals ORDER BY id")
                ).all(),
                uow.session.scalar(select(func.count()).select_from(ReferralHistory)),
                uow.session.scalar(text("SELECT COUNT(*) FROM outbox")),
                uow.session.scalar(text("SELECT COUNT(*) FROM clients")),
            )


@pytest.fixture
def stack(container_factory, make_config, rujukan_config, relays, seeded, published):
    mitra = container_factory(MitraService, make_config("mitra"))
    rujukan = container_factory(RujukanService, rujukan_config())
    gateway = container_factory(GatewayService, make_config("gateway"))
    for container in (mitra, rujukan, gateway):
        container.start()
    relays("mitra", "rujukan")
    wait_until(lambda: partners_known(seeded), message="rujukan's partner read model")
    base = f"http://{gateway.config['WEB_SERVER_ADDRESS']}"
    return Stack(base, gateway.config["ADMIN_KEY"], seeded, rujukan)


def publish_mitra_event(make_config, event):
    dispatch = event_dispatcher(make_config("mitra"))
    dispatch("mitra", event["event_type"], event)
    return event


def partner_updated(partner_id, version, services, sex_served="all", area="Kota Bengkulu"):
    """partner_updated as mitra builds it (``services``: ``(type, capacity, unit)``)."""
    return produced.partner_event(
        "partner_updated",
        partner_id,
        version=version,
        offers=produced.offers(*services),
        sex_served=sex_served,
        kabupaten_kota=area,
    )


def rujukan_match(stack, query):
    """rujukan's ``match_partners``, as the console asks it."""
    with entrypoint_hook(stack.rujukan, "match_partners") as match:
        return match(query)


def partner_version(dbs, partner_id):
    with dbs["rujukan"]() as uow:
        return uow.session.scalar(
            select(PartnerView.version).where(PartnerView.partner_id == partner_id)
        )


# --- the lifecycle, privacy and the audit log ------------------------------------------


def test_lifecycle_through_the_gateway_and_nothing_identifying_leaves_rujukan(
    stack, published, caplog
):
    caplog.set_level(logging.DEBUG)
    officer = stack.key("officer")
    karunia = stack.key("partner", KARUNIA)
    kipas = stack.key("partner", "yayasan-kipas")
    body = referral_body(partner_id=KARUNIA, sex="F", birth_date=date(1996, 2, 29))
    secrets = (body["client"]["name"], body["client"]["nik"], body["client"]["phone"])

    created = stack.call("POST", "/api/v1/referrals", officer, json=body)
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    assert stack.act(karunia, rid, "accept").status_code == 200
    assert stack.act(karunia, rid, "admit", {"note": "rawat inap kamar 2"}).status_code == 200
    summary = {
        "outcome": "improved",
        "reasons": ["program_completed"],
        "aftercare_plan": "konseling keluarga tiap pekan",
    }
    completed = stack.act(karunia, rid, "complete", {"discharge": summary})
    assert (completed.status_code, completed.json()["status"]) == (200, "completed")

    history = stack.call("GET", f"/api/v1/referrals/{rid}/history", karunia).json()["items"]
    assert [h["to_status"] for h in history] == ["requested", "accepted", "admitted", "completed"]
    assert history[0]["actor"].startswith("officer:")
    assert all(h["actor"].startswith("partner:") for h in history[1:])

    read = stack.call("GET", f"/api/v1/referrals/{rid}?purpose=asesmen+lanjutan", karunia)
    assert read.json()["client"]["identity"]["nik"] == body["client"]["nik"]
    assert stack.call("GET", f"/api/v1/referrals/{rid}", officer).status_code == 200

    # another partner's key sees none of it, whatever it tries
    for method, path, payload in (
        ("GET", f"/api/v1/referrals/{rid}", None),
        ("GET", f"/api/v1/referrals/{rid}/history", None),
        ("POST", f"/api/v1/referrals/{rid}/drop-out", {"discharge": summary}),
        ("GET", f"/api/v1/referrals?partner_id={KARUNIA}", None),
    ):
        response = stack.call(method, path, kipas, json=payload)
        assert (response.status_code, response.json()["code"]) == (404, "NOT_FOUND"), path
    assert stack.call("GET", "/api/v1/referrals", kipas).json()["items"] == []
    assert [r["id"] for r in stack.call("GET", "/api/v1/referrals", karunia).json()["items"]] == [
        rid
    ]

    audit = stack.call("GET", f"/api/v1/audit?referral_id={rid}").json()["items"]
    assert [(a["actor_role"], a["purpose"]) for a in audit] == [
        ("officer", "lihat rujukan"),
        ("partner", "asesmen lanjutan"),
    ]
    assert stack.call("GET", "/api/v1/audit", officer).status_code == 403

    events = wait_until(
        lambda: len(published.drain()) >= 4 and published.drain(), message="published events"
    )
    assert [e["event_type"] for e in events] == [
        "referral_requested",
        "referral_accepted",
        "referral_admitted",
        "referral_completed",
    ]
    # the scan: logs of every component, what the relay published, the outbox, metrics,
    # and every error body answered in this test
    with stack.dbs["rujukan"]() as uow:
        outbox = [row[0] for row in uow.session.execute(text("SELECT payload FROM outbox"))]
    logged = [record.getMessage() for record in caplog.records]
    metrics = generate_latest(REGISTRY).decode()
    corpus = {
        "log lines": logged,
        "published": [payload for _, payload in published.messages],
        "outbox rows": outbox,
        "metrics": [metrics],
        "error bodies": stack.errors,
    }
    leaks = {
        where: [text_ for text_ in texts if any(s in text_ for s in secrets)]
        for where, texts in corpus.items()
    }
    print(
        "\n[privacy] scanned "
        + ", ".join(f"{len(texts)} {where}" for where, texts in corpus.items())
        + f": {sum(map(len, leaks.values()))} leaks"
    )
    assert all(not found for found in leaks.values()), leaks
    assert "rawat inap kamar 2" not in json.dumps(corpus["published"])
    # the summary's codes travel, its plan (case data) does not
    assert events[-1]["data"]["outcome"] == "improved"
    assert "konseling keluarga" not in json.dumps(corpus["published"] + outbox)


def test_refusals_store_nothing(stack):
    officer = stack.key("officer")
    karunia = stack.key("partner", KARUNIA)
    rid = stack.create(officer, partner_id=KARUNIA, sex="F").json()["id"]
    before = stack.snapshot()
    cases = {
        "male client": (stack.create(officer, partner_id=KARUNIA, sex="M"), 422, "NOT_ELIGIBLE"),
        "no consent": (
            stack.create(officer, partner_id=KARUNIA, sex="F", consent={"given": False}),
            422,
            "CONSENT_REQUIRED",
        ),
        "skipping accept": (
            stack.act(
                karunia,
                rid,
                "complete",
                {"discharge": {"outcome": "improved", "reasons": ["program_completed"]}},
            ),
            409,
            "INVALID_TRANSITION",
        ),
        "complete without summary": (
            stack.act(karunia, rid, "complete", {"note": "selesai"}),
            422,
            "VALIDATION_ERROR",
        ),
        "officer accepting": (stack.act(officer, rid, "accept"), 403, "FORBIDDEN"),
        "partner cancelling": (stack.act(karunia, rid, "cancel"), 403, "FORBIDDEN"),
        "bad reason": (stack.act(karunia, rid, "reject", {"reason": "bosan"}), 422, None),
        "other without note": (stack.act(karunia, rid, "reject", {"reason": "other"}), 422, None),
        "unknown referral": (stack.act(karunia, "tidak-ada", "accept"), 404, "NOT_FOUND"),
    }
    for case, (response, status, code) in cases.items():
        assert response.status_code == status, (case, response.text)
        if code:
            assert response.json()["code"] == code, case
    assert stack.snapshot() == before


# --- two operators, one last place -----------------------------------------------------


def test_two_operators_accepting_the_last_place_at_once_one_wins(stack, make_config):
    partner = "yayasan-pesona"
    publish_mitra_event(make_config, partner_updated(partner, 2, [("outpatient", 1, "-")]))
    wait_until(lambda: partner_version(stack.dbs, partner) == 2, message="capacity of 1")
    officer = stack.key("officer")
    operators = [stack.key("partner", partner), stack.key("partner", partner)]
    rounds, outcomes = 10, []
    for _ in range(rounds):
        ids = [
            stack.create(officer, partner_id=partner, service_type="outpatient").json()["id"]
            for _ in operators
        ]
        threads = [
            eventlet.spawn(stack.act, key, rid, "accept")
            for key, rid in zip(operators, ids, strict=True)
        ]
        answers = [thread.wait() for thread in threads]
        codes = sorted(
            "OK" if r.status_code == 200 else f"{r.status_code} {r.json()['code']}" for r in answers
        )
        outcomes.append(codes)
        with stack.dbs["rujukan"]() as uow:
            taken = uow.session.scalars(
                select(Referral.id).where(
                    Referral.partner_id == partner, Referral.status == "accepted"
                )
            ).all()
        assert len(taken) == 1
        # free the place for the next round
        assert stack.act(officer, taken[0], "cancel").status_code == 200
    print(f"\n[capacity] {rounds} rounds of two simultaneous accepts of the last place: {outcomes}")
    assert outcomes == [["409 CAPACITY_FULL", "OK"]] * rounds


def test_the_same_new_client_referred_twice_at_once_is_one_client(stack):
    officer = stack.key("officer")
    rounds = 10
    for serial in range(rounds):
        body = referral_body(serial=9000 + serial, partner_id="yayasan-kipas")
        threads = [
            eventlet.spawn(stack.call, "POST", "/api/v1/referrals", officer, json=body)
            for _ in range(2)
        ]
        answers = [thread.wait() for thread in threads]
        assert [r.status_code for r in answers] == [201, 201], [r.text for r in answers]
        clients = {r.json()["client"]["id"] for r in answers}
        assert len(clients) == 1  # one person, one client record
        assert sorted(r.json()["client"]["previous_referrals"] for r in answers) in ([0, 1], [0, 0])
    with stack.dbs["rujukan"]() as uow:
        distinct = uow.session.scalar(text("SELECT count(DISTINCT client_id) FROM referrals"))
        total = uow.session.scalar(text("SELECT count(*) FROM referrals"))
    print(f"\n[same client] {rounds} rounds of two simultaneous first referrals: {total} referrals")
    assert total - distinct >= rounds


# --- the response deadline -------------------------------------------------------------


def test_overdue_response_is_emitted_once_per_referral_by_two_instances(
    container_factory, rujukan_config, relays, seeded, published, clock
):
    config = rujukan_config(RESPONSE_DEADLINE_HOURS_BY_SOURCE="court=24")
    instances = [container_factory(RujukanService, config) for _ in range(2)]
    for instance in instances:
        instance.start()
    relays("mitra", "rujukan")
    wait_until(lambda: partners_known(seeded), message="rujukan's partner read model")
    actor = {"role": "officer", "key_id": "test", "partner_id": None}
    court, tat = [], []
    with entrypoint_hook(instances[0], "create_referral") as create:
        for n in range(20):
            source = "court" if n % 2 else "TAT"
            referral = create(referral_body(partner_id="yayasan-kipas", source=source), actor)
            (court if n % 2 else tat).append(referral["id"])
    with entrypoint_hook(instances[1], "transition_referral") as move:
        answered = tat.pop()
        move(answered, "accept", {}, {"role": "admin", "key_id": "test"})

    def overdue_rows():
        with seeded["rujukan"]() as uow:
            rows = uow.session.execute(
                text("SELECT payload FROM outbox WHERE event_type = 'referral_response_overdue'")
            ).all()
        return [json.loads(row[0])["data"]["referral_id"] for row in rows]

    def scans():
        return REGISTRY.get_sample_value(
            "bersinar_referral_deadline_scans_total", {"service": "rujukan"}
        )

    def scans_after(count):
        mark = scans()
        wait_until(lambda: scans() >= mark + count, message=f"{count} more deadline checks")

    scans_after(4)
    assert overdue_rows() == []
    clock.set(START + timedelta(hours=24, seconds=1))
    wait_until(lambda: len(overdue_rows()) == len(court), message="court referrals overdue")
    scans_after(10)
    assert sorted(overdue_rows()) == sorted(court)
    clock.set(START + timedelta(hours=48, seconds=1))
    wait_until(lambda: len(overdue_rows()) == 19, message="every unanswered referral overdue")
    scans_after(10)
    rows = overdue_rows()
    assert sorted(rows) == sorted(court + tat)
    assert answered not in rows
    events = wait_until(
        lambda: (
            len(published.of_type("referral_response_overdue")) == 19
            and published.of_type("referral_response_overdue")
        ),
        message="overdue events published",
    )
    print(
        f"\n[deadline] 2 instances, {scans():.0f} deadline checks in all, 20 requests "
        f"(10 court at 24 h, 10 TAT at 48 h, 1 answered): {len(rows)} overdue rows, "
        f"{len({e['data']['referral_id'] for e in events})} distinct referrals published"
    )
    assert len(rows) == len(set(rows)) == 19


# --- the partner read model ------------------------------------------------------------


def test_read_model_follows_mitra_events(stack, make_config):
    officer = stack.key("officer")
    partner = "yayasan-kipas"
    # an older snapshot arriving late changes nothing
    publish_mitra_event(make_config, partner_updated(partner, 3, [("aftercare", 4, "-")]))
    wait_until(lambda: partner_version(stack.dbs, partner) == 3, message="version 3")
    publish_mitra_event(make_config, partner_updated(partner, 2, [("inpatient", 4, "-")]))
    refused = stack.create(officer, partner_id=partner, service_type="inpatient")
    assert (refused.status_code, refused.json()["code"]) == (422, "NOT_ELIGIBLE")
    assert stack.create(officer, partner_id=partner, service_type="aftercare").status_code == 201

    # rujukan's own match reads its read model (the gateway's /partners/match reads the
    # gateway's copy of mitra's directory)
    match = rujukan_match(
        stack, {"sex": "M", "service_type": "aftercare", "kabupaten_kota": "Kota Bengkulu"}
    )
    assert [m["partner_id"] for m in match][:2] == ["yayasan-pesona", partner]

    with stack.dbs["rujukan"]() as uow:
        agreement_id = uow.session.scalar(
            text("SELECT agreement_id FROM agreement_view WHERE partner_id = :p"), {"p": partner}
        )
    # ended by an officer in mitra, whose relay publishes it
    ended = stack.call(
        "POST",
        f"/api/v1/partners/{partner}/agreements/{agreement_id}/terminate",
        json={"reason": "Izin operasional dicabut.", "terminated_on": "2026-06-01"},
    )
    assert ended.status_code == 200, ended.text

    def terminated():
        with stack.dbs["rujukan"]() as uow:
            return uow.session.scalar(
                text("SELECT terminated FROM agreement_view WHERE agreement_id = :a"),
                {"a": agreement_id},
            )

    wait_until(terminated, message="the termination")
    refused = stack.create(officer, partner_id=partner, service_type="aftercare")
    assert (refused.status_code, refused.json()["code"]) == (422, "NOT_ELIGIBLE")
    assert "perjanjian" in refused.json()["detail"]
    match = rujukan_match(stack, {"sex": "M", "service_type": "aftercare"})
    assert partner not in [m["partner_id"] for m in match]
    assert CLIENT_NAME not in json.dumps(match)
    with stack.dbs["rujukan"]() as uow:
        assert uow.session.scalar(select(func.count()).select_from(AccessAudit)) == 0
