"""The one window model (brownout.windows): definitions, no data as None, exact merges, the JSON form."""

from __future__ import annotations

import json
import random

import pytest

from brownout.records import RequestRecord
from brownout.windows import WindowAccumulator, WindowGrid, WindowSeries
from faults.errors import InvalidInput


def rec(t: float, latency_ms: float = 10.0, status: int = 200, **kw: object) -> RequestRecord:
    return RequestRecord(scheduled_at=t, latency_s=latency_ms / 1000, status=status, **kw)  # type: ignore[arg-type]


def test_grid_assigns_by_scheduled_time() -> None:
    grid = WindowGrid(5.0)
    assert [grid.index_of(t) for t in (0.0, 4.999, 5.0, 12.0)] == [0, 0, 1, 2]
    assert grid.bounds(2) == (10.0, 15.0)
    assert WindowGrid(2.0, origin=1.0).index_of(0.5) == -1
    with pytest.raises(InvalidInput):
        WindowGrid(0.0)


def test_window_stats_counts_rates_and_percentiles() -> None:
    acc = WindowAccumulator(0, 0.0, 2.0)
    for i in range(1, 101):  # latencies 1..100 ms
        acc.add(rec(i / 100, latency_ms=i, bytes_received=10))
    acc.add(rec(1.0, status=503))
    acc.add(rec(1.0, status=0, error="timeout", latency_ms=2000))
    acc.add(rec(1.0, status=0, error="in_flight_cap", dropped=True))
    acc.add(rec(1.0, status=404))
    acc.observe_in_flight(7)
    acc.observe_in_flight(3)
    s = acc.stats()
    assert (s.sent, s.errors, s.dropped, s.scheduled) == (103, 2, 1, 104)
    assert s.error_rate == pytest.approx(2 / 103)  # 5xx and transport errors over sent; a 4xx is not an error
    assert s.dropped_rate == pytest.approx(1 / 104)
    assert s.throughput_rps == pytest.approx(101 / 2)  # good answers (2xx, 4xx) per second of the window
    assert s.p50_ms == pytest.approx(51, rel=0.02) and s.p90_ms == pytest.approx(91, rel=0.02)
    assert s.p95_ms == pytest.approx(96, rel=0.02) and s.p99_ms == pytest.approx(100, rel=0.02)
    assert s.p999_ms == pytest.approx(2000, rel=0.01) and s.max_ms == pytest.approx(2000, rel=0.01)
    assert s.mean_ms == pytest.approx((5050 + 10 + 2000 + 10) / 103, rel=0.01)
    assert s.statuses == {"2xx": 100, "5xx": 1, "timeout": 1, "dropped": 1, "4xx": 1}
    assert (s.status_2xx, s.status_3xx, s.status_4xx, s.status_5xx, s.transport_errors) == (100, 0, 1, 1, 1)
    assert s.bytes_received == 1000 and s.in_flight_max == 7
    assert s.as_dict()["throughput_rps"] == s.throughput_rps and s.as_dict()["statuses"] == s.statuses


def test_no_data_is_none_never_zero() -> None:
    empty = WindowAccumulator(3, 15.0, 20.0).stats()
    assert (empty.p50_ms, empty.p99_ms, empty.max_ms, empty.mean_ms) == (None, None, None, None)
    assert (empty.error_rate, empty.dropped_rate, empty.throughput_rps) == (None, None, None)
    all_dropped = WindowAccumulator(0, 0.0, 1.0)
    for _ in range(5):
        all_dropped.add(rec(0.5, status=0, error="saturated", dropped=True))
    s = all_dropped.stats()
    # Requests were offered and none was served: no throughput and every request dropped,
    # but no answer to take an error rate or a latency of.
    assert (s.throughput_rps, s.dropped_rate, s.error_rate, s.p99_ms) == (0.0, 1.0, None, None)


