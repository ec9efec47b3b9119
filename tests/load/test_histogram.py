"""brownout.histogram: percentiles within 1% of the exact sorted values; exact merges; its dict form."""

from __future__ import annotations

import json
import math
import random

import pytest

from brownout.histogram import Histogram
from faults.errors import InvalidInput


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


def test_dict_form_round_trips_through_json_and_merges_like_the_original() -> None:
    rng = random.Random(3)
    a, b = Histogram(), Histogram()
    for i in range(3000):
        (a if i % 3 else b).record(rng.lognormvariate(math.log(0.05), 1.5))
    wire = json.loads(json.dumps(a.to_dict()))
    back = Histogram.from_dict(wire)
    assert back.to_dict() == a.to_dict() and back.count == a.count and back.mean == a.mean
    assert [back.percentile(p) for p in (0, 50, 99, 99.9, 100)] == [a.percentile(p) for p in (0, 50, 99, 99.9, 100)]
    back.merge(Histogram.from_dict(b.to_dict()))
    a.merge(b)
    assert back.to_dict() == a.to_dict()
    assert Histogram.from_dict(Histogram().to_dict()).count == 0
    assert len(a.to_dict()["buckets"]) < a.count  # compact: one entry per non-empty bucket


@pytest.mark.parametrize(("data", "field"), [
    ({"buckets": "x"}, "histogram"),
    ({"buckets": [[1]], "total_us": 1, "min_us": 1, "max_us": 1}, "histogram.buckets[0]"),
    ({"buckets": [[1, -2]], "total_us": 1, "min_us": 1, "max_us": 1}, "histogram.buckets[0][1]"),
    ({"buckets": [[1, 1]], "total_us": 1.5, "min_us": 1, "max_us": 1}, "histogram.total_us"),
    ({"buckets": [[1, 1]], "total_us": 1, "min_us": 5, "max_us": 1}, "histogram"),
    ({"buckets": [], "total_us": 9, "min_us": 0, "max_us": 0}, "histogram"),
])
def test_dict_form_rejects_what_no_histogram_wrote(data: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        Histogram.from_dict(data)
    assert err.value.field == field
