"""The real broker and database for tests: a vhost and databases of the run's own."""

from __future__ import annotations

import os
import socket
import subprocess
from contextlib import contextmanager

import psycopg2
from psycopg2 import sql

from bersinar.config import COMPONENTS
from bersinar.migrations import upgrade

PG_ADMIN_DSN = os.environ.get(
    "BERSINAR_TEST_PG_DSN", "host=127.0.0.1 user=postgres dbname=postgres"
)
PG_URL_BASE = os.environ.get(
    "BERSINAR_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432"
)
AMQP_BASE = os.environ.get("BERSINAR_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672")


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


def _admin():
    connection = psycopg2.connect(PG_ADMIN_DSN)
    connection.autocommit = True
    return connection


def create_databases(prefix: str, components=COMPONENTS, migrate: bool = True) -> dict[str, str]:
    urls = {}
    connection = _admin()  # not `with connection`: psycopg2 would open a transaction
    with connection.cursor() as cursor:
        for component in components:
            name = f"{prefix}_{component}"
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            urls[component] = f"{PG_URL_BASE}/{name}"
    connection.close()
    if migrate:
        for component, url in urls.items():
            upgrade(component, url)
    return urls


def drop_databases(urls: dict[str, str]) -> None:
    connection = _admin()
    with connection.cursor() as cursor:
        for url in urls.values():
            name = url.rsplit("/", 1)[1]
            cursor.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    connection.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
