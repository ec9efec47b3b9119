"""``brownout run FILE``: run an experiment; the exit code says whether the hypothesis held."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from brownout.aio import run as run_async
from brownout.commands.load_engine import add_engine_args, engine_overrides
from brownout.commands.validate import add_override_args
from brownout.experiment import load_experiment
from brownout.experiment.model import Experiment
from brownout.fleet.report import dry_run_lines
from brownout.liveview import LiveView
from brownout.report import write_reports
from brownout.report.journal import RunReport
from brownout.report.summary import render_summary
from brownout.runner.context import RunOptions
from brownout.runner.engine import run_experiment
from brownout.runner.plan import build_plan
from faults.units import parse_duration
from proxy.logs import configure_logging


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "run", help="run an experiment: load, faults, steady-state checks, report",
        description="Validate, preflight, baseline, method (load + faults on their timeline), cleanup (always), "
                    "recovery, report. Exit codes: 0 held, 1 deviated, 2 aborted or baseline failed, "
                    "3 invalid input, 4 could not run, 130 interrupted (after cleanup).",
    )
    parser.add_argument("file", type=Path, metavar="FILE",
                        help="experiment file (YAML), or library:NAME for one of the library's (brownout demo --list)")
    add_override_args(parser)
    parser.add_argument("--report-dir", type=Path, help="where journal.json and junit.xml go (default: report.dir)")
    parser.add_argument("--lease", default="30s", help="lease of each fault, renewed while the run lives (default 30s)")
    parser.add_argument("--quiet", action="store_true", help="no live view or progress lines")
    parser.add_argument("--dry-run", action="store_true",
                        help="validate, resolve the fleet, print which sidecars each step would hit and when it "
                             "would be armed; change nothing (GETs only) and exit 0 when the plan is valid")
    add_engine_args(parser, default_engine=None)  # --engine, --workers, ...: set the experiment's load.* keys
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    experiment = load_experiment(args.file, overrides=[*args.overrides, *engine_overrides(args)],
                                 time_scale=args.time_scale)
    configure_logging("warning", json_output=False)  # the live view and the summary tell the story
    if args.dry_run:
        run_async(_dry_run(experiment, parse_duration(args.lease)))
        return 0
    view = None if args.quiet else LiveView(sys.stdout)
    options = RunOptions(lease_s=parse_duration(args.lease), view=view, master_bind_host=args.master_bind_host,
                         master_bind_port=args.master_bind_port)
    report = run_async(_run_interruptibly(experiment, options))
    directory = args.report_dir or experiment.report.dir
    paths = write_reports(report, directory)
    paths.update(_html(report, directory))
    print(render_summary(report, paths=paths, color=sys.stdout.isatty()))
    return int(report.exit_code)


async def _run_interruptibly(experiment: object, options: RunOptions) -> RunReport:
    """SIGINT/SIGTERM cancel the run; the runner cleans up in ``finally`` and reports."""
    task = asyncio.ensure_future(run_experiment(experiment, options))  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await task
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _dry_run(experiment: Experiment, lease_s: float) -> None:
    """Preflight of the fleet (read-only) and the plan it gives; nothing is added anywhere."""
    steady = experiment.steady_state
    plan = build_plan(experiment, lease=lease_s, baseline_s=steady.baseline or 2 * steady.window)
    print(f"dry run of {experiment.title!r}: nothing will be changed")
    async with plan.clients():
        await plan.prepare(say=print)
    for line in dry_run_lines(plan):
        print(line)
    print("the plan is valid")


def _html(report: RunReport, directory: Path) -> dict[str, Path]:
    try:
        from brownout.report.html import write_html
    except ImportError:  # the report extra (plotly) is not installed
        return {}
    return {"report": write_html(report, directory / "report.html")}
