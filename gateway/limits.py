"""Per-key rate limits: a token bucket per API key in each gateway process (so with N
gateway instances a key may make up to N times the rate; the bucket is a guard against
abuse and runaway clients, not a billing meter)."""

from __future__ import annotations

import math
import threading
import time

from nameko.extensions import DependencyProvider

from gateway.exceptions import RateLimited


class TokenBuckets:
    def __init__(self, per_minute: float, burst: int, clock=time.monotonic):
        self.rate = per_minute / 60.0
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Take one token; 0 if granted, else the seconds until one is available."""
        if self.rate <= 0:
            return 0.0
        with self._lock:
            now = self.clock()
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate


class RateLimiter(DependencyProvider):
    """Config: RATE_LIMIT_PER_MINUTE (0 turns limits off) and RATE_LIMIT_BURST."""

    def setup(self):
        config = self.container.config
        self.buckets = TokenBuckets(
            float(config.get("RATE_LIMIT_PER_MINUTE", 600)), int(config.get("RATE_LIMIT_BURST", 60))
        )

    def get_dependency(self, worker_ctx):
        return self

    def check(self, key: str) -> None:
        wait = self.buckets.take(key)
        if wait > 0:
            raise RateLimited(max(1, math.ceil(wait)))
