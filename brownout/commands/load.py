"""``brownout load URL --rate R --duration D``: a quick open-loop load test (wrk2/k6 style).

Live view while it runs, a summary at the end. Exit 0 when the SLA (if any) held over the
whole run, 1 when it was violated (or an edge case got a 5xx, hang or crash), 3 on invalid
input, 4 when the target cannot be reached. The SLA is an experiment's ``steady_state.sla``
(``--sla latency_p50_ms=80 --sla min_throughput=150``, or the shorthands ``--sla-p99`` and
``--max-error-rate``), judged by the same evaluation as a run's windows. With ``--shape
stress`` it bounds the search for the breaking point; exit 1 only if even the first step broke.
With ``--engine locust`` the same load runs across Locust workers (``brownout.load.distributed``),
the summary gains a line per worker, and losing workers below ``--min-workers`` is exit 4.
With OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT set, the local engine's sampled requests carry a
``traceparent`` and become CLIENT spans (``brownout.load.tracing.standalone``).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import time
from typing import Any

from brownout import aio
from brownout.commands.load_engine import (
    add_engine_args,
    distributed_run,
    distributed_steps,
    engine_settings,
    format_workers,
    load_job,
    print_event,
    workers_json,
)
from brownout.commands.load_output import format_summary, judge_run, print_breaking_point, print_step
from brownout.experiment.steady import ROUTE_BOUNDS, Sla
from brownout.liveview import LiveState, LiveView, window_state
from brownout.load.client import parse_target
from brownout.load.distributed.coordinator import WorkerResult
from brownout.load.distributed.engine import REPORT_LAG_S, EngineSettings, LocustEngine
from brownout.load.edgecases import EDGE_CASES, parse_edge_cases
from brownout.load.generator import run_load
from brownout.load.payloads import PayloadSource, load_corpus
from brownout.load.shapes import SHAPE_NAMES, StressShape, parse_load_shape
from brownout.load.stress import describe_breach, find_breaking_point, load_step_runner, stress_sla
from brownout.load.tracing import standalone as standalone_tracing
from brownout.records import RequestRecord
from brownout.windows import WindowAccumulator, WindowSeries
from faults.errors import InvalidInput, InvalidInputs, Unreachable
from faults.units import parse_duration
from faults.validation import validate

# shape key -> the flag that sets it (``from`` is --rate for ramp/steps/stress)
_FLAG = {"rate": "--rate", "from": "--rate", "duration": "--duration", "to": "--to", "peak": "--peak",
         "at": "--at", "hold": "--hold", "step": "--step", "step_duration": "--step-duration",
         "max": "--max", "shape": "--shape"}
_EXAMPLES = """examples:
  brownout load http://127.0.0.1:8080/predict --rate 200 --duration 30s --payloads tx.jsonl
  brownout load URL --shape ramp --rate 10 --to 500 --duration 2m
  brownout load URL --shape spike --rate 50 --peak 500 --at 20s --hold 10s --duration 1m
  brownout load URL --shape steps --rate 100 --to 1000 --step 100 --step-duration 10s
  brownout load URL --shape stress --rate 100 --step 100 --step-duration 10s --max 5000 --sla-p99 250
  brownout load URL --rate 200 --duration 1m --sla latency_p50_ms=40 --sla min_throughput=190
  brownout load URL --rate 80000 --duration 1m --engine locust --workers 2
  brownout load URL --rate 500000 --duration 5m --engine locust --expect-workers 10 --master-bind-host 10.0.0.5
    (then on each load machine: brownout load-worker --master-host 10.0.0.5)
  OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 brownout load URL --rate 100 --duration 1m
    (1 % of the requests traced unless OTEL_TRACES_SAMPLER says otherwise; local engine)

