"""The plain-nameko baseline of the benchmark (bench/baseline/app.py): started by the run
on the same RabbitMQ (a vhost of its own) and the same embedded PostgreSQL (a database of
its own), three processes, stopped at the end. Only bench/ uses it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import requests
from sqlalchemy import text

from bersinar.config import ROOT

PROCESSES = ("gateway", "store", "log")
DATABASE = "bench_baseline"
READ_PATHS = tuple(f"/items/{n}" for n in range(1, 6))  # the five seeded rows in turn
CREATE_PATH = "/items"
CREATE_BODY = '{"name": "uji beban", "kind": "baseline"}'


class Baseline:
    def __init__(self, amqp_uri: str, database_url: str, port: int, log_dir: Path):
        self.amqp_uri = amqp_uri
        self.database_url = database_url
        self.port = port
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen] = {}

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def create_database(self, admin_engine, engine_for) -> None:
        """Its database on the run's server, its two tables and five rows to read."""
        with admin_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text(f"CREATE DATABASE {DATABASE}"))
        engine = engine_for(self.database_url)
        try:
            from bench.baseline.app import SEED, TABLES

            with engine.begin() as connection:
                for statement in (*TABLES, SEED):
                    connection.execute(text(statement))
        finally:
            engine.dispose()

    def start(self, timeout: float = 60.0) -> None:
        env = {
            "AMQP_URI": self.amqp_uri,
            "DATABASE_URL": self.database_url,
            "PORT": str(self.port),
            "PATH": "/usr/bin:/bin",
            "PYTHONWARNINGS": "ignore",
        }
        for name in PROCESSES:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "bench.baseline.app", name],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=open(self.log_dir / f"baseline-{name}.log", "ab"),  # noqa: SIM115
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [n for n, p in self.processes.items() if p.poll() is not None]
            if dead:
                raise RuntimeError(f"baseline process(es) ended at start: {dead} ({self.log_dir})")
            try:
                if requests.get(self.base_url + READ_PATHS[0], timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"the baseline did not answer in {timeout:.0f}s")

    def publish_events(self, n: int) -> None:
        """``n`` item_created events straight to the exchange nameko's dispatcher uses
        (``baseline_store.events``), persistent, on one channel: what the consumer then
        takes is its own rate."""
        from kombu import Connection, Exchange, Producer

        exchange = Exchange("baseline_store.events", type="topic", durable=True)
        with Connection(self.amqp_uri) as connection:
            producer = Producer(connection.channel(), exchange=exchange, serializer="json")
            for i in range(n):
                producer.publish({"id": i}, routing_key="item_created", delivery_mode=2)

    def pids(self) -> dict[str, int]:
        return {f"baseline {name}": p.pid for name, p in self.processes.items()}

    def alive(self) -> list[str]:
        return [n for n, p in self.processes.items() if p.poll() is None]

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self.processes.clear()
