"""Referrals by the million, straight into the run's own databases, shaped like the
services' own rows.

One SQL ``SELECT`` over ``generate_series`` decides every generated referral from its
number ``i`` alone: when it was requested (spread evenly from ``SPAN_START`` to now, so
any first n of them cover the whole span), who it went to (the mix of offers the
seeded partners make, female-only partner included), and how it went: cancelled before
an answer, rejected, or accepted, admitted and ended (completed, dropped out,
transferred), each step happening only if its moment is already past. Referrals of the
last days are therefore still requested or accepted, those of the last months still in
care, older ones ended: the shape a real registry of three years has. rujukan's rows
(clients, referrals, their history) and laporan's referral records are made by the same
expression, with the same ids, so the two services agree as if every event had flowed.

Client identity is real ciphertext: the Fernet tokens and key id of clients the API
itself created in this run (the template), reused round-robin; the NIK digest is a
distinct 64-hex value per client, the width of the service's HMAC. Growing from 10k to
100k to 1M adds rows; nothing is rewritten. Rows go in by ``INSERT … SELECT`` inside
PostgreSQL in chunks, rujukan and laporan at the same time, then ``VACUUM ANALYZE``.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from sqlalchemy import text

SPAN_START = datetime(2024, 1, 1, tzinfo=UTC)
CHUNK = 100_000
GOLDEN = 0.6180339887498949  # i * this mod 1 spreads any prefix of i evenly over [0, 1)

# the offers of the seeded partners (harness.loadgen.MIX), as SQL arrays indexed by i % 12
_MIX_SQL = """
    (ARRAY['rsud-hasanuddin-damrah','rsud-hasanuddin-damrah','yayasan-dwin-foundation',
           'yayasan-dwin-foundation','yayasan-dwin-foundation','yayasan-karunia-insani',
           'yayasan-karunia-insani','yayasan-pesona','yayasan-pesona','yayasan-kipas',
           'yayasan-kipas','yayasan-kipas'])[1 + i % 12] AS partner_id,
    (ARRAY['inpatient','outpatient','inpatient','outpatient','aftercare','inpatient',
           'outpatient','outpatient','aftercare','inpatient','outpatient','aftercare'])
        [1 + i % 12] AS service_type,
    CASE WHEN i % 12 IN (5, 6) OR (i / 12) % 3 = 2 THEN 'F' ELSE 'M' END AS sex,
"""

# every column of one generated referral, from i (and :t0, :now)
GENERATED = f"""
WITH g AS (
  SELECT i,
    md5('bench-referral-' || i)::uuid::text AS id,
    md5('bench-client-' || i)::uuid::text AS client_id,
    {_MIX_SQL}
    (ARRAY['TAT','TAT','IPWL','voluntary','court'])[1 + (i / 7) % 5] AS source,
    18 + (i * 37) % 47 AS age,
    (i * 7919) % 100 AS fate,
    CAST(:t0 AS timestamptz)
      + CAST((i * {GOLDEN}) - floor(i * {GOLDEN}) AS double precision)
        * (CAST(:now AS timestamptz) - CAST(:t0 AS timestamptz))
      AS requested_at,
    1 + (i * 104729) % 47 AS answer_h,
    1 + (i * 15485863) % 72 AS admit_h,
    14 + (i * 32452843) % 107 AS stay_d
  FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint) - 1) AS i
), t AS (
  SELECT g.*,
    requested_at + interval '20 hours' AS cancel_at,
    requested_at + answer_h * interval '1 hour' AS answer_at,
    requested_at + (answer_h + admit_h) * interval '1 hour' AS admit_at,
    requested_at + (answer_h + admit_h) * interval '1 hour' + stay_d * interval '1 day' AS end_at,
    CASE WHEN fate < 5 THEN 'cancelled' WHEN fate < 17 THEN 'rejected'
         WHEN fate < 65 THEN 'completed' WHEN fate < 85 THEN 'dropped_out'
         WHEN fate < 93 THEN 'transferred' ELSE 'completed' END AS fate_status
  FROM g
), s AS (
  SELECT t.*,
    CASE
      WHEN fate_status = 'cancelled' THEN
        CASE WHEN cancel_at <= CAST(:now AS timestamptz) THEN 'cancelled' ELSE 'requested' END
      WHEN answer_at > CAST(:now AS timestamptz) THEN 'requested'
      WHEN fate_status = 'rejected' THEN 'rejected'
      WHEN admit_at > CAST(:now AS timestamptz) THEN 'accepted'
      WHEN end_at > CAST(:now AS timestamptz) THEN 'admitted'
      ELSE fate_status
    END AS status
  FROM t
)
SELECT s.*,
  CASE WHEN status IN ('rejected','accepted','admitted','completed','dropped_out','transferred')
       THEN answer_at END AS responded_at,
  CASE WHEN status IN ('admitted','completed','dropped_out','transferred')
       THEN admit_at END AS admitted_at,
  CASE WHEN status IN ('completed','dropped_out','transferred') THEN end_at END AS outcome_at,
  CASE status WHEN 'requested' THEN requested_at WHEN 'cancelled' THEN cancel_at
       WHEN 'rejected' THEN answer_at WHEN 'accepted' THEN answer_at
       WHEN 'admitted' THEN admit_at ELSE end_at END AS changed_at,
  CASE WHEN age <= 24 THEN '18-24' WHEN age <= 34 THEN '25-34' WHEN age <= 44 THEN '35-44'
       ELSE '45+' END AS age_group
FROM s
"""

RUJUKAN_CLIENTS = f"""
INSERT INTO clients (id, nik_digest, nik_key_id, nik_encrypted, name_encrypted,
                     phone_encrypted, key_id, birth_date, sex, created_at)