exit codes: 0 SLA met (or none given; stress: breaking point found), 1 SLA violated or an edge
case got a 5xx/hang/crash (stress: the first step broke), 3 invalid input, 4 target unreachable
(or, --engine locust, workers missing or lost below --min-workers)
"""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "load", help="open-loop load test: constant, ramp, spike, soak, steps or stress to failure",
        description="Open-loop load: requests start on schedule whatever the server does; latency is\n"
                    "measured from the scheduled start; requests that cannot start are counted as dropped.\n"
                    "Shows a live view and a summary.",
        epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("url", help="target URL (a corpus entry's path replaces its path)")
    shape = p.add_argument_group("shape")
    shape.add_argument("--shape", default="constant", choices=SHAPE_NAMES, help="default: constant")
    shape.add_argument("--rate", type=float, metavar="R", help="requests/s (the starting rate for ramp, steps, stress)")
    shape.add_argument("--duration", metavar="D", help="e.g. 30s, 5m (constant, soak, ramp, spike)")
    shape.add_argument("--to", type=float, metavar="R", help="final rate (ramp, steps)")
    shape.add_argument("--peak", type=float, metavar="R", help="spike rate (spike)")
    shape.add_argument("--at", metavar="D", help="when the spike starts (spike)")
    shape.add_argument("--hold", metavar="D", help="how long the spike lasts (spike)")
    shape.add_argument("--step", type=float, metavar="R", help="rate increment (steps, stress)")
    shape.add_argument("--step-duration", metavar="D", help="time per step (steps, stress)")
    shape.add_argument("--max", type=float, metavar="R", help="highest rate to try (stress)")
    pay = p.add_argument_group("payloads")
    pay.add_argument("--payloads", metavar="FILE", help="JSONL or CSV corpus (default: GET the URL)")
    pay.add_argument("--edge-case", action="append", default=[], metavar="NAME=RATIO",
                     help=f"mix in edge cases (repeatable): {', '.join(EDGE_CASES)}")
    pay.add_argument("--seed", type=int, metavar="N", default=0, help="seed for sampling and edge cases (default 0)")
    cli = p.add_argument_group("client")
    cli.add_argument("--connections", type=int, metavar="N", default=64, help="max sockets (default 64)")
    cli.add_argument("--in-flight-cap", type=int, metavar="N", default=10_000, help="requests queued or on the wire beyond this are dropped (default 10000)")
    cli.add_argument("--max-requests", type=int, metavar="N", help="stop after this many requests")
    cli.add_argument("--timeout", metavar="D", default="10s", help="per request, from its scheduled start (default 10s)")
    cli.add_argument("--window", metavar="D", default="1s", help="statistics window (default 1s)")
    sla = p.add_argument_group("SLA over the whole run (exit 1 when violated; bounds --shape stress)")
    sla.add_argument("--sla", action="append", default=[], metavar="KEY=VALUE",
                     help="a bound of an experiment's steady_state.sla (repeatable): "
                          + ", ".join(k for k in Sla.model_fields if k not in ROUTE_BOUNDS))
    sla.add_argument("--sla-p99", type=float, metavar="MS", help="shorthand for --sla latency_p99_ms=MS")
    sla.add_argument("--max-error-rate", type=float, metavar="R",
                     help="shorthand for --sla error_rate=R (5xx + transport errors / sent, e.g. 0.01)")
    out = p.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print the summary as JSON")
    out.add_argument("--no-live", action="store_true", help="no live view")
    add_engine_args(p, default_engine="local")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        plan = _plan(args)
        engine = engine_settings(args)
        if engine is not None and args.max_requests is not None:
            raise InvalidInput("not with --engine locust (the load is split by rate)", "--max-requests")
    except InvalidInput as exc:
        for error in exc.errors if isinstance(exc, InvalidInputs) else [exc]:
            print(f"brownout load: {error}", file=sys.stderr)
        return 3
    try:
        return aio.run(_main(args, *plan, engine))
    except Unreachable as exc:
        print(f"brownout load: {exc}", file=sys.stderr)
        return 4


def _plan(args: argparse.Namespace) -> tuple[Any, PayloadSource, Sla | None, dict[str, Any]]:
    parse_target(args.url, "url")
    shape = _shape(args)
    edge = parse_edge_cases(_pairs(args.edge_case), "--edge-case") if args.edge_case else None
    templates = load_corpus(args.payloads) if args.payloads else ()
    sla = _sla(args)
    if isinstance(shape, StressShape):
        if sla is None:
            raise InvalidInput("stress needs an SLA to know when it broke: --sla KEY=VALUE, --sla-p99 or "
                               "--max-error-rate", "--shape")
        try:
            stress_sla(sla)
        except InvalidInput as exc:
            raise InvalidInput(exc.message, "--sla") from None
    options = {"connections": args.connections, "in_flight_cap": args.in_flight_cap,
               "max_requests": args.max_requests, "request_timeout": _duration(args.timeout, "--timeout")}
    for flag, value in (("--connections", args.connections), ("--in-flight-cap", args.in_flight_cap)):
        if value < 1:
            raise InvalidInput("must be >= 1", flag)
    window = _duration(args.window, "--window")
    if window <= 0 or options["request_timeout"] <= 0:
        raise InvalidInput("must be > 0", "--window" if window <= 0 else "--timeout")
    options["window_s"] = window
    return shape, PayloadSource(templates, edge, args.seed), sla, options


def _sla(args: argparse.Namespace) -> Sla | None:
    """The SLA of ``--sla KEY=VALUE`` and the shorthands, validated as an experiment's ``steady_state.sla``."""
    bounds: dict[str, Any] = {}
    for pair in args.sla:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"expected KEY=VALUE, got {pair!r}", "--sla")
        if key.strip() in ROUTE_BOUNDS:
            raise InvalidInput("is judged on a proxy's counters: set it in an experiment's steady_state.sla",
                               f"--sla {key.strip()}")
        bounds[key.strip()] = value.strip()
    for key, value in (("latency_p99_ms", args.sla_p99), ("error_rate", args.max_error_rate)):
        if value is not None:
            bounds[key] = value
    if not bounds:
        return None
    try:
        return validate(Sla, bounds)
    except InvalidInputs as exc:
        raise InvalidInputs([InvalidInput(e.message, f"--sla {e.field}" if e.field else "--sla")
                             for e in exc.errors]) from None


