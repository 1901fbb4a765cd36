"""Reporting periods are months in Bengkulu (Western Indonesian Time, UTC+7)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.laporan.domain import period_of, valid_period


@pytest.mark.parametrize(
    "moment,expected",
    [
        (datetime(2026, 11, 30, 18, 0, tzinfo=UTC), "2026-12"),  # 1 Dec 01:00 WIB
        (datetime(2026, 11, 30, 16, 59, 59, tzinfo=UTC), "2026-11"),  # 30 Nov 23:59:59 WIB
        (datetime(2026, 11, 30, 17, 0, tzinfo=UTC), "2026-12"),  # 1 Dec 00:00 WIB
        (datetime(2026, 12, 31, 17, 0, tzinfo=UTC), "2027-01"),  # new year in Bengkulu
        (datetime(2026, 6, 15, 3, 0, tzinfo=timezone(timedelta(hours=7))), "2026-06"),
    ],
)
def test_period_of_is_the_month_in_bengkulu(moment, expected):
    assert period_of(moment) == expected


@pytest.mark.parametrize("text", ["2026-12", "2026-01", "2023-05"])
def test_valid_periods(text):
    assert valid_period(text) is True


@pytest.mark.parametrize(
    "text",
    [
        "2026-13",
        "2026-00",
        "2026-1",
        "26-12",
        "2026/12",
        "2026-12-01",
        "202612",
        "",
        "Desember 2026",
        None,
        202612,
    ],
)
def test_invalid_periods(text):
    assert valid_period(text) is False
