"""Where FHIR Bulk Data exports live (docs/fhir.md#bulk-data-export): a row per export
in the gateway's database and its NDJSON files as rows of chunks, written chunk by chunk
by a greenthread of the gateway process (ExportJobs). An export found unfinished when the
gateway starts was cut short by a stop: it is failed, with an OperationOutcome."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from functools import partial
from typing import Any

import eventlet
from nameko.extensions import DependencyProvider
from sqlalchemy import delete, func, select, update

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
    """The export was deleted (DELETE on its status URL) while it ran."""


def create(uow: UnitOfWork, job: FhirExport) -> None:
    uow.session.add(job)


def running_for(uow: UnitOfWork, key_id: str) -> str | None:
    """The id of an export of this key still running, if any (one at a time per key)."""
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
        if job is None:
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
            update(FhirExport).where(FhirExport.id == export_id).values(**values)
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


def fail_interrupted(uow: UnitOfWork, started: datetime) -> int:
    """Every export left accepted or running by a gateway that stopped (asked before this
    one ``started``): failed."""
    query = select(FhirExport.id).where(
        FhirExport.status.in_(UNFINISHED), FhirExport.created_at < started
    )
    found = list(uow.session.scalars(query))
    _fail(uow, found, INTERRUPTED, utcnow())
    return len(found)


def remove(uow: UnitOfWork, job: FhirExport) -> None:
    uow.session.execute(delete(FhirExportChunk).where(FhirExportChunk.export_id == job.id))
    uow.session.delete(job)


class ExportJobs(DependencyProvider):
    """``self.export_jobs(fn)`` runs ``fn`` in a greenthread of the gateway's container (it
    ends with the container). On start, exports a stopped gateway left unfinished are
    failed: nothing runs them any more. A database not answering yet does not hold the
    start up: it is tried again until it answers."""

    retry_seconds = 5.0

    def start(self):
        database = next(d for d in self.container.dependencies if isinstance(d, Database))
        self.started = utcnow()
        store = partial(database.factory, f"{self.container.service_name}.fhir_exports")
        if not self._fail_interrupted(store):
            self.container.spawn_managed_thread(
                partial(self._keep_trying, store), identifier="fhir_export.recover"
            )

    def _fail_interrupted(self, store) -> bool:
        try:
            with store() as uow:
                failed = fail_interrupted(uow, self.started)
                uow.commit()
        except Exception as exc:  # the database may still be starting
            log.warning("unfinished FHIR exports not checked yet: %s", type(exc).__name__)
            return False
        if failed:
            log.warning("%d FHIR export(s) left unfinished by a stop marked failed", failed)
        return True

    def _keep_trying(self, store) -> None:
        while not self._fail_interrupted(store):
            eventlet.sleep(self.retry_seconds)

    def get_dependency(self, worker_ctx):
        return self.spawn

    def spawn(self, fn: Callable[[], None]) -> None:
        self.container.spawn_managed_thread(fn, identifier="fhir_export")