SELECT client_id, encode(sha256(CAST('bench-nik-' || i AS bytea)), 'hex'), :nik_key_id,
  (CAST(:niks AS text[]))[1 + i % :templates], (CAST(:names AS text[]))[1 + i % :templates],
  (CAST(:phones AS text[]))[1 + i % :templates], :key_id,
  CAST(requested_at AS date) - CAST(age * 365 + i % 300 AS integer), sex, requested_at
FROM ({GENERATED}) AS x
"""

RUJUKAN_REFERRALS = f"""
INSERT INTO referrals (id, client_id, partner_id, service_type, source, status, age_group,
  consent, assessment, previous_referral_id, transferred_from_id, transferred_to_id,
  rejection_reason, created_by, created_at, updated_at, response_due_at, responded_at,
  admitted_at, ended_at, overdue_notified_at)
SELECT id, client_id, partner_id, service_type, source, status, age_group,
  CAST(:consent AS json), NULL, NULL, NULL, NULL,
  CASE WHEN status = 'rejected' THEN 'capacity_full' END, :created_by,
  requested_at, changed_at, requested_at + interval '48 hours', responded_at, admitted_at,
  CASE WHEN status IN ('rejected','cancelled','completed','dropped_out','transferred')
       THEN changed_at END,
  NULL
FROM ({GENERATED}) AS x
"""

RUJUKAN_HISTORY = f"""
INSERT INTO referral_history (referral_id, from_status, to_status, actor, reason, note, at)
SELECT id, NULL, 'requested', :created_by, NULL, NULL, requested_at FROM ({GENERATED}) AS x
UNION ALL
SELECT id, CASE WHEN status IN ('completed','dropped_out','transferred') THEN 'admitted'
                ELSE 'requested' END,
       status, :created_by, CASE WHEN status = 'rejected' THEN 'capacity_full' END, NULL,
       changed_at
FROM ({GENERATED}) AS x WHERE status <> 'requested'
"""

LAPORAN_RECORDS = f"""
INSERT INTO referral_records (referral_id, partner_id, period, service_type, sex, age_group,
  source, status, requested_at, request_seen, responded_at, accepted, cancelled_at,
  response_overdue_at, admitted_at, ended_at, outcome, updated_at)
SELECT id, partner_id, to_char(requested_at AT TIME ZONE 'Asia/Jakarta', 'YYYY-MM'),
  service_type, sex, age_group, source, status, requested_at, true, responded_at,
  CASE WHEN status = 'rejected' THEN false WHEN responded_at IS NOT NULL THEN true END,
  CASE WHEN status = 'cancelled' THEN cancel_at END, NULL, admitted_at, outcome_at,
  CASE WHEN outcome_at IS NOT NULL THEN status END, changed_at
FROM ({GENERATED}) AS x
"""


def template(engine) -> dict:
    """Ciphertexts, key ids, consent and creator of clients and referrals the API made in
    this run: the generated rows carry the same values."""
    with engine.connect() as connection:
        clients = connection.execute(
            text(
                "SELECT nik_encrypted, name_encrypted, phone_encrypted, key_id, nik_key_id "
                "FROM clients "
                "ORDER BY created_at LIMIT 64"
            )
        ).all()
        referral = connection.execute(
            text("SELECT CAST(consent AS text), created_by FROM referrals LIMIT 1")
        ).first()
    if not clients or referral is None:
        raise RuntimeError("no client made through the API to copy")
    return {
        "niks": [c[0] for c in clients],
        "names": [c[1] for c in clients],
        "phones": [c[2] or c[0] for c in clients],
        "key_id": clients[0][3],
        "nik_key_id": clients[0][4],
        "templates": len(clients),
        "consent": referral[0],
        "created_by": referral[1],
    }


def _insert(engine, statements: list[str], lo: int, hi: int, params: dict) -> None:
    for start in range(lo, hi, CHUNK):
        chunk = {**params, "lo": start, "hi": min(hi, start + CHUNK)}
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(text(statement), chunk)


def vacuum(engine, tables: list[str]) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for table in tables:
            connection.execute(text(f"VACUUM ANALYZE {table}"))


def grow(engines: dict, lo: int, hi: int, fill: dict, now: datetime, log) -> dict[str, float]:
    """Generated referrals number lo..hi-1 into rujukan and laporan (in parallel);
    returns the seconds each took."""
    params = {"t0": SPAN_START, "now": now, **fill}
    jobs = {
        "rujukan": (
            [RUJUKAN_CLIENTS, RUJUKAN_REFERRALS, RUJUKAN_HISTORY],
            ["clients", "referrals", "referral_history"],
        ),
        "laporan": ([LAPORAN_RECORDS], ["referral_records"]),
    }
    seconds: dict[str, float] = {}
    errors: list[BaseException] = []

    def work(component: str) -> None:
        statements, tables = jobs[component]
        t0 = time.monotonic()
        try:
            _insert(engines[component], statements, lo, hi, params)
            seconds[f"{component} insert"] = time.monotonic() - t0
            t1 = time.monotonic()
            vacuum(engines[component], tables)
            seconds[f"{component} vacuum analyze"] = time.monotonic() - t1
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(c,), daemon=True) for c in jobs]
    for thread in threads:
        thread.start()
    started = time.monotonic()
    while any(t.is_alive() for t in threads):
        for thread in threads:
            thread.join(timeout=15)
        if any(t.is_alive() for t in threads):
            log(f"loading referrals {lo:,}..{hi:,}: {time.monotonic() - started:.0f}s")
    if errors:
        raise errors[0]
    return seconds
