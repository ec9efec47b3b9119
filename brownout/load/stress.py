"""Stress to failure: step the rate up until the SLA breaks; report the breaking point.

The breaking point is the highest rate whose step met the SLA, with the SLI that broke at
the next step and its value. Each step is judged as one window over the whole step by the
same SLA evaluation as a run's windows (``brownout.steady.verdicts.evaluate_sla`` on the
experiment's ``Sla``): every bound it sets counts, and a bound without data (a step that
scheduled nothing) breaks nothing. Drops always count: unless the SLA sets its own
``max_dropped_rate``, a step that drops more than ``STRESS_MAX_DROPPED_RATE`` of its requests
has not held its rate. ``run_step(rate, duration)`` is pluggable so the control plane can
run the same search with faults active and compare capacity with and without them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from brownout.experiment.steady import Sla
from brownout.load.generator import run_load
from brownout.load.payloads import PayloadSource
from brownout.load.shapes import ConstantShape, StressShape
from brownout.steady.quality import QualityStats
from brownout.steady.verdicts import Verdict, evaluate_sla
from brownout.windows import WindowStats
from faults.errors import InvalidInput

RunStep = Callable[[float, float], Awaitable[WindowStats]]
STRESS_MAX_DROPPED_RATE = 0.01
_TRAFFIC_BOUNDS = ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "error_rate", "min_throughput",
                   "max_dropped_rate")


def stress_sla(sla: Sla) -> Sla:
    """``sla`` with the drop bound a stress search always applies; InvalidInput if it bounds nothing."""
    if all(getattr(sla, name) is None for name in _TRAFFIC_BOUNDS):
        raise InvalidInput("stress needs an SLA to break: set a latency, error rate, throughput or dropped "
                           "rate bound", "sla")
    if sla.max_dropped_rate is None:
        return sla.model_copy(update={"max_dropped_rate": STRESS_MAX_DROPPED_RATE})
    return sla


def describe_breach(v: Verdict) -> str:
    """``latency_p50_ms 80.2 > 50`` (a ``>=`` bound: ``throughput_rps 120 < 200``)."""
    value = "n/a" if v.value is None else f"{v.value:.4g}"
    return f"{v.sli} {value} {'>' if v.comparison == '<=' else '<'} {v.bound:g}"


@dataclass(frozen=True, slots=True)
class StepResult:
    rate: float
    stats: WindowStats
    verdicts: tuple[Verdict, ...]

    @property
    def breach(self) -> Verdict | None:
        """The first bound this step broke (in the SLA's order), or None."""
        return next((v for v in self.verdicts if not v.ok), None)

    @property
    def held(self) -> bool:
        return self.breach is None


@dataclass(frozen=True, slots=True)
class BreakingPoint:
    held_rate: float | None  # highest rate that met the SLA; None if the first step broke
    broke_rate: float | None  # the rate that broke it; None if every step up to max held
    breach: Verdict | None  # what broke, and by how much
    steps: tuple[StepResult, ...]

    @property
    def reached_max(self) -> bool:
        return self.broke_rate is None

    def describe(self) -> str:
        if self.broke_rate is None:
            return f"no breaking point up to {self.held_rate:g} req/s: every step met the SLA"
        held = f"{self.held_rate:g} req/s" if self.held_rate is not None else "nothing (the first step broke)"
        breach = describe_breach(self.breach) if self.breach is not None else "?"
        return f"breaking point: {held} held; {self.broke_rate:g} req/s broke it: {breach}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "held_rate": self.held_rate, "broke_rate": self.broke_rate,
            "breach": describe_breach(self.breach) if self.breach is not None else None,
            "describe": self.describe(),
            "steps": [{"rate": s.rate, "held": s.held, "p99_ms": s.stats.p99_ms, "error_rate": s.stats.error_rate,
                       "breach": describe_breach(s.breach) if s.breach is not None else None,
                       "stats": s.stats.as_dict(), "verdicts": [v.as_dict() for v in s.verdicts]}
                      for s in self.steps],
        }


def judge_step(rate: float, stats: WindowStats, sla: Sla) -> StepResult:
    """One step against the SLA (already through ``stress_sla``)."""
    verdicts = evaluate_sla(stats, QualityStats(), sla, None, phase=f"stress step {rate:g}/s")
    return StepResult(rate, stats, tuple(verdicts))


async def find_breaking_point(
    shape: StressShape,
    sla: Sla,
    run_step: RunStep,
    *,
    on_step: Callable[[StepResult], None] | None = None,
) -> BreakingPoint:
    """Run ``shape``'s steps in order and stop at the first that breaks ``sla``."""
    sla = stress_sla(sla)
    steps: list[StepResult] = []
    held: float | None = None
    for rate in shape.rates():
        result = judge_step(rate, await run_step(rate, shape.step_duration), sla)
        steps.append(result)
        if on_step is not None:
            on_step(result)
        if result.breach is not None:
            return BreakingPoint(held, rate, result.breach, tuple(steps))
        held = rate
    return BreakingPoint(held, None, None, tuple(steps))


def load_step_runner(target_url: str, payloads: PayloadSource | None = None, **run_load_kwargs: Any) -> RunStep:
    """A ``run_step`` that runs each step as a constant open-loop load with ``run_load``."""

    async def run_step(rate: float, duration: float) -> WindowStats:
        summary = await run_load(target_url, ConstantShape(rate, duration), payloads, **run_load_kwargs)
        return summary.total

    return run_step
