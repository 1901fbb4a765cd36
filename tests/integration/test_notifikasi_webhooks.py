"""Where a webhook may go and who may be told what, through the gateway and notifikasi
on the real broker and database: every target that is not public https refused with a
problem and nothing stored; national refused every event that describes a person; a
delivery signed as the Standard Webhooks library verifies it; a name that moved to a
private address since it was subscribed (DNS rebinding) refused when sending, without a
connection; https sent to the checked address while TLS speaks to the name.

The name -> address step is a stub (``harness.receivers.StubResolver``): the resolver is
outside the system. Nothing here connects anywhere but 127.0.0.0/8."""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
import subprocess
import sys

import eventlet
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select
from standardwebhooks import Webhook

from bersinar.config import ROOT
from bersinar.contracts.events import EVENT_TYPES
from bersinar.contracts.notifications import NATIONAL_EVENT_TYPES
from gateway.service import GatewayService
from harness import produced
from harness.receivers import StubResolver
from services.notifikasi import channels, handlers
from services.notifikasi.channels import Channels
from services.notifikasi.models import Delivery, WebhookSubscription
from services.notifikasi.service import NotifikasiService
from tests.integration.conftest import wait_until
from tests.integration.test_notifikasi_delivery import publish

PUBLIC = "93.184.215.14"  # never connected to: the tests move its names first


@pytest.fixture
def dns(monkeypatch):
    resolver = StubResolver(
        {
            "hook.test": ["127.0.0.1"],
            "localhost.test": ["127.0.0.1", "::1"],
            "v6-loopback.test": ["::1"],
            "intranet.test": ["10.20.30.40"],
            "kantor.test": ["172.20.0.5"],
            "rumah.test": ["192.168.1.20"],
            "ula.test": ["fd00:1234::20"],
            "fc.test": ["fc00::7"],
            "metadata.test": ["169.254.169.254"],
            "mixed.test": [PUBLIC, "10.0.0.9"],
            "mapped.test": ["::ffff:192.168.0.1"],
        }
    )
    monkeypatch.setattr(channels, "resolve", resolver)
    return resolver


def stored(dbs) -> int:
    with dbs["notifikasi"]() as uow:
        return uow.session.scalar(select(func.count()).select_from(WebhookSubscription))


REFUSED = [
    # (address, code): the document's shape refuses IPv6 literals outright
    ("http://hook.public.test/in", "WEBHOOK_TARGET_REFUSED"),  # plain http
    ("https://127.0.0.1/in", "WEBHOOK_TARGET_REFUSED"),
    ("https://127.0.0.53:8443/in", "WEBHOOK_TARGET_REFUSED"),
    ("https://[::1]/in", "VALIDATION_ERROR"),
    ("https://[fc00::1]/in", "VALIDATION_ERROR"),
    ("https://10.0.0.1/in", "WEBHOOK_TARGET_REFUSED"),
    ("https://10.255.0.1/in", "WEBHOOK_TARGET_REFUSED"),
    ("https://172.16.0.1/in", "WEBHOOK_TARGET_REFUSED"),
    ("https://172.31.255.1/in", "WEBHOOK_TARGET_REFUSED"),
    ("https://192.168.0.1/in", "WEBHOOK_TARGET_REFUSED"),
    ("https://169.254.0.1/in", "WEBHOOK_TARGET_REFUSED"),
    ("https://169.254.169.254/latest/meta-data/", "WEBHOOK_TARGET_REFUSED"),
    ("https://0.0.0.0/in", "WEBHOOK_TARGET_REFUSED"),
    ("https://localhost.test/in", "WEBHOOK_TARGET_REFUSED"),
    ("https://v6-loopback.test/in", "WEBHOOK_TARGET_REFUSED"),
    ("https://intranet.test/in", "WEBHOOK_TARGET_REFUSED"),
    ("https://kantor.test/in", "WEBHOOK_TARGET_REFUSED"),
    ("https://rumah.test/in", "WEBHOOK_TARGET_REFUSED"),
    ("https://ula.test/in", "WEBHOOK_TARGET_REFUSED"),
    ("https://fc.test/in", "WEBHOOK_TARGET_REFUSED"),
    ("https://metadata.test/in", "WEBHOOK_TARGET_REFUSED"),
    ("https://mixed.test/in", "WEBHOOK_TARGET_REFUSED"),
    ("https://mapped.test/in", "WEBHOOK_TARGET_REFUSED"),
    ("https://tidak-ada.test/in", "WEBHOOK_TARGET_REFUSED"),  # no such name
    ("http://hook.test:9/in", "WEBHOOK_TARGET_REFUSED"),  # allowed host, another port
]


