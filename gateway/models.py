from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bersinar.db import messaging_tables


class Base(DeclarativeBase):
    pass


# The gateway emits no events yet; the tables keep its schema like every other's.
outbox, inbox = messaging_tables(Base.metadata)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(16))
    partner_id: Mapped[str | None] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(100))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class IdempotencyRecord(Base):
    """The first answer to a POST carrying an ``Idempotency-Key``, per API key: a retry
    of the same request gets it again and creates nothing new."""

    __tablename__ = "idempotency_records"

    api_key_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(100), primary_key=True)
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(300))
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None] = mapped_column()
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class ConsoleUser(Base):
    """A person signing in to the console (machines keep API keys). An operator
    (``partner``) acts for one partner only."""

    __tablename__ = "console_users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    partner_id: Mapped[str | None] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(255))
    failed_logins: Mapped[int] = mapped_column(Integer, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    password_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # a disabled account cannot sign in and has no session; enabling it again restores it
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ConsoleSession(Base):
    """A signed-in browser: the cookie carries a random token, the table its digest and
    the session's CSRF token."""

    __tablename__ = "console_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("console_users.id", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class FhirExport(Base):
    """A FHIR Bulk Data export (docs/fhir.md): asked by one API key, run in the gateway
    process; ``error`` holds an OperationOutcome (JSON) when it failed."""

    __tablename__ = "fhir_exports"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    api_key_id: Mapped[str] = mapped_column(String(36), index=True)
    # accepted, running, complete, failed (a cancelled export is deleted)
    status: Mapped[str] = mapped_column(String(16), index=True)
    request_url: Mapped[str] = mapped_column(Text)
    types: Mapped[str] = mapped_column(String(200))
    since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    transaction_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # the host's time (transaction_time is the system clock's, which tests move)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # the gateway process running it, and when that process last said it still does
    # (host time): an unfinished export whose heartbeat stopped has lost its process
    runner: Mapped[str] = mapped_column(String(36))
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    progress: Mapped[str] = mapped_column(String(200), server_default="")
    error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class FhirExportChunk(Base):
    """One chunk of an export's NDJSON file of a resource type, in order (``seq``)."""

    __tablename__ = "fhir_export_chunks"

    export_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("fhir_exports.id", ondelete="CASCADE"), primary_key=True
    )
    resource_type: Mapped[str] = mapped_column(String(40), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    lines: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
