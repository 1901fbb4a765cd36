"""Where the tests keep their databases (harness/infra.py): on a machine whose
PostgreSQL does not answer, on an embedded server of their own, started from the code
`make run` uses and gone afterwards; a server named on purpose is never replaced."""

from __future__ import annotations

import psycopg2
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from bersinar.db import UnitOfWorkFactory
from bersinar.migrations import schema_is_current
from harness import infra, produced
from services.rujukan import handlers
from services.rujukan.models import Base, PartnerView

PARTNER_UPDATED = produced.partner_event("partner_updated", "yayasan-kipas")


def nobody() -> tuple[str, str]:
    """The DSN and URL base of a PostgreSQL that is not there (a port nobody listens on)."""
    port = infra.free_port()
    return (
        f"host=127.0.0.1 port={port} user=postgres dbname=postgres",
        f"postgresql+psycopg2://postgres@127.0.0.1:{port}",
    )


def databases(server: infra.Server) -> set[str]:
    connection = server.admin()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT datname FROM pg_database")
            return {name for (name,) in cursor.fetchall()}
    finally:
        connection.close()


def test_without_a_machine_server_databases_live_on_an_embedded_one_then_go(test_run_id):
    dsn, url_base = nobody()
    assert not infra.answers(dsn)
    server = infra.choose_server(dsn, url_base, embedded=False, may_fall_back=True)
    process, folder = server.process, server.folder
    try:
        assert server.embedded and process.poll() is None
        urls = infra.create_databases(f"bt_{test_run_id}_fallback", ["rujukan"], on=server)
        url = urls["rujukan"]
        # on the embedded server's socket in its own folder, not on any TCP port
        assert make_url(url).query["host"].startswith(str(folder))
        assert f"bt_{test_run_id}_fallback_rujukan" in databases(server)
        assert schema_is_current("rujukan", url)  # migrated with its Alembic migrations

        factory = UnitOfWorkFactory(url, "rujukan", Base.metadata)
        try:
            with factory() as uow:
                handlers.apply_partner_snapshot(uow, PARTNER_UPDATED)
                uow.commit()
            with factory() as uow:
                stored = uow.session.execute(
                    select(PartnerView.partner_id, PartnerView.kabupaten_kota)
                ).all()
        finally:
            factory.dispose()
        assert stored == [("yayasan-kipas", "Kota Bengkulu")]

        infra.drop_databases(urls, on=server)
        assert f"bt_{test_run_id}_fallback_rujukan" not in databases(server)
    finally:
        server.stop()
    assert process.poll() is not None  # stopped, and its cluster deleted
    assert not folder.exists()


def test_a_server_named_on_purpose_that_does_not_answer_is_not_replaced():
    dsn, url_base = nobody()
    server = infra.choose_server(dsn, url_base, embedded=False, may_fall_back=False)
    assert not server.embedded
    assert server.url("bt_x") == f"{url_base}/bt_x"
    with pytest.raises(psycopg2.OperationalError):
        infra.create_database("bt_never", on=server)
