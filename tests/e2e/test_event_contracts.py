"""The contract test of every event: each event type is produced by its producer's real
code path (through the API and the shared clock, on a system started as `make run` starts
it), and every consumer that subscribes to it handles it (its inbox records it: loaded
through the declared contract, not parked) with the visible result people rely on, e.g.
the officer's notification of a rejection names the partner and the Indonesian reason."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
import requests
from sqlalchemy import create_engine, text

from bersinar.clock import write_clock
from bersinar.config import SERVICES
from bersinar.contracts.events import EVENT_TYPES, OPTIONAL_SUBSCRIBERS, contract_of
from bersinar.entrypoints import event_handlers_of
from cli.main import service_class
from harness import infra
from harness.data import referral_body, transfer_body
from harness.receivers import HttpReceiver, SmtpServer
from harness.system import System
from tests.support.fixtures import TEST_HMAC_KEY

START = datetime(2027, 3, 4, 3, 0, tzinfo=UTC)  # 10:00 WIB
LATER = datetime(2027, 3, 6, 4, 0, tzinfo=UTC)  # 49 hours on: overdue, expired
NEW_PARTNER = {
    "name": "Yayasan Kontrak Uji",
    "kind": "foundation",
    "kabupaten_kota": "Seluma",
    "sex_served": "all",
    "services": [{"service_type": "outpatient", "capacity": 5}],
}


def subscriptions() -> dict[str, list[str]]:
    """event type -> the consumers (``service.method``) that subscribe to it, read from
    the services' own event handlers."""
    found: dict[str, list[str]] = {}
    for name in SERVICES:
        for handler, queue in event_handlers_of(service_class(name), name):
            # the queue is named after the consumer: evt-<source>-<type>--<service>.<method>
            found.setdefault(handler.event_type, []).append(queue.split("--", 1)[1])
    return found


class Databases:
    def __init__(self, urls):
        self.engines = {c: create_engine(url, pool_size=1) for c, url in urls.items()}

    def rows(self, component, sql, **params):
        with self.engines[component].connect() as connection:
            return connection.execute(text(sql), params).all()

    def scalar(self, component, sql, **params):
        return self.rows(component, sql, **params)[0][0]

    def dispose(self):
        for engine in self.engines.values():
            engine.dispose()


def eventually(check, what, timeout=90.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout}s: {what}")
        time.sleep(0.3)


@pytest.fixture(scope="module")
def world(test_run_id, encryption_keys, var_dirs):
    var = var_dirs("contracts")
    clock = var / "clock"
    write_clock(clock, START)
    with infra.own_vhost(f"bersinar-contracts-{test_run_id}") as amqp_uri:
        system = System(
            amqp_uri,
            encryption_keys,
            TEST_HMAC_KEY,
            var,
            extra_env={
                "CLOCK_FILE": str(clock),
                "AGREEMENT_CHECK_INTERVAL": "0.5",
                "REPORT_CHECK_INTERVAL": "0.5",
                "RUJUKAN_RESPONSE_DEADLINE_CHECK_SECONDS": "1",
                "RUJUKAN_FOLLOW_UP_CHECK_SECONDS": "1",
                "REPORT_START_PERIOD": "2027-01",
                "REPORT_LOCK_AFTER_DAYS": "90",
            },
        )
        smtp = SmtpServer(var / "maildir", port=system.smtp_port).start()
        hook = HttpReceiver().start()
        dbs = None
        try:
            system.start_all()
            dbs = Databases(system.urls)
            yield produce_every_event(system, clock, hook), system, dbs
        finally:
            system.terminate_all()
            smtp.stop()
            hook.stop()
            if dbs is not None:
                dbs.dispose()


def ok(answer, status=200):
    assert answer.status_code == status, answer.text
    return answer.json()


