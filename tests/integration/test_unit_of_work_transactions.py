"""The unit of work on PostgreSQL: state change, outbox and inbox in one transaction."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    MetaData,
    String,
    Table,
    func,
    insert,
    select,
)
from sqlalchemy.exc import DataError
from sqlalchemy.orm import sessionmaker

from bersinar.contracts.events import EventContractError
from bersinar.db import UnitOfWork, insert_rows, make_engine, messaging_tables
from harness import infra, produced
from tests.support.fixtures import empty_tables

METADATA = MetaData()
THINGS = Table(
    "things",
    METADATA,
    Column("id", String(36), primary_key=True),
    Column("status", String(20), nullable=False),
)
LINES = Table(
    "lines",
    METADATA,
    Column("seq", BigInteger, primary_key=True, autoincrement=True),
    Column("name", String(20), nullable=False, unique=True),
    Column("at", DateTime(timezone=True)),
)
SHAPES = Table("shapes", METADATA, Column("id", String(36), primary_key=True), Column("doc", JSON))
OUTBOX, INBOX = messaging_tables(METADATA)


@pytest.fixture(scope="module")
def database(test_run_id):
    with infra.own_database(f"bt_{test_run_id}_unit_of_work") as url:
        engine = make_engine(url)
        METADATA.create_all(engine)  # a table of the tests' own beside the messaging tables
        yield engine
        engine.dispose()


@pytest.fixture
def engine(database):
    empty_tables(database, METADATA)
    return database


@pytest.fixture
def sessions(engine):
    return sessionmaker(engine, expire_on_commit=False)


def uow(sessions, consumer=None):
    return UnitOfWork(sessions, "rujukan", METADATA, consumer)


def payload(status="requested", **referral_fields):
    """A referral event's payload as rujukan builds it: the unit of work is rujukan's."""
    return produced.referral_moved(status, **referral_fields)["data"]


def count(engine, table):
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(table))


def outbox_rows(engine):
    with engine.connect() as connection:
        return connection.execute(select(OUTBOX).order_by(OUTBOX.c.id)).mappings().all()


def test_commit_writes_the_change_and_the_events_in_order(engine, sessions):
    with uow(sessions) as work:
        work.session.execute(insert(THINGS).values(id="r1", status="requested"))
        first = work.emit("referral_requested", payload(), "referral:r1")
        second = work.emit("referral_accepted", payload("accepted"), "referral:r1")
        third = work.emit(
            "referral_response_overdue", produced.referral_overdue()["data"], "referral:r2"
        )
        work.commit()

    assert count(engine, THINGS) == 1
    rows = outbox_rows(engine)
    assert [row["event_id"] for row in rows] == [
        first["event_id"],
        second["event_id"],
        third["event_id"],
    ]
    assert [row["event_type"] for row in rows] == [
        "referral_requested",
        "referral_accepted",
        "referral_response_overdue",
    ]
    assert [row["ordering_key"] for row in rows] == ["referral:r1", "referral:r1", "referral:r2"]
    assert [json.loads(row["payload"]) for row in rows] == [first, second, third]
    assert all(row["published_at"] is None for row in rows)
    assert all(row["attempts"] == 0 for row in rows)


def test_without_commit_neither_change_nor_event_is_written(engine, sessions):
    with uow(sessions) as work:
        work.session.execute(insert(THINGS).values(id="r1", status="requested"))
        work.emit("referral_requested", payload(), "referral:r1")
    assert count(engine, THINGS) == 0
    assert count(engine, OUTBOX) == 0


def test_an_error_inside_the_work_rolls_everything_back(engine, sessions):
    with pytest.raises(RuntimeError):
        with uow(sessions) as work:
            work.session.execute(insert(THINGS).values(id="r1", status="requested"))
            work.emit("referral_requested", payload(), "referral:r1")
            work.session.flush()
            raise RuntimeError("boom")
    assert count(engine, THINGS) == 0
    assert count(engine, OUTBOX) == 0


def test_events_of_an_abandoned_work_do_not_leak_into_the_next(engine, sessions):
    work = uow(sessions)
    with work:
        work.emit("referral_requested", payload(), "referral:r1")
    with work:
        work.session.execute(insert(THINGS).values(id="r2", status="requested"))
        kept = work.emit("referral_requested", payload(), "referral:r2")
        work.commit()
    assert [row["event_id"] for row in outbox_rows(engine)] == [kept["event_id"]]


def test_commit_without_events_writes_only_the_change(engine, sessions):
    with uow(sessions) as work:
        work.session.execute(insert(THINGS).values(id="r1", status="requested"))
        work.commit()
    assert count(engine, THINGS) == 1
    assert count(engine, OUTBOX) == 0


def test_identity_in_an_emitted_event_is_refused_before_anything_is_written(engine, sessions):
    nik = "1771011708900001"
    with pytest.raises(ValueError) as refused:
        with uow(sessions) as work:
            work.session.execute(insert(THINGS).values(id="r1", status="requested"))
            work.emit("referral_requested", {**payload(), "nik": nik}, "referral:r1")
            work.commit()
    assert "nik" in str(refused.value) and nik not in str(refused.value)
    assert count(engine, THINGS) == 0
    assert count(engine, OUTBOX) == 0


def test_a_payload_that_breaks_its_contract_fails_the_transaction(engine, sessions):
    """A producer's bug (a field its event's contract requires left out) is refused at
    emit: the change it came with is not committed, and no consumer ever sees it."""
    incomplete = payload()
    del incomplete["partner_id"]
    with pytest.raises(EventContractError) as refused:
        with uow(sessions) as work:
            work.session.execute(insert(THINGS).values(id="r1", status="requested"))
            work.emit("referral_requested", payload(), "referral:r0")  # a good one first
            work.emit("referral_requested", incomplete, "referral:r1")
            work.commit()
    assert "data.partner_id" in str(refused.value)
    assert count(engine, THINGS) == 0
    assert count(engine, OUTBOX) == 0


def test_an_event_of_another_service_is_refused_at_emit(engine, sessions):
    """The contract names who emits each event: rujukan cannot announce a partner."""
    with pytest.raises(EventContractError) as refused:
        with uow(sessions) as work:
            work.emit("partner_updated", produced.partner_event("partner_updated")["data"], "p:1")
    assert "emitted by mitra, not rujukan" in str(refused.value)
    assert count(engine, OUTBOX) == 0


EVENT = {"event_id": "3f0c2f0e-8b4a-4c1e-9d65-2b8e3c1f7a10", "event_type": "partner_updated"}


def deliver(sessions, consumer, event=EVENT, commit=True):
    with uow(sessions, consumer) as work:
        first = work.first_delivery(event)
        if commit:
            work.commit()
    return first


def test_first_delivery_is_true_once_per_consumer_and_event(engine, sessions):
    assert deliver(sessions, "rujukan.partner_updated") is True
    assert deliver(sessions, "rujukan.partner_updated") is False
    assert deliver(sessions, "laporan.partner_updated") is True
    other = dict(EVENT, event_id="9a1b3c5d-0000-4000-8000-000000000001")
    assert deliver(sessions, "rujukan.partner_updated", other) is True
    assert count(engine, INBOX) == 3


def test_a_delivery_rolled_back_is_not_remembered(engine, sessions):
    assert deliver(sessions, "rujukan.partner_updated", commit=False) is True
    assert count(engine, INBOX) == 0
    assert deliver(sessions, "rujukan.partner_updated") is True


def test_a_second_delivery_in_the_same_work_is_not_first(sessions):
    with uow(sessions, "rujukan.partner_updated") as work:
        assert work.first_delivery(EVENT) is True
        assert work.first_delivery(EVENT) is False


def test_a_work_without_consumer_cannot_record_deliveries(sessions):
    with uow(sessions) as work:
        with pytest.raises(RuntimeError):
            work.first_delivery(EVENT)


def test_insert_rows_writes_every_row_in_order_and_skips_existing_keys(sessions, engine):
    at = datetime(2026, 12, 5, 7, 30, tzinfo=UTC)
    names = [f"n{i:03d}" for i in range(120)][::-1]  # not in key order: order is the list's
    with sessions() as session:
        inserted = insert_rows(
            session, LINES, [{"name": n, "at": at if i % 2 else None} for i, n in enumerate(names)]
        )
        session.commit()
    assert inserted == []
    with engine.connect() as connection:
        stored = connection.execute(select(LINES.c.name, LINES.c.at).order_by(LINES.c.seq)).all()
    assert [name for name, _ in stored] == names
    assert [when for _, when in stored] == [at if i % 2 else None for i in range(len(names))]

    with sessions() as session:
        again = insert_rows(
            session,
            LINES,
            [{"name": "n005"}, {"name": "fresh"}, {"name": "fresh"}],
            ignore_duplicates=True,
            returning="name",
        )
        session.commit()
    assert again == ["fresh"]
    assert count(engine, LINES) == len(names) + 1


def test_insert_rows_refuses_a_value_too_long_for_its_column_rather_than_cut_it(sessions, engine):
    with sessions() as session, pytest.raises(DataError, match="too long"):
        insert_rows(session, LINES, [{"name": "x" * 21}], ignore_duplicates=True)
    assert count(engine, LINES) == 0


def test_insert_rows_refuses_what_it_cannot_unnest_and_writes_nothing(sessions, engine):
    with sessions() as session:
        assert insert_rows(session, LINES, []) == []
        with pytest.raises(TypeError, match="shapes.doc"):
            insert_rows(session, SHAPES, [{"id": "a", "doc": {"k": 1}}])
    assert count(engine, SHAPES) == 0
    assert count(engine, LINES) == 0