def _shape(args: argparse.Namespace) -> Any:
    rate_key = "from" if args.shape in ("ramp", "steps", "stress") else "rate"
    given = {rate_key: args.rate, "duration": args.duration, "to": args.to, "peak": args.peak, "at": args.at,
             "hold": args.hold, "step": args.step, "step_duration": args.step_duration, "max": args.max}
    data: dict[str, Any] = {"shape": args.shape, **{k: v for k, v in given.items() if v is not None}}
    try:
        return parse_load_shape(data, field_prefix="")
    except InvalidInputs as exc:
        raise InvalidInputs([_flagged(e) for e in exc.errors]) from None
    except InvalidInput as exc:
        raise _flagged(exc) from None


def _flagged(exc: InvalidInput) -> InvalidInput:
    return InvalidInput(exc.message, _FLAG.get(exc.field or "", exc.field))


def _duration(text: str, flag: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise InvalidInput(str(exc), flag) from None


def _pairs(pairs: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            if not sep:
                raise ValueError(pair)
            out[name] = float(value)
        except ValueError:
            raise InvalidInput(f"expected NAME=RATIO, got {pair!r}", "--edge-case") from None
    return out


async def _preflight(url: str) -> None:
    target = parse_target(url)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(target.host, target.port), 5)
    except (OSError, asyncio.TimeoutError) as exc:
        raise Unreachable(f"cannot connect to {target.host}:{target.port}: {exc}") from None
    writer.close()


async def _main(args: argparse.Namespace, shape: Any, payloads: PayloadSource, sla: Sla | None,
                options: dict[str, Any], engine: EngineSettings | None) -> int:
    await _preflight(args.url)
    if engine is None:
        return await _load(args, shape, payloads, sla, options, None)
    async with LocustEngine(engine, on_event=print_event) as locust:
        return await _load(args, shape, payloads, sla, options, locust)


async def _load(args: argparse.Namespace, shape: Any, payloads: PayloadSource, sla: Sla | None,
                options: dict[str, Any], engine: LocustEngine | None) -> int:
    view = LiveView(sys.stderr if args.json else sys.stdout, tty=False if args.no_live else None)
    if isinstance(shape, StressShape):
        assert sla is not None  # _plan requires it for stress
        run_step = load_step_runner(args.url, payloads, **options) if engine is None else \
            distributed_steps(engine, args.url, payloads, options)
        point = await find_breaking_point(shape, sla, run_step, on_step=lambda s: print_step(s, args.json))
        print_breaking_point(point, args.json)
        return 1 if point.held_rate is None else 0
    workers: tuple[WorkerResult, ...] = ()
    if engine is None:
        async with standalone_tracing(args.url, os.environ) as tracing:
            summary = await _watched(shape, options, view, lambda stats, on_record, started: run_load(
                args.url, shape, payloads, on_record=on_record, stats=stats, tracing=tracing,
                **{k: v for k, v in options.items() if k != "window_s"}))
    else:
        job = load_job(args.url, shape, payloads, options)
        distributed = await _watched(shape, options, view, distributed_run(engine, job), settle=0.1 + REPORT_LAG_S,
                                     started=engine.start_time())
        summary, workers = distributed.load, distributed.workers
    verdicts = judge_run(summary, sla)
    breaches = [describe_breach(v) for v in verdicts if not v.ok]
    if args.json:
        # Windows as the journal writes them: counts and the rates derived from them.
        print(json.dumps({**dataclasses.asdict(summary), "total": summary.total.as_dict(),
                          "windows": [w.as_dict() for w in summary.windows], "sla_breaches": breaches,
                          "sla_verdicts": [v.as_dict() for v in verdicts], "engine": args.engine,
                          "workers": workers_json(workers)}, indent=2, default=str))
    else:
        print("\n".join([format_summary(summary, sla, verdicts), *format_workers(workers)]))
    severe = any(f.severe for f in summary.edge_cases.findings)
    return 1 if breaches or severe else 0


class _Counts:
    """What the live view counts: from records (local engine) or merged windows (locust)."""

    def __init__(self) -> None:
        self.completed = self.errors = self.dropped = 0

    def __call__(self, r: RequestRecord) -> None:
        if r.dropped:
            self.dropped += 1
        else:
            self.completed += 1
            self.errors += r.failed

    def windows(self, acc: WindowAccumulator) -> None:
        self.completed += acc.sent
        self.errors += acc.errors
        self.dropped += acc.dropped


async def _watched(shape: Any, options: dict[str, Any], view: LiveView, start: Any, *, settle: float = 0.1,
                   started: float | None = None) -> Any:
    """Run the load ``start(stats, counts, started)`` returns, with the live view; a window's line
    is printed ``settle`` seconds after it ends."""
    stats = WindowSeries(options["window_s"])
    counts = _Counts()
    started = time.monotonic() if started is None else started
    shown = -1

    def target(elapsed: float) -> float:
        return shape.rate_at(min(elapsed, shape.duration - 1e-9))

    def state(final: bool = False) -> LiveState:
        """The whole run so far, with the latency of the last closed window (else the open one)."""
        elapsed = max(0.0, time.monotonic() - started)
        done = [i for i in stats.indexes() if final or stats.grid.bounds(i)[1] <= elapsed - settle]
        seen = done or stats.indexes()
        last = stats.window(seen[-1]) if seen else None
        return LiveState(elapsed, shape.duration, target(elapsed),
                         stats.sent / elapsed if elapsed > 0 else 0.0, last.p50_ms if last else None,
                         last.p99_ms if last else None, counts.completed, counts.errors,
                         counts.dropped, stats.in_flight)

    def window_line(index: int) -> None:
        """A closed window's own figures, off a TTY."""
        elapsed = time.monotonic() - started
        view.window(window_state(stats.window(index), elapsed_s=elapsed, total_s=shape.duration,
                                 target_rate=target(stats.grid.bounds(index)[0]), in_flight=stats.in_flight))

    async def watch() -> None:
        nonlocal shown
        while True:
            await asyncio.sleep(0.25)
            view.update(state())
            closed = stats.grid.index_of(time.monotonic() - started - settle) - 1  # as in state()
            while shown < closed:
                shown += 1
                window_line(shown)

    watcher = asyncio.get_running_loop().create_task(watch())
    try:
        return await start(stats, counts, started)
    finally:
        watcher.cancel()
        last = stats.indexes()[-1] if stats.indexes() else -1
        while shown < last:  # the remaining (possibly partial) windows still get their lines
            shown += 1
            window_line(shown)
        view.close(state(final=True))