def produce_every_event(system, clock, hook) -> dict:
    """Drive every producer through its real path; returns what the checks need."""
    officer = system.new_key("officer")
    kipas = system.new_key("partner", "yayasan-kipas")
    ok(
        system.post(
            "/api/v1/webhooks", {"url": hook.url, "event_types": list(EVENT_TYPES)}
        ),  # as admin: every event, sent or failed notifications included
        201,
    )
    # kipas can be reached by e-mail (sent) and asked to be told by SMS too, which has no
    # provider here (failed): notification_sent and notification_failed
    ok(
        requests.patch(
            f"{system.base_url}/api/v1/partners/yayasan-kipas",
            json={
                "contacts": [
                    {
                        "name": "Operator Kipas",
                        "role": "operator",
                        "email": "operator@kipas.test",
                        "phone": "+6281234567890",
                    }
                ],
                "services": [{"service_type": "outpatient", "capacity": 40}],
            },
            headers=system.headers(officer),
            timeout=10,
        )
    )  # partner_updated
    ok(
        requests.put(
            f"{system.base_url}/api/v1/notifications/preferences",
            json={
                "recipient": "partner:yayasan-kipas",
                "items": [
                    {"event_type": "referral_requested", "channels": ["inbox", "email", "sms"]}
                ],
            },
            headers=system.headers(),
            timeout=10,
        )
    )
    partner = ok(system.post("/api/v1/partners", NEW_PARTNER, key=officer), 201)
    new_id = partner["id"]  # partner_registered
    short = ok(
        system.post(
            f"/api/v1/partners/{new_id}/agreements",
            {
                "number": "PKS/KONTRAK/1/2027",
                "signed_on": "2027-01-20",
                "valid_from": "2027-02-01",
                "valid_until": "2027-03-05",
                "annual_target": 5,
            },
            key=officer,
        ),
        201,
    )  # agreement_signed; expiring now (one day left), expired after LATER
    ended = ok(
        system.post(
            f"/api/v1/partners/{new_id}/agreements",
            {
                "number": "PKS/KONTRAK/2/2027",
                "signed_on": "2027-02-20",
                "valid_from": "2027-03-01",
                "valid_until": "2028-02-28",
                "annual_target": 5,
            },
            key=officer,
        ),
        201,
    )
    ok(
        system.post(
            f"/api/v1/partners/{new_id}/agreements/{ended['id']}/terminate",
            {"reason": "Yayasan menutup layanan rawat jalan."},
            key=officer,
        )
    )  # agreement_terminated

    # rujukan knows the partners once it has mitra's events
    eventually(
        lambda: (
            system.get(
                "/api/v1/partners/match?sex=M&service_type=outpatient", key=officer
            ).status_code
            == 200
        ),
        "partner match",
    )

    def refer(partner_id="yayasan-kipas"):
        body = referral_body(partner_id=partner_id, service_type="outpatient", sex="M")
        return ok(system.post("/api/v1/referrals", body, key=officer), 201)["id"]

    def act(referral_id, action, body=None, who=kipas):
        return ok(system.post(f"/api/v1/referrals/{referral_id}/{action}", body or {}, key=who))

    # care ends with a discharge summary; the completion's follow-up day (the day after
    # START) has come by LATER: referral_follow_up_due
    def summary(outcome, *reasons, follow_up_on=None):
        return {
            "discharge": {
                "outcome": outcome,
                "reasons": list(reasons),
                "aftercare_plan": "Kontrol ke puskesmas tiap bulan.",
                "follow_up_on": follow_up_on,
            }
        }

    referrals = {}
    referrals["completed"] = refer()
    act(referrals["completed"], "accept")
    act(referrals["completed"], "admit")
    act(
        referrals["completed"],
        "complete",
        summary("improved", "program_completed", follow_up_on="2027-03-05"),
    )
    referrals["rejected"] = refer()
    act(referrals["rejected"], "reject", {"reason": "client_unreachable"})
    referrals["cancelled"] = refer()
    act(referrals["cancelled"], "cancel", who=officer)
    referrals["dropped_out"] = refer()
    act(referrals["dropped_out"], "accept")
    act(referrals["dropped_out"], "admit")
    act(referrals["dropped_out"], "drop-out", summary("unchanged", "lost_contact"))
    referrals["transferred"] = refer()
    act(referrals["transferred"], "accept")
    act(referrals["transferred"], "admit")
    act(
        referrals["transferred"],
        "transfer",
        transfer_body("yayasan-pesona", "Pindah domisili."),
        who=officer,
    )
    referrals["overdue"] = refer()
    # an admin's corrections: the admission undone (back to accepted), then the client's
    # name corrected
    referrals["undone"] = refer()
    act(referrals["undone"], "accept")
    act(referrals["undone"], "admit")
    undo = {"expected_status": "admitted", "reason": "Masuk layanan tercatat terlalu dini."}
    ok(system.post(f"/api/v1/referrals/{referrals['undone']}/undo", undo))
    client_id = ok(system.get(f"/api/v1/referrals/{referrals['undone']}"))["client"]["id"]
    correction = {"name": "Budi Santosa", "reason": "Nama salah ketik saat rujukan dibuat."}
    ok(system.post(f"/api/v1/clients/{client_id}/corrections", correction))  # client_corrected

    # January's report is overdue and February's due soon on START; kipas sends both:
    # one is approved, the other returned
    zero = dict(start=0, admitted=0, completed=0, dropped_out=0, transferred_out=0, end=0)
    for period, review, body in (
        ("2027-01", "approve", {}),
        ("2027-02", "return", {"comment": "Lengkapi jumlah sesi konseling."}),
    ):
        path = f"/api/v1/reports/yayasan-kipas/{period}"
        eventually(lambda p=path: system.get(p, key=kipas).status_code == 200, f"report {period}")
        ok(
            requests.put(
                system.base_url + path,
                json={"counts": {"total": zero}, "narrative": "Belum ada klien bulan ini."},
                headers=system.headers(kipas),
                timeout=10,
            )
        )  # report_submitted
        ok(system.post(f"{path}/{review}", body, key=officer))  # approved / returned

    write_clock(clock, LATER)  # referral_response_overdue, agreement_expired, follow-up due
    return {
        "new_partner": new_id,
        "short_agreement": short["id"],
        "referrals": referrals,
    }


