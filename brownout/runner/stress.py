"""Stress to failure: the breaking point without faults, then with the method's faults active.

Each step is judged by the experiment's ``steady_state.sla``, every bound of it, through the
same evaluation as a run's windows (``brownout.load.stress``).
"""

from __future__ import annotations

from typing import Any

import aiohttp

from brownout.load.shapes import StressShape
from brownout.load.stress import StepResult, describe_breach, find_breaking_point
from brownout.runner.context import RunContext, step_runner


async def run_stress(run: RunContext, session: aiohttp.ClientSession) -> dict[str, Any]:
    exp = run.experiment
    shape = run.plan.body_shape
    assert isinstance(shape, StressShape)
    sla = exp.steady_state.sla
    run_step = step_runner(run)  # on the experiment's engine (local or locust)

    def step_done(label: str) -> Any:
        def on_step(step: StepResult) -> None:
            run.event("stress_step", faults=label, rate=step.rate, held=step.held,
                      p99_ms=step.stats.p99_ms, error_rate=step.stats.error_rate,
                      breach=describe_breach(step.breach) if step.breach is not None else None)
        return on_step

    run.event("stress_without_faults")
    without = await find_breaking_point(shape, sla, run_step, on_step=step_done("none"))
    run.event("stress_with_faults", faults=len(run.plan.timeline.faults))
    async with run.plan.timeline.all_active(run.t0):
        with_faults = await find_breaking_point(shape, sla, run_step, on_step=step_done("method"))
    ratio = (with_faults.held_rate or 0.0) / without.held_rate if without.held_rate else None
    return {"stress": {"without_faults": without.as_dict(), "with_faults": with_faults.as_dict(),
                       "capacity_under_fault": ratio}}
