from gateway.idempotency import request_hash
from gateway.limits import TokenBuckets


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_a_key_spends_its_burst_then_waits_for_the_refill():
    clock = FakeClock()
    buckets = TokenBuckets(per_minute=60, burst=3, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0, 0, 0]
    assert buckets.take("a") == 1.0  # one token a second
    assert buckets.take("b") == 0  # another key has its own bucket
    clock.now += 0.5
    assert buckets.take("a") == 0.5
    clock.now += 0.5
    assert buckets.take("a") == 0
    clock.now += 3600
    assert [buckets.take("a") for _ in range(4)] == [0, 0, 0, 1.0]  # never above the burst


def test_a_rate_of_zero_turns_limits_off():
    buckets = TokenBuckets(per_minute=0, burst=0)
    assert all(buckets.take("a") == 0 for _ in range(1000))


def test_the_request_hash_covers_method_path_and_body():
    base = request_hash("POST", "/api/v1/partners?", b'{"a": 1}')
    assert base == request_hash("POST", "/api/v1/partners?", b'{"a": 1}')
    assert base != request_hash("POST", "/api/v1/partners?", b'{"a": 2}')
    assert base != request_hash("POST", "/api/v1/referrals?", b'{"a": 1}')
