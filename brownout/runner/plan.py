"""From a validated experiment to what the runner plays: sinks, a timeline and the load shape."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from brownout.admin_client import AdminClient
from brownout.experiment.model import Experiment, FaultStep
from brownout.load.shapes import AnyShape, StressShape
from brownout.runner.shape import recovery_tail
from brownout.runner.sinks import AdminSink, ToxiproxySink
from brownout.runner.timeline import FaultSink, PlannedAction, PlannedFault, Timeline
from brownout.targets import build_target


@dataclass
class Plan:
    run_id: str
    body_shape: AnyShape
    timeline: Timeline
    baseline_s: float
    admin_clients: dict[int, AdminClient] = field(default_factory=dict)
    _closers: list[Any] = field(default_factory=list)
    tail_s: float = 0.0  # the method's load held past its shape while recovery is watched

    @property
    def method_s(self) -> float:
        return self.body_shape.duration + self.tail_s

    @property
    def total_s(self) -> float:
        """The run's planned length: baseline, method and recovery watch (stress: both searches at most)."""
        if isinstance(self.body_shape, StressShape):
            return 2 * self.body_shape.duration
        return self.baseline_s + self.method_s

    @contextlib.asynccontextmanager
    async def clients(self) -> AsyncIterator[None]:
        try:
            yield
        finally:
            for closer in self._closers:
                await closer()


def fault_body(step: FaultStep, fault_id: str, seed: int) -> dict[str, Any]:
    body: dict[str, Any] = {"type": step.fault, "route": step.route, "params": dict(step.params), "id": fault_id,
                            "seed": step.seed if step.seed is not None else seed}
    if step.match:
        body["match"] = dict(step.match)
    return body


def build_plan(experiment: Experiment, *, lease: float, baseline_s: float) -> Plan:
    run_id = secrets.token_hex(3)
    sinks: dict[int, FaultSink] = {}
    admin_clients: dict[int, AdminClient] = {}
    closers: list[Any] = []
    for index, ref in enumerate(experiment.proxies):
        if ref.admin is not None:
            client = AdminClient(ref.admin, ref.token)
            admin_clients[index] = client
            sinks[index] = AdminSink(ref.admin, client)
            closers.append(client.close)
        else:
            sinks[index] = ToxiproxySink(ref.url)
    faults = [
        PlannedFault(step=i, at=step.at, duration=step.duration, sink=sinks[experiment.proxies.index(experiment.proxy_for(step))],
                     body=fault_body(step, f"run-{run_id}-step{i}", experiment.seed + i))
        for i, step in experiment.fault_steps
    ]
    cwd = experiment.source.parent if experiment.source else None
    actions = [
        PlannedAction(step=i, at=step.at, name=step.action, target=step.describe(), action=build_target(step.target, cwd=cwd))
        for i, step in experiment.action_steps
    ]
    shape = experiment.load.to_shape()
    timeline = Timeline(faults=faults, actions=actions, method_s=shape.duration, lease=lease)
    tail = 0.0
    if faults or actions:
        tail = recovery_tail(shape.duration, timeline.faults_end, experiment.recovery.within,
                             experiment.steady_state.window)
    plan = Plan(run_id, shape, timeline, baseline_s, admin_clients, tail_s=tail)
    plan._closers = closers
    return plan
