"""Each component's Alembic migrations, run on PostgreSQL, give exactly its models."""

from __future__ import annotations

from importlib import import_module

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from bersinar.config import COMPONENTS


@pytest.mark.parametrize("component", COMPONENTS)
def test_migrated_postgres_schema_matches_the_models(database_urls, component):
    module = "gateway.models" if component == "gateway" else f"services.{component}.models"
    metadata = import_module(module).Base.metadata
    engine = create_engine(database_urls[component])
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert differences == []
