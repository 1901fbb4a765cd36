"""Waiting for what happens asynchronously (an event handled, a read model updated):
a probe asked again until it holds or a deadline passes. Not a timed assertion: the
deadline only bounds a wait for something that must happen."""

from __future__ import annotations

import time


def eventually(probe, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    value = probe()
    while not value and time.monotonic() < deadline:
        time.sleep(0.2)
        value = probe()
    assert value, f"timed out waiting for {what}"
    return value