def outbox_events(dbs, component, event_type) -> list[dict]:
    rows = dbs.rows(
        component, "SELECT payload FROM outbox WHERE event_type = :t ORDER BY id", t=event_type
    )
    return [json.loads(payload) for (payload,) in rows]


def test_every_event_type_reaches_every_consumer_that_subscribes(world):
    _, system, dbs = world
    subscribed = subscriptions()
    # notifikasi's own outcome events are consumed by no service: notifikasi plans what
    # they call for where it records the outcome (the webhook below asked for them)
    assert not set(subscribed) & OPTIONAL_SUBSCRIBERS
    assert set(subscribed) | OPTIONAL_SUBSCRIBERS == set(EVENT_TYPES), (
        "an event no consumer takes, or one undeclared"
    )
    covered = []
    for event_type in EVENT_TYPES:
        producer = contract_of(event_type).source
        produced = eventually(
            lambda t=event_type, p=producer: outbox_events(dbs, p, t), f"{event_type} produced"
        )
        event_id = produced[0]["event_id"]
        if event_type in OPTIONAL_SUBSCRIBERS:
            # (the first ones, of the seed's messages, came before the webhook existed)
            eventually(
                lambda t=event_type: dbs.scalar(
                    "notifikasi",
                    "SELECT count(*) FROM deliveries d JOIN outbox o "
                    "ON o.event_id::text = d.event_id::text "
                    "WHERE o.event_type = :t AND d.channel = 'webhook'",
                    t=t,
                ),
                f"{event_type}'s webhook delivery planned with the outcome",
            )
            covered.append((event_type, "notifikasi (with the outcome)"))
        for consumer in subscribed.get(event_type, []):
            component = consumer.split(".", 1)[0]
            eventually(
                lambda c=component, n=consumer, e=event_id: dbs.scalar(
                    c,
                    "SELECT count(*) FROM inbox WHERE consumer = :n AND event_id = :e",
                    n=n,
                    e=e,
                ),
                f"{consumer} handled {event_type}",
            )
            covered.append((event_type, consumer))
    print(f"\n[contracts] {len(covered)} event type x consumer pairs, each handled")
    parked = dbs.rows(
        "notifikasi", "SELECT count(*) FROM deliveries WHERE status = 'failed'"
    )  # the SMS without a provider, and nothing else
    assert parked[0][0] >= 1


def inbox_text(dbs, recipient, event_type, referral_id=None):
    sql = "SELECT title || ' ' || body FROM notifications WHERE recipient = :r AND event_type = :t"
    rows = [row[0] for row in dbs.rows("notifikasi", sql, r=recipient, t=event_type)]
    if referral_id is not None:
        rows = [row for row in rows if referral_id in row]
    return rows


