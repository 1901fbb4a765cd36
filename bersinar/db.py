"""Database engines, the unit of work, and the outbox and inbox tables every service keeps.

A unit of work is one transaction: the state change, the events it causes (written to
the outbox) and, for a consumer, the inbox record of the event that caused it. It rolls
back unless ``commit()`` is called.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    ARRAY,
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    text,
    tuple_,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import TextClause

from bersinar.context import current_correlation_id
from bersinar.contracts.events import check_payload
from bersinar.envelope import make_event, parse_rfc3339, utcnow
from bersinar.errors import UnknownCursor
from bersinar.metrics import BUSINESS_EVENTS

# The same names in every service's schema, so the relay, the inbox and the tools need
# to know only the database.
OUTBOX = "outbox"
INBOX = "inbox"


def messaging_tables(metadata: MetaData) -> tuple[Table, Table]:
    """Add the outbox and inbox tables to a service's metadata (idempotent)."""
    if OUTBOX in metadata.tables:
        return metadata.tables[OUTBOX], metadata.tables[INBOX]
    outbox = Table(
        OUTBOX,
        metadata,
        Column("id", BigInteger, primary_key=True, autoincrement=True),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("event_type", String(64), nullable=False),
        # Events with the same key (e.g. one referral) are published in the order written.
        Column("ordering_key", String(128), nullable=False),
        Column("payload", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("available_at", DateTime(timezone=True), nullable=False),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("last_error", Text),
        Column("published_at", DateTime(timezone=True)),
    )
    Index("ix_outbox_pending", outbox.c.published_at, outbox.c.available_at, outbox.c.id)
    Index("ix_outbox_ordering_key", outbox.c.ordering_key, outbox.c.id)
    inbox = Table(
        INBOX,
        metadata,
        Column("consumer", String(160), primary_key=True),
        Column("event_id", String(36), primary_key=True),
        Column("event_type", String(64), nullable=False),
        Column("handled_at", DateTime(timezone=True), nullable=False),
    )
    return outbox, inbox


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine on a PostgreSQL URL (the one engine: docs/architecture.md)."""
    if not url.startswith("postgresql"):
        raise ValueError("a database URL must name PostgreSQL (postgresql+psycopg2://...)")
    if "poolclass" not in kwargs:
        # a process runs at most max_workers (10) workers at once, plus its timers: keep
        # that many connections (an overflow connection is closed when given back, and
        # opening one costs PostgreSQL a process); the pool opens them only when needed
        kwargs.setdefault("pool_size", int(os.environ.get("DB_POOL_SIZE", 10)))
        kwargs.setdefault("max_overflow", int(os.environ.get("DB_POOL_OVERFLOW", 5)))
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_when_idle(engine, float(os.environ.get("DB_PING_IDLE", 1.0)))
    return engine


def _ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Test a pooled connection before use only if it lay idle longer than
    ``idle_seconds``: a server restart or a dropped connection is found before a request
    uses it, as with ``pool_pre_ping``, but a busy process does not pay a round trip per
    transaction for it. A connection that fails the test is replaced (the pool tries up
    to three times); a connection lost while in use fails its transaction, and
    SQLAlchemy then renews the whole pool."""

    @event.listens_for(engine, "connect")
    def _fresh(_dbapi_connection, record):
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection, record):
        if record is not None:
            record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _check(dbapi_connection, record, _proxy):
        if time.monotonic() - record.info.get("returned_at", 0.0) <= idle_seconds:
            return
        try:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("SELECT 1")
            finally:
                cursor.close()
        except Exception as exc:
            raise DisconnectionError(f"pooled connection failed its test: {exc}") from exc


class _InsertIgnoring(Insert):
    """``INSERT … ON CONFLICT DO NOTHING``.

    SQLAlchemy 2.0's PostgreSQL ``insert().on_conflict_do_nothing()`` has no cache key,
    so it is compiled again on every execution (a millisecond or two of CPU each time, on
    the busiest statements: every inbox record, every new client). This statement is the
    standard INSERT, which is cached, with the clause as its fixed post-values text."""

    inherit_cache = True
    _post_values_clause = text("ON CONFLICT DO NOTHING")


def insert_ignoring(table) -> Insert:
    """An INSERT (of a table or a mapped class) that skips rows whose key exists; with
    ``.returning(...)`` it returns only the rows it inserted, also as an executemany."""
    return _InsertIgnoring(table)


def insert_ignoring_duplicates(session: Session, table: Table, values: dict[str, Any]) -> bool:
    """Insert one row unless its key exists; True if the row was inserted."""
    result = session.execute(insert_ignoring(table).values(**values))
    return result.rowcount == 1


