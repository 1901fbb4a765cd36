"""schemathesis against the running gateway over its whole OpenAPI document, with every
check it has: no server error, no answer outside the document, no request the document
allows refused for its shape and none it forbids accepted, 405 with an Allow header that
matches the document, authentication enforced, the resources a link leads to there. The
processes run on a vhost and databases of their own, since the fuzzer changes data.

What the document cannot state (rules across fields, rules on the data's state) is told
to schemathesis in tests/e2e/fuzz_hooks.py, which says how and why."""

from __future__ import annotations

import json
import subprocess

import pytest

from bersinar.config import ROOT
from harness import infra
from harness.system import BIN, System
from tests.e2e.conftest import wait_for_partner_model
from tests.support.fixtures import TEST_HMAC_KEY

PHASES = ("examples", "coverage", "fuzzing")


@pytest.fixture(scope="module")
def fuzz_system(test_run_id, encryption_keys, var_dirs):
    with infra.own_vhost(f"bersinar-fuzz-{test_run_id}") as amqp_uri:
        system = System(amqp_uri, encryption_keys, TEST_HMAC_KEY, var_dirs("fuzz"))
        try:
            system.start_all()
            wait_for_partner_model(system)
            yield system
        finally:
            system.terminate_all()


@pytest.mark.timeout(600)
def test_schemathesis_with_every_check_finds_nothing(fuzz_system, tmp_path):
    # --workers 1: with two, hypothesis describes its filters by parsing source with `ast`
    # from two threads at once, which CPython 3.11.7 gets wrong now and then (SystemError
    # "AST constructor recursion depth mismatch", python/cpython#106905): a run error of
    # the tool, not a finding, and what once looked like the export's `format` parameter
    # breaking the coverage phase. positive_data_acceptance runs as fuzz_hooks'
    # positive_data_acceptance_beyond_state, which `--checks all` takes in.
    command = [
        str(BIN / "schemathesis"), "run", f"{fuzz_system.base_url}/openapi.json",
        "--checks", "all", "--exclude-checks", "positive_data_acceptance",
        "--header", f"Authorization: Bearer {fuzz_system.admin_key}",
        "--phases", ",".join(PHASES), "--max-examples", "15", "--seed", "20261128",
        "--workers", "1", "--generation-database", "none", "--request-timeout", "15",
        "--suppress-health-check", "all", "--warnings", "off",
        "--report", "json", "--report-json-path", str(tmp_path / "report.json"),
    ]  # fmt: skip
    env = {
        **fuzz_system.env,
        "NO_COLOR": "1",
        "PYTHONPATH": str(ROOT),
        "SCHEMATHESIS_HOOKS": "tests.e2e.fuzz_hooks",
    }
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=580, cwd=tmp_path, env=env
    )
    (tmp_path / "schemathesis.out").write_text(result.stdout + result.stderr)
    summary = [line for line in result.stdout.splitlines() if line.strip()][-12:]
    print("\n[schemathesis]\n" + "\n".join(summary))
    if result.returncode != 0:
        print(result.stdout[-12000:], result.stderr[-3000:])
    report = json.loads((tmp_path / "report.json").read_text())

    operations = report["operations"]
    assert operations["tested"] == operations["selected"] == operations["total"] > 40
    assert {report["phases"][phase]["status"] for phase in PHASES} == {"success"}
    assert report["failures"] == [] and report["errors"] == []
    assert report["test_cases"]["with_failures"] == 0
    assert result.returncode == 0