@pytest.fixture
def api(container_factory, make_config, clean_databases, dns):
    """The gateway and notifikasi in this process; hook.test:8080 allowed as a test's
    receiver would be."""
    container_factory(
        NotifikasiService, make_config("notifikasi", WEBHOOK_ALLOW_HOSTS="hook.test:8080")
    ).start()
    gateway = container_factory(GatewayService, make_config("gateway"))
    gateway.start()
    base = f"http://{gateway.config['WEB_SERVER_ADDRESS']}"
    admin = {"Authorization": f"Bearer {gateway.config['ADMIN_KEY']}"}

    def post(body, headers=admin):
        return requests.post(f"{base}/api/v1/webhooks", json=body, headers=headers, timeout=15)

    def key(role):
        made = requests.post(
            f"{base}/api/v1/api-keys",
            json={"role": role, "label": f"uji webhook {role}"},
            headers=admin,
            timeout=15,
        )
        assert made.status_code == 201, made.text
        return {"Authorization": f"Bearer {made.json()['key']}"}

    return post, key, clean_databases


def test_every_target_that_is_not_public_https_is_refused_and_nothing_stored(api, dns):
    post, _, dbs = api
    for url, code in REFUSED:
        answer = post({"url": url, "event_types": ["report_submitted"]})
        assert answer.status_code == 422, (url, answer.text)
        assert answer.headers["Content-Type"].startswith("application/problem+json"), url
        problem = answer.json()
        assert problem["code"] == code, (url, problem)
        assert problem["errors"]["url"], (url, problem)
    assert stored(dbs) == 0
    # the names were resolved by the system's resolver step, the addresses not at all
    assert "mixed.test" in dns.asked and "tidak-ada.test" in dns.asked
    taken = post({"url": "http://hook.test:8080/in", "event_types": ["report_submitted"]})
    assert taken.status_code == 201, taken.text
    assert stored(dbs) == 1
    print(f"\n[webhook targets] refused={len(REFUSED)} taken=1 names_resolved={len(dns.asked)}")


def test_national_may_never_subscribe_to_an_event_that_describes_a_person(api):
    post, key, dbs = api
    national = key("national")
    personal = [t for t in EVENT_TYPES if t not in NATIONAL_EVENT_TYPES]
    assert {t for t in EVENT_TYPES if t.startswith("referral_")} <= set(personal)
    for event_type in personal:
        answer = post(
            {"url": "http://hook.test:8080/in", "event_types": ["report_submitted", event_type]},
            national,
        )
        assert answer.status_code == 403, (event_type, answer.text)
        assert answer.headers["Content-Type"].startswith("application/problem+json")
        assert (answer.json()["code"], answer.json()["errors"]) == (
            "FORBIDDEN",
            {"event_types": [event_type]},
        )
    # the role is refused before the address is looked at
    refused = post({"url": "https://10.0.0.1/in", "event_types": ["referral_accepted"]}, national)
    assert refused.status_code == 403
    assert stored(dbs) == 0
    taken = post({"url": "http://hook.test:8080/in", "event_types": list(NATIONAL_EVENT_TYPES)},
                 national)  # fmt: skip
    assert taken.status_code == 201, taken.text
    assert taken.json()["owner_role"] == "national"
    assert stored(dbs) == 1


