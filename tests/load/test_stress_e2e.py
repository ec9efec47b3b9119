"""Stress finds the breaking point of a server with a known capacity (200 req/s) within ±15%."""

from __future__ import annotations

from brownout.load.shapes import StressShape
from brownout.load.stress import Sla, find_breaking_point, load_step_runner


async def test_breaking_point_of_a_200_per_second_server(server: str) -> None:
    shape = StressShape(start_rate=120, step=30, step_duration=1, max_rate=330)
    point = await find_breaking_point(shape, Sla(latency_p99_ms=150), load_step_runner(f"{server}/capacity/200"))
    assert point.held_rate is not None and 170 <= point.held_rate <= 230, point.describe()
    assert point.breach is not None and point.breach.sli == "latency_p99_ms" and point.breach.value > 150
    assert point.broke_rate == point.held_rate + 30
    assert all(step.held for step in point.steps[:-1]) and not point.steps[-1].held
