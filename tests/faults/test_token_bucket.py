"""Token buckets on a fake clock: exact grants and refills at 10k requests/s, burst, debts, keys, eviction, PATCH."""

from __future__ import annotations

import pytest

from faults.token_bucket import Bucket, KeyedBuckets, Rate


def per_minute(rpm: float, burst: float | None = None) -> Rate:
    return Rate(rpm / 60, burst if burst is not None else max(1.0, rpm / 60))


def drive(buckets: KeyedBuckets, offered_per_s: int, seconds: float, key: str = "", tokens: float = 0.0,
          start: float = 0.0) -> list[float]:
    """Offer ``offered_per_s`` requests a second for ``seconds`` of simulated time; the grant times."""
    granted = []
    for i in range(int(offered_per_s * seconds)):
        now = start + i / offered_per_s
        verdict, _ = buckets.admit(key, tokens, now)
        if verdict.granted:
            granted.append(now)
    return granted


@pytest.mark.parametrize("rpm", [600, 6_000, 60_000, 300_000])
def test_granted_rate_is_exact_within_1_percent_at_10k_requests_per_s(rpm: int) -> None:
    buckets = KeyedBuckets(per_minute(rpm), None, 10)
    granted = drive(buckets, 10_000, 60.0)
    burst = max(1.0, rpm / 60)
    assert abs(len(granted) - (burst + rpm)) <= 1  # the burst, then exactly the rate (60 s of it)
    later = [t for t in granted if t >= 30.0]  # the steady rate, burst long spent
    assert len(later) == pytest.approx(rpm / 2, rel=0.01)


def test_tokens_per_minute_grants_exactly_at_10k_requests_per_s() -> None:
    buckets = KeyedBuckets(None, per_minute(600_000), 10)  # 10,000 tokens/s
    granted = drive(buckets, 10_000, 30.0, tokens=50)  # 50 tokens each: 200 requests/s fit
    assert len([t for t in granted if t >= 10.0]) == pytest.approx(200 * 20, rel=0.01)


def test_burst_then_one_request_per_refill() -> None:
    buckets = KeyedBuckets(per_minute(600, burst=10), None, 10)  # 10/s, 10 at once
    verdicts = [buckets.admit("", 0, 0.0)[0] for _ in range(25)]
    assert [v.granted for v in verdicts] == [True] * 10 + [False] * 15
    assert verdicts[10].limit == "requests" and verdicts[10].wait_s == pytest.approx(0.1)
    assert not buckets.admit("", 0, 0.099)[0].granted
    assert buckets.admit("", 0, 0.1)[0].granted  # exactly one refill later
    assert not buckets.admit("", 0, 0.1)[0].granted
    assert [buckets.admit("", 0, 0.1 + k * 0.1)[0].granted for k in range(1, 6)] == [True] * 5


def test_default_burst_is_one_second_at_least_one() -> None:
    from faults.rate_limit import RateLimitFault

    assert RateLimitFault(requests_per_minute=600).rates[0] == Rate(10.0, 10.0)
    assert RateLimitFault(requests_per_minute=30).rates[0] == Rate(0.5, 1.0)
    assert RateLimitFault(requests_per_minute=600, burst=3).rates[0] == Rate(10.0, 3.0)
    assert RateLimitFault(tokens_per_minute=60_000).rates[1] == Rate(1000.0, 1000.0)


def test_a_bucket_never_holds_more_than_its_burst() -> None:
    buckets = KeyedBuckets(per_minute(60, burst=5), None, 10)
    buckets.admit("", 0, 0.0)
    assert len(drive(buckets, 100, 1.0, start=3600.0)) == 5  # an hour idle refills to 5, not 3600


def test_tokens_settle_down_and_up() -> None:
    buckets = KeyedBuckets(None, per_minute(6000, burst=1000), 10)  # 100 tokens/s, 1000 at once
    verdict, pair = buckets.admit("", 500, 0.0)
    assert verdict.granted and pair.tokens.level == 500
    buckets.settle("", 500 - 120, 0.0)  # it used 120 of the 500 reserved: 380 back
    assert pair.tokens.level == pytest.approx(880)
    buckets.settle("", 880, 0.0)  # a refund never lifts a bucket above its burst
    assert pair.tokens.level == pytest.approx(1000)
    verdict, pair = buckets.admit("", 200, 0.0)
    buckets.settle("", 200 - 1700, 0.0)  # it used 1700: charged 1500 more, a debt
    assert pair.tokens.level == pytest.approx(-700)
    verdict = buckets.admit("", 100, 0.0)[0]
    assert not verdict.granted and verdict.limit == "tokens" and verdict.wait_s == pytest.approx(8.0)  # (100 + 700) / 100
    assert buckets.admit("", 100, 8.0)[0].granted


