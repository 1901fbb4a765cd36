"""Reporting periods and the counts laporan derives from referral events."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

# Bengkulu keeps Western Indonesian Time: a month is a month there, not in UTC.
LOCAL_TZ = ZoneInfo("Asia/Jakarta")


def period_of(moment: datetime) -> str:
    return moment.astimezone(LOCAL_TZ).strftime("%Y-%m")


def valid_period(text: str) -> bool:
    try:
        datetime.strptime(text, "%Y-%m")
    except (TypeError, ValueError):
        return False
    return len(text) == 7
