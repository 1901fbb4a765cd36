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
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(component, url), revision)


def run_env(metadata: MetaData) -> None:
    """The body of every ``env.py``: online migrations on the configured URL."""
    url = context.config.get_main_option("sqlalchemy.url")
    engine = make_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
