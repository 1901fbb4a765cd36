"""A closed-loop HTTP load generator: N keep-alive connections, one thread each, every
connection sends its next request as soon as the previous answer is read (like wrk).

Run as its own process so that its GIL and CPU time are separate from the harness:

    python -m harness.loadgen '<json config>'

It connects every connection, prints ``READY``, waits for a line on stdin, then runs
``warmup`` seconds (not counted) and ``duration`` seconds (counted) and prints one JSON
line with the figures. Only requests that *complete* inside the counted window count;
latency is measured per request with ``time.perf_counter`` around send → last byte read.

Without a plan every request is ``POST /api/v1/referrals`` with a new client. With
``plan`` (a JSON file: ``headers``, a list of header sets, and ``requests``, a list of
``[method, path, body or null, header set]``) the connections take the plan's requests
in turn: round and round when ``cycle``, else each once (e.g. accepting each referral of
a pool once), stopping early when the plan is used up.
"""

from __future__ import annotations

import http.client
import itertools
import json
import resource
import sys
import threading
import time
from collections import Counter
from datetime import date, timedelta

from harness.data import referral_body

# (partner, service type, sexes it serves): every offer of the seeded partners, so the
# load spreads over partners the way real referrals would (each create locks its
# partner's row in rujukan's read model).
MIX: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("rsud-hasanuddin-damrah", "inpatient", ("M", "F")),
    ("rsud-hasanuddin-damrah", "outpatient", ("M", "F")),
    ("yayasan-dwin-foundation", "inpatient", ("M", "F")),
    ("yayasan-dwin-foundation", "outpatient", ("M", "F")),
    ("yayasan-dwin-foundation", "aftercare", ("M", "F")),
    ("yayasan-karunia-insani", "inpatient", ("F",)),
    ("yayasan-karunia-insani", "outpatient", ("F",)),
    ("yayasan-pesona", "outpatient", ("M", "F")),
    ("yayasan-pesona", "aftercare", ("M", "F")),
    ("yayasan-kipas", "inpatient", ("M", "F")),
    ("yayasan-kipas", "outpatient", ("M", "F")),
    ("yayasan-kipas", "aftercare", ("M", "F")),
)
SERIALS = 9999  # a NIK's serial has four digits (harness.data.nik_for)
BIRTH_SPREAD = 3000  # days; together with the serial it keeps every NIK distinct
FIRST_BIRTH = date(1950, 1, 1)


