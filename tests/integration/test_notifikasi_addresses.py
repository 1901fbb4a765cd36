"""A fresh install: the seeded partners have no contacts and no BNNP staff address is
configured. notifikasi plans no delivery it cannot make: nothing fails, nothing is logged
at ERROR, no ``notification_failed`` is announced. Each delivery left out is counted, and
admins are told once per recipient, channel and day, in their inbox and on the console's
dashboard: with two instances of notifikasi, event types that repeat, and events
delivered again. Once an address is filled in, it is used.

Real RabbitMQ, PostgreSQL and SMTP; the events are made by mitra and rujukan themselves,
through the gateway, and published by their relays."""

from __future__ import annotations

import logging
from datetime import timedelta

import eventlet
import pytest
import requests
from eventlet import tpool
from prometheus_client import REGISTRY
from sqlalchemy import func, select, text, update
from sqlalchemy.pool import NullPool

from bersinar.clock import FileClock
from bersinar.codes import LOCAL_TZ
from bersinar.db import UnitOfWorkFactory
from bersinar.envelope import utcnow
from gateway.console import accounts
from gateway.console.web import SESSION_COOKIE
from gateway.service import GatewayService
from harness.data import referral_body
from harness.receivers import SmtpServer
from services.laporan.service import LaporanService
from services.mitra.domain import SEED_PARTNERS
from services.mitra.service import MitraService
from services.notifikasi import domain, handlers
from services.notifikasi.models import Base as NotifikasiBase
from services.notifikasi.models import Delivery, MissingAddress, Notification
from services.notifikasi.models import outbox as notifikasi_outbox
from services.notifikasi.service import NotifikasiService
from services.rujukan.models import outbox as rujukan_outbox
from services.rujukan.service import RujukanService
from tests.integration.conftest import partners_known, wait_until

KIPAS, PESONA = "yayasan-kipas", "yayasan-pesona"
NAMES = {p.id: p.name for p in SEED_PARTNERS}
KIPAS_EMAIL = "operator@kipas.test"
PASSWORD = "sandi-uji-alamat-1"


@pytest.fixture
def smtp(tmp_path):
    server = SmtpServer(tmp_path / "maildir").start()
    yield server
    server.stop()


CONTACTS_KEPT = 1  # seconds notifikasi keeps mitra's answer about a partner (the default)


@pytest.fixture
def fresh_install(container_factory, make_config, relays, seeded, smtp, clock_file):
    """Every service, two instances of notifikasi, no staff address configured; mitra's
    seed (partners without contacts) published as on a first start. laporan runs for the
    dashboard; its relay does not (its timers' events are not what this is about).
    Also returns the count of admins' notices before anything started."""
    notices_before = metric("bersinar_address_notices_total")
    for name, cls in (
        ("mitra", MitraService),
        ("rujukan", RujukanService),
        ("laporan", LaporanService),
    ):
        container_factory(cls, make_config(name)).start()
    config = make_config(
        "notifikasi",
        OFFICER_EMAILS="",
        ADMIN_EMAILS="",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=smtp.port,
        SMTP_TIMEOUT=5,
        DELIVERY_POLL_INTERVAL=0.05,
        CLOCK_FILE=str(clock_file.path),
        CONTACTS_CACHE_SECONDS=CONTACTS_KEPT,
    )
    for _ in range(2):
        container_factory(NotifikasiService, config).start()
    gateway = container_factory(GatewayService, make_config("gateway"))
    gateway.start()
    relays("mitra", "rujukan", "notifikasi")
    wait_until(lambda: partners_known(seeded), message="rujukan's partner read model")
    base = f"http://{gateway.config['WEB_SERVER_ADDRESS']}"
    admin = {"Authorization": f"Bearer {gateway.config['ADMIN_KEY']}"}
    return base, admin, seeded, notices_before


def metric(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


def told_and_skipped(dbs):
    """Per recipient: messages in its inbox, and e-mails not planned for want of an
    address; one statement, so one snapshot of both."""
    with dbs["notifikasi"]() as uow:
        rows = uow.session.execute(
            text(
                "SELECT n.recipient, COUNT(*), (SELECT COALESCE(SUM(m.skipped), 0) "
                "FROM missing_addresses m WHERE m.recipient = n.recipient "
                "AND m.channel = 'email') FROM notifications n "
                "WHERE n.event_type <> :notice GROUP BY n.recipient"
            ),
            {"notice": domain.ADDRESS_NOTICE},
        ).all()
    return {recipient: (told, skipped) for recipient, told, skipped in rows}


def inbox_of(dbs, recipient, event_type):
    with dbs["notifikasi"]() as uow:
        return uow.session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.recipient == recipient, Notification.event_type == event_type)
        )


