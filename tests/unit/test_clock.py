"""The clock file that tests and drills move: written at once, and read without failing
while someone writes it the slow way."""

from __future__ import annotations

from datetime import UTC, datetime

import eventlet
import pytest

from bersinar.clock import FileClock, write_clock

FIRST = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)


def test_write_clock_sets_the_instant_and_leaves_nothing_beside_it(tmp_path):
    path = tmp_path / "clock"
    write_clock(path, FIRST)
    write_clock(path, LATER)
    assert FileClock(str(path)).now() == LATER
    assert [p.name for p in tmp_path.iterdir()] == ["clock"]


def test_a_file_caught_empty_reads_as_the_instant_read_last(tmp_path):
    """A writer that truncates before it writes (``Path.write_text``): a request that
    reads the clock in between gets the instant it saw last, not an error."""
    path = tmp_path / "clock"
    write_clock(path, FIRST)
    clock = FileClock(str(path))
    assert clock.now() == FIRST
    path.write_text("")  # caught between the truncation and the write
    assert clock.now() == FIRST
    write_clock(path, LATER)
    assert clock.now() == LATER


def test_a_first_read_of_an_empty_file_waits_for_the_writer(tmp_path):
    path = tmp_path / "clock"
    path.write_text("")
    eventlet.spawn_after(0.05, write_clock, path, FIRST)
    assert FileClock(str(path)).now() == FIRST


def test_a_file_that_stays_empty_is_an_error(tmp_path):
    path = tmp_path / "clock"
    path.write_text("")
    with pytest.raises(ValueError):
        FileClock(str(path)).now()