def insert_rows(
    session: Session,
    table: Table,
    rows: list[dict[str, Any]],
    *,
    ignore_duplicates: bool = False,
    returning: str | None = None,
) -> list[Any]:
    """Rows (dicts with the same keys) into ``table`` in one statement, in their order:
    one array per column, unnested by PostgreSQL. Its text depends only on the table and
    the columns, so it is compiled once, however many rows (an ORM or ``insert()``
    executemany renders and binds every row in Python: a tenth of a consumer's CPU at a
    batch of events). With ``ignore_duplicates`` rows whose key exists are skipped;
    ``returning`` names a column whose values of the inserted rows are returned."""
    if not rows:
        return []
    columns = tuple(rows[0])
    statement = _unnest_insert(table, columns, ignore_duplicates, returning)
    result = session.execute(statement, _column_arrays(columns, rows))
    return list(result.scalars()) if returning else []


@cache
def _unnest_insert(
    table: Table, columns: tuple[str, ...], ignore_duplicates: bool, returning: str | None
) -> TextClause:
    return text(_unnest_insert_sql(table, columns, ignore_duplicates, returning))


def _column_arrays(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> dict[str, list]:
    """The parameters of ``_unnest_insert_sql``: each column's values, in row order."""
    return {f"p{i}": [row[name] for row in rows] for i, name in enumerate(columns)}


def _unnest_insert_sql(
    table: Table, columns: tuple[str, ...], ignore_duplicates: bool, returning: str | None
) -> str:
    """``INSERT … SELECT`` of one array per column (``:p0``, ``:p1``, …) in their order."""
    dialect = postgresql.dialect()
    types = []
    for name in columns:
        column_type = table.c[name].type
        if isinstance(column_type, JSON | ARRAY):
            raise TypeError(f"{table.name}.{name}: insert_rows takes scalar columns only")
        # strings as text: an explicit cast to varchar(n) would cut a value too long for
        # its column, where the insert's own assignment refuses it
        types.append("text" if isinstance(column_type, String) else column_type.compile(dialect))
    aliases = ", ".join(f"c{i}" for i in range(len(columns)))
    arrays = ", ".join(f"CAST(:p{i} AS {t}[])" for i, t in enumerate(types))
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT {aliases} FROM"
        f" unnest({arrays}) WITH ORDINALITY AS r({aliases}, n) ORDER BY n"
    )
    if ignore_duplicates:
        sql += " ON CONFLICT DO NOTHING"
    if returning:
        sql += f" RETURNING {table.c[returning].name}"
    return sql


# the channel a relay LISTENs on (per database): a transaction that wrote to the outbox
# notifies it at commit, so the relay publishes at once instead of polling the table
OUTBOX_CHANNEL = "bersinar_outbox"


_OUTBOX_COLUMNS = (
    "event_id",
    "event_type",
    "ordering_key",
    "payload",
    "created_at",
    "available_at",
    "attempts",
)


@cache
def _write_outbox(outbox: Table) -> TextClause:
    """Every event of a unit of work into the outbox, in the order emitted (its ids
    follow that order), and one notification for the relay, in one statement."""
    written = _unnest_insert_sql(outbox, _OUTBOX_COLUMNS, False, "id")
    return text(f"WITH written AS ({written}) SELECT pg_notify(:channel, '')")


class UnitOfWork:
    def __init__(
        self,
        session_factory: Callable[[], Session],
        source: str,
        metadata: MetaData,
        consumer: str | None = None,
    ):
        self._session_factory = session_factory
        self.source = source
        self.consumer = consumer
        self.outbox, self.inbox = messaging_tables(metadata)
        self.events: list[tuple[dict[str, Any], str]] = []
        # what a consumer read once and may reuse until the transaction ends
        self.memo: dict[str, Any] = {}
        self._before_commit: dict[str, Callable[[], None]] = {}
        self._committed = False

    def __enter__(self) -> UnitOfWork:
        self.session = self._session_factory()
        self.events = []
        self.memo = {}
        self._before_commit = {}
        self._committed = False
        return self

    def __exit__(self, *exc_info) -> None:
        if not self._committed:
            self.session.rollback()
        self.session.close()

    def emit(
        self,
        event_type: str,
        data: dict[str, Any],
        ordering_key: str,
        occurred_at: datetime | None = None,
    ) -> dict[str, Any]:
        """Record an event caused by this work; it is written to the outbox on commit.
        A payload that breaks its declared contract (bersinar.contracts.events) raises
        EventContractError here, and the work is not committed."""
        version = check_payload(event_type, self.source, data)
        envelope = make_event(
            event_type, self.source, data, current_correlation_id(), occurred_at, version
        )
        self.events.append((envelope, ordering_key))
        return envelope

    def first_delivery(self, event: dict[str, Any]) -> bool:
        """Record in this transaction that this consumer handles ``event``. False if it
        was handled before: the caller then changes nothing."""
        return str(event["event_id"]) in self.first_deliveries([event])

    def first_deliveries(self, events: list[dict[str, Any]]) -> set[str]:
        """``first_delivery`` for a batch in one statement: the ids of the events this
        consumer had not handled before (an id twice in the batch counts once)."""
        if not self.consumer:
            raise RuntimeError("a unit of work without a consumer cannot record deliveries")
        if not events:
            return set()
        now = utcnow()
        rows = {
            str(event["event_id"]): {
                "consumer": self.consumer,
                "event_id": str(event["event_id"]),
                "event_type": str(event["event_type"]),
                "handled_at": now,
            }
            for event in events
        }
        inserted = insert_rows(
            self.session,
            self.inbox,
            list(rows.values()),
            ignore_duplicates=True,
            returning="event_id",
        )
        return set(inserted)

    def before_commit(self, key: str, write: Callable[[], None]) -> None:
        """Run ``write`` once (per ``key``) when this work commits, before its events are
        written: e.g. the rows a batch added up, written in one statement."""
        self._before_commit.setdefault(key, write)

    def commit(self) -> None:
        for write in self._before_commit.values():
            write()
        if self.events:
            # the rows and the notification that wakes the relay when this commits
            # (PostgreSQL delivers a notification at commit) in one statement whose text
            # never changes (compiled once, whatever the number of events)
            now = utcnow()
            rows = [
                {
                    "event_id": envelope["event_id"],
                    "event_type": envelope["event_type"],
                    "ordering_key": ordering_key,
                    "payload": json.dumps(envelope, separators=(",", ":")),
                    "created_at": parse_rfc3339(envelope["occurred_at"]),
                    "available_at": now,
                    "attempts": 0,
                }
                for envelope, ordering_key in self.events
            ]
            params = _column_arrays(_OUTBOX_COLUMNS, rows) | {"channel": OUTBOX_CHANNEL}
            self.session.execute(_write_outbox(self.outbox), params)
        self.session.commit()
        self._committed = True
        for envelope, _ in self.events:
            BUSINESS_EVENTS.labels(self.source, envelope["event_type"]).inc()


