"""brownout.histogram: percentiles within 1% of the exact sorted values."""

from __future__ import annotations

import math
import random

from brownout.histogram import Histogram


def _exact(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def test_percentiles_within_one_percent() -> None:
    rng = random.Random(42)
    values = [rng.lognormvariate(math.log(0.020), 1.0) + 0.001 for _ in range(50_000)]  # 1 ms .. seconds
    hist = Histogram()
    for v in values:
        hist.record(v)
    for p in (50, 90, 99, 99.9):
        exact = _exact(values, p)
        assert abs(hist.percentile(p) - exact) / exact <= 0.01, p
    assert hist.count == len(values)
    assert abs(hist.percentile(100) - max(values)) / max(values) <= 0.01
    assert hist.max_us == int(max(values) * 1_000_000)


def test_merge_equals_recording_everything_in_one() -> None:
    rng = random.Random(1)
    a, b, both = Histogram(), Histogram(), Histogram()
    for i in range(5000):
        v = rng.uniform(0.001, 2.0)
        (a if i % 2 else b).record(v)
        both.record(v)
    a.merge(b)
    assert a.count == both.count
    assert [a.percentile(p) for p in (50, 99)] == [both.percentile(p) for p in (50, 99)]


def test_empty_histogram_reports_zero() -> None:
    assert Histogram().percentile(99) == 0.0 and Histogram().mean == 0.0
