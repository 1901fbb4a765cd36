"""The real broker and database for tests: a vhost and databases of the run's own.

The databases live on the machine's PostgreSQL when it answers at 127.0.0.1:5432 (or
where ``BERSINAR_TEST_PG_DSN``/``BERSINAR_TEST_PG_URL`` say); on a machine without one,
on the embedded server `make run` uses (``bersinar/pg.py``), started once per process in
a temporary folder and removed by ``stop_server``. ``BERSINAR_TEST_PG_EMBEDDED=1``
chooses the embedded server even where the machine has one.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg2
from psycopg2 import sql
from sqlalchemy.engine import make_url

from bersinar import pg
from bersinar.config import COMPONENTS
from bersinar.migrations import upgrade

# the machine's server
PG_ADMIN_DSN = os.environ.get(
    "BERSINAR_TEST_PG_DSN", "host=127.0.0.1 user=postgres dbname=postgres"
)
PG_URL_BASE = os.environ.get(
    "BERSINAR_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432"
)
# a server named on purpose is used or fails: only the default may fall back
PG_NAMED = "BERSINAR_TEST_PG_DSN" in os.environ or "BERSINAR_TEST_PG_URL" in os.environ
PG_EMBEDDED = os.environ.get("BERSINAR_TEST_PG_EMBEDDED") == "1"
AMQP_BASE = os.environ.get("BERSINAR_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672")


@dataclass
class Server:
    """A PostgreSQL server holding test databases: the machine's, or an embedded one
    (``folder`` and ``process`` set) that ``stop`` ends and deletes."""

    admin_dsn: str
    url_base: str = ""
    folder: Path | None = None
    process: subprocess.Popen | None = None

    @property
    def embedded(self) -> bool:
        return self.folder is not None

    def url(self, database: str) -> str:
        if self.embedded:
            return pg.url(self.folder / "pg", database)
        return f"{self.url_base}/{database}"

    def admin(self):
        connection = psycopg2.connect(self.admin_dsn)
        connection.autocommit = True  # CREATE/DROP DATABASE refuse a transaction
        return connection

    def stop(self) -> None:
        if self.process is not None:
            pg.stop_background(self.process)
            self.process = None
        if self.folder is not None:
            pg.remove(self.folder / "pg")
            shutil.rmtree(self.folder, ignore_errors=True)


def answers(dsn: str) -> bool:
    try:
        psycopg2.connect(dsn, connect_timeout=3).close()
        return True
    except psycopg2.OperationalError:
        return False


def start_embedded() -> Server:
    """An embedded server of its own in a new temporary folder (initdb, start, ready)."""
    folder = Path(tempfile.mkdtemp(prefix="bersinar-test-pg-"))
    server = Server(pg.admin_dsn(folder / "pg"), folder=folder)
    try:
        server.process = pg.start_background(folder / "pg", folder / "postgres.log")
        pg.wait_ready(server.admin_dsn)
    except BaseException as exc:
        log = folder / "postgres.log"
        said = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        server.stop()
        raise pg.EmbeddedPostgresError(f"the test PostgreSQL did not start: {said}") from exc
    return server


def choose_server(
    machine_dsn: str = PG_ADMIN_DSN,
    machine_url: str = PG_URL_BASE,
    embedded: bool = PG_EMBEDDED,
    may_fall_back: bool = not PG_NAMED,
) -> Server:
    """The machine's server if it answers; else (or if ``embedded``) an embedded one."""
    if not embedded and (not may_fall_back or answers(machine_dsn)):
        return Server(machine_dsn, url_base=machine_url)
    return start_embedded()


_server: Server | None = None
_choosing = threading.Lock()


def server() -> Server:
    """This process's server, chosen (and, if embedded, started) on first use."""
    global _server
    with _choosing:
        if _server is None:
            _server = choose_server()
        return _server


def stop_server() -> None:
    """End and delete this process's embedded server, if one was started."""
    global _server
    with _choosing:
        if _server is not None:
            _server.stop()
            _server = None


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def create_vhost(vhost: str) -> None:
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")


def delete_vhost(vhost: str) -> None:
    try:
        rabbitmqctl("delete_vhost", vhost)
    except subprocess.SubprocessError:
        pass  # the broker may be down after a fault test; the vhost is empty of value


def amqp_uri_for(vhost: str) -> str:
    return f"{AMQP_BASE}/{vhost}"


def database_name(url: str) -> str:
    return make_url(url).database


def create_database(name: str, on: Server | None = None) -> str:
    """A new empty database on this process's server (or ``on``); its SQLAlchemy URL."""
    on = on or server()
    connection = on.admin()  # not `with connection`: psycopg2 would open a transaction
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        connection.close()
    return on.url(name)


def create_databases(
    prefix: str, components=COMPONENTS, migrate: bool = True, on: Server | None = None
) -> dict[str, str]:
    """A database ``<prefix>_<component>`` per component, migrated to head with its
    Alembic migrations unless ``migrate`` is false: their URLs."""
    urls = {c: create_database(f"{prefix}_{c}", on) for c in components}
    if migrate:
        for component, url in urls.items():
            upgrade(component, url)
    return urls


def drop_databases(urls: dict[str, str], on: Server | None = None) -> None:
    connection = (on or server()).admin()
    try:
        with connection.cursor() as cursor:
            for url in urls.values():
                name = sql.Identifier(database_name(url))
                cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
    finally:
        connection.close()


@contextmanager
def own_database(name: str):
    """An empty database for one group of tests, gone afterwards: yields its URL."""
    url = create_database(name)
    try:
        yield url
    finally:
        drop_databases({name: url})


# ports handed out for listeners, below the kernel's range for the local end of outgoing
# connections (``ip_local_port_range``, 32768 and up by default): a port the kernel gives
# for ``bind(0)`` is from that range, and before the process meant to listen on it binds
# it, another's connection to RabbitMQ or PostgreSQL may take it as its local end (a
# service then fails to start, again at every restart, while that connection lasts)
LISTEN_PORTS = range(15000, 32000)
_ports = random.SystemRandom()
_handed_out: set[int] = set()  # by this process: never the same port twice


def free_port() -> int:
    """A port on 127.0.0.1 that nobody holds now and this process has not handed out
    before, for a listener started soon after."""
    for _ in range(1000):
        port = _ports.choice(LISTEN_PORTS)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {LISTEN_PORTS}")


def purge_queues(amqp_uri: str) -> int:
    """Empty every queue of the run's vhost, so one test's leftovers never reach another."""
    from bersinar.relay import amqp_connection

    vhost = amqp_uri.rsplit("/", 1)[1]
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "-p", vhost, "name"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    names = [line.strip() for line in listed.stdout.splitlines()[1:] if line.strip()]
    connection = amqp_connection(amqp_uri)
    connection.connect()
    channel = connection.channel()
    purged = 0
    for name in names:
        purged += channel.queue_purge(name) or 0
    connection.close()
    return purged


@contextmanager
def own_vhost(vhost: str):
    """A vhost for one group of tests, gone afterwards: yields its AMQP URI."""
    create_vhost(vhost)
    try:
        yield amqp_uri_for(vhost)
    finally:
        delete_vhost(vhost)


@contextmanager
def own_broker_and_databases(vhost: str, db_prefix: str):
    """A vhost and migrated databases for one group of tests, gone afterwards: yields
    ``(amqp_uri, database_urls)``."""
    create_vhost(vhost)
    urls = create_databases(db_prefix)
    try:
        yield amqp_uri_for(vhost), urls
    finally:
        drop_databases(urls)
        delete_vhost(vhost)