def test_what_people_read_names_partners_and_reasons_in_indonesian(world):
    produced, system, dbs = world
    referrals = produced["referrals"]

    def officer_reads(event_type, referral_id):
        return eventually(
            lambda: inbox_text(dbs, "role:officer", event_type, referral_id),
            f"the officers' notification of {event_type}",
        )[0]

    rejected = officer_reads("referral_rejected", referrals["rejected"])
    assert "Yayasan Kipas" in rejected
    assert "klien tidak dapat dihubungi" in rejected
    assert "client_unreachable" not in rejected
    accepted = officer_reads("referral_accepted", referrals["completed"])
    assert "Yayasan Kipas" in accepted and "rawat jalan" in accepted
    transferred = officer_reads("referral_transferred", referrals["transferred"])
    assert "Yayasan Kipas" in transferred and "Yayasan Pesona" in transferred
    overdue = officer_reads("referral_response_overdue", referrals["overdue"])
    assert "Yayasan Kipas" in overdue
    follow_up = eventually(
        lambda: inbox_text(
            dbs, "partner:yayasan-kipas", "referral_follow_up_due", referrals["completed"]
        ),
        "the partner's follow-up reminder",
    )
    assert len(follow_up) == 1
    assert "5 Maret 2027" in follow_up[0] and "membaik" in follow_up[0]
    assert "improved" not in follow_up[0] and "puskesmas" not in follow_up[0]
    for event_type, words in (
        ("referral_transition_undone", "kembali berstatus diterima"),
        ("client_corrected", "mengoreksi data identitas klien"),
    ):
        told = eventually(
            lambda t=event_type: inbox_text(dbs, "partner:yayasan-kipas", t, referrals["undone"]),
            f"the partner's notification of {event_type}",
        )[0]
        assert words in told and "Budi" not in told
    report = eventually(
        lambda: inbox_text(dbs, "role:officer", "report_submitted"), "report_submitted read"
    )
    assert any("Yayasan Kipas" in row for row in report)
    expiring = eventually(
        lambda: inbox_text(dbs, "role:admin", "agreement_expiring"), "agreement_expiring read"
    )
    assert any("Yayasan Kontrak Uji" in row for row in expiring)
    failed = eventually(
        lambda: inbox_text(dbs, "role:admin", "notification_failed"), "notification_failed read"
    )
    assert any("referral_requested" in row or "rujukan" in row.lower() for row in failed)


def test_the_read_models_follow_what_mitra_and_rujukan_tell(world):
    produced, system, dbs = world
    new_id = produced["new_partner"]
    eventually(
        lambda: (
            dbs.rows(
                "rujukan", "SELECT partner_name FROM partner_view WHERE partner_id = :p", p=new_id
            )
            == [("Yayasan Kontrak Uji",)]
        ),
        "rujukan's read model has the new partner",
    )
    eventually(
        lambda: (
            dbs.rows("laporan", "SELECT name FROM partners WHERE partner_id = :p", p=new_id)
            == [("Yayasan Kontrak Uji",)]
        ),
        "laporan knows the new partner",
    )
    # capacity raised by partner_updated, in rujukan's read model
    services = dbs.scalar(
        "rujukan", "SELECT services FROM partner_view WHERE partner_id = 'yayasan-kipas'"
    )
    services = json.loads(services) if isinstance(services, str) else services
    capacities = {offer["service_type"]: offer["capacity"] for offer in services}
    assert capacities["outpatient"] == 40
    for status, referral_id in produced["referrals"].items():
        expected = {"overdue": "requested", "undone": "accepted"}.get(status, status)
        eventually(
            lambda r=referral_id, s=expected: (
                dbs.rows(
                    "laporan", "SELECT status FROM referral_records WHERE referral_id = :r", r=r
                )
                == [(s,)]
            ),
            f"laporan records referral {referral_id} as {expected}",
        )
    # how care ended, from the discharge summaries' codes
    ended = {
        status: dbs.rows(
            "laporan",
            "SELECT discharge_outcome FROM referral_records WHERE referral_id = :r",
            r=produced["referrals"][status],
        )
        for status in ("completed", "dropped_out", "transferred")
    }
    assert ended == {
        "completed": [("improved",)],
        "dropped_out": [("unchanged",)],
        "transferred": [("referred_onward",)],
    }


def test_the_gateway_serves_the_asyncapi_document_and_its_page_without_a_key(world):
    from bersinar.contracts import asyncapi

    _, system, _ = world
    served = requests.get(f"{system.base_url}/asyncapi.json", timeout=10)
    assert served.status_code == 200
    assert served.headers["Content-Type"].startswith("application/json")
    document = served.json()
    assert document == json.loads(json.dumps(asyncapi.document(document["info"]["version"])))
    assert set(document["channels"]) == set(EVENT_TYPES)
    page = requests.get(f"{system.base_url}/docs/events", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert 'id="referral_rejected"' in page.text and "<script" not in page.text
    assert 'href="/docs/events"' in requests.get(f"{system.base_url}/docs", timeout=10).text
