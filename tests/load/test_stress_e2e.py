"""Stress finds the breaking point of a real server with a known capacity, by whichever bound the SLA sets."""

from __future__ import annotations

from brownout.experiment.steady import Sla
from brownout.load.shapes import StressShape
from brownout.load.stress import find_breaking_point, load_step_runner


async def test_breaking_point_of_a_200_per_second_server(server: str) -> None:
    shape = StressShape(start_rate=120, step=30, step_duration=1, max_rate=330)
    point = await find_breaking_point(shape, Sla(latency_p99_ms=150), load_step_runner(f"{server}/capacity/200"))
    assert point.held_rate is not None and 170 <= point.held_rate <= 230, point.describe()
    assert point.breach is not None and point.breach.sli == "latency_p99_ms" and point.breach.value > 150
    assert point.broke_rate == point.held_rate + 30
    assert all(step.held for step in point.steps[:-1]) and not point.steps[-1].held


async def test_a_median_bound_alone_finds_the_breaking_point(server: str) -> None:
    # The p99 bound is loose enough never to break: only latency_p50_ms can stop the search.
    # Past capacity (160/s) the queue grows through the step, and the median with it.
    shape = StressShape(start_rate=100, step=30, step_duration=1, max_rate=310)
    sla = Sla(latency_p50_ms=60, latency_p99_ms=60_000)
    point = await find_breaking_point(shape, sla, load_step_runner(f"{server}/capacity/160"))
    assert point.breach is not None and point.breach.sli == "latency_p50_ms", point.describe()
    assert point.held_rate is not None and 130 <= point.held_rate <= 190, point.describe()
    assert point.broke_rate == point.held_rate + 30
    assert all(v.ok for step in point.steps for v in step.verdicts if v.sli == "latency_p99_ms")
