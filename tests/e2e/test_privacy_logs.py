"""Runs after the other end-to-end modules on the same processes: after hundreds of
referrals, no log line of any process carries a client's name, NIK or phone."""

from __future__ import annotations

from harness.data import CLIENT_NAME, ISSUED_NIKS


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
