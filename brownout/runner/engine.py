"""The run lifecycle (DESIGN §4): validate → preflight → baseline → method → cleanup → recovery → report.

Time runs on one axis, "run seconds": the baseline occupies [0, B), the method starts at B
(fault offsets count from there), recovery is watched after the last fault ends. The
baseline is its own load run, so nothing is injected until it has been judged. Cleanup is
unconditional (``finally``): every fault this run added is removed and every action undone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import aiohttp

from brownout.exit_codes import Outcome, outcome_for
from brownout.fleet.report import fleet_event
from brownout.experiment.model import Experiment
from brownout.load.generator import run_load
from brownout.load.shapes import Shape, StressShape
from brownout.records import RequestRecord
from brownout.report.journal import RunReport
from brownout.runner.context import RunContext, RunOptions, payload_source
from brownout.runner.plan import build_plan
from brownout.runner.preflight import check_target
from brownout.runner.probes import probe_grace, start_probes
from brownout.runner.progress import Progress
from brownout.runner.shape import HeldTail, baseline_shape
from brownout.runner.stress import run_stress
from brownout.steady.checker import SteadyStateChecker, WindowResult
from brownout.steady.verdicts import BASELINE, METHOD, RECOVERY, decide_outcome
from faults.errors import BrownoutError


class _Stopped(Exception):
    """The run stops early: a safeguard fired or the baseline failed."""

    def __init__(self, outcome: Outcome, reason: str) -> None:
        super().__init__(reason)
        self.outcome, self.reason = outcome, reason


async def run_experiment(experiment: Experiment, options: RunOptions = RunOptions()) -> RunReport:
    """Run ``experiment`` to the end and return its report; never leaves a fault behind."""
    started = datetime.now(UTC)
    steady = experiment.steady_state
    baseline_s = steady.baseline if steady.baseline is not None else 2 * steady.window
    plan = build_plan(experiment, lease=options.lease_s, baseline_s=baseline_s)
    checker = SteadyStateChecker(steady, experiment.abort_when)
    run = RunContext(experiment, plan, options, checker, None)
    if options.view is not None:
        run.progress = Progress(options.view, plan.total_s, clock=run.now)
    outcome, reason, recovery, extra = Outcome.COULD_NOT_RUN, "", None, {}
    try:
        async with plan.clients(), aiohttp.ClientSession() as session:
            try:
                await check_target(session, experiment.target.url)
                await plan.prepare(say=_say(options))
                run.t0 = time.monotonic()  # run second 0: the load starts now, whatever preflight took
                run.event("preflight_passed", **fleet_event(plan))
                stress = isinstance(plan.body_shape, StressShape)
                if stress:
                    extra = await run_stress(run, session)
                else:
                    await _baseline(run, session, baseline_s)
                    await _method(run, session, baseline_s)
                if not stress and (plan.timeline.faults or plan.timeline.actions):
                    recovery = checker.recovery(run.method_at + plan.timeline.faults_end, experiment.recovery.within)
                checks = checker.checks(recovery)
                outcome = decide_outcome(checks, aborted=False, recovery=recovery)
                reason = _reason(outcome, checker, recovery)
            except _Stopped as stop:
                outcome, reason = stop.outcome, stop.reason
            except (BrownoutError, asyncio.CancelledError) as exc:
                outcome, reason = outcome_for(exc), str(exc) or exc.__class__.__name__
                if isinstance(exc, asyncio.CancelledError):
                    reason = "interrupted"
            finally:
                problems = await asyncio.shield(plan.timeline.cleanup())
                run.event("cleanup_done", problems=problems)
                if problems:
                    reason = (reason + "; " if reason else "") + "; ".join(problems)
    finally:
        if run.progress is not None:
            run.progress.close()
    return RunReport(
        experiment=experiment, outcome=outcome, reason=reason, started_at=started, ended_at=datetime.now(UTC),
        timeline=run.events, windows=checker.results, phases=checker.phase_results(),
        checks=checker.checks(recovery), injections=list(plan.timeline.happened),
        recovery=recovery, source=str(experiment.source) if experiment.source else None, extra=extra,
        fleet=plan.fleet,
    )


def _say(options: RunOptions) -> Callable[[str], None] | None:
    """Preflight's lines (the fleet as resolved) go where the live view goes."""
    view = options.view
    return None if view is None else lambda line: print(line, file=view.stream, flush=True)


def _reason(outcome: Outcome, checker: SteadyStateChecker, recovery: Any) -> str:
    failed = [v for v in checker.verdicts if not v.ok]
    if outcome == Outcome.HELD:
        return "the SLA held before, during and after the faults"
    if failed:
        return failed[0].message()
    if recovery is not None and not recovery.recovered:
        return f"the SLA did not hold again within {recovery.within:g}s of the faults ending"
    return str(outcome)


