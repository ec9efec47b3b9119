"""The stress search with the one SLA evaluation (a fake step with fixed statistics), and the edge-case tally."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from brownout.experiment.steady import Sla
from brownout.load.edgecases import EdgeCaseTally, parse_edge_cases
from brownout.load.shapes import StressShape
from brownout.load.stress import STRESS_MAX_DROPPED_RATE, find_breaking_point, judge_step, stress_sla
from brownout.records import RequestRecord
from brownout.windows import WindowAccumulator, WindowStats
from faults.errors import InvalidInput

SHAPE = StressShape(start_rate=100, step=100, step_duration=2, max_rate=600)


def step_stats(rate: float, duration: float, *, p50_ms: float = 5.0, p99_ms: float = 20.0, error_share: float = 0.0,
               drop_share: float = 0.0, served: float | None = None) -> WindowStats:
    """A step's figures: ``rate * duration`` requests scheduled, ``served`` of them per second answered well."""
    scheduled = int(rate * duration)
    dropped = int(scheduled * drop_share)
    sent = scheduled - dropped
    good = int((served if served is not None else rate) * duration) if sent else 0
    errors = max(int(sent * error_share), sent - good)
    return WindowStats(index=-1, start=0.0, end=duration, sent=sent, errors=errors, dropped=dropped,
                       statuses={"2xx": sent - errors, "5xx": errors, "dropped": dropped},
                       p50_ms=p50_ms, p95_ms=p99_ms, p99_ms=p99_ms)


def fake(**by_rate: Callable[[float], float]) -> Callable[[float, float], object]:
    """A run_step whose figures follow functions of the rate (a server with a known capacity)."""
    async def run_step(rate: float, duration: float) -> WindowStats:
        return step_stats(rate, duration, **{k: f(rate) for k, f in by_rate.items()})
    return run_step


# A server of capacity 350/s: beyond it, a queue builds (latency), and it serves no faster.
def _queue_ms(rate: float) -> float:
    return 5 + max(0.0, rate - 350) * 2


@pytest.mark.parametrize(("sla", "run_step", "sli"), [
    (Sla(latency_p99_ms=100), fake(p99_ms=_queue_ms), "latency_p99_ms"),
    # Only the median bound can break: p99 is within any bound here, the median is not.
    (Sla(latency_p50_ms=50, latency_p99_ms=10_000), fake(p50_ms=_queue_ms), "latency_p50_ms"),
    (Sla(latency_p95_ms=50), fake(p99_ms=_queue_ms), "latency_p95_ms"),
    # Overload collapse: past 350/s the server times out most requests; fewer than 90/s good answers.
    (Sla(min_throughput=90), fake(served=lambda r: min(r, 350) if r < 400 else 80), "throughput_rps"),
    (Sla(max_dropped_rate=0.05), fake(drop_share=lambda r: 0.0 if r <= 350 else 0.2), "dropped_rate"),
    (Sla(error_rate=0.01), fake(error_share=lambda r: 0.0 if r <= 350 else 0.1), "error_rate"),
])
async def test_stress_breaks_by_whichever_bound_the_sla_sets(sla: Sla, run_step: object, sli: str) -> None:
    calls: list[float] = []

    async def counted(rate: float, duration: float) -> WindowStats:
        calls.append(rate)
        return await run_step(rate, duration)  # type: ignore[operator, no-any-return]

    point = await find_breaking_point(SHAPE, sla, counted)
    assert (point.held_rate, point.broke_rate, calls) == (300, 400, [100, 200, 300, 400])
    assert point.breach is not None and point.breach.sli == sli and not point.breach.ok
    assert all(not v.ok for v in point.steps[-1].verdicts if v.sli == sli)
    assert f"400 req/s broke it: {sli}" in point.describe() and "300 req/s held" in point.describe()


async def test_stress_ends_at_max_or_at_the_first_step() -> None:
    never = await find_breaking_point(StressShape(100, 100, 1, 300), Sla(latency_p99_ms=10_000), fake(p99_ms=_queue_ms))
    assert never.reached_max and never.held_rate == 300 and "every step met the SLA" in never.describe()
    first = await find_breaking_point(StressShape(500, 100, 1, 600), Sla(latency_p99_ms=100), fake(p99_ms=_queue_ms))
    assert first.held_rate is None and first.broke_rate == 500 and "nothing (the first step broke)" in first.describe()


async def test_stress_needs_a_bound_and_always_counts_drops() -> None:
    with pytest.raises(InvalidInput) as err:
        await find_breaking_point(SHAPE, Sla(), fake())
    assert err.value.field == "sla"
    assert stress_sla(Sla(latency_p99_ms=100)).max_dropped_rate == STRESS_MAX_DROPPED_RATE
    assert stress_sla(Sla(max_dropped_rate=0.2)).max_dropped_rate == 0.2
    # A p99 bound alone: a step dropping 20% has not held its rate.
    point = await find_breaking_point(SHAPE, Sla(latency_p99_ms=10_000),
                                      fake(drop_share=lambda r: 0.0 if r <= 350 else 0.2))
    assert point.breach is not None and point.breach.sli == "dropped_rate" and point.broke_rate == 400


def test_a_step_without_traffic_breaks_nothing_and_says_no_data() -> None:
    empty = WindowAccumulator(-1, 0.0, 2.0).stats()
    step = judge_step(100, empty, stress_sla(Sla(latency_p99_ms=100, min_throughput=50)))
    assert step.held and step.verdicts and all(v.no_data and v.ok for v in step.verdicts)
    assert "no data" in step.verdicts[0].message()


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
