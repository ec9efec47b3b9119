"""The run as a trace: an experiment span, a child per phase and per injection.

On when the experiment's ``tracing:`` block or the OTEL_* variables give an endpoint
(``proxy.tracing.settings``; the default service name is ``brownout-runner``). The
experiment span starts with the run, so its trace id is known from the first request: the
load generator's sampled requests (``brownout.load.tracing``, at ``sample_ratio``; 0.01 when
nothing says otherwise, because a span per request would cost the generator more than the
request) are traces of their own, linked to it. The experiment trace itself is always
recorded. The phase spans (baseline, method, recovery) and the injection spans (a fault from
its add to its removal, an action from when it was done to its undo) are written when the run
ends, with the times the journal records, and the journal and the report name their ids
(and links, with ``tracing.link_template``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from brownout.load.client import parse_target
from brownout.load.tracing import FLUSH_TIMEOUT_S, LoadTracing, load_settings
from brownout.report.journal import Injection, RunReport
from brownout.steady.verdicts import BASELINE, METHOD, RECOVERY
from proxy.tracing.context import Sampler, new_span_id, new_trace_id, span_hex, trace_hex
from proxy.tracing.exporter import SpanExport
from proxy.tracing.records import KIND_INTERNAL, STATUS_ERROR, SpanRecord
from proxy.tracing.settings import TracingSettings

if TYPE_CHECKING:
    from brownout.experiment.model import Experiment
    from brownout.runner.context import RunContext


class RunTracing:
    def __init__(self, settings: TracingSettings, export: SpanExport, experiment: Experiment) -> None:
        self.settings = settings
        self.export = export
        self.span = SpanRecord(new_trace_id(), new_span_id(), 0, f"brownout run: {experiment.title}", KIND_INTERNAL,
                               time.time_ns(), {
            "brownout.experiment.title": experiment.title, "brownout.experiment.seed": experiment.seed,
            "brownout.experiment.source": str(experiment.source or ""), "brownout.target": experiment.target.url})
        self.trace_id, self.span_id = trace_hex(self.span.trace_id), span_hex(self.span.span_id)

    @classmethod
    def start(cls, experiment: Experiment, env: Mapping[str, str] | None = None) -> RunTracing | None:
        """The run's tracing, or None when it is off. A bad variable raises ``InvalidInput``."""
        env = os.environ if env is None else env
        settings = load_settings(experiment.tracing, env, default_service="brownout-runner")
        if settings is None:
            return None
        return cls(settings, SpanExport(settings, env, scope="brownout.runner"), experiment)

    def load(self, target_url: str) -> LoadTracing:
        """For one load run: its sampled requests' spans, linked to the experiment span."""
        return LoadTracing(self.export, Sampler(self.settings.sample_ratio), parse_target(target_url),
                           link=(self.span.trace_id, self.span.span_id))

    async def finish(self, report: RunReport, run: RunContext) -> RunReport:
        """Write the phase and injection spans, end the experiment span, flush; the report names their ids."""
        wall0 = time.time() - run.now()  # wall-clock seconds at run second 0
        end_t = max([e.t for e in run.events] + [run.now() if run.events else 0.0])
        self._phases(report, run, wall0, end_t)
        injections = [self._injection(i, wall0, end_t) for i in report.injections]
        self._end_experiment(report, run, wall0)
        await asyncio.to_thread(self.export.close, FLUSH_TIMEOUT_S)
        return dataclasses.replace(report, injections=injections, trace_id=self.trace_id,
                                   trace_url=self.settings.link(self.trace_id, self.span_id))

    # -- the spans

    def _child(self, name: str, start_t: float, end_t: float, wall0: float,
               attributes: dict[str, Any]) -> SpanRecord:
        """A child of the experiment span over run seconds [start_t, end_t]."""
        return SpanRecord(self.span.trace_id, new_span_id(), self.span.span_id, name, KIND_INTERNAL,
                          _ns(wall0 + start_t), attributes, end_ns=_ns(wall0 + max(end_t, start_t)))

    def _phases(self, report: RunReport, run: RunContext, wall0: float, end_t: float) -> None:
        started = {e.event: e.t for e in run.events}
        if "baseline_started" not in started:
            return
        faults_end = run.method_at + run.plan.timeline.faults_end
        has_faults = bool(run.plan.timeline.faults or run.plan.timeline.actions)
        bounds = {BASELINE: (started["baseline_started"], run.method_at if "method_started" in started else end_t)}
        if "method_started" in started:
            bounds[METHOD] = (run.method_at, faults_end if has_faults else end_t)
            if has_faults and end_t > faults_end:
                bounds[RECOVERY] = (faults_end, end_t)
        held = {p.phase: p for p in report.phases}
        for phase, (start_t, stop_t) in bounds.items():
            result = held.get(phase)
            attributes: dict[str, Any] = {"brownout.phase": phase}
            if result is not None:
                attributes.update({"brownout.phase.windows": result.windows, "brownout.phase.held": result.held})
            span = self._child(f"phase {phase}", start_t, stop_t, wall0, attributes)
            for window in report.windows:
                if window.phase == phase and not window.ok:
                    failed = [v.message() for v in window.verdicts if not v.ok]
                    span.event("brownout.window.failed", {"brownout.window": window.index, "message": failed[0]},
                               _ns(wall0 + window.stats.end))
            if result is not None and not result.held:
                span.status, span.status_message = STATUS_ERROR, f"the steady state did not hold in the {phase}"
            self.export.put(span)

    def _injection(self, injection: Injection, wall0: float, end_t: float) -> Injection:
        start_t = injection.started_at if injection.started_at is not None else injection.planned_at
        stop_t = injection.ended_at if injection.ended_at is not None else end_t
        attributes: dict[str, Any] = {"brownout.injection.kind": injection.kind, "brownout.injection.step": injection.step,
                                      "brownout.injection.id": injection.id}
        if injection.kind == "fault":
            attributes.update({"brownout.fault.id": injection.id, "brownout.fault.type": injection.name,
                               "brownout.fault.route": injection.target, "brownout.fault.removed": injection.removed,
                               "brownout.fault.params": json.dumps(dict(injection.params), sort_keys=True, default=str)})
            if injection.proxy:
                attributes["brownout.proxy"] = injection.proxy
        else:
            attributes.update({"brownout.action": injection.name, "brownout.action.target": injection.target})
        span = self._child(f"{injection.kind} {injection.describe()}", start_t, stop_t, wall0, attributes)
        if injection.error:
            span.status, span.status_message = STATUS_ERROR, injection.error
        self.export.put(span)
        span_id = span_hex(span.span_id)
        return dataclasses.replace(injection, trace_id=self.trace_id, span_id=span_id,
                                   trace_url=self.settings.link(self.trace_id, span_id))

    def _end_experiment(self, report: RunReport, run: RunContext, wall0: float) -> None:
        span = self.span
        for event in run.events:
            if event.event != "window_closed":
                span.event(f"brownout.{event.event}", {k: _attribute(v) for k, v in event.detail.items()},
                           _ns(wall0 + event.t))
        span.attributes.update({"brownout.outcome": report.outcome.value, "brownout.exit_code": int(report.exit_code),
                                "brownout.reason": report.reason})
        if report.outcome.value != "held":
            span.status, span.status_message = STATUS_ERROR, report.reason
        span.end_ns = time.time_ns()
        self.export.put(span)


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def _attribute(value: Any) -> Any:
    """A span attribute: str, bool, int or float as they are, anything else as JSON."""
    if isinstance(value, (str, bool, int, float)):
        return value
    return json.dumps(value, sort_keys=True, default=str)
