"""Test data that passes the domain's checks: NIKs that agree with birth date and sex."""

from __future__ import annotations

import itertools
from datetime import date

_serial = itertools.count(1)
CLIENT_NAME = "Klien Uji"
ISSUED_NIKS: list[str] = []  # every NIK handed out in this process, to look for in logs


def nik_for(birth_date: date, sex: str, region: str = "177101", serial: int | None = None) -> str:
    day = birth_date.day + (40 if sex == "F" else 0)
    number = next(_serial) if serial is None else serial
    return (
        f"{region}{day:02d}{birth_date.month:02d}{birth_date.year % 100:02d}{number % 9999 + 1:04d}"
    )


def referral_body(
    partner_id: str = "yayasan-kipas",
    sex: str = "M",
    birth_date: date = date(1994, 3, 17),
    service_type: str = "inpatient",
    serial: int | None = None,
    **overrides,
) -> dict:
    nik = nik_for(birth_date, sex, serial=serial)
    ISSUED_NIKS.append(nik)
    body = {
        "client": {
            "nik": nik,
            "name": CLIENT_NAME,
            "birth_date": birth_date.isoformat(),
            "sex": sex,
            "phone": "081234567890",
        },
        "source": "TAT",
        "service_type": service_type,
        "partner_id": partner_id,
        "consent": {"given": True, "given_by": "client"},
    }
    body.update(overrides)
    return body
