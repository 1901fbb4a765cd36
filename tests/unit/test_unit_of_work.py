"""The messaging tables of a service's metadata (the unit of work writing them, on
PostgreSQL: tests/integration/test_unit_of_work_transactions.py)."""

from __future__ import annotations

from sqlalchemy import MetaData

from bersinar.db import messaging_tables


def test_messaging_tables_are_added_once():
    metadata = MetaData()
    outbox, inbox = messaging_tables(metadata)
    assert messaging_tables(metadata) == (outbox, inbox)
    assert set(metadata.tables) == {"outbox", "inbox"}
