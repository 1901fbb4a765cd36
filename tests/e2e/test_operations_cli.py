"""The operator's command line against the running processes: parked messages are listed
with their reason and replayed to the one consumer that parked them."""

from __future__ import annotations

import json
import subprocess
import time
import uuid

from bersinar.relay import BatchPublisher
from harness.system import BIN

QUEUE = "evt-rujukan-referral_requested--laporan.on_referral_requested"


def bersinar(system, *args):
    result = subprocess.run(
        [str(BIN / "bersinar"), *args], env=system.env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def parked_count(system):
    for line in bersinar(system, "parked", "list", "--service", "laporan").splitlines():
        if line.startswith(f"{QUEUE}.parked:"):
            return int(line.rsplit(":", 1)[1])
    return 0


def test_a_broken_event_is_parked_listed_with_its_reason_and_replayed(system):
    before = parked_count(system)
    broken = {
        "event_id": str(uuid.uuid4()),
        "event_type": "referral_requested",
        "source": "rujukan",
        "data": {"referral_id": "x"},
    }  # no occurred_at, ...
    publisher = BatchPublisher(system.env["AMQP_URI"], "rujukan.events")
    try:
        outcomes = publisher.publish(
            [(broken["event_id"], "referral_requested", json.dumps(broken).encode(), {})]
        )
    finally:
        publisher.close()
    assert outcomes == {broken["event_id"]: "confirmed"}

    deadline = time.monotonic() + 20
    while parked_count(system) < before + 1 and time.monotonic() < deadline:
        time.sleep(0.3)
    shown = bersinar(system, "parked", "list", "--service", "laporan", "--show")
    entries = [json.loads(line) for line in shown.splitlines() if line.startswith("  {")]
    mine = [e for e in entries if e["message_id"] == broken["event_id"]]
    print(f"\n[parked] {shown.strip().splitlines()[-1]}; reason: {mine[0]['reason']}")
    assert mine[0]["reason"].startswith("EnvelopeError: envelope lacks occurred_at")
    assert mine[0]["attempts"] == 1  # a broken envelope is not retried: parked at once

    out = bersinar(system, "parked", "replay", QUEUE, "--event-id", broken["event_id"])
    assert "replayed 1 message(s)" in out
    # still broken: laporan parks it again, and nothing else was replayed or lost
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        shown = bersinar(system, "parked", "list", "--service", "laporan", "--show")
        if broken["event_id"] in shown:
            break
        time.sleep(0.3)
    assert parked_count(system) == before + 1
