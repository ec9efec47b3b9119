"""From a validated experiment to what the runner plays: a timeline, the load shape, and (at preflight) the fleet."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from brownout.experiment.model import Experiment
from brownout.fleet.prepare import FleetPreflight, prepare_fleet
from brownout.fleet.records import FleetRecord
from brownout.load.shapes import AnyShape, StressShape
from brownout.runner.shape import recovery_tail
from brownout.runner.timeline import PlannedAction, Timeline
from brownout.targets import build_target


@dataclass
class Plan:
    """What the runner plays. The fault steps join the timeline at preflight (``prepare``), once
    the fleet is resolved and each step's targets are picked."""

    run_id: str
    experiment: Experiment
    body_shape: AnyShape
    timeline: Timeline
    baseline_s: float
    tail_s: float = 0.0  # the method's load held past its shape while recovery is watched
    fleet: FleetRecord | None = None
    preflight: FleetPreflight | None = None

    @property
    def method_s(self) -> float:
        return self.body_shape.duration + self.tail_s

    @property
    def total_s(self) -> float:
        """The run's planned length: baseline, method and recovery watch (stress: both searches at most)."""
        if isinstance(self.body_shape, StressShape):
            return 2 * self.body_shape.duration
        return self.baseline_s + self.method_s

    async def prepare(self, say: Callable[[str], None] | None = None) -> FleetPreflight:
        """Resolve the fleet, check every sidecar, pick targets: the fault steps join the timeline."""
        self.preflight = await prepare_fleet(self.experiment, self.run_id, say=say)
        self.fleet = self.preflight.record
        self.timeline.faults = self.preflight.faults
        return self.preflight

    @contextlib.asynccontextmanager
    async def clients(self) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if self.preflight is not None:
                await self.preflight.close()


def _steps_end(experiment: Experiment, method_s: float) -> float:
    """Method-relative time at which the last step ends (the timeline's ``faults_end`` before preflight)."""
    ends = [min(s.at + s.duration, method_s) if s.duration is not None else method_s for _, s in experiment.fault_steps]
    return max(ends + [a.at for _, a in experiment.action_steps] + [0.0])


def build_plan(experiment: Experiment, *, lease: float, baseline_s: float) -> Plan:
    run_id = secrets.token_hex(3)
    cwd = experiment.source.parent if experiment.source else None
    actions = [
        PlannedAction(step=i, at=step.at, name=step.action, target=step.describe(), action=build_target(step.target, cwd=cwd))
        for i, step in experiment.action_steps
    ]
    shape = experiment.load.to_shape()
    timeline = Timeline(faults=[], actions=actions, method_s=shape.duration, lease=lease)
    tail = 0.0
    if experiment.fault_steps or actions:
        tail = recovery_tail(shape.duration, _steps_end(experiment, shape.duration), experiment.recovery.within,
                             experiment.steady_state.window)
    return Plan(run_id, experiment, shape, timeline, baseline_s, tail_s=tail)
