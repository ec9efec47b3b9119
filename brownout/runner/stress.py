"""Stress to failure: the breaking point without faults, then with the method's faults active."""

from __future__ import annotations

from typing import Any

import aiohttp

from brownout.load.shapes import StressShape
from brownout.load.stress import BreakingPoint, Sla, StepResult, find_breaking_point, load_step_runner
from brownout.runner.context import RunContext, payload_source


def _as_json(point: BreakingPoint) -> dict[str, Any]:
    return {
        "held_rate": point.held_rate, "broke_rate": point.broke_rate,
        "breach": str(point.breach) if point.breach is not None else None, "describe": point.describe(),
        "steps": [{"rate": s.rate, "held": s.held, "p99_ms": s.stats.p99_ms, "error_rate": s.stats.error_rate,
                   "breach": str(s.breach) if s.breach else None} for s in point.steps],
    }


async def run_stress(run: RunContext, session: aiohttp.ClientSession) -> dict[str, Any]:
    exp = run.experiment
    shape = run.plan.body_shape
    assert isinstance(shape, StressShape)
    sla = Sla(latency_p99_ms=exp.steady_state.sla.latency_p99_ms, error_rate=exp.steady_state.sla.error_rate)
    run_step = load_step_runner(exp.target.url, payload_source(exp), connections=exp.load.connections,
                                request_timeout=exp.load.timeout)

    def step_done(label: str) -> Any:
        def on_step(step: StepResult) -> None:
            run.event("stress_step", faults=label, rate=step.rate, held=step.held,
                      p99_ms=step.stats.p99_ms, error_rate=step.stats.error_rate)
        return on_step

    run.event("stress_without_faults")
    without = await find_breaking_point(shape, sla, run_step, on_step=step_done("none"))
    run.event("stress_with_faults", faults=len(run.plan.timeline.faults))
    async with run.plan.timeline.all_active(run.t0):
        with_faults = await find_breaking_point(shape, sla, run_step, on_step=step_done("method"))
    ratio = (with_faults.held_rate or 0.0) / without.held_rate if without.held_rate else None
    return {"stress": {"without_faults": _as_json(without), "with_faults": _as_json(with_faults),
                       "capacity_under_fault": ratio}}