def test_a_national_subscription_from_before_the_rule_is_told_no_referral(
    container_factory, make_config, clean_databases, amqp_uri, dns, receivers
):
    """A national subscription stored with a referral event before the rule, and a
    delivery of one already planned for it: neither is sent; its report events are."""
    dbs = clean_databases
    hook = receivers()
    dns.names["hook.test"] = ["127.0.0.1"]
    now = dt.datetime.now(dt.UTC)
    planned = produced.referral_moved("admitted", partner_id="yayasan-kipas")
    with dbs["notifikasi"]() as uow:
        uow.session.add(
            WebhookSubscription(
                id="sub-lama", url=f"http://hook.test:{hook.port}/in",
                event_types=["referral_accepted", "referral_admitted", "report_submitted"],
                secret="whsec_" + "A" * 44, owner="k-lama", owner_role="national",
                created_at=now,
            )
        )  # fmt: skip
        uow.session.add(
            Delivery(
                id="d-lama", event_id=planned["event_id"], event_type=planned["event_type"],
                occurred_at=now, recipient="webhook:sub-lama", channel="webhook",
                status="pending", attempts=0, next_attempt_at=now, event=json.dumps(planned),
                created_at=now, updated_at=now,
            )
        )  # fmt: skip
        uow.commit()
    config = make_config(
        "notifikasi", WEBHOOK_ALLOW_HOSTS=f"hook.test:{hook.port}", DELIVERY_POLL_INTERVAL=0.05
    )
    container_factory(NotifikasiService, config).start()
    referral = produced.referral_moved("accepted", partner_id="yayasan-kipas")
    report = produced.report_event(
        "report_submitted", "yayasan-kipas", "2026-10", "submitted_on_time"
    )
    publish(amqp_uri, referral, report)
    # both recorded (the officers' inbox has them): their deliveries were planned then
    wait_until(
        lambda: (
            {referral["event_id"], report["event_id"]}
            <= {d.event_id for d in deliveries(dbs, Delivery.channel == "inbox")}
        ),
        timeout=30,
        message="both events recorded",
    )
    rows = wait_until(
        lambda: (lambda r: all(d.status != "pending" for d in r) and r)(
            deliveries(dbs, Delivery.channel == "webhook")
        ),
        timeout=30,
        message="the webhook deliveries settled",
    )
    assert sorted((d.event_type, d.status) for d in rows) == [
        ("referral_admitted", "cancelled"),
        ("report_submitted", "sent"),
    ]
    assert [r.json()["event_id"] for r in hook.received] == [report["event_id"]]


def deliveries(dbs, *where):
    with dbs["notifikasi"]() as uow:
        rows = uow.session.scalars(select(Delivery).where(*where)).all()
        uow.session.expunge_all()
        return rows


def test_a_delivery_is_verified_by_the_library_and_its_target_checked_again_when_sent(
    container_factory, make_config, clean_databases, amqp_uri, dns, receivers
):
    dbs = clean_databases
    hook = receivers()
    dns.names.update({"hook.test": ["127.0.0.1"], "rebind.test": [PUBLIC]})
    config = make_config(
        "notifikasi",
        WEBHOOK_ALLOW_HOSTS=f"hook.test:{hook.port}",
        DELIVERY_POLL_INTERVAL=0.05,
        WEBHOOK_RETRY_BASE=0.2,
        WEBHOOK_MAX_ATTEMPTS=3,
        WEBHOOK_TIMEOUT=5,
    )
    targets = Channels.from_config(config).webhook.targets
    admin = {"role": "admin", "key_id": "k-admin"}
    with dbs["notifikasi"]() as uow:
        good = handlers.create_webhook(
            uow,
            {"url": f"http://hook.test:{hook.port}/bersinar", "event_types": ["partner_updated"]},
            admin,
            targets,
        )
        moved = handlers.create_webhook(
            uow, {"url": "https://rebind.test/in", "event_types": ["partner_updated"]}, admin,
            targets,
        )  # fmt: skip
        uow.commit()
    dns.names["rebind.test"] = ["127.0.0.1"]  # the name now leads to this machine
    container_factory(NotifikasiService, config).start()

    first = produced.partner_event("partner_updated", "yayasan-kipas")
    publish(amqp_uri, first)
    rows = wait_until(
        lambda: (lambda r: len(r) == 2 and all(d.status != "pending" for d in r) and r)(
            deliveries(dbs, Delivery.event_id == first["event_id"])
        ),  # the admins told of the refusal (notification_failed) are deliveries too
        timeout=30,
        message="both deliveries settled",
    )
    by_target = {d.recipient: d for d in rows}
    sent, refused = by_target[f"webhook:{good['id']}"], by_target[f"webhook:{moved['id']}"]

    (request,) = hook.received
    assert sent.status == "sent"
    assert Webhook(good["secret"]).verify(request.body, request.headers) == first
    assert request.headers["Webhook-Id"] == sent.id
    assert request.headers["Host"] == f"hook.test:{hook.port}"
    assert request.path == "/bersinar"
    # refused at once, for good: a retry would meet the same address
    assert (refused.status, refused.attempts) == ("failed", 1)
    assert "TARGET_REFUSED" in refused.last_error and "loopback" in refused.last_error
    assert dns.asked.count("rebind.test") == 2  # when subscribed, and when sent

    dns.names["hook.test"] = ["0.0.0.0"]  # an allowed name never leads just anywhere
    second = produced.partner_event("partner_updated", "yayasan-kipas")
    publish(amqp_uri, second)
    (again,) = wait_until(
        lambda: [
            d
            for d in deliveries(dbs, Delivery.event_id == second["event_id"])
            if d.recipient == f"webhook:{good['id']}" and d.status != "pending"
        ],
        timeout=30,
        message="the second delivery settled",
    )
    assert (again.status, again.attempts) == ("failed", 1)
    assert "tak tertentu" in again.last_error
    assert len(hook.received) == 1
    print(f"\n[webhook re-check] sent=1 refused_when_sent=2 errors={refused.last_error!r}")


