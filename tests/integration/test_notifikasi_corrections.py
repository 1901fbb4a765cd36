"""notifikasi follows an admin's corrections through rujukan's events (made by rujukan's
own code): the partner is told in Indonesian, without the client's identity, that a
referral's last step was undone or that the client's data was corrected, the latter only
while the partner still holds the referral."""

from __future__ import annotations

from sqlalchemy import select, text

from harness import produced
from services.notifikasi.models import Notification
from services.notifikasi.service import NotifikasiService
from tests.integration.conftest import wait_until
from tests.integration.test_notifikasi_delivery import publish

KIPAS = "partner:yayasan-kipas"


def inbox(dbs):
    with dbs["notifikasi"]() as uow:
        rows = uow.session.scalars(select(Notification).order_by(Notification.created_at)).all()
        return [(n.recipient, n.event_type, n.event_id, n.title, n.body) for n in rows]


def handled(dbs) -> set[str]:
    with dbs["notifikasi"]() as uow:
        return {str(e) for e in uow.session.scalars(text("SELECT event_id FROM inbox"))}


def test_the_partner_is_told_of_an_undo_and_of_a_correction_while_it_holds_the_referral(
    container_factory, make_config, clean_databases, amqp_uri
):
    dbs = clean_databases
    config = make_config("notifikasi", OFFICER_EMAILS="", ADMIN_EMAILS="", MITRA_RPC_TIMEOUT=1)
    container_factory(NotifikasiService, config).start()
    admitted = produced.referral_moved("admitted", partner_id="yayasan-kipas", sex="F")
    undone = produced.referral_undone(admitted)
    open_one = produced.client_corrected(undone, sex="M")
    completed = produced.referral_moved("completed", partner_id="yayasan-kipas")
    ended_one = produced.client_corrected(completed, sex="F")
    publish(amqp_uri, undone, open_one, ended_one)
    sent = {undone["event_id"], open_one["event_id"], ended_one["event_id"]}
    wait_until(lambda: handled(dbs) >= sent, message="the three events handled")
    told = {
        event_id: (recipient, title, body) for recipient, _, event_id, title, body in inbox(dbs)
    }
    assert ended_one["event_id"] not in told  # the referral ended: the partner holds it no more
    recipient, title, body = told[undone["event_id"]]
    assert recipient == KIPAS
    assert title == "Langkah terakhir rujukan dibatalkan"
    assert "status dalam layanan dibatalkan, rujukan kembali berstatus diterima" in body
    assert undone["data"]["referral_id"] in body
    recipient, title, body = told[open_one["event_id"]]
    assert (recipient, title) == (KIPAS, "Data klien rujukan dikoreksi")
    assert open_one["data"]["referral_id"] in body
    for words in (title, body):
        assert open_one["data"]["client_pseudonym"] not in words
    print(f"\n[told] {told[undone['event_id']][2]}\n[told] {body}")