class UnitOfWorkFactory:
    """What a service (or a command-line tool) holds: call it to begin a unit of work."""

    def __init__(self, url: str, source: str, metadata: MetaData, **engine_kwargs: Any):
        self.engine = make_engine(url, **engine_kwargs)
        self.source = source
        self.metadata = metadata
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def __call__(self, consumer: str | None = None) -> UnitOfWork:
        return UnitOfWork(self._sessions, self.source, self.metadata, consumer)

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


def outbox_pending(engine: Engine) -> tuple[int, datetime | None]:
    """(rows not yet published, when the oldest of them was written: None if none)."""
    with engine.connect() as connection:
        count, oldest = connection.execute(
            text("SELECT COUNT(*), MIN(created_at) FROM outbox WHERE published_at IS NULL")
        ).one()
    return int(count or 0), oldest if count else None


def ensure_database(url: str) -> bool:
    """Create the database ``url`` names on its server unless it exists (connecting to
    the server's ``postgres`` database, as the same user); True if it was created."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    target = make_url(url)
    engine = create_engine(
        target.set(database="postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT"
    )
    try:
        with engine.connect() as connection:
            exists = connection.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"),
                {"name": target.database},
            )
            if exists:
                return False
            quoted = connection.dialect.identifier_preparer.quote(target.database)
            connection.execute(text(f"CREATE DATABASE {quoted}"))
            return True
    finally:
        engine.dispose()


MAX_PAGE = 200


def page_newest_first(
    uow: UnitOfWork,
    query,
    model,
    params: dict[str, Any],
    render: Callable[[list[Any]], list[dict[str, Any]]],
    order: tuple[str, ...] = ("created_at", "id"),
) -> dict[str, Any]:
    """One page of ``query`` (rows of ``model``), newest first, by keyset: ``cursor`` in
    ``params`` is the id of the last item of the previous page, and the next page starts
    after that row's ``order`` columns, so pages neither skip nor repeat rows while new
    ones arrive. A cursor naming no row is refused (UNKNOWN_CURSOR, 422). ``render``
    turns the page's rows into items. Answers ``{"items": [...], "next_cursor": id or
    None}``, as every list does."""
    limit = max(1, min(int(params.get("limit") or 50), MAX_PAGE))
    columns = [getattr(model, name) for name in order]
    query = query.order_by(*(column.desc() for column in columns))
    cursor = params.get("cursor")
    if cursor:
        key_type = model.__mapper__.primary_key[0].type.python_type
        try:
            anchor = uow.session.get(model, key_type(cursor))
        except (TypeError, ValueError):
            anchor = None
        if anchor is None:
            raise UnknownCursor(
                "Kursor tidak dikenal; mulai lagi dari halaman pertama.",
                errors={"cursor": ["Tidak dikenal."]},
            )
        query = query.where(tuple_(*columns) < tuple_(*(getattr(anchor, n) for n in order)))
    rows = uow.session.scalars(query.limit(limit + 1)).all()
    page = rows[:limit]
    more = len(rows) > limit
    return {"items": render(page), "next_cursor": str(page[-1].id) if more else None}
