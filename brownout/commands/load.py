"""``brownout load URL --rate R --duration D``: a quick open-loop load test (wrk2/k6 style).

Live view while it runs, a summary at the end. Exit 0 when the SLA flags (if any) held,
1 when they were violated (or an edge case got a 5xx, hang or crash), 3 on invalid input,
4 when the target cannot be reached. With ``--shape stress`` the SLA flags bound the
search for the breaking point; exit 1 only if even the first step broke.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
import time
from typing import Any

from brownout import aio
from brownout.liveview import LiveState, LiveView
from brownout.load.client import parse_target
from brownout.load.edgecases import EDGE_CASES, parse_edge_cases
from brownout.load.generator import LoadSummary, run_load
from brownout.load.payloads import PayloadSource, load_corpus
from brownout.load.shapes import SHAPE_NAMES, StressShape, parse_load_shape
from brownout.load.stats import Windowed, WindowStats
from brownout.load.stress import BreakingPoint, Sla, StepResult, find_breaking_point, load_step_runner
from brownout.records import RequestRecord
from faults.errors import InvalidInput, InvalidInputs, Unreachable
from faults.units import parse_duration

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

exit codes: 0 SLA met (or none given; stress: breaking point found), 1 SLA violated or an edge
case got a 5xx/hang/crash (stress: the first step broke), 3 invalid input, 4 target unreachable
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
    sla = p.add_argument_group("SLA (exit 1 when violated; bounds --shape stress)")
    sla.add_argument("--sla-p99", type=float, metavar="MS", help="p99 latency bound in ms")
    sla.add_argument("--max-error-rate", type=float, metavar="R", help="5xx + transport errors / all, e.g. 0.01")
    out = p.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print the summary as JSON")
    out.add_argument("--no-live", action="store_true", help="no live view")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        plan = _plan(args)
    except InvalidInput as exc:
        for error in exc.errors if isinstance(exc, InvalidInputs) else [exc]:
            print(f"brownout load: {error}", file=sys.stderr)
        return 3
    try:
        return aio.run(_main(args, *plan))
    except Unreachable as exc:
        print(f"brownout load: {exc}", file=sys.stderr)
        return 4


def _plan(args: argparse.Namespace) -> tuple[Any, PayloadSource, Sla | None, dict[str, Any]]:
    parse_target(args.url, "url")
    shape = _shape(args)
    edge = parse_edge_cases(_pairs(args.edge_case), "--edge-case") if args.edge_case else None
    templates = load_corpus(args.payloads) if args.payloads else ()
    sla = None
    if args.sla_p99 is not None or args.max_error_rate is not None:
        sla = Sla(args.sla_p99, args.max_error_rate)
    elif isinstance(shape, StressShape):
        raise InvalidInput("stress needs --sla-p99 and/or --max-error-rate to know when it broke", "--shape")
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
                options: dict[str, Any]) -> int:
    await _preflight(args.url)
    view = LiveView(sys.stderr if args.json else sys.stdout, tty=False if args.no_live else None)
    if isinstance(shape, StressShape):
        assert sla is not None  # _plan requires it for stress
        point = await find_breaking_point(shape, sla, load_step_runner(args.url, payloads, **options),
                                          on_step=lambda s: _print_step(s, args.json))
        _print_breaking_point(point, args.json)
        return 1 if point.held_rate is None else 0
    summary = await _watched(args.url, shape, payloads, options, view)
    breaches = _check(summary, sla)
    if args.json:
        print(json.dumps({**dataclasses.asdict(summary), "sla_breaches": breaches}, indent=2, default=str))
    else:
        print(format_summary(summary, sla, breaches))
    severe = any(f.severe for f in summary.edge_cases.findings)
    return 1 if breaches or severe else 0


async def _watched(url: str, shape: Any, payloads: PayloadSource, options: dict[str, Any],
                   view: LiveView) -> LoadSummary:
    stats = Windowed(options["window_s"])
    counts = {"completed": 0, "errors": 0, "dropped": 0}

    def on_record(r: RequestRecord) -> None:
        if r.dropped:
            counts["dropped"] += 1
        else:
            counts["completed"] += 1
            counts["errors"] += r.failed

    started = time.monotonic()
    shown = -1

    def state(final: bool = False) -> LiveState:
        elapsed = time.monotonic() - started
        done = [i for i in stats.indexes() if final or (i + 1) * stats.window_s <= elapsed - 0.1]
        seen = done or stats.indexes()  # the last closed window, else the open one
        last: WindowStats | None = stats.window(seen[-1]) if seen else None
        return LiveState(elapsed, shape.duration, shape.rate_at(min(elapsed, shape.duration - 1e-9)),
                         stats.sent / elapsed if elapsed > 0 else 0.0, last.p50_ms if last else 0.0,
                         last.p99_ms if last else 0.0, counts["completed"], counts["errors"],
                         counts["dropped"], stats.in_flight)

    async def watch() -> None:
        nonlocal shown
        while True:
            await asyncio.sleep(0.25)
            view.update(state())
            closed = int((time.monotonic() - started - 0.1) // stats.window_s) - 1  # as in state()
            if closed > shown:
                shown = closed
                view.window(state())

    watcher = asyncio.get_running_loop().create_task(watch())
    try:
        return await run_load(url, shape, payloads, on_record=on_record, stats=stats,
                              **{k: v for k, v in options.items() if k != "window_s"})
    finally:
        watcher.cancel()
        final = state(final=True)
        if stats.indexes() and stats.indexes()[-1] > shown:
            view.window(final)  # the last (possibly partial) window still gets its line
        view.close(final)


def _check(summary: LoadSummary, sla: Sla | None) -> list[str]:
    if sla is None:
        return []
    breach = sla.check(summary.total)
    return [str(breach)] if breach else []


def format_summary(s: LoadSummary, sla: Sla | None, breaches: list[str]) -> str:
    t = s.total
    lines = [
        f"target    {s.target_url}  ({s.shape}, {s.planned_s:.1f}s{', stopped early' if s.stopped_early else ''})",
        f"requests  {s.scheduled} scheduled, {s.sent} sent, {s.dropped} dropped; achieved "
        f"{s.achieved_rate:.1f}/s of {s.target_rate:.1f}/s ({_ratio(s):.1%})",
        f"status    2xx {t.status_2xx}  3xx {t.status_3xx}  4xx {t.status_4xx}  5xx {t.status_5xx}  "
        f"transport errors {t.transport_errors}  (error rate {t.error_rate:.2%})",
        f"latency   p50 {t.p50_ms:.2f}  p90 {t.p90_ms:.2f}  p95 {t.p95_ms:.2f}  p99 {t.p99_ms:.2f}  "
        f"p99.9 {t.p999_ms:.2f}  max {t.max_ms:.2f}  mean {t.mean_ms:.2f} ms",
        f"received  {t.bytes_received} bytes;  generator lag max {s.client_lag_max_s * 1000:.1f} ms",
    ]
    for case in s.edge_cases.cases:
        got = ", ".join(f"{k} {v}" for k, v in case.outcomes) or "none"
        lines.append(f"edge case {case.name}: {case.sent} sent ({got}); expected {'/'.join(case.expected)}")
    for f in s.edge_cases.findings:
        example = f"status {f.example_status}" if f.example_status else f"error {f.example_error}"
        lines.append(f"FINDING   {f.edge_case}: {f.count} got {f.got}, expected {'/'.join(f.expected)} ({example})")
    if sla is not None:
        lines.append("SLA       " + ("violated: " + "; ".join(breaches) if breaches else "met"))
    return "\n".join(lines)


def _ratio(s: LoadSummary) -> float:
    return s.achieved_rate / s.target_rate if s.target_rate else 0.0


def _print_step(step: StepResult, as_json: bool) -> None:
    st = step.stats
    verdict = "held" if step.held else f"BROKE: {step.breach}"
    print(f"step {step.rate:g}/s: p99 {st.p99_ms:.2f} ms, errors {st.error_rate:.2%}, dropped {st.dropped}"
          f" — {verdict}", file=sys.stderr if as_json else sys.stdout)


def _print_breaking_point(point: BreakingPoint, as_json: bool) -> None:
    if as_json:
        print(json.dumps(dataclasses.asdict(point), indent=2, default=str))
    else:
        print(point.describe())
