"""Where FHIR Bulk Data exports live (docs/fhir.md#bulk-data-export): a row per export
in the gateway's database and its NDJSON files as rows of chunks, written chunk by chunk
by a greenthread of the gateway process (ExportJobs). An export found unfinished when the
gateway starts was cut short by a stop: it is failed, with an OperationOutcome."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import eventlet
from nameko.extensions import DependencyProvider
from sqlalchemy import delete, func, select, text, update

from bersinar.db import UnitOfWork
from bersinar.entrypoints import Database
from bersinar.envelope import utcnow
from gateway.fhir import bulk
from gateway.models import FhirExport, FhirExportChunk

log = logging.getLogger(__name__)

UNFINISHED = ("accepted", "running")
KEEP_DAYS = 7  # a finished export and its files, from when it finished (the Expires header)
INTERRUPTED = "Ekspor terhenti karena gateway dihentikan sebelum selesai; mintalah ekspor baru."


class Cancelled(Exception):
    """The export was deleted (DELETE on its status URL) while it ran, or failed meanwhile
    (its heartbeat was thought stopped): it is not carried on."""


def create(uow: UnitOfWork, job: FhirExport) -> None:
    uow.session.add(job)


def running_for(uow: UnitOfWork, key_id: str) -> str | None:
    """The id of an export of this key still running, if any (one at a time per key).
    The key's kick-offs wait for each other until the transaction ends, so two sent at
    once cannot both find none."""
    uow.session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": f"fhir-export:{key_id}"}
    )
    query = select(FhirExport.id).where(
        FhirExport.api_key_id == key_id, FhirExport.status.in_(UNFINISHED)
    )
    return uow.session.scalars(query.limit(1)).first()


def purge_finished(uow: UnitOfWork, before: datetime) -> int:
    """Drop exports that finished before ``before``, with their files (KEEP_DAYS)."""
    query = select(FhirExport.id).where(
        FhirExport.status.not_in(UNFINISHED), FhirExport.finished_at < before
    )
    found = list(uow.session.scalars(query))
    if found:
        uow.session.execute(delete(FhirExportChunk).where(FhirExportChunk.export_id.in_(found)))
        uow.session.execute(delete(FhirExport).where(FhirExport.id.in_(found)))
    return len(found)


def find(uow: UnitOfWork, export_id: str, key_id: str) -> FhirExport | None:
    """The export, only for the API key that asked for it."""
    job = uow.session.get(FhirExport, export_id)
    return job if job is not None and job.api_key_id == key_id else None


def counts(uow: UnitOfWork, export_id: str) -> dict[str, int]:
    """Lines written per resource type."""
    query = (
        select(FhirExportChunk.resource_type, func.sum(FhirExportChunk.lines))
        .where(FhirExportChunk.export_id == export_id)
        .group_by(FhirExportChunk.resource_type)
    )
    return {resource_type: int(n) for resource_type, n in uow.session.execute(query)}


def chunk_numbers(uow: UnitOfWork, export_id: str, resource_type: str) -> list[int]:
    query = (
        select(FhirExportChunk.seq)
        .where(FhirExportChunk.export_id == export_id)
        .where(FhirExportChunk.resource_type == resource_type)
        .order_by(FhirExportChunk.seq)
    )
    return list(uow.session.scalars(query))


def read_chunks(
    store: Callable[[], UnitOfWork], export_id: str, resource_type: str, numbers: list[int]
) -> Iterator[str]:
    """A file's chunks one at a time, each read in a transaction of its own: the file is
    never whole in memory. A chunk gone (the export deleted meanwhile) ends the file."""
    for seq in numbers:
        with store() as uow:
            chunk = uow.session.get(FhirExportChunk, (export_id, resource_type, seq))
            body = chunk.body if chunk is not None else None
        if body is None:
            return
        yield body


def run(
    store: Callable[[], UnitOfWork],
    export_id: str,
    sources: Iterable[tuple[str, Iterable[dict[str, Any]]]],
    lines: int,
    describe_failure: Callable[[BaseException], str],
) -> None:
    """Write each (resource type, resources) of ``sources`` as NDJSON chunks, then mark
    the export complete; a failure marks it failed with an OperationOutcome and drops
    what was written; a deletion meanwhile stops it."""
    done: list[str] = []
    try:
        _set(store, export_id, status="running")
        for resource_type, resources in sources:
            for seq, (count, text) in enumerate(bulk.chunked(resources, lines)):
                _store_chunk(store, export_id, resource_type, seq, count, text)
            done.append(resource_type)
            _set(store, export_id, progress=f"{len(done)} jenis selesai: {', '.join(done)}")
        _set(store, export_id, status="complete", finished_at=utcnow())
    except Cancelled:
        log.info("FHIR export %s deleted while running", export_id)
    except Exception as exc:  # whatever stopped it, the export answers failed, not running
        log.warning("FHIR export %s failed: %s", export_id, type(exc).__name__)
        fail(store, export_id, describe_failure(exc))


def _store_chunk(store, export_id: str, resource_type: str, seq: int, count: int, text: str):
    with store() as uow:
        job = uow.session.get(FhirExport, export_id, with_for_update=True)
        if job is None or job.status not in UNFINISHED:  # deleted, or failed as stale
            raise Cancelled(export_id)
        uow.session.add(
            FhirExportChunk(
                export_id=export_id, resource_type=resource_type, seq=seq, lines=count, body=text
            )
        )
        uow.commit()


def _set(store, export_id: str, **values) -> None:
    with store() as uow:
        changed = uow.session.execute(
            update(FhirExport)
            .where(FhirExport.id == export_id, FhirExport.status.in_(UNFINISHED))
            .values(**values)
        ).rowcount
        uow.commit()
    if not changed:
        raise Cancelled(export_id)


def fail(store, export_id: str, detail: str) -> None:
    with store() as uow:
        _fail(uow, [export_id], detail, utcnow())
        uow.commit()


def _fail(uow: UnitOfWork, export_ids: list[str], detail: str, now: datetime) -> None:
    if not export_ids:
        return
    uow.session.execute(delete(FhirExportChunk).where(FhirExportChunk.export_id.in_(export_ids)))
    uow.session.execute(
        update(FhirExport)
        .where(FhirExport.id.in_(export_ids))
        .values(status="failed", error=json.dumps(bulk.failure(detail)), finished_at=now)
    )


def fail_stale(uow: UnitOfWork, before: datetime) -> int:
    """Every export left accepted or running by a gateway process that stopped (its last
    heartbeat before ``before``): failed, as nothing runs it any more."""
    query = select(FhirExport.id).where(
        FhirExport.status.in_(UNFINISHED), FhirExport.heartbeat_at < before
    )
    found = list(uow.session.scalars(query))
    _fail(uow, found, INTERRUPTED, utcnow())
    return len(found)


def beat(uow: UnitOfWork, export_ids: Iterable[str], now: datetime) -> None:
    """The exports this process runs are still running."""
    export_ids = list(export_ids)
    if export_ids:
        uow.session.execute(
            update(FhirExport).where(FhirExport.id.in_(export_ids)).values(heartbeat_at=now)
        )


def remove(uow: UnitOfWork, job: FhirExport) -> None:
    uow.session.execute(delete(FhirExportChunk).where(FhirExportChunk.export_id == job.id))
    uow.session.delete(job)


class ExportJobs(DependencyProvider):
    """``self.export_jobs.spawn(export_id, fn)`` runs an export in a greenthread of the
    gateway's container (it ends with the container); ``runner`` names this process.
    A watcher beats the heart of the exports this process runs every
    ``heartbeat_seconds`` and fails those whose heartbeat stopped ``stale_seconds`` ago
    (their gateway stopped), at start and from then on: several gateways may share the
    database. A database not answering yet does not hold the start up."""

    heartbeat_seconds = 10.0
    stale_seconds = 60.0

    def start(self):
        database = next(d for d in self.container.dependencies if isinstance(d, Database))
        self.store = partial(database.factory, f"{self.container.service_name}.fhir_exports")
        self.runner = str(uuid.uuid4())
        self.running: set[str] = set()
        self.container.spawn_managed_thread(self._watch, identifier="fhir_export.watch")

    def _watch(self) -> None:
        while True:
            self.check()
            eventlet.sleep(self.heartbeat_seconds)

    def check(self) -> int | None:
        """One beat: this process's exports marked alive, stale ones failed (how many;
        None while the database does not answer)."""
        now = utcnow()
        try:
            with self.store() as uow:
                beat(uow, self.running, now)
                failed = fail_stale(uow, now - timedelta(seconds=self.stale_seconds))
                uow.commit()
        except Exception as exc:  # the database may still be starting, or be restarting
            log.warning("FHIR exports not checked: %s", type(exc).__name__)
            return None
        if failed:
            log.warning("%d FHIR export(s) whose gateway stopped marked failed", failed)
        return failed

    def get_dependency(self, worker_ctx):
        return self

    def spawn(self, export_id: str, fn: Callable[[], None]) -> None:
        def running():
            self.running.add(export_id)
            try:
                fn()
            finally:
                self.running.discard(export_id)

        self.container.spawn_managed_thread(running, identifier="fhir_export")
