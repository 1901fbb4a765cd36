"""Alembic for every component: each keeps its own ``migrations/`` folder whose ``env.py``
calls ``run_env`` with its metadata."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool

from bersinar.config import ROOT
from bersinar.db import make_engine

log = logging.getLogger(__name__)


def migrations_dir(component: str) -> Path:
    if component == "gateway":
        return ROOT / "gateway" / "migrations"
    return ROOT / "services" / component / "migrations"


def alembic_config(component: str, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir(component)))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.set_main_option("version_table", "alembic_version")
    return config


def upgrade(component: str, url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(component, url), revision)


def schema_is_current(component: str, url: str) -> bool:
    """The component's database is reachable and migrated to the newest revision."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    heads = set(ScriptDirectory.from_config(alembic_config(component, url)).get_heads())
    engine = make_engine(url, poolclass=pool.NullPool)
    alembic_log = logging.getLogger("alembic.runtime.migration")
    level = alembic_log.level
    alembic_log.setLevel(logging.WARNING)  # it tells of its context on every look
    try:
        with engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    finally:
        alembic_log.setLevel(level)
        engine.dispose()
    return current == heads


def wait_for_schema(component: str, url: str, progress, interval: float = 1.0) -> None:
    """Until the component's database answers at the newest revision: a process started
    with its database (or before `bersinar setup` migrated it) waits instead of failing.
    ``progress(reason)`` is told every few seconds why it still waits."""
    import time

    told = 0.0
    while True:
        try:
            if schema_is_current(component, url):
                return
            reason = "not migrated to the newest revision yet"
        except Exception as exc:  # unreachable, starting, recovering: wait
            first_line = (str(exc).strip().splitlines() or [""])[0]
            reason = f"{type(exc).__name__}: {first_line}"
        now = time.monotonic()
        if now - told >= 5:
            progress(reason)
            told = now
        time.sleep(interval)


def run_env(metadata: MetaData) -> None:
    """The body of every ``env.py``: online migrations on the configured URL."""
    url = context.config.get_main_option("sqlalchemy.url")
    engine = make_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


def create_attachments_table() -> None:
    """The ``attachments`` table of bersinar.attachments as first made, for the
    migration of each service that keeps attachments (written out here, not derived
    from the table of today, so that the migrations stay what they were)."""
    import sqlalchemy as sa
    from alembic import op

    op.create_table(
        "attachments",
        sa.Column("id", sa.String(length=36), primary_key=True),
        sa.Column("owner_id", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=40), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_by", sa.String(length=120), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_by", sa.String(length=120)),
        sa.Column("removed_at", sa.DateTime(timezone=True)),
        sa.Column("removed_reason", sa.String(length=1000)),
    )
    op.create_index("ix_attachments_owner", "attachments", ["owner_id", "uploaded_at"])


def drop_attachments_table() -> None:
    from alembic import op

    op.drop_index("ix_attachments_owner", table_name="attachments")
    op.drop_table("attachments")
