"""The locust engine beside the local one: the highest open-loop rate held, and what it costs.

Same setup as ``load_generator.py``: nginx (one worker, a small JSON) pinned to one CPU, the
load side pinned to the other. Three engines in turn, each at rising constant rates for a
few seconds: ``local`` (``run_load`` in this process), ``locust`` with 1 and with 2 local
worker processes (``brownout load-worker``; this process is the master). A rate is *held*
when achieved within 1% with nothing dropped, no error, every request answered, in most of
the runs; the runs are interleaved (every engine at a rate, then the next rate), so a busy
neighbour hits all three alike.

Every load-side process shares the one load CPU, so two workers cannot go faster than one
here: on two CPUs this shows the price of distribution (CPU per request of each worker,
and of the master), not scale-out, which needs a core per worker. Bounded: a few seconds
per rate; loopback only.

    .venv/bin/python benchmarks/distributed_load.py [--rates 10000,20000,30000,40000] [--seconds 3] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import free_port
from benchmarks.load_generator import start_server
from brownout import aio
from brownout.load.distributed.coordinator import LoadJob
from brownout.load.distributed.engine import EngineSettings, LocustEngine
from brownout.load.generator import LoadSummary, run_load
from brownout.load.shapes import ConstantShape


@dataclass(frozen=True)
class Row:
    engine: str
    target: int
    achieved: float
    dropped: int
    errors: int
    answered: float
    p99_ms: float | None
    worker_us: tuple[float, ...]  # CPU per request of each worker (the local engine: of this process)
    master_us: float | None  # CPU per request of the master (this process), locust only
    held: bool


def _row(engine: str, rate: int, s: LoadSummary, worker_us: tuple[float, ...], master_us: float | None) -> Row:
    held = abs(s.achieved_rate / rate - 1) <= 0.01 and s.dropped == 0 and s.total.errors == 0 \
        and s.total.sent == s.sent
    return Row(engine, rate, s.achieved_rate, s.dropped, s.total.errors, s.total.sent / max(1, s.sent),
               s.total.p99_ms, worker_us, master_us, held)


async def _local(url: str, rate: int, seconds: float) -> Row:
    cpu = time.process_time()
    s = await run_load(url, ConstantShape(rate, seconds), request_timeout=5)
    return _row("local", rate, s, ((time.process_time() - cpu) / max(1, s.sent) * 1e6,), None)


async def _locust(engine: LocustEngine, name: str, url: str, rate: int, seconds: float) -> Row:
    cpu = time.process_time()
    summary = await engine.run(LoadJob(url, ConstantShape(rate, seconds), request_timeout=5))
    master = (time.process_time() - cpu) / max(1, summary.load.sent) * 1e6
    return _row(name, rate, summary.load, tuple(w.cpu_s / max(1, w.sent) * 1e6 for w in summary.workers), master)


async def measure(url: str, rates: list[int], seconds: float, runs: int) -> list[list[Row]]:
    """``runs`` sweeps, each rate run on every engine back to back, so a busy neighbour hits all alike."""
    async with LocustEngine(EngineSettings(workers=1)) as one, LocustEngine(EngineSettings(workers=2)) as two:
        await run_load(url, ConstantShape(1000, 0.5))  # warm up
        for engine in (one, two):
            await engine.run(LoadJob(url, ConstantShape(1000, 0.5)))
        sweeps = []
        for _ in range(runs):
            rows = []
            for rate in rates:
                rows.append(await _local(url, rate, seconds))
                rows.append(await _locust(one, "locust, 1 worker", url, rate, seconds))
                rows.append(await _locust(two, "locust, 2 workers", url, rate, seconds))
            sweeps.append(rows)
        return sweeps


def _median(values: list[float]) -> float:
    return statistics.median(values)


def combine(sweeps: list[list[Row]]) -> list[Row]:
    """Per engine and rate: held in most runs; medians of the rest."""
    out = []
    for cells in zip(*sweeps):
        first = cells[0]
        held = sum(c.held for c in cells) * 2 > len(cells)
        p99s = [c.p99_ms for c in cells if c.p99_ms is not None]
        out.append(Row(first.engine, first.target, _median([c.achieved for c in cells]),
                       int(_median([c.dropped for c in cells])), int(_median([c.errors for c in cells])),
                       _median([c.answered for c in cells]), _median(p99s) if p99s else None,
                       tuple(_median([c.worker_us[i] for c in cells]) for i in range(len(first.worker_us))),
                       None if first.master_us is None else _median([c.master_us or 0.0 for c in cells]), held))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="10000,20000,30000,40000", help="comma-separated targets (req/s)")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per target (default 3)")
    parser.add_argument("--runs", type=int, default=3, help="interleaved sweeps; a cell is their median (default 3)")
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",") if r]
    cpus = sorted(os.sched_getaffinity(0))
    load_cpu, server_cpu = cpus[0], (cpus[1] if len(cpus) > 1 else None)
    os.sched_setaffinity(0, {load_cpu})  # the master, its workers (they inherit it) and the local engine: one core
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with tempfile.TemporaryDirectory(prefix="brownout-bench-") as tmp:
        proc, kind = start_server(port, Path(tmp), server_cpu)
        try:
            rows = combine(aio.run(measure(url, rates, args.seconds, args.runs)))
        finally:
            proc.terminate()
            proc.wait(10)
    print(f"open loop, 64 connections per generator, every load-side process on cpu {load_cpu}; server: {kind}"
          f"{f' on cpu {server_cpu}' if server_cpu is not None else ' (same cpu)'}; {args.seconds:g}s per target, "
          f"median of {args.runs} interleaved runs")
    print(f"{'engine':<18} {'target/s':>9} {'achieved/s':>11} {'ratio':>6} {'dropped':>8} {'errors':>6} "
          f"{'p99 ms':>7} {'worker cpu µs/req':>18} {'master µs/req':>13}  held")
    engines = list(dict.fromkeys(r.engine for r in rows))
    for r in sorted(rows, key=lambda r: (engines.index(r.engine), r.target)):
        workers = " / ".join(f"{us:.1f}" for us in r.worker_us)
        master = "—" if r.master_us is None else f"{r.master_us:.1f}"
        p99 = "n/a" if r.p99_ms is None else f"{r.p99_ms:.2f}"
        print(f"{r.engine:<18} {r.target:>9} {r.achieved:>11.0f} {r.achieved / r.target:>6.3f} {r.dropped:>8} "
              f"{r.errors:>6} {p99:>7} {workers:>18} {master:>13}  {'yes' if r.held else 'NO'}")
    for engine in engines:
        held = [r.target for r in rows if r.engine == engine and r.held]
        print(f"{engine}: highest target held within 1%: {max(held) if held else 'none'}"
              f"{'/s' if held else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
