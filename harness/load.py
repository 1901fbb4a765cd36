"""The load of a fault case: referrals POSTed by a few threads, each with its own
``Idempotency-Key``, a clean failure retried as a client would (same key, same body) until
it succeeds or the case's time is up.

A clean failure is a 503 problem+json, a 409 ``IDEMPOTENCY_IN_PROGRESS`` or a refused or
cut connection (the gateway itself being restarted). Anything else 5xx is not clean: it
is counted, and retried too, so that loss can still be measured behind it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests

from harness.loadgen import referral_for

CLEAN_CODES = {"SERVICE_UNAVAILABLE", "IDEMPOTENCY_IN_PROGRESS"}


@dataclass
class Outcome:
    index: int
    key: str
    referral_id: str | None = None
    status: int | None = None  # the last answer
    attempts: int = 0
    clean_failures: int = 0
    unclean: list[str] = field(default_factory=list)  # "500 INTERNAL_ERROR", ...
    other: list[str] = field(default_factory=list)  # 4xx that are not retryable
    ok_at: float | None = None  # monotonic time of the 201


@dataclass
class Load:
    base_urls: list[str]
    admin_key: str
    label: str
    first_index: int
    count: int
    workers: int = 8
    deadline: float = 0.0  # monotonic: no new attempt after it
    outcomes: list[Outcome] = field(default_factory=list)
    started_at: float = 0.0
    finished_at: float = 0.0

    def __post_init__(self):
        self.pace = 0.0  # seconds a worker waits after each success (the probe)
        self.stopping = threading.Event()  # no new request once set
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._local = threading.local()
        self.outcomes = [
            Outcome(i, f"chaos-{self.label}-{i}")
            for i in range(self.first_index, self.first_index + self.count)
        ]

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _one(self, outcome: Outcome) -> None:
        if self.stopping.is_set():
            return
        body = referral_for(outcome.index)
        headers = {
            "Authorization": f"Bearer {self.admin_key}",
            "Idempotency-Key": outcome.key,
        }
        backoff = 0.2
        while time.monotonic() < self.deadline:
            outcome.attempts += 1
            # two gateways in one case: a retry may go to the other
            base = self.base_urls[(outcome.index + outcome.attempts) % len(self.base_urls)]
            try:
                response = self._session().post(
                    f"{base}/api/v1/referrals", json=body, headers=headers, timeout=20
                )
            except requests.RequestException:
                outcome.clean_failures += 1
                self._local.session = None
                time.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
                continue
            outcome.status = response.status_code
            if response.status_code == 201:
                outcome.referral_id = response.json()["id"]
                outcome.ok_at = time.monotonic()
                if self.pace:
                    self.stopping.wait(self.pace)
                return
            code = _code(response)
            if response.status_code in (503, 409) and code in CLEAN_CODES:
                outcome.clean_failures += 1
            elif response.status_code >= 500:
                outcome.unclean.append(f"{response.status_code} {code}")
            else:
                outcome.other.append(f"{response.status_code} {code}: {response.text[:200]}")
                return
            time.sleep(backoff)
            backoff = min(backoff * 2, 1.0)

    def run(self) -> None:
        self.started_at = time.monotonic()
        with ThreadPoolExecutor(self.workers, thread_name_prefix=f"load-{self.label}") as pool:
            list(pool.map(self._one, self.outcomes))
        self.finished_at = time.monotonic()
        self._done.set()

    def start(self) -> Load:
        self._thread = threading.Thread(target=self.run, name=f"load-{self.label}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """No new request; those begun go on until they succeed or the deadline."""
        self.stopping.set()

    def abort(self) -> None:
        """No new request, no new attempt."""
        self.stopping.set()
        self.deadline = 0.0

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    # -- figures ------------------------------------------------------------------------

    def ok(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.referral_id]

    def ok_count(self) -> int:
        return sum(1 for o in self.outcomes if o.referral_id)

    def first_ok_after(self, moment: float) -> float | None:
        times = [o.ok_at for o in self.outcomes if o.ok_at is not None and o.ok_at >= moment]
        return min(times) if times else None

    def figures(self) -> dict:
        sent = [o for o in self.outcomes if o.attempts]
        unclean = Counter(u for o in sent for u in o.unclean)
        other = Counter(u.split(":", 1)[0] for o in sent for u in o.other)
        return {
            "requests": len(sent),
            "ok": self.ok_count(),
            "clean_failures": sum(o.clean_failures for o in sent),
            "unclean_5xx": sum(unclean.values()),
            "unclean_kinds": dict(unclean),
            "refused_4xx": dict(other),
            "gave_up": sum(1 for o in sent if not o.referral_id),
            "retried_requests": sum(1 for o in sent if o.attempts > 1),
        }


def _code(response: requests.Response) -> str:
    try:
        return str(response.json().get("code"))
    except ValueError:
        return "non-json"
