"""schemathesis against the running gateway over its whole OpenAPI document: no server
error and no answer that breaks the document. The processes run on a vhost and
databases of their own, since the fuzzer changes data."""

from __future__ import annotations

import subprocess

import pytest

from harness import infra
from harness.system import BIN, System
from tests.e2e.conftest import wait_for_partner_model
from tests.support.fixtures import TEST_HMAC_KEY

CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance,response_headers_conformance"
)


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


def schemathesis(system, out_dir, name, phases, extra, seconds):
    """One schemathesis run; returns (exit code, the last lines of its report)."""
    command = [
        str(BIN / "schemathesis"), "run", f"{system.base_url}/openapi.json",
        "--checks", CHECKS, "--header", f"Authorization: Bearer {system.admin_key}",
        "--max-examples", "6", "--seed", "20261128", "--workers", "2",
        "--phases", phases, "--max-time", str(seconds), "--request-timeout", "15",
        "--suppress-health-check", "all", "--warnings", "off", *extra,
    ]  # fmt: skip
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=600, env={**system.env, "NO_COLOR": "1"}
    )
    (out_dir / f"schemathesis-{name}.out").write_text(result.stdout)
    summary = [line for line in result.stdout.splitlines() if line.strip()][-8:]
    print(f"\n[schemathesis {name}]\n" + "\n".join(summary))
    if result.returncode != 0:
        print(result.stdout[-6000:])
    return result.returncode, summary


@pytest.mark.timeout(600)
def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_spec(fuzz_system, tmp_path):
    # schemathesis 4.32's coverage phase breaks on a query parameter named `format`
    # (an internal KeyError, not a finding), so the export is fuzzed without that phase
    code, summary = schemathesis(
        fuzz_system,
        tmp_path,
        "all",
        "examples,coverage,fuzzing",
        ["--exclude-path-regex", "^/docs/static/|^/api/v1/exports/"],
        seconds=100,
    )
    export_code, export_summary = schemathesis(
        fuzz_system,
        tmp_path,
        "export",
        "examples,fuzzing",
        ["--include-path-regex", "^/api/v1/exports/"],
        seconds=20,
    )
    assert (code, export_code) == (0, 0)
    assert any("passed" in line for line in summary + export_summary)
