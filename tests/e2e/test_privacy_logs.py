"""Runs after the other end-to-end modules on the same processes: after hundreds of
referrals, no log line of any process carries a client's name, NIK or phone, and every
line of every file in the run's log folder is JSON."""

from __future__ import annotations

import json

from bersinar.config import COMPONENTS, SERVICES
from harness.data import CLIENT_NAME, ISSUED_NIKS
from tests.support.logs import check_log_folder


def test_no_client_identity_in_any_log_line(system):
    assert len(ISSUED_NIKS) > 500  # the modules before this one posted their referrals
    lines = []
    for path in sorted(system.log_dir.glob("*.log")):
        lines.extend(path.read_text(errors="replace").splitlines())
    niks = set(ISSUED_NIKS)
    leaks = [
        line
        for line in lines
        if CLIENT_NAME in line
        or "081234567890" in line
        or any(token in niks for token in _digit_runs(line))
    ]
    print(
        f"\n[privacy] {len(lines)} log lines of {len(list(system.log_dir.glob('*.log')))} "
        f"processes checked for {len(niks)} NIKs: {len(leaks)} leaks"
    )
    assert leaks == []


def _digit_runs(line: str):
    run = []
    for char in line + " ":
        if char.isdigit():
            run.append(char)
        elif run:
            yield "".join(run)
            run = []


def component_logs(system) -> dict[str, list[str]]:
    """The log of every process of the system (services, relays, gateway), by name."""
    names = [*COMPONENTS, *(f"relay-{s}" for s in SERVICES)]
    return {name: (system.log_dir / f"{name}.log").read_text().splitlines() for name in names}


def test_every_line_of_every_log_file_is_json(system):
    """After the other modules ran (hundreds of requests, deliveries, a broker outage
    and restarts): no plain-text line in any file of the run's log folder, not even a
    traceback eventlet's hub printed, nor a line of the start-up steps, the embedded
    PostgreSQL or supervisord itself; each line with its time in UTC (RFC 3339)."""
    checked = check_log_folder(system.log_dir)
    expected = {f"{name}.log" for name in component_logs(system)}
    expected |= {"setup.log", "postgres.log", "supervisord.log"}
    assert expected <= set(checked), sorted(checked)
    assert [name for name in expected if not checked[name]] == [], checked
    print(f"\n[json logs] {sum(checked.values())} lines of {len(checked)} files: {checked}")


def test_every_log_folder_of_the_run_is_json(var_dirs):
    """The same of every system the run started (its e2e, edge, fuzzing, burst, contract,
    supervisor... systems, those already stopped included): each file of each
    ``var/log``."""
    folders = sorted(var_dirs.base.glob("*/log"))
    assert folders
    checked = {folder.parent.name: check_log_folder(folder) for folder in folders}
    for name, files in checked.items():
        assert {"setup.log", "supervisord.log", "gateway.log"} <= set(files), (name, files)
    print(f"\n[json logs] {sum(sum(f.values()) for f in checked.values())} lines: {checked}")


def test_access_lines_and_deliveries_carry_their_fields_and_correlation_id(system):
    records = [json.loads(line) for line in component_logs(system)["gateway"]]
    access = [r for r in records if "duration_ms" in r]
    assert access, "no access line in the gateway's log"
    for record in access:
        assert {"method", "route", "status", "duration_ms", "correlation_id"} <= set(record)
        assert record["correlation_id"] and isinstance(record["status"], int), record
    assert {r["route"] for r in access} >= {"/health", "/api/v1/referrals"}
    deliveries = [
        json.loads(line)
        for line in component_logs(system)["notifikasi"]
        if '"message": "delivery ' in line
    ]
    assert [d for d in deliveries if not d["correlation_id"]] == []
