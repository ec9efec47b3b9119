"""What every part of a run shares: the experiment, its plan, the checker, the clock and the journal's timeline.

The run lifecycle (``engine``) and stress to failure (``stress``) both work on a
``RunContext``; neither imports the other's internals. With ``load.engine: locust`` the
context also holds the Locust engine (``load_engine``: a master in this process, workers in
their own), and the load of every phase and stress step runs through it.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from brownout.experiment.model import Experiment
from brownout.experiment.steady import Predictions
from brownout.liveview import LiveView
from brownout.load.distributed.coordinator import LoadJob
from brownout.load.distributed.engine import EngineSettings, LocustEngine
from brownout.load.distributed.protocol import ChecksWire
from brownout.load.payloads import PayloadSource
from brownout.load.replay import load_recorded
from brownout.load.shapes import ConstantShape
from brownout.load.stress import RunStep, load_step_runner
from brownout.report.journal import TimelineEvent
from brownout.runner.plan import Plan
from brownout.runner.observers import ObserverHub
from brownout.runner.progress import Progress
from brownout.runner.tracing import RunTracing
from brownout.steady.checker import SteadyStateChecker
from brownout.windows import WindowGrid

log = structlog.get_logger("brownout.runner")


@dataclass(frozen=True)
class RunOptions:
    lease_s: float = 30.0
    view: LiveView | None = None  # None: no live view (tests, --quiet)
    master_bind_host: str = "127.0.0.1"  # the locust engine's master (no authentication: loopback by default)
    master_bind_port: int | None = None  # None: 5557 when workers are expected from elsewhere, else any free port
    pidfiles: tuple[Path, ...] = ()  # the stack's processes, when the caller knows them: measured for cost


@dataclass
class RunContext:
    experiment: Experiment
    plan: Plan
    options: RunOptions
    checker: SteadyStateChecker
    progress: Progress | None
    events: list[TimelineEvent] = field(default_factory=list)
    t0: float = field(default_factory=time.monotonic)  # run second 0 (the baseline's start), monotonic clock
    method_at: float = 0.0  # run second the method phase started at (its plan: the baseline's length)
    load_engine: LocustEngine | None = None  # None: the load runs in this process
    observers: ObserverHub | None = None  # what watches each window from outside the load generator
    tracing: RunTracing | None = None  # the run's trace (brownout.runner.tracing), when tracing is on

    def now(self) -> float:
        return time.monotonic() - self.t0

    @property
    def start_lead(self) -> float:
        """How long a load takes to start after it is asked for (its plan must reach the workers)."""
        return self.load_engine.start_lead if self.load_engine is not None else 0.0

    def event(self, name: str, **detail: Any) -> None:
        # Run second 0 is when the load starts; what happens just before it (the locust engine's
        # lead) is at 0.
        self.events.append(TimelineEvent(round(max(0.0, self.now()), 3), name, detail))
        log.info(name, **detail)


def payload_source(exp: Experiment) -> PayloadSource | None:
    """The experiment's payload corpus with its edge-case mix (None: GET the target); a replay
    sends its recording in the order the requests started."""
    if exp.load.payloads is None:
        return None
    if exp.load.shape == "replay":
        recorded = load_recorded(exp.load.payloads, by_time=True)
        return PayloadSource(recorded.templates, exp.load.edge_case_mix(), seed=exp.seed, ordered=True)
    return PayloadSource.from_file(exp.load.payloads, exp.load.edge_case_mix(), seed=exp.seed)


def engine_settings(exp: Experiment, options: RunOptions) -> EngineSettings:
    load = exp.load
    return EngineSettings(workers=load.local_workers, expect_workers=load.expect_workers,
                          min_workers=load.min_workers or 1, bind_host=options.master_bind_host,
                          bind_port=options.master_bind_port)


def checks_of(predictions: Predictions | None) -> ChecksWire | None:
    """The per-response invariants a load worker checks on its answers (as the checker's ``feed`` does)."""
    if predictions is None:
        return None
    versions = predictions.model_versions
    return ChecksWire(required=list(predictions.required_paths), score=predictions.score,
                      version_path=predictions.model_version_path if versions is not None else None,
                      versions=list(versions) if versions is not None else None)


def load_job(run: RunContext, shape: Any, **changes: Any) -> LoadJob:
    """The experiment's load as a distributed job: windows count edge cases, as the checker's do."""
    exp = run.experiment
    job = LoadJob(exp.target.url, shape, payload_source(exp), connections=exp.load.connections,
                  request_timeout=exp.load.timeout, edge_cases_in_windows=True,
                  checks=checks_of(exp.steady_state.predictions))
    return dataclasses.replace(job, **changes)


def step_runner(run: RunContext) -> RunStep:
    """Stress steps, on the experiment's engine."""
    exp = run.experiment
    engine = run.load_engine
    if engine is None:
        return load_step_runner(exp.target.url, payload_source(exp), connections=exp.load.connections,
                                request_timeout=exp.load.timeout, window_s=exp.steady_state.window)

    async def run_step(rate: float, duration: float) -> Any:
        job = load_job(run, ConstantShape(rate, duration), edge_cases_in_windows=False, checks=None,
                       grid=WindowGrid(exp.steady_state.window))
        return (await engine.run(job)).load.total

    return run_step
