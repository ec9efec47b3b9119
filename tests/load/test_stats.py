"""Per-window statistics, the SLA check and the stress search (pure: records and a fake step)."""

from __future__ import annotations

import pytest

from brownout.load.edgecases import EdgeCaseTally, parse_edge_cases
from brownout.load.shapes import StressShape
from brownout.load.stats import Windowed, WindowStats
from brownout.load.stress import Sla, find_breaking_point
from brownout.records import RequestRecord
from faults.errors import InvalidInput


def test_windows_count_status_classes_bytes_drops_and_latency() -> None:
    w = Windowed(1.0)
    for i in range(100):
        w.add(RequestRecord(0.5, 0.010 + i / 10_000, 200, bytes_received=100))
    w.add(RequestRecord(0.6, 0.2, 503))
    w.add(RequestRecord(0.7, 1.0, 0, error="timeout"))
    w.add(RequestRecord(0.8, 0.0, 0, error="in_flight_cap", dropped=True))
    w.add(RequestRecord(0.9, 0.05, 404))
    w.add(RequestRecord(1.5, 0.3, 302))
    w.add(RequestRecord(0.1, 0.01, 400, edge_case="malformed_json"))  # edge cases are kept apart
    w.observe_in_flight(0.95, 7)
    first = w.window(0)
    assert (first.status_2xx, first.status_3xx, first.status_4xx, first.status_5xx) == (100, 0, 1, 1)
    assert first.transport_errors == 1 and first.dropped == 1 and first.completed == 103
    assert first.bytes_received == 10_000 and first.in_flight_max == 7
    assert first.errors == 2 and first.error_rate == pytest.approx(2 / 103)
    assert first.p50_ms == pytest.approx(15, rel=0.01) and first.max_ms == pytest.approx(1000, rel=0.001)
    assert first.throughput == 103
    assert w.window(1).status_3xx == 1 and [s.index for s in w.windows()] == [0, 1]
    total = w.total()
    assert total.completed == 104 and total.end_s == 2.0 and total.index == -1


def _stats(p99_ms: float, errors: int = 0, dropped: int = 0, completed: int = 100) -> WindowStats:
    return WindowStats(0, 0, 1, completed, dropped, completed - errors, 0, 0, errors, 0, 0, 0,
                       p99_ms / 2, p99_ms, p99_ms, p99_ms, p99_ms, p99_ms, p99_ms / 2)


def test_sla_names_the_sli_that_broke() -> None:
    sla = Sla(latency_p99_ms=250, error_rate=0.01)
    assert sla.check(_stats(100)) is None
    assert sla.check(_stats(300)).sli == "latency_p99_ms"  # type: ignore[union-attr]
    breach = sla.check(_stats(100, errors=5))
    assert breach is not None and breach.sli == "error_rate" and breach.value == 0.05
    assert Sla(latency_p99_ms=250).check(_stats(100, dropped=10)).sli == "dropped_rate"  # type: ignore[union-attr]
    with pytest.raises(InvalidInput):
        Sla(latency_p99_ms=-1)


async def test_stress_stops_at_the_first_step_that_breaks() -> None:
    capacity = 350.0
    calls: list[float] = []

    async def run_step(rate: float, duration: float) -> WindowStats:  # a server that queues past capacity
        calls.append(rate)
        return _stats(5 + max(0.0, rate - capacity) * duration * 10)

    point = await find_breaking_point(StressShape(100, 100, 2, 1000), Sla(latency_p99_ms=100), run_step)
    assert point.held_rate == 300 and point.broke_rate == 400 and calls == [100, 200, 300, 400]
    assert point.breach is not None and point.breach.sli == "latency_p99_ms"
    assert "300 req/s held" in point.describe()
    never = await find_breaking_point(StressShape(100, 100, 1, 300), Sla(latency_p99_ms=10_000), run_step)
    assert never.reached_max and never.held_rate == 300
    first = await find_breaking_point(StressShape(500, 100, 1, 600), Sla(latency_p99_ms=100), run_step)
    assert first.held_rate is None and first.broke_rate == 500
    with pytest.raises(InvalidInput):
        await find_breaking_point(StressShape(1, 1, 1, 2), Sla(), run_step)


def test_edge_case_tally_lists_findings() -> None:
    tally = EdgeCaseTally(parse_edge_cases({"missing_field": 0.1, "unicode": 0.1}))
    tally.add(RequestRecord(0, 0.01, 422, edge_case="missing_field"))
    tally.add(RequestRecord(0, 0.01, 500, edge_case="missing_field"))
    tally.add(RequestRecord(0, 5.0, 0, error="timeout", edge_case="missing_field"))
    tally.add(RequestRecord(0, 0.01, 200, edge_case="unicode"))
    tally.add(RequestRecord(0, 0.0, 0, error="in_flight_cap", edge_case="unicode", dropped=True))
    report = tally.report()
    assert [(f.edge_case, f.got, f.severe) for f in report.findings] == [
        ("missing_field", "5xx", True), ("missing_field", "hang", True)]
    by_name = {c.name: c for c in report.cases}
    assert by_name["missing_field"].sent == 3 and by_name["unicode"].dropped == 1