def test_a_request_above_the_burst_waits_for_a_full_bucket() -> None:
    buckets = KeyedBuckets(None, per_minute(6000, burst=1000), 10)
    assert buckets.admit("", 400, 0.0)[0].granted
    verdict = buckets.admit("", 5000, 0.0)[0]
    assert not verdict.granted and verdict.wait_s == pytest.approx(4.0)  # until full (600 → 1000)
    verdict, pair = buckets.admit("", 5000, 4.0)
    assert verdict.granted and pair.tokens.level == pytest.approx(-4000)


def test_both_limits_refuse_with_the_longer_wait() -> None:
    buckets = KeyedBuckets(per_minute(60, burst=1), per_minute(600, burst=10), 10)
    assert buckets.admit("", 10, 0.0)[0].granted
    verdict = buckets.admit("", 10, 0.0)[0]
    assert (verdict.limit, verdict.wait_s) == ("requests", pytest.approx(1.0))
    verdict = buckets.admit("", 10, 1.0)[0]
    assert verdict.granted
    buckets2 = KeyedBuckets(per_minute(600, burst=10), per_minute(60, burst=10), 10)
    assert buckets2.admit("", 10, 0.0)[0].granted
    verdict = buckets2.admit("", 5, 0.0)[0]
    assert (verdict.limit, verdict.wait_s) == ("tokens", pytest.approx(5.0))


def test_keys_have_their_own_buckets() -> None:
    buckets = KeyedBuckets(per_minute(60, burst=2), None, 10)
    assert [buckets.admit("a", 0, 0.0)[0].granted for _ in range(3)] == [True, True, False]
    assert [buckets.admit("b", 0, 0.0)[0].granted for _ in range(3)] == [True, True, False]
    assert len(buckets) == 2


def test_idle_keys_that_refilled_are_dropped_and_the_count_is_bounded() -> None:
    buckets = KeyedBuckets(per_minute(60, burst=2), None, max_keys=100)
    for i in range(50):
        buckets.admit(f"k{i}", 0, 0.0)
    assert len(buckets) == 50
    buckets.admit("late", 0, 10.0)  # 10 s on, every old key is full again: same as never seen
    assert list(buckets.pairs) == ["late"]
    for i in range(500):  # a flood of keys, none idle long enough: the least recently used go
        buckets.admit(f"x{i}", 0, 10.0)
    assert len(buckets) == 100 and "x499" in buckets.pairs and "x0" not in buckets.pairs


def test_dropping_a_key_changes_nothing_it_could_see() -> None:
    """A key dropped because it refilled behaves exactly as if it had been kept."""
    kept = KeyedBuckets(per_minute(60, burst=3), None, max_keys=1_000)
    dropped = KeyedBuckets(per_minute(60, burst=3), None, max_keys=1_000)
    for buckets in (kept, dropped):
        for _ in range(3):
            buckets.admit("a", 0, 0.0)
    dropped.admit("b", 0, 5.0)  # drops "a" (full again by now)
    assert "a" not in dropped.pairs
    assert [kept.admit("a", 0, 5.0)[0].granted for _ in range(4)] == [dropped.admit("a", 0, 5.0)[0].granted for _ in range(4)]


def test_reconfigure_keeps_levels_and_applies_new_rates_from_then() -> None:
    buckets = KeyedBuckets(per_minute(60, burst=10), None, 10)  # 1/s
    for _ in range(10):
        buckets.admit("", 0, 0.0)
    buckets.reconfigure(per_minute(600, burst=20), None, 10, now=2.0)  # 2 s at the old rate: level 2
    pair = buckets.pairs[""]
    assert pair.requests.level == pytest.approx(2.0)
    buckets.pair("", 2.5)  # then 10/s: +5
    assert pair.requests.level == pytest.approx(7.0)
    buckets.reconfigure(per_minute(60, burst=3), None, 10, now=2.5)  # a smaller burst caps the level
    assert pair.requests.level == pytest.approx(3.0)


def test_a_bucket_waits_exactly_for_what_it_lacks() -> None:
    bucket = Bucket(0.25, 0.0)
    rate = Rate(2.0, 4.0)
    assert bucket.wait_s(rate, 1) == pytest.approx(0.375)
    assert bucket.full_in_s(rate) == pytest.approx(1.875)
    assert bucket.remaining() == 0
