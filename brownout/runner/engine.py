"""The run lifecycle: validate → preflight → baseline → method → cleanup → recovery → report.

Time runs on one axis, "run seconds": the baseline occupies [0, B), the method starts at B
(fault offsets count from there), recovery is watched after the last fault ends. The
baseline is its own load run, so nothing is injected until it has been judged. Cleanup is
unconditional (``finally``): every fault this run added is removed and every action undone.

The load comes from this process (``load.engine: local``) or from Locust workers
(``locust``): then the Locust engine starts after preflight, every phase's load runs across
its workers, their windows are merged into the checker (``merge_window``) instead of
records fed one by one, and the journal's ``extra.load`` breaks the load down per worker.
Golden probes and stream probes run here either way.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any

import aiohttp
import structlog

from brownout.exit_codes import Outcome, outcome_for
from brownout.fleet.report import fleet_event, read_resolved_fleet
from brownout.experiment.model import Experiment
from brownout.load.distributed.engine import REPORT_LAG_S, LocustEngine
from brownout.load.distributed.protocol import ChecksTally
from brownout.load.generator import run_load
from brownout.load.shapes import Shape, StressShape
from brownout.records import RequestRecord
from brownout.report.journal import RunReport
from brownout.runner.context import RunContext, RunOptions, engine_settings, load_job, payload_source
from brownout.runner.observers import ObserverHub, observers_for
from brownout.runner.plan import build_plan
from brownout.runner.preflight import check_target
from brownout.runner.probes import probe_grace, start_probes
from brownout.runner.progress import Progress
from brownout.runner.shape import HeldTail, baseline_shape
from brownout.runner.stress import run_stress
from brownout.runner.tracing import RunTracing
from brownout.steady.checker import SteadyStateChecker, WindowResult
from brownout.steady.replay import replay_judge
from brownout.steady.verdicts import BASELINE, METHOD, RECOVERY, decide_outcome
from brownout.windows import WindowAccumulator, WindowGrid
from faults.errors import BrownoutError

log = structlog.get_logger("brownout.runner")



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
    checker = SteadyStateChecker(steady, experiment.abort_when, replay=replay_judge(experiment))
    run = RunContext(experiment, plan, options, checker, None)
    hub = run.observers = ObserverHub(observers_for(experiment, options.pidfiles), checker)
    if options.view is not None:
        run.progress = Progress(options.view, plan.total_s, clock=run.now)
    outcome, reason, recovery, extra = Outcome.COULD_NOT_RUN, "", None, {}
    try:
        async with plan.clients(), aiohttp.ClientSession() as session, AsyncExitStack() as engines:
            try:
                run.tracing = RunTracing.start(experiment)
                await check_target(session, experiment.target.url)
                await plan.prepare(say=_say(options))
                read_resolved_fleet(hub.observers, plan)  # the sidecar reader reads the fleet as resolved
                if experiment.load.engine == "locust":
                    run.load_engine = await engines.enter_async_context(LocustEngine(engine_settings(experiment, options)))
                stress = isinstance(plan.body_shape, StressShape)
                if not stress:  # stress judges its steps by the load alone
                    await hub.start()
                # Run second 0: the load starts now (a Locust load a moment later: its plan must reach the workers).
                run.t0 = time.monotonic() + run.start_lead
                if not stress:
                    hub.begin(run.now, time.time() + run.start_lead)
                run.event("preflight_passed", **fleet_event(plan))
                if run.load_engine is not None:
                    run.event("workers_ready", workers=len(run.load_engine.live()))
                    run.load_engine.on_event = run.event  # joined, lost, rebalanced: in the journal
                if stress:
                    extra = await run_stress(run, session)
                else:
                    armed = _arm_method(run, baseline_s)
                    try:
                        await _baseline(run, session, baseline_s)
                    except BaseException:
                        if armed is not None:
                            armed.load.cancel()  # the workers are told to drop it
                            await asyncio.gather(armed.load, return_exceptions=True)
                        raise
                    await _method(run, session, baseline_s, armed)
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
            except Exception as exc:  # a bug of ours, not a finding: still clean up, and report it (exit 4)
                log.exception("run_failed")
                outcome, reason = Outcome.COULD_NOT_RUN, f"internal error: {exc.__class__.__name__}: {exc}"
            finally:
                await hub.close()
                problems = await asyncio.shield(plan.timeline.cleanup())
                run.event("cleanup_done", problems=problems)
                if problems:
                    reason = (reason + "; " if reason else "") + "; ".join(problems)
            if run.load_engine is not None:
                extra = {**extra, "load": {"engine": "locust", "workers": run.load_engine.breakdown()}}
    finally:
        if run.progress is not None:
            run.progress.close()
    report = RunReport(
        experiment=experiment, outcome=outcome, reason=reason, started_at=started, ended_at=datetime.now(UTC),
        timeline=run.events, windows=checker.results, phases=checker.phase_results(),
        checks=checker.checks(recovery), injections=list(plan.timeline.happened),
        recovery=recovery, source=str(experiment.source) if experiment.source else None, extra=extra,
        fleet=plan.fleet,
    )
    return report if run.tracing is None else await run.tracing.finish(report, run)


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


@dataclasses.dataclass(frozen=True)
class _Armed:
    """A Locust load set to start at run second ``offset``, its plan with the workers already."""

    offset: float
    load: asyncio.Future[object]
    stop: asyncio.Event


def _arm_method(run: RunContext, baseline_s: float) -> _Armed | None:
    """On the locust engine the method's load is handed out while the baseline runs, so that it
    starts on time (at the baseline's end) instead of a plan's delivery later; the faults still
    wait for the baseline's verdict, and a failed baseline cancels it."""
    if run.load_engine is None:
        return None
    stop = asyncio.Event()
    offset, load = _distributed(run, run.load_engine, HeldTail(run.plan.body_shape, run.plan.tail_s), baseline_s, stop)
    return _Armed(offset, load, stop)


async def _load(run: RunContext, session: aiohttp.ClientSession, shape: Shape, offset: float,
                phase_of: Callable[[float, float], str], stop: asyncio.Event, *, baseline: bool,
                armed: _Armed | None = None) -> None:
    """Run ``shape`` from run second ``offset`` (or the load ``armed`` already), feeding the checker,
    closing windows as they end."""
    exp = run.experiment
    start_gap = offset - run.now() - run.start_lead
    if start_gap > 0:
        await asyncio.sleep(start_gap)
    if run.progress is not None:
        run.progress.phase = phase_of(offset, offset)
        run.progress.rate_target = shape.rate_at(0)
    grace = probe_grace(exp)
    if armed is not None:
        offset, load = armed.offset, armed.load
        grace += REPORT_LAG_S
    elif run.load_engine is not None:
        offset, load = _distributed(run, run.load_engine, shape, offset, stop)
        grace += REPORT_LAG_S
    else:
        load = _local(run, shape, offset, stop)
    prober = None
    try:
        await asyncio.sleep(max(0.0, offset - run.now()))  # probes start with the load (a Locust load starts later)
        prober = start_probes(exp, session, run.now, run.checker, stop)
        while not load.done():
            await asyncio.wait([load], timeout=0.1)
            _close(run, run.checker.close_due(run.now(), grace=grace, phase_of=phase_of,
                                              faults_of=run.plan.timeline.active_between,
                                              ready=run.observers.ready if run.observers else None), stop)
        await load
    finally:
        stop.set()
        if not load.done():
            load.cancel()
        if prober is not None:
            await prober
    end = offset + shape.duration
    if run.observers is not None:  # the last windows wait for what observers see after they end
        await run.observers.settle(end)
    # Every answer is in: close the remaining windows of this run.
    _close(run, run.checker.close_due(end + 1e-9, grace=0.0, phase_of=phase_of,
                                      faults_of=run.plan.timeline.active_between), stop, baseline=baseline)


def _local(run: RunContext, shape: Shape, offset: float, stop: asyncio.Event) -> asyncio.Future[object]:
    """The load in this process: every record fed to the checker."""
    exp = run.experiment
    keep_bodies = exp.steady_state.predictions is not None

    def on_record(record: RequestRecord) -> None:
        shifted = dataclasses.replace(record, scheduled_at=record.scheduled_at + offset)
        run.checker.feed(shifted)
        if run.progress is not None:
            run.progress.record(shifted)

    def on_in_flight(t: float, in_flight: int) -> None:
        run.checker.observe_in_flight(t + offset, in_flight)
        if run.progress is not None:
            run.progress.in_flight = in_flight

    return asyncio.ensure_future(run_load(
        exp.target.url, shape, payload_source(exp), connections=exp.load.connections,
        request_timeout=exp.load.timeout, keep_bodies=keep_bodies, on_record=on_record, stop=stop,
        on_in_flight=on_in_flight, tracing=run.tracing.load(exp.target.url) if run.tracing is not None else None,
    ))


def _distributed(run: RunContext, engine: LocustEngine, shape: Shape, offset: float,
                 stop: asyncio.Event) -> tuple[float, asyncio.Future[object]]:
    """The load across Locust workers, from ``offset`` or as soon after as it can start; the windows
    they report merged into the checker's. Returns the run second it starts at, and the load."""
    start = engine.start_time(run.t0 + offset)
    offset = start - run.t0
    grid = WindowGrid(run.experiment.steady_state.window, -offset)  # the checker's windows, in the load's seconds

    def on_window(acc: WindowAccumulator, checks: ChecksTally | None) -> None:
        if checks is None:
            run.checker.merge_window(acc)
        else:
            run.checker.merge_window(acc, responses=checks.responses, problems=checks.problems,
                                     violations=checks.violations, scores=checks.scores)
        if run.progress is not None:
            run.progress.completed += acc.sent
            run.progress.errors += acc.errors
            run.progress.dropped += acc.dropped
            run.progress.recent.merge(acc.histogram)
            run.progress.in_flight = engine.in_flight

    job = load_job(run, shape, grid=grid)
    return offset, asyncio.ensure_future(engine.run(job, start_at=start, on_window=on_window, stop=stop))


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


async def _method(run: RunContext, session: aiohttp.ClientSession, baseline_s: float, armed: _Armed | None) -> None:
    plan = run.plan
    timeline = plan.timeline
    # The baseline's last answers (and its judgement) may take the method past its planned
    # start: faults and load then start together, late, and the run's end moves with them.
    # A load armed during the baseline started on time: the faults follow its clock.
    method_at = run.method_at = armed.offset if armed is not None else max(baseline_s, run.now())
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
    stop = armed.stop if armed is not None else asyncio.Event()
    player = asyncio.ensure_future(timeline.run(origin=run.t0, method_at=method_at))
    watcher = asyncio.ensure_future(_watch_faults(run))
    loader = asyncio.ensure_future(_load(run, session, shape, method_at, phase_of, stop, baseline=False, armed=armed))
    try:
        await asyncio.wait([loader, player], return_when=asyncio.FIRST_COMPLETED)
        if player.done() and not player.cancelled() and player.exception() is not None:
            raise player.exception()  # type: ignore[misc]  # a step failed (a sidecar lost): the run ends now
        await loader
        if player.done() and player.exception() is not None:
            raise player.exception()  # type: ignore[misc]
    finally:
        for task in (loader, player, watcher):
            task.cancel()
        await asyncio.gather(loader, player, watcher, return_exceptions=True)


async def _watch_faults(run: RunContext) -> None:
    """Keep the live view fresh: active faults, 4 times a second."""
    while True:
        if run.progress is not None:
            run.progress.faults = tuple(run.plan.timeline.active_now())
            run.progress.tick()
        await asyncio.sleep(0.25)
