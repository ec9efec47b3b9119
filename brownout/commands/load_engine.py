"""The load engine's flags and glue, shared by ``brownout load`` and ``brownout run``.

``--engine locust`` runs the load on Locust workers: ``--workers N`` started here (one
process each), ``--expect-workers N`` started elsewhere with ``brownout load-worker
--master-host H``. The master has no authentication, so it listens on 127.0.0.1 unless
``--master-bind-host`` says otherwise.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable
from typing import Any

from brownout.load.distributed.coordinator import DistributedSummary, LoadJob, WorkerResult
from brownout.load.distributed.engine import DEFAULT_PORT, EngineSettings, LocustEngine
from brownout.load.payloads import PayloadSource
from brownout.load.shapes import ConstantShape
from brownout.windows import WindowAccumulator, WindowGrid, WindowSeries, WindowStats
from faults.errors import InvalidInput

_ENGINE_FLAGS = ("workers", "expect_workers", "min_workers")


def add_engine_args(parser: argparse.ArgumentParser, *, default_engine: str | None) -> None:
    group = parser.add_argument_group(
        "engine (--engine locust: the load runs on Locust workers, open loop kept)",
        "The Locust master runs in this process and has no authentication: it listens on 127.0.0.1 unless "
        "--master-bind-host says otherwise. Workers elsewhere join with: brownout load-worker --master-host H "
        f"--master-port P (default {DEFAULT_PORT}).")
    group.add_argument("--engine", choices=("local", "locust"), default=default_engine,
                       help="local: this process; locust: Locust workers (default: "
                            + (default_engine or "the experiment's load.engine") + ")")
    group.add_argument("--workers", type=int, metavar="N", help="local worker processes to start (default 1)")
    group.add_argument("--expect-workers", type=int, metavar="N", help="workers started elsewhere to wait for (60s)")
    group.add_argument("--min-workers", type=int, metavar="N",
                       help="fewer workers left during the load: it stops, exit 4 (default 1)")
    group.add_argument("--master-bind-host", default="127.0.0.1", metavar="H",
                       help="where the master listens (default 127.0.0.1; no authentication)")
    group.add_argument("--master-bind-port", type=int, metavar="P",
                       help=f"the master's port (default {DEFAULT_PORT} with --expect-workers, else any free port)")


def engine_settings(args: argparse.Namespace) -> EngineSettings | None:
    """``brownout load``: the Locust engine's settings, or None for the local engine."""
    given = {name: getattr(args, name) for name in _ENGINE_FLAGS if getattr(args, name) is not None}
    if args.engine != "locust":
        if given:
            raise InvalidInput("only with --engine locust", "--" + next(iter(given)).replace("_", "-"))
        return None
    for name, value in given.items():
        if value < (1 if name == "min_workers" else 0):
            raise InvalidInput(f"must be >= {1 if name == 'min_workers' else 0}", "--" + name.replace("_", "-"))
    expect = given.get("expect_workers", 0)
    workers = given.get("workers", 0 if expect else 1)
    settings = EngineSettings(workers=workers, expect_workers=expect, min_workers=given.get("min_workers", 1),
                              bind_host=args.master_bind_host, bind_port=args.master_bind_port)
    if settings.total < 1:
        raise InvalidInput("needs at least one worker (--workers or --expect-workers)", "--workers")
    if settings.min_workers > settings.total:
        raise InvalidInput(f"must be <= workers + expect-workers ({settings.total})", "--min-workers")
    return settings


def engine_overrides(args: argparse.Namespace) -> list[str]:
    """``brownout run``: the flags as ``--set load.KEY=VALUE``, validated with the experiment."""
    out = [f"load.engine={args.engine}"] if args.engine is not None else []
    out += [f"load.{name}={getattr(args, name)}" for name in _ENGINE_FLAGS if getattr(args, name) is not None]
    return out


def format_workers(workers: tuple[WorkerResult, ...]) -> list[str]:
    """The per-worker lines of ``brownout load``'s summary."""
    sent = sum(w.sent for w in workers) or 1
    lines = []
    for i, w in enumerate(workers):
        t = w.total
        p99 = "n/a" if t.p99_ms is None else f"{t.p99_ms:.2f}"
        lost = f"; LOST at {w.lost_at:.1f}s: {w.lost_reason}" if w.lost_at is not None else ""
        lines.append(f"worker {i}  {w.sent} sent ({w.sent / sent:.1%}), {w.dropped} dropped, {t.errors} errors, "
                     f"p99 {p99} ms, lag max {w.lag_max_s * 1000:.1f} ms, cpu {w.cpu_s:.2f}s  [{w.worker}]{lost}")
    return lines


def workers_json(workers: tuple[WorkerResult, ...]) -> list[dict[str, Any]]:
    """Per worker for ``--json``: the master's merge of its windows and the worker's own total, histograms included."""
    return [{"worker": w.worker, "scheduled": w.scheduled, "sent": w.sent, "dropped": w.dropped,
             "lag_max_s": w.lag_max_s, "cpu_s": w.cpu_s, "lost_at": w.lost_at, "lost_reason": w.lost_reason,
             "total": w.total.as_dict(), "merged": w.merged.to_dict(),
             "reported": w.reported.to_dict() if w.reported is not None else None} for w in workers]


def load_job(url: str, shape: Any, payloads: PayloadSource, options: dict[str, Any]) -> LoadJob:
    return LoadJob(url, shape, payloads, connections=options["connections"], in_flight_cap=options["in_flight_cap"],
                   request_timeout=options["request_timeout"], grid=WindowGrid(options["window_s"]))


def distributed_run(engine: LocustEngine, job: LoadJob) -> Any:
    """The ``_watched`` runner of a Locust load (``--max-requests`` does not apply: the split is by rate)."""
    def start(stats: WindowSeries, on_record: Any, started: float) -> Awaitable[DistributedSummary]:
        def on_window(acc: WindowAccumulator, checks: object) -> None:
            on_record.windows(acc)
        return engine.run(job, start_at=started, stats=stats, on_window=on_window)
    return start


def distributed_steps(engine: LocustEngine, url: str, payloads: PayloadSource, options: dict[str, Any]) -> Any:
    async def run_step(rate: float, duration: float) -> WindowStats:
        return (await engine.run(load_job(url, ConstantShape(rate, duration), payloads, options))).load.total
    return run_step


def print_event(name: str, **detail: Any) -> None:
    """The Locust engine's news (workers waited for, joined, lost), on stderr."""
    if name == "workers_waiting":
        print(f"waiting for {detail['expect']} load workers on {detail['master']}: {detail['command']}",
              file=sys.stderr)
    elif name == "worker_lost":
        print(f"worker lost at {detail['at']:.1f}s: {detail['worker']} ({detail['reason']}); "
              f"{detail['workers_left']} left", file=sys.stderr)
    elif name == "worker_joined":
        print(f"worker joined at {detail['at']:.1f}s: {detail['worker']}", file=sys.stderr)