def _random_records(n: int, seed: int) -> list[RequestRecord]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.05:
            out.append(rec(rng.uniform(0, 1), status=0, error="in_flight_cap", dropped=True))
        elif roll < 0.1:
            out.append(rec(rng.uniform(0, 1), latency_ms=rng.uniform(500, 900), status=0, error="timeout"))
        else:
            out.append(rec(rng.uniform(0, 1), latency_ms=rng.lognormvariate(3, 1), status=rng.choice((200, 201, 404, 503)),
                           bytes_received=rng.randrange(1000)))
    return out


def test_merge_is_exact() -> None:
    records = _random_records(5000, 1)
    whole, parts = WindowAccumulator(0, 0.0, 1.0), [WindowAccumulator(0, 0.0, 1.0) for _ in range(3)]
    for i, r in enumerate(records):
        whole.add(r)
        parts[i % 3].add(r)
    parts[0].observe_in_flight(4)
    parts[2].observe_in_flight(9)
    whole.observe_in_flight(9)
    merged = WindowAccumulator(0, 0.0, 1.0)
    for p in parts:
        merged.merge(p)
    assert merged.to_dict() == whole.to_dict()
    assert merged.stats() == whole.stats()


def test_accumulator_json_round_trip_then_merge() -> None:
    a, b = WindowAccumulator(4, 8.0, 10.0), WindowAccumulator(4, 8.0, 10.0)
    for i, r in enumerate(_random_records(2000, 2)):
        (a if i % 2 else b).add(r)
    a.observe_in_flight(12)
    wire = json.loads(json.dumps(a.to_dict()))
    back = WindowAccumulator.from_dict(wire)
    assert back.to_dict() == a.to_dict() and back.stats() == a.stats()
    back.merge(WindowAccumulator.from_dict(json.loads(json.dumps(b.to_dict()))))
    a.merge(b)
    assert back.stats() == a.stats()


@pytest.mark.parametrize(("change", "field"), [
    ({"sent": -1}, "window.sent"),
    ({"start": float("nan")}, "window.start"),
    ({"index": "3"}, "window.index"),
    ({"statuses": {"2xx": -1}}, "window.statuses"),
    ({"errors": 10**6}, "window"),  # more errors than requests sent
    ({"sent": 1}, "window"),  # the histogram saw a different number of requests
    ({"histogram": {"buckets": [[1, 1]], "total_us": 1, "min_us": 2, "max_us": 1}}, "window.histogram"),
])
def test_accumulator_from_dict_rejects_what_none_wrote(change: dict[str, object], field: str) -> None:
    acc = WindowAccumulator(0, 0.0, 1.0)
    for r in _random_records(50, 3):
        acc.add(r)
    with pytest.raises(InvalidInput) as err:
        WindowAccumulator.from_dict({**acc.to_dict(), **change})
    assert err.value.field == field


def test_series_fills_windows_by_schedule_leaves_edge_cases_out_and_totals() -> None:
    series = WindowSeries(1.0)
    series.add(rec(0.2))
    series.add(rec(0.9, latency_ms=3000))  # slow, but counted in the window it was scheduled in
    series.add(rec(2.5, status=503))
    series.add(rec(0.1, status=400, edge_case="malformed_json"))
    series.observe_in_flight(2.7, 5)
    assert series.indexes() == [0, 2] and series.in_flight == 5
    assert [w.sent for w in series.windows()] == [2, 1] and series.window(1).sent == 0
    assert series.window(2).in_flight_max == 5 and series.window(0).max_ms == pytest.approx(3000, rel=0.01)
    total = series.total(0.0, 4.0)
    assert (total.index, total.start, total.end, total.sent, total.errors) == (-1, 0.0, 4.0, 3, 1)
    assert total.throughput_rps == pytest.approx(2 / 4)
    assert series.total().end == 3.0  # default: to the end of the last window


def test_series_merge_window_by_window() -> None:
    records = _random_records(3000, 4)
    whole, left, right = WindowSeries(0.25), WindowSeries(0.25), WindowSeries(0.25)
    for i, r in enumerate(records):
        whole.add(r)
        (left if i % 2 else right).add(r)
    left.merge(right)
    assert left.windows() == whole.windows() and left.total(0, 1) == whole.total(0, 1)
    with pytest.raises(ValueError):
        left.merge(WindowSeries(0.5))