# --- https to the checked address ----------------------------------------------------------


def certificates(folder, name: str):
    """A CA and a server certificate for ``name`` it signed: (CA file, server context)."""
    now = dt.datetime.now(dt.UTC)

    def certificate(subject, issuer, key, signer, *extensions):
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
        )
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical)
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = certificate(
        "Uji CA", "Uji CA", ca_key, ca_key, (x509.BasicConstraints(ca=True, path_length=0), True)
    )
    leaf = certificate(
        name, "Uji CA", key, ca_key, (x509.SubjectAlternativeName([x509.DNSName(name)]), False)
    )
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return ca_file, context


# The client runs in a process of its own, monkey-patched before anything imports ssl,
# as `bersinar serve` runs notifikasi: in this test process ssl was imported before
# eventlet patched it, and a client SSL context then recurses (eventlet's known limit).
CLIENT = """
import eventlet
eventlet.monkey_patch()
import json, sys
from harness.receivers import StubResolver
from services.notifikasi.channels import WebhookChannel, WebhookTargets
from services.notifikasi.domain import AllowedHost, TargetPolicy

port, ca_file, secret, envelope = json.loads(sys.argv[1])
resolver = StubResolver({"hook.test": ["127.0.0.2", "127.0.0.1"], "other.test": ["127.0.0.1"]})
policy = TargetPolicy((AllowedHost("hook.test"), AllowedHost("other.test")))
channel = WebhookChannel(WebhookTargets(policy, resolver), verify=ca_file)
outcomes = {}
for name in ("hook.test", "other.test"):
    try:
        channel.send(f"d-{name}", f"https://{name}:{port}/in", secret, envelope)
        outcomes[name] = "sent"
    except Exception as exc:
        outcomes[name] = type(exc).__name__
print(json.dumps(outcomes))
"""


def test_https_goes_to_the_checked_address_and_speaks_tls_to_the_name(tmp_path, receivers):
    with pytest.raises(socket.gaierror):  # the system's resolver does not know the name
        socket.getaddrinfo("hook.test", 443)
    ca_file, context = certificates(tmp_path, "hook.test")
    names_seen = []
    context.sni_callback = lambda sock, name, ctx: names_seen.append(name)
    hook = receivers(tls=context)
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    envelope = produced.partner_event("partner_updated", "yayasan-kipas")
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT, json.dumps([hook.port, str(ca_file), secret, envelope])],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    while client.poll() is None:  # the receiver answers in this process meanwhile
        eventlet.sleep(0.05)
    output, errors = client.communicate()
    assert client.returncode == 0, errors.decode()[-3000:]
    outcomes = json.loads(output.decode().strip().splitlines()[-1])

    # hook.test: 127.0.0.2 takes no connection on that port, the next checked address
    # does; the name never went to the system's resolver, and TLS spoke to it
    assert outcomes == {"hook.test": "sent", "other.test": "SSLError"}
    (request,) = hook.received
    assert names_seen == ["hook.test", "other.test"]
    assert request.headers["Host"] == f"hook.test:{hook.port}"
    assert Webhook(secret).verify(request.body, request.headers) == envelope
    print(f"\n[webhook tls] outcomes={outcomes} sni={names_seen}")