async def _load(run: RunContext, session: aiohttp.ClientSession, shape: Shape, offset: float,
                phase_of: Callable[[float, float], str], stop: asyncio.Event, *, baseline: bool) -> None:
    """Run ``shape`` from run second ``offset``, feeding the checker, closing windows as they end."""
    exp = run.experiment
    keep_bodies = exp.steady_state.predictions is not None
    payloads = payload_source(exp)

    def on_record(record: RequestRecord) -> None:
        shifted = dataclasses.replace(record, scheduled_at=record.scheduled_at + offset)
        run.checker.feed(shifted)
        if run.progress is not None:
            run.progress.record(shifted)

    def on_in_flight(t: float, in_flight: int) -> None:
        run.checker.observe_in_flight(t + offset, in_flight)
        if run.progress is not None:
            run.progress.in_flight = in_flight

    start_gap = offset - run.now()
    if start_gap > 0:
        await asyncio.sleep(start_gap)
    if run.progress is not None:
        run.progress.phase = phase_of(offset, offset)
        run.progress.rate_target = shape.rate_at(0)
    load = asyncio.ensure_future(run_load(
        exp.target.url, shape, payloads, connections=exp.load.connections, request_timeout=exp.load.timeout,
        keep_bodies=keep_bodies, on_record=on_record, stop=stop, on_in_flight=on_in_flight,
    ))
    prober = start_probes(exp, session, run.now, run.checker, stop)
    try:
        while not load.done():
            await asyncio.wait([load], timeout=0.1)
            _close(run, run.checker.close_due(run.now(), grace=probe_grace(exp), phase_of=phase_of,
                                              faults_of=run.plan.timeline.active_between), stop)
        await load
    finally:
        stop.set()
        if not load.done():
            load.cancel()
        if prober is not None:
            await prober
    end = offset + shape.duration
    # Every answer is in: close the remaining windows of this run.
    _close(run, run.checker.close_due(end + 1e-9, grace=0.0, phase_of=phase_of,
                                      faults_of=run.plan.timeline.active_between), stop, baseline=baseline)


def _close(run: RunContext, results: Sequence[WindowResult], stop: asyncio.Event, *, baseline: bool = False) -> None:
    for result in results:
        if run.progress is not None:
            run.progress.window(result)
        run.event("window_closed", index=result.index, phase=result.phase, ok=result.ok)
        if result.abort:
            stop.set()
            raise _Stopped(Outcome.ABORTED, "abort_when: " + "; ".join(v.message() for v in result.abort))


async def _baseline(run: RunContext, session: aiohttp.ClientSession, seconds: float) -> None:
    run.event("baseline_started", seconds=seconds)
    await _load(run, session, baseline_shape(run.plan.body_shape, seconds), 0.0, lambda s, e: BASELINE,
                asyncio.Event(), baseline=True)
    failed = [v for r in run.checker.results if r.phase == BASELINE for v in r.verdicts if not v.ok]
    if failed:
        raise _Stopped(Outcome.BASELINE_FAILED, "baseline failed before any fault: " + failed[0].message())
    run.event("baseline_held")


async def _method(run: RunContext, session: aiohttp.ClientSession, baseline_s: float) -> None:
    plan = run.plan
    timeline = plan.timeline
    # The baseline's last answers (and its judgement) may take the method past its planned
    # start: faults and load then start together, late, and the run's end moves with them.
    method_at = run.method_at = max(baseline_s, run.now())
    if run.progress is not None:
        run.progress.total_s = plan.total_s + (method_at - baseline_s)
    faults_end = method_at + timeline.faults_end
    has_faults = bool(timeline.faults or timeline.actions)
    shape = HeldTail(plan.body_shape, plan.tail_s)

    def phase_of(start: float, end: float) -> str:
        if has_faults and start >= faults_end:
            return RECOVERY
        return METHOD

    run.event("method_started", faults=len(timeline.faults), actions=len(timeline.actions))
    stop = asyncio.Event()
    player = asyncio.ensure_future(timeline.run(origin=run.t0, method_at=method_at))
    # A step that fails (a sidecar lost) ends the load at once; its error is raised below.
    player.add_done_callback(lambda task: task.cancelled() or task.exception() is None or stop.set())
    watcher = asyncio.ensure_future(_watch_faults(run))
    try:
        await _load(run, session, shape, method_at, phase_of, stop, baseline=False)
        if player.done() and player.exception() is not None:
            raise player.exception()  # type: ignore[misc]
    finally:
        for task in (player, watcher):
            task.cancel()
        await asyncio.gather(player, watcher, return_exceptions=True)


async def _watch_faults(run: RunContext) -> None:
    """Keep the live view fresh: active faults, 4 times a second."""
    while True:
        if run.progress is not None:
            run.progress.faults = tuple(run.plan.timeline.active_now())
            run.progress.tick()
        await asyncio.sleep(0.25)
