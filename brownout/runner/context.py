"""What every part of a run shares: the experiment, its plan, the checker, the clock and the journal's timeline.

The run lifecycle (``engine``) and stress to failure (``stress``) both work on a
``RunContext``; neither imports the other's internals.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import structlog

from brownout.experiment.model import Experiment
from brownout.liveview import LiveView
from brownout.load.payloads import PayloadSource
from brownout.load.replay import load_recorded
from brownout.report.journal import TimelineEvent
from brownout.runner.plan import Plan
from brownout.runner.progress import Progress
from brownout.steady.checker import SteadyStateChecker

log = structlog.get_logger("brownout.runner")


@dataclass(frozen=True)
class RunOptions:
    lease_s: float = 30.0
    view: LiveView | None = None  # None: no live view (tests, --quiet)


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

    def now(self) -> float:
        return time.monotonic() - self.t0

    def event(self, name: str, **detail: Any) -> None:
        self.events.append(TimelineEvent(round(self.now(), 3), name, detail))
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
