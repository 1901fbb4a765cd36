"""What creating a referral sends to PostgreSQL: one read of the partner (its agreements
and its active referrals counted in the same statement), no delete for a new client's
name tokens, and the outbox row with its relay notification in one statement."""

from __future__ import annotations

import json

from sqlalchemy import event, select, text

from services.rujukan import handlers
from services.rujukan.models import PartnerView
from tests.integration.test_rujukan_lifecycle import (  # noqa: F401 (fixtures)
    NOW,
    OFFICER,
    body,
    cipher,
    factory,
    partners,
)


def test_a_new_clients_referral_is_six_statements_and_the_commit(partners, cipher):  # noqa: F811
    sent = []

    def record(conn, cursor, statement, parameters, context, executemany):
        sent.append(" ".join(statement.split()))

    event.listen(partners.engine, "before_cursor_execute", record)
    try:
        with partners() as uow:
            made = handlers.create_referral(
                uow, cipher, body(partner_id="yayasan-kipas"), OFFICER, NOW, None
            )
            uow.commit()
    finally:
        event.remove(partners.engine, "before_cursor_execute", record)
    assert made["status"] == "requested"
    partner_reads = [s for s in sent if "FROM partner_view" in s]
    assert len(partner_reads) == 1
    assert "count(*)" in partner_reads[0]
    assert not [s for s in sent if s.startswith("DELETE")]
    outbox = [s for s in sent if "INSERT INTO outbox" in s]
    assert len(outbox) == 1 and "pg_notify" in outbox[0]
    assert not [s for s in sent if s.startswith("NOTIFY")]
    assert len(sent) == 6, sent
    # the partner's name of that one read is the one the event tells
    with partners() as uow:
        payload = uow.session.scalar(text("SELECT payload FROM outbox"))
        name = uow.session.scalar(
            select(PartnerView.partner_name).where(PartnerView.partner_id == "yayasan-kipas")
        )
    assert name and json.loads(payload)["data"]["partner_name"] == name