def referral_for(index: int) -> dict:
    """The request body of referral number ``index``: a distinct client (NIK) for every
    index below ~30 million, so no request is a returning client."""
    partner, service_type, sexes = MIX[index % len(MIX)]
    sex = sexes[(index // len(MIX)) % len(sexes)]
    quotient, serial = divmod(index, SERIALS)
    if quotient >= BIRTH_SPREAD:
        raise ValueError("referral index too large for distinct NIKs")
    # birth dates 1950..2007: every age group; (day, serial) decides the index back
    birth = FIRST_BIRTH + timedelta(days=quotient + (index % 7) * BIRTH_SPREAD)
    return referral_body(
        partner_id=partner, sex=sex, birth_date=birth, service_type=service_type, serial=serial
    )


def run(config: dict) -> dict:
    sys.setswitchinterval(0.0005)  # answer a ready socket promptly, even with 50 threads
    host, port, path = config["host"], int(config["port"]), config["path"]
    if host != "127.0.0.1":
        raise SystemExit("the load generator only sends to 127.0.0.1")
    headers = {"Content-Type": "application/json", **config.get("headers", {})}
    connections = int(config["connections"])
    warmup, duration = float(config["warmup"]), float(config["duration"])
    counter = itertools.count(int(config.get("first_index", 0)))
    static_body = config.get("static_body")
    plan = None
    if config.get("plan"):
        with open(config["plan"]) as handle:
            plan = json.load(handle)
        plan_headers = [{**headers, **h} for h in plan["headers"]]
    taken = itertools.count()
    exhausted = threading.Event()

    def next_request() -> tuple[str, str, bytes | None, dict] | None:
        if plan is None:
            body = static_body.encode() if static_body is not None else None
            if body is None:
                body = json.dumps(referral_for(next(counter))).encode()
            return "POST", path, body, headers
        index = next(taken)  # one step of a C iterator: safe across threads
        requests = plan["requests"]
        if index >= len(requests):
            if not plan.get("cycle"):
                exhausted.set()
                return None
            index %= len(requests)
        method, target, body, header_set = requests[index]
        return (
            method,
            target,
            (body.encode() if body is not None else None),
            plan_headers[header_set],
        )

    go = threading.Event()
    window: dict[str, float] = {}
    results = []  # one list per thread; merged at the end
    lock = threading.Lock()
    sent = Counter()

    def worker() -> None:
        latencies: list[float] = []
        statuses: Counter = Counter()
        errors: list[str] = []
        conn = http.client.HTTPConnection(host, port, timeout=30)
        conn.connect()
        go.wait()
        start, end = window["start"], window["end"]
        requests_sent = 0
        while True:
            if time.perf_counter() >= end:
                break
            request = next_request()
            if request is None:
                break
            method, target, body, request_headers = request
            t0 = time.perf_counter()
            try:
                conn.request(method, target, body, request_headers)
                response = conn.getresponse()
                payload = response.read()
                status = response.status
                if response.will_close:
                    conn.close()
                    conn = http.client.HTTPConnection(host, port, timeout=30)
            except (OSError, http.client.HTTPException) as exc:
                status, payload = 0, repr(exc).encode()
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=30)
            t1 = time.perf_counter()
            requests_sent += 1
            if start <= t1 <= end:
                latencies.append(t1 - t0)
                statuses[status] += 1
                if status not in (200, 201) and len(errors) < 3:
                    errors.append(f"{status}: {payload[:300].decode(errors='replace')}")
        conn.close()
        with lock:
            results.append((latencies, statuses, errors))
            sent["all"] += requests_sent

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for thread in threads:
        thread.start()
    print("READY", flush=True)
    sys.stdin.readline()
    now = time.perf_counter()
    window["start"] = now + warmup
    window["end"] = now + warmup + duration
    go.set()
    time.sleep(max(0.0, window["start"] - time.perf_counter()))
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    for thread in threads:  # until the window ends, or earlier when the plan is used up
        thread.join(timeout=max(0.0, window["end"] - time.perf_counter()))
    stopped = min(time.perf_counter(), window["end"])
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    for thread in threads:
        thread.join(timeout=60)
    # a plan used up before the end: the rate is over the time the requests took
    counted_s = max(1e-6, stopped - window["start"]) if exhausted.is_set() else duration

    latencies = sorted(lat for result in results for lat in result[0])
    statuses: Counter = Counter()
    errors: list[str] = []
    for _, thread_statuses, thread_errors in results:
        statuses.update(thread_statuses)
        errors.extend(thread_errors)
    ok = sum(n for status, n in statuses.items() if status in (200, 201))
    used = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    return {
        "connections": connections,
        "duration": counted_s,
        "plan_used_up": exhausted.is_set(),
        "completed": len(latencies),
        "ok": ok,
        "ok_per_s": ok / counted_s,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": errors[:5],
        "p50_ms": percentile(latencies, 50) * 1000,
        "p90_ms": percentile(latencies, 90) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "max_ms": (latencies[-1] * 1000) if latencies else 0.0,
        "mean_ms": (sum(latencies) / len(latencies) * 1000) if latencies else 0.0,
        "generator_cpu_pct": 100.0 * used / counted_s,
        "sent_total": sent["all"],
    }


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * pct // 100))  # ceil(n * pct / 100)
    return sorted_values[int(rank) - 1]


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1]))), flush=True)