def notices(dbs):
    with dbs["notifikasi"]() as uow:
        rows = uow.session.scalars(
            select(Notification).where(Notification.event_type == domain.ADDRESS_NOTICE)
        ).all()
        uow.session.expunge_all()
        return rows


def missing(dbs):
    with dbs["notifikasi"]() as uow:
        return {
            (m.recipient, m.channel, m.day): m.skipped
            for m in uow.session.scalars(select(MissingAddress))
        }


def count(factory, model, *where):
    with factory() as uow:
        return uow.session.scalar(select(func.count()).select_from(model).where(*where))


def place(base, headers, partner):
    body = referral_body(partner_id=partner, service_type="outpatient")
    response = requests.post(f"{base}/api/v1/referrals", headers=headers, json=body, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def console_session(dbs, base) -> requests.Session:
    """An admin signed in to the console (the account made as the CLI makes it)."""
    with dbs["gateway"]() as uow:
        data = {"username": "admin-alamat", "full_name": "Admin Uji", "role": "admin"}
        accounts.create_user(uow, {**data, "partner_id": None, "password": PASSWORD}, "test")
        uow.commit()
    with dbs["gateway"]() as uow:
        token = accounts.sign_in(uow, "admin-alamat", PASSWORD, accounts.Policy())
        uow.commit()
    session = requests.Session()
    session.cookies.set(SESSION_COOKIE, token, path="/console")
    return session


def test_a_fresh_install_tells_admins_once_and_uses_an_address_once_filled_in(
    fresh_install, caplog, smtp, clock_file
):
    base, admin, dbs, notices_before = fresh_install
    caplog.set_level(logging.WARNING)
    skipped_before = metric(
        "bersinar_notifications_skipped_total", channel="email", event_type="referral_requested"
    )
    key = requests.post(
        f"{base}/api/v1/api-keys",
        headers=admin,
        json={"role": "partner", "partner_id": KIPAS, "label": "operator Kipas"},
        timeout=30,
    )
    assert key.status_code == 201, key.text
    kipas = {"Authorization": f"Bearer {key.json()['key']}"}

    # a burst of one event type to two partners, and answers that go to the officers
    placed = {KIPAS: [], PESONA: []}
    for i in range(12):
        partner = PESONA if i % 3 == 0 else KIPAS
        placed[partner].append(place(base, admin, partner))
    for referral_id in placed[KIPAS][:3]:
        accepted = requests.post(
            f"{base}/api/v1/referrals/{referral_id}/accept", headers=kipas, timeout=30
        )
        assert accepted.status_code == 200, accepted.text
    wait_until(
        lambda: (
            inbox_of(dbs, f"partner:{KIPAS}", "referral_requested") == 8
            and inbox_of(dbs, f"partner:{PESONA}", "referral_requested") == 4
            and inbox_of(dbs, "role:officer", "referral_accepted") == 3
            and inbox_of(dbs, "role:admin", "agreement_signed") == 5
        ),
        timeout=60,
        message="every inbox message of the burst and of the seed",
    )

    # every person-facing event left its e-mail out, counted once: as many as inbox messages
    figures = told_and_skipped(dbs)
    assert {r for r, (told, skipped) in figures.items() if told != skipped} == set()
    assert set(figures) == {
        *(f"partner:{p.id}" for p in SEED_PARTNERS),
        "role:officer",
        "role:admin",
    }
    assert figures[f"partner:{KIPAS}"][1] >= 9  # 8 requests and its agreement
    # nothing planned that cannot be made, nothing failed, nothing announced as failed
    assert count(dbs["notifikasi"], Delivery, Delivery.channel != "inbox") == 0
    assert count(dbs["notifikasi"], Delivery, Delivery.status != "sent") == 0
    assert (
        count(
            dbs["notifikasi"],
            notifikasi_outbox,
            notifikasi_outbox.c.event_type == "notification_failed",
        )
        == 0
    )
    assert (
        metric(
            "bersinar_notifications_skipped_total",
            channel="email",
            event_type="referral_requested",
        )
        - skipped_before
        == 12
    )

    # the admins were told once per recipient and channel, by name, with what to do
    day = FileClock(str(clock_file.path)).today()
    told = notices(dbs)
    expected = {(r, "email", day) for r in figures}
    assert set(missing(dbs)) == expected
    assert len(told) == len(expected) == 7
    assert {n.recipient for n in told} == {"role:admin"}
    kipas_notice = next(n for n in told if NAMES[KIPAS] in n.title)
    assert kipas_notice.title == "Alamat email mitra Yayasan Kipas belum diisi"
    assert "Kontak" in kipas_notice.body and "PATCH /api/v1/partners/" in kipas_notice.body
    officer_notice = next(n for n in told if "petugas" in n.title)
    assert "NOTIFIKASI_OFFICER_EMAILS" in officer_notice.body
    for partner in SEED_PARTNERS:
        assert sum(partner.name in n.title for n in told) == 1
    assert metric("bersinar_address_notices_total") - notices_before == 7

    # the dashboard shows the same, to staff
    console = console_session(dbs, base)
    page = console.get(f"{base}/console/monev", timeout=60)
    assert page.status_code == 200, page.text[:500]
    section = page.text.split('id="alamat"', 1)[1]
    assert "Alamat belum diisi" in section
    for name in (*NAMES.values(), "petugas rehabilitasi BNNP", "administrator Bersinar"):
        assert name in section

    # rujukan's relay publishes every referral event again (as after a crash before
    # its commit): each is a duplicate, nothing more is counted or told
    again = rujukan_outbox.c.event_type.in_(("referral_requested", "referral_accepted"))
    rows = count(dbs["rujukan"], rujukan_outbox, again)
    assert rows == 15
    duplicates = {
        c: metric(
            "bersinar_events_handled_total",
            service="notifikasi",
            consumer=f"on_{c}",
            event_type=c,
            outcome="duplicate",
        )
        for c in ("referral_requested", "referral_accepted")
    }
    before_again = missing(dbs)
    with dbs["rujukan"]() as uow:
        uow.session.execute(update(rujukan_outbox).where(again).values(published_at=None))
        uow.commit()
    wait_until(
        lambda: (
            sum(
                metric(
                    "bersinar_events_handled_total",
                    service="notifikasi",
                    consumer=f"on_{c}",
                    event_type=c,
                    outcome="duplicate",
                )
                - duplicates[c]
                for c in duplicates
            )
            == rows
        ),
        timeout=60,
        message="every referral event delivered again and found a duplicate",
    )
    assert missing(dbs) == before_again
    assert len(notices(dbs)) == 7

    # the next day, the same gap is told again, once
    clock_file.set(day + timedelta(days=1))
    for _ in range(2):
        place(base, admin, PESONA)
    wait_until(
        lambda: inbox_of(dbs, f"partner:{PESONA}", "referral_requested") == 6,
        message="the next day's requests",
    )
    assert missing(dbs)[(f"partner:{PESONA}", "email", day + timedelta(days=1))] == 2
    assert len(notices(dbs)) == 8

    # an address filled in (the console's contact form) is used as soon as notifikasi's
    # copy of mitra's answer has expired (NOTIFIKASI_CONTACTS_CACHE_SECONDS, 1 s)
    form = console.get(f"{base}/console/mitra/{KIPAS}", timeout=30)
    csrf = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    saved = console.post(
        f"{base}/console/mitra/{KIPAS}/kontak",
        data={
            "csrf": csrf,
            "contact.name": "Operator Kipas",
            "contact.role": "operator",
            "contact.email": KIPAS_EMAIL,
        },
        timeout=30,
    )
    assert saved.status_code == 200 and "Kontak disimpan." in saved.text, saved.text[:500]
    assert KIPAS_EMAIL in saved.text
    eventlet.sleep(CONTACTS_KEPT)
    referral_id = place(base, admin, KIPAS)
    (mail,) = wait_until(smtp.messages, timeout=60, message="the e-mail to Kipas")
    assert (
        mail["To"] == KIPAS_EMAIL
        and mail["Subject"] == "[Bersinar] Rujukan baru menunggu tanggapan"
    )
    assert referral_id in mail.get_content()
    assert (f"partner:{KIPAS}", "email", day + timedelta(days=1)) not in missing(dbs)
    assert count(dbs["notifikasi"], Delivery, Delivery.status.in_(("failed", "skipped"))) == 0

    # the form refuses a bad address at its field; a contact can be removed again
    bad = console.post(
        f"{base}/console/mitra/{KIPAS}/kontak",
        data={"csrf": csrf, "contact.name": "Salah", "contact.role": "operator",
              "contact.email": "bukan-alamat"},
        timeout=30,
    )  # fmt: skip
    assert bad.status_code == 422 and "Alamat email tidak valid." in bad.text
    removed = console.post(
        f"{base}/console/mitra/{KIPAS}/kontak/0/hapus", data={"csrf": csrf}, timeout=30
    )
    assert removed.status_code == 200 and "Kontak dihapus." in removed.text
    assert KIPAS_EMAIL not in removed.text and "Belum ada kontak" in removed.text

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    print(
        f"\n[fresh install] referrals=15 accepted=3 instances=2 "
        f"skipped_emails={sum(s for _, s in figures.values())} notices=8 (7 on day 1, 1 on "
        f"day 2) redelivered={rows} failed=0 notification_failed=0 error_lines=0 "
        f"email_after_contact=1"
    )


def test_two_instances_counting_the_same_gap_at_once_tell_the_admins_once(
    clean_databases, database_urls
):
    """The notice is guarded by the database: a second transaction writing the same
    recipient, channel and day waits for the first, then only adds to its count."""
    factory = UnitOfWorkFactory(
        database_urls["notifikasi"], "notifikasi", NotifikasiBase.metadata, poolclass=NullPool
    )
    now = utcnow()
    first = factory()
    first.__enter__()
    try:
        handlers.note_missing_address(first, f"partner:{KIPAS}", "email", NAMES[KIPAS])
        assert handlers.flush_missing_addresses(first, now) == 1  # inserted, not committed

        def second_instance():
            with factory() as uow:
                for _ in range(2):
                    handlers.note_missing_address(uow, f"partner:{KIPAS}", "email", None)
                notices = handlers.flush_missing_addresses(uow, now)
                uow.commit()
            return notices

        # a thread of its own: its wait for the first transaction's row blocks
        second = eventlet.spawn(tpool.execute, second_instance)
        wait_until(
            lambda: waiting_on_a_lock(factory),
            message="the second transaction waiting for the first one's row",
        )
        first.commit()
    finally:
        first.__exit__(None, None, None)
    assert second.wait() == 0
    assert missing(clean_databases) == {
        (f"partner:{KIPAS}", "email", now.astimezone(LOCAL_TZ).date()): 3
    }
    (notice,) = notices(clean_databases)
    assert notice.title == f"Alamat email mitra {NAMES[KIPAS]} belum diisi"
    factory.dispose()


def waiting_on_a_lock(factory) -> bool:
    with factory() as uow:
        return bool(
            uow.session.scalar(
                text(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                )
            )
        )


def test_an_address_found_missing_when_sending_is_skipped_quietly(
    container_factory, make_config, relays, seeded, caplog
):
    """mitra did not answer when the events came, so their e-mails were planned; when
    mitra answers at send time that the partners have no contacts, each delivery is
    skipped (not failed, not announced) and the admins are told, once a partner."""
    caplog.set_level(logging.WARNING)
    config = make_config(
        "notifikasi",
        OFFICER_EMAILS="",
        ADMIN_EMAILS="",
        MITRA_RPC_TIMEOUT=1,
        DELIVERY_POLL_INTERVAL=0.05,
        DELIVERY_RETRY_BASE=0.2,
        DELIVERY_RETRY_MAX=1,
        DELIVERY_MAX_ATTEMPTS=100,
    )
    container_factory(NotifikasiService, config).start()
    relays("mitra")  # the seed's events, made by mitra, while mitra itself is not running
    partner_emails = (Delivery.channel == "email", Delivery.recipient.like("partner:%"))
    wait_until(
        lambda: (
            count(seeded["notifikasi"], Delivery, *partner_emails, Delivery.attempts >= 1)
            == len(SEED_PARTNERS)
        ),
        timeout=60,
        message="the partners' e-mails planned and tried while mitra is away",
    )
    container_factory(MitraService, make_config("mitra")).start()
    wait_until(
        lambda: (
            count(seeded["notifikasi"], Delivery, *partner_emails, Delivery.status == "skipped")
            == len(SEED_PARTNERS)
        ),
        timeout=60,
        message="every partner e-mail skipped",
    )
    dbs = seeded
    assert count(dbs["notifikasi"], Delivery, Delivery.status.in_(("failed", "pending"))) == 0
    assert (
        count(
            dbs["notifikasi"],
            notifikasi_outbox,
            notifikasi_outbox.c.event_type == "notification_failed",
        )
        == 0
    )
    with dbs["notifikasi"]() as uow:
        delivery_id = uow.session.scalar(select(Delivery.id).where(*partner_emails).limit(1))
        attempt_log = handlers.get_delivery(uow, delivery_id)["attempt_log"]
    assert attempt_log[-1]["outcome"] == "skipped"
    assert attempt_log[-1]["error"].startswith("NO_ADDRESS")
    assert {a["outcome"] for a in attempt_log[:-1]} <= {"failed"}  # mitra away: retried
    told = {n.title for n in notices(dbs)}
    for partner in SEED_PARTNERS:
        assert f"Alamat email mitra {partner.name} belum diisi" in told
    assert "Alamat email administrator Bersinar belum diatur" in told
    assert len(told) == len(SEED_PARTNERS) + 1
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    print(
        f"\n[skipped when sent] partner_emails={len(SEED_PARTNERS)} "
        f"attempts_of_one={len(attempt_log)} notices={len(told)} failed=0 error_lines=0"
    )
