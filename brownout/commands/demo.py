"""``brownout demo``: the demo fraud-detection stack behind the proxy, and a game day on it."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import yaml

from brownout import library
from brownout.aio import run as run_async
from brownout.experiment import load_experiment
from brownout.liveview import LiveView
from brownout.report import write_reports
from brownout.report.summary import render_summary
from brownout.runner.context import RunOptions
from brownout.runner.engine import run_experiment
from faults.errors import InvalidInput
from proxy.logs import configure_logging

DEFAULT = "feature-store-latency"


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "demo", help="run a game day on the embedded demo ML stack",
        description="Start a fraud-detection stack on 127.0.0.1 (feature store, GPU worker, Redis cache, model API), "
                    "put the proxy in front of every hop, run an experiment from the library with the live view, "
                    "and write the report.",
    )
    parser.add_argument("--experiment", "-e", default=DEFAULT, help=f"library experiment to run (default {DEFAULT})")
    parser.add_argument("--list", action="store_true", help="list the experiment library and exit")
    parser.add_argument("--serve", action="store_true", help="keep the stack up for a manual game day; print URLs")
    parser.add_argument("--time-scale", type=float, default=1.0, metavar="F", help="multiply every duration (e.g. 0.2)")
    parser.add_argument("--report-dir", type=Path, help="where reports go (default reports/demo-NAME-TIME)")
    parser.add_argument("--library", type=Path, default=None,
                        help=f"experiment library folder (default: ${library.ENV}, else the library installed "
                             "with brownout)")
    parser.add_argument("--quiet", action="store_true", help="no live view")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    experiments = library.experiments(args.library)  # an empty library is an error, not an empty list
    if args.list:
        for name, path in experiments.items():
            doc = yaml.safe_load(path.read_text()) or {}
            teaches = " ".join(str(doc.get("description", "")).split())
            print(f"{name:28s} {doc.get('title', '')}\n{'':28s} {teaches[:150]}")
        return 0
    if not args.serve and args.experiment not in experiments:
        folder = args.library or library.default_dir()
        raise InvalidInput(f"no experiment {args.experiment!r} in {folder}; try --list", "--experiment")
    configure_logging("warning", json_output=False)
    return run_async(_demo(args, experiments.get(args.experiment)))


async def _demo(args: argparse.Namespace, path: Path | None) -> int:
    from brownout.demo.game_day import game_day
    from brownout.demo.prometheus import demo_prometheus

    print("starting the demo stack on 127.0.0.1 (the first start trains the model)...", flush=True)
    started = time.monotonic()
    async with game_day() as day, demo_prometheus(day) as prometheus:
        print(f"stack up in {time.monotonic() - started:.1f}s: clients → {day.target}/predict "
              f"(admin {day.admin_url}" + (f", Prometheus {prometheus.url})" if prometheus else ")"), flush=True)
        os.environ.update(day.env() | (prometheus.env() if prometheus else {}))
        if args.serve:
            return await _serve(day)
        assert path is not None
        experiment = load_experiment(path, time_scale=args.time_scale)
        print(f"running {path.name}: {experiment.title}\n", flush=True)
        view = None if args.quiet else LiveView(sys.stdout)
        task = asyncio.ensure_future(run_experiment(experiment, RunOptions(view=view, pidfiles=day.pidfiles)))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        report = await task
    directory = args.report_dir or Path("reports") / f"demo-{path.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    paths = write_reports(report, directory)
    try:
        from brownout.report.html import write_html

        paths["report"] = write_html(report, directory / "report.html")
    except ImportError:
        pass
    print(render_summary(report, paths=paths, color=sys.stdout.isatty()))
    return int(report.exit_code)


async def _serve(day: object) -> int:
    from brownout.demo.game_day import GameDay

    assert isinstance(day, GameDay)
    print("\nThe demo stack is up. Point clients at the proxy:")
    for name, address in day.routes.items():
        print(f"  {name:14s} {address}")
    print(f"\nAdmin API {day.admin_url}. Try:\n"
          f"  curl -s -XPOST {day.target}/predict -d @- <<< "
          "'{\"transaction_id\":\"t1\",\"customer_id\":\"C00001\",\"terminal_id\":\"T00001\",\"amount\":42.0,"
          "\"timestamp\":\"2025-04-25T12:00:00Z\"}'\n"
          f"  brownout faults add latency --admin {day.admin_url} --route feature-store -p delay_ms=300 --ttl 5m\n"
          f"  brownout faults list --admin {day.admin_url}\n"
          f"  brownout faults clear --admin {day.admin_url}\n"
          f"  BROWNOUT_TARGET={day.target} BROWNOUT_ADMIN={day.admin_url} brownout run library:steady-load\n"
          "Ctrl-C stops everything.", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    return 0
