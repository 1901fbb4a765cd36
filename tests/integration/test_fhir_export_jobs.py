"""FHIR Bulk Data exports in the gateway's migrated database: files written chunk by
chunk and read back one chunk at a time, a failure or a deletion mid-run, and exports a
stopped gateway left unfinished marked failed at the next start."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest

from bersinar.db import UnitOfWorkFactory
from bersinar.envelope import utcnow
from gateway.exceptions import ServiceUnavailable
from gateway.fhir import exports
from gateway.models import Base, FhirExport, FhirExportChunk
from gateway.routes.fhir_bulk import _failure_text
from gateway.service import GatewayService
from tests.integration.conftest import wait_until


@pytest.fixture
def store(empty_database):
    factory = UnitOfWorkFactory(empty_database("gateway"), "gateway", Base.metadata)
    yield lambda: factory("gateway.fhir_exports")
    factory.dispose()


def new_export(store, status="accepted", key="k1", heartbeat=None) -> str:
    export_id = str(uuid.uuid4())
    with store() as uow:
        exports.create(
            uow,
            FhirExport(
                id=export_id,
                api_key_id=key,
                status=status,
                request_url="http://x/fhir/R4/$export",
                types="Organization,Task",
                transaction_time=utcnow(),
                created_at=utcnow(),
                runner="r1",
                heartbeat_at=heartbeat or utcnow(),
                progress="",
            ),
        )
        uow.commit()
    return export_id


def basics(n: int, kind: str = "Task"):
    return ({"resourceType": kind, "id": f"{kind.lower()}-{i}"} for i in range(n))


def status_of(store, export_id):
    with store() as uow:
        job = uow.session.get(FhirExport, export_id)
        return None if job is None else (job.status, job.error)


def test_an_export_is_written_chunk_by_chunk_and_read_back_in_order(store):
    export_id = new_export(store)
    sources = [("Organization", basics(2, "Organization")), ("Task", basics(7))]
    exports.run(store, export_id, sources, 3, _failure_text)
    assert status_of(store, export_id) == ("complete", None)
    with store() as uow:
        assert exports.counts(uow, export_id) == {"Organization": 2, "Task": 7}
        numbers = exports.chunk_numbers(uow, export_id, "Task")
        assert exports.find(uow, export_id, "another-key") is None
    assert numbers == [0, 1, 2]
    text = "".join(exports.read_chunks(store, export_id, "Task", numbers))
    assert [json.loads(line)["id"] for line in text.splitlines()] == [f"task-{i}" for i in range(7)]


def test_a_failure_mid_export_drops_what_was_written_and_says_why(store):
    export_id = new_export(store)

    def broken():
        yield from basics(4)
        raise ServiceUnavailable("Layanan rujukan tidak menjawab dalam 5 detik.")

    exports.run(store, export_id, [("Task", broken())], 2, _failure_text)
    status, error = status_of(store, export_id)
    outcome = json.loads(error)
    assert status == "failed" and outcome["resourceType"] == "OperationOutcome"
    assert "rujukan tidak menjawab" in outcome["issue"][0]["diagnostics"]
    with store() as uow:
        assert exports.counts(uow, export_id) == {}


def test_an_export_deleted_while_it_runs_stops_and_leaves_nothing(store):
    export_id = new_export(store)

    def deleted_after_first_chunk():
        yield from basics(2)
        with store() as uow:
            exports.remove(uow, uow.session.get(FhirExport, export_id))
            uow.commit()
        yield from basics(2)

    exports.run(store, export_id, [("Task", deleted_after_first_chunk())], 2, _failure_text)
    assert status_of(store, export_id) is None
    with store() as uow:
        assert uow.session.query(FhirExportChunk).filter_by(export_id=export_id).count() == 0


def test_exports_whose_gateway_stopped_beating_are_failed_and_others_left_alone(store):
    old = utcnow() - timedelta(minutes=5)
    accepted, running = (
        new_export(store, "accepted", heartbeat=old),
        new_export(store, "running", heartbeat=old),
    )
    complete = new_export(store, "complete", heartbeat=old)
    alive = new_export(store, "running", heartbeat=old)
    with store() as uow:
        uow.session.add(
            FhirExportChunk(export_id=running, resource_type="Task", seq=0, lines=1, body="{}\n")
        )
        exports.beat(uow, [alive], utcnow())  # its gateway runs it still
        uow.commit()
    with store() as uow:
        assert exports.fail_stale(uow, utcnow() - timedelta(minutes=1)) == 2
        uow.commit()
    for export_id in (accepted, running):
        status, error = status_of(store, export_id)
        assert status == "failed"
        assert json.loads(error)["issue"][0]["diagnostics"] == exports.INTERRUPTED
    assert status_of(store, complete) == ("complete", None)
    assert status_of(store, alive) == ("running", None)
    with store() as uow:
        assert exports.counts(uow, running) == {}


def test_an_export_failed_as_stale_is_not_carried_on_by_a_thread_still_running_it(store):
    export_id = new_export(store)

    def failed_meanwhile():
        yield from basics(2)
        exports.fail(store, export_id, exports.INTERRUPTED)
        yield from basics(2)

    exports.run(store, export_id, [("Task", failed_meanwhile())], 2, _failure_text)
    assert status_of(store, export_id)[0] == "failed"
    with store() as uow:
        assert exports.counts(uow, export_id) == {}


def test_one_export_at_a_time_per_key_and_finished_ones_are_dropped_after_a_while(store):
    running = new_export(store, "running", key="k1")
    done = new_export(store, "accepted", key="k2")
    exports.run(store, done, [("Task", basics(1))], 10, _failure_text)
    with store() as uow:
        assert exports.running_for(uow, "k1") == running
        assert exports.running_for(uow, "k2") is None
        finished = uow.session.get(FhirExport, done).finished_at
        assert exports.purge_finished(uow, finished) == 0
        assert exports.purge_finished(uow, finished + timedelta(seconds=1)) == 1
        uow.commit()
    assert status_of(store, done) is None
    assert status_of(store, running)[0] == "running"
    with store() as uow:
        assert exports.counts(uow, done) == {}


def test_a_gateway_that_starts_fails_the_exports_a_stop_left_running(
    store, container_factory, make_config
):
    running = new_export(store, "running", heartbeat=utcnow() - timedelta(minutes=5))
    container_factory(GatewayService, make_config("gateway")).start()
    wait_until(lambda: status_of(store, running)[0] == "failed", message="export failed")
    assert exports.INTERRUPTED in status_of(store, running)[1]


def test_a_gateway_whose_database_is_not_up_yet_starts_all_the_same(container_factory, make_config):
    unreachable = "postgresql+psycopg2://postgres@127.0.0.1:1/nowhere"
    gateway = container_factory(GatewayService, make_config("gateway", DATABASE_URL=unreachable))
    gateway.start()
    jobs = next(d for d in gateway.dependencies if isinstance(d, exports.ExportJobs))
    assert jobs.check() is None  # tried again at the next beat
    assert "fhir_export.watch" in set(gateway._managed_threads.values())
