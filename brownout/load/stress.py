"""Stress to failure: step the rate up until the SLA breaks; report the breaking point.

The breaking point is the highest rate whose step met the SLA, with the SLI that broke at
the next step and its value. ``run_step(rate, duration)`` is pluggable so the control plane
can run the same search with faults active and compare capacity with and without them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from brownout.load.generator import run_load
from brownout.load.payloads import PayloadSource
from brownout.load.shapes import ConstantShape, StressShape
from brownout.load.stats import WindowStats
from faults.errors import InvalidInput

RunStep = Callable[[float, float], Awaitable[WindowStats]]


@dataclass(frozen=True, slots=True)
class Breach:
    sli: str  # latency_p99_ms | error_rate | dropped_rate
    bound: float
    value: float

    def __str__(self) -> str:
        return f"{self.sli} {self.value:.4g} > {self.bound:.4g}"


@dataclass(frozen=True, slots=True)
class Sla:
    """Bounds a step must meet. ``None`` switches a bound off; drops always count: a server
    that cannot take requests in has not held the rate."""

    latency_p99_ms: float | None = None
    error_rate: float | None = None
    dropped_rate: float = 0.01

    def __post_init__(self) -> None:
        for name in ("latency_p99_ms", "error_rate", "dropped_rate"):
            value = getattr(self, name)
            if value is not None and not value >= 0:
                raise InvalidInput(f"must be >= 0, got {value!r}", name)

    def check(self, stats: WindowStats) -> Breach | None:
        """The first bound ``stats`` breaks, or None. No traffic at all breaks nothing."""
        if self.latency_p99_ms is not None and stats.p99_ms > self.latency_p99_ms:
            return Breach("latency_p99_ms", self.latency_p99_ms, stats.p99_ms)
        if self.error_rate is not None and stats.error_rate > self.error_rate:
            return Breach("error_rate", self.error_rate, stats.error_rate)
        if stats.dropped_rate > self.dropped_rate:
            return Breach("dropped_rate", self.dropped_rate, stats.dropped_rate)
        return None


@dataclass(frozen=True, slots=True)
class StepResult:
    rate: float
    stats: WindowStats
    breach: Breach | None

    @property
    def held(self) -> bool:
        return self.breach is None


@dataclass(frozen=True, slots=True)
class BreakingPoint:
    held_rate: float | None  # highest rate that met the SLA; None if the first step broke
    broke_rate: float | None  # the rate that broke it; None if every step up to max held
    breach: Breach | None  # what broke, and by how much
    steps: tuple[StepResult, ...]

    @property
    def reached_max(self) -> bool:
        return self.broke_rate is None

    def describe(self) -> str:
        if self.broke_rate is None:
            return f"no breaking point up to {self.held_rate:g} req/s: every step met the SLA"
        held = f"{self.held_rate:g} req/s" if self.held_rate is not None else "nothing (the first step broke)"
        return f"breaking point: {held} held; {self.broke_rate:g} req/s broke it: {self.breach}"


async def find_breaking_point(
    shape: StressShape,
    sla: Sla,
    run_step: RunStep,
    *,
    on_step: Callable[[StepResult], None] | None = None,
) -> BreakingPoint:
    """Run ``shape``'s steps in order and stop at the first that breaks ``sla``."""
    if sla.latency_p99_ms is None and sla.error_rate is None:
        raise InvalidInput("stress needs an SLA to break: give a p99 bound or an error rate", "sla")
    steps: list[StepResult] = []
    held: float | None = None
    for rate in shape.rates():
        stats = await run_step(rate, shape.step_duration)
        result = StepResult(rate, stats, sla.check(stats))
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
