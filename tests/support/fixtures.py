"""Fixtures shared by integration and end-to-end tests."""

from __future__ import annotations

import itertools

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import inspect, text

from bersinar.db import UnitOfWorkFactory
from harness import infra
from harness.infra import free_port, purge_queues

TEST_HMAC_KEY = "test-nik-hmac-key-of-at-least-32-characters"
RETRY_DELAYS = [0.2, 0.4, 0.8]


@pytest.fixture(scope="session")
def encryption_keys():
    return f"t1:{Fernet.generate_key().decode()}"


@pytest.fixture(scope="session")
def make_config(amqp_uri, database_urls, encryption_keys):
    """nameko config of a component, on the run's vhost and databases."""

    def make(component: str, **overrides):
        config = {
            "AMQP_URI": amqp_uri,
            "DATABASE_URL": database_urls[component],
            "METRICS_PORT": 0,
            "max_workers": 10,
            "parent_calls_tracked": 10,
            "EVENT_RETRY_DELAYS": RETRY_DELAYS,
        }
        if component == "rujukan":
            config.update(ENCRYPTION_KEYS=encryption_keys, NIK_HMAC_KEY=TEST_HMAC_KEY)
        if component == "gateway":
            config.update(
                WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}",
                ADMIN_KEY="bsk_test-admin-key",
                RPC_TIMEOUT=5,
                HEALTH_TIMEOUT=1,
            )
        config.update(overrides)
        return config

    return make


@pytest.fixture(scope="session")
def uow_factories(database_urls):
    """Units of work straight on each component's database, for arranging and checking."""
    from importlib import import_module

    factories = {}
    for component, url in database_urls.items():
        module = "gateway.models" if component == "gateway" else f"services.{component}.models"
        factories[component] = UnitOfWorkFactory(
            url, component, import_module(module).Base.metadata
        )
    yield factories
    for factory in factories.values():
        factory.dispose()


def empty_tables(engine, metadata) -> None:
    """Empty every table of ``metadata`` the database has (its migration history stays)."""
    existing = set(inspect(engine).get_table_names())
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables if t.name in existing)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


def empty_everything(uow_factories, amqp_uri) -> None:
    """Empty every table of every component, and every queue of the run's vhost."""
    purge_queues(amqp_uri)
    for factory in uow_factories.values():
        empty_tables(factory.engine, factory.metadata)


@pytest.fixture
def empty_database(database_urls, uow_factories):
    """``empty_database("rujukan")``: the URL of the run's database of a component,
    migrated with Alembic when the run began, every table emptied first. (Emptying is
    quicker than a new database per test: CREATE DATABASE writes a whole database
    through the WAL, seconds on a busy machine.)"""

    def empty(component: str) -> str:
        factory = uow_factories[component]
        empty_tables(factory.engine, factory.metadata)
        return database_urls[component]

    return empty


_fresh = itertools.count(1)


@pytest.fixture
def fresh_database(test_run_id):
    """New empty databases of this test's own, dropped afterwards: each call of
    ``fresh_database()`` gives one's URL."""
    made = {}

    def make() -> str:
        name = f"bt_{test_run_id}_f{next(_fresh)}"
        made[name] = infra.create_database(name)
        return made[name]

    yield make
    infra.drop_databases(made)


@pytest.fixture
def clean_databases(uow_factories, amqp_uri):
    """Every table and every queue empty before the test."""
    empty_everything(uow_factories, amqp_uri)
    return uow_factories


@pytest.fixture
def receivers():
    """Start HTTP receivers (webhook targets) for a test; all stopped after it."""
    from harness.receivers import HttpReceiver  # eventlet's server: not for the browser run

    started = []

    def start(**kwargs):
        receiver = HttpReceiver(**kwargs).start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop()
