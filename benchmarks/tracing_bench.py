"""What tracing costs the proxy: off, sampled at 0.01 and at 1.0, side by side (and a tree before it).

    .venv/bin/python -m benchmarks.tracing_bench [--before /tmp/before] [--runs 5] [--seconds 3] [--rate 8000] [--copies 3]

    git archive <commit before tracing> proxy faults brownout | (mkdir -p /tmp/before && tar -x -C /tmp/before)

Variants, each ``brownout proxy --config`` pinned to the server CPU in front of one nginx
upstream: ``before`` (a source tree without tracing, when given), ``off`` (no ``tracing:``
block), ``0.01`` and ``1.0`` (``tracing: {sample_ratio}``) exporting over OTLP/HTTP (gzip) to
a sink in this process, on the load CPU, that answers every export with 200 and counts them
(keep-alive, as a collector). wrk drives each variant as fast as it goes; ``--rate N`` drives
every variant at the same rate instead (``benchmarks.compare``'s open-loop run): CPU per request
at equal load, as the recording goal is judged. Runs are interleaved, in an order shuffled every
round (``--seed``), so that no variant always runs first or right after another; medians, the
best run and the paired ratio are kept (on a busy machine interference only ever adds CPU time,
so the best run is a steadier estimate than the median; the paired ratio, each run against the
base's run of the same round and copy, is steadier still, since a slow spell lifts both runs of
a pair). CPU µs per request is the proxy's own CPU time (all its threads: the export thread's
encoding and gzip included; read in ns, ``harness.cpu_seconds``) over the requests counted,
then split into its main thread (the event loop) and the rest (the export thread).
After the runs the proxies' ``brownout_trace_spans_*`` counters say how many spans went out
and how many were dropped.

``--copies N`` starts N processes of every variant and pools their runs. A proxy process keeps
its address-space layout and hash seed for all its runs, and two processes of one tree differ
by a few % in CPU per request: with one process per variant, the comparison is one draw of that
difference against another, however many runs it has. The per-process medians are printed.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.compare import at_rate
from benchmarks.harness import (
    JSON_300,
    LOAD_CPU,
    SUT_CPU,
    VENV_BIN,
    Stack,
    WrkResult,
    free_port,
    main_thread_cpu_seconds,
    median,
    pin,
    wait_listening,
    wrk,
)

WORKLOADS = {"json c8": ("/json", 8), "json c64": ("/json", 64)}
MAIN = "import sys; sys.path.insert(0, '.'); from brownout.cli import main; sys.exit(main())"


class _Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a collector: no new connection per export
    exports = 0
    bytes = 0

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        _Sink.exports += 1
        _Sink.bytes += len(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def start_variant(stack: Stack, name: str, tree: str, upstream: int, tracing: str) -> tuple[int, int, int]:
    port, admin = free_port(), free_port()
    conf = stack.workdir / f"{name}.yaml"
    conf.write_text(f"admin: {{listen: '127.0.0.1:{admin}'}}\nroutes:\n"
                    f"  - {{name: bench, kind: http, listen: '127.0.0.1:{port}', upstream: 'http://127.0.0.1:{upstream}'}}\n"
                    + tracing)
    with open(stack.workdir / f"{name}.log", "wb") as log:  # the child keeps its own copy of the fd
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        proc = subprocess.Popen([*pin(SUT_CPU), str(VENV_BIN / "python"), "-c", MAIN, "proxy", "--config", str(conf),
                                 "--log-level", "warning"], cwd=os.path.abspath(tree), stdout=log,
                                stderr=subprocess.STDOUT, env=env)
    stack.procs.append(proc)
    wait_listening(admin)
    wait_listening(port)
    return port, proc.pid, admin


def loop_and_total(url: str, connections: int, seconds: int, pid: int, rate: int) -> tuple[WrkResult, float]:
    """One run (wrk, or open loop at ``rate``), and the CPU µs per request of the proxy's main thread alone."""
    before = main_thread_cpu_seconds(pid)
    result = at_rate(url, connections, seconds, pid, rate) if rate else wrk(url, connections, seconds, pid)
    return result, (main_thread_cpu_seconds(pid) - before) / max(1, result.requests) * 1e6


def span_counters(admin: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=10) as r:
        text = r.read().decode()
    return {line.split()[0].removeprefix("brownout_trace_spans_").removesuffix("_total"): float(line.split()[1])
            for line in text.splitlines() if line.startswith("brownout_trace_spans_")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", metavar="DIR", help="a source tree without tracing, to run side by side")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help=f"subset of {','.join(WORKLOADS)}")
    parser.add_argument("--rate", type=int, default=0,
                        help="drive every variant at this many requests/s (open loop) instead of wrk's fastest")
    parser.add_argument("--ratios", default="0.01,1.0", help="sampling ratios to run next to 'off' (default 0.01,1.0)")
    parser.add_argument("--seed", type=int, default=1, help="of the order the variants run in, shuffled every run")
    parser.add_argument("--copies", type=int, default=1,
                        help="processes per variant, their runs pooled (a process's layout is part of the noise)")
    args = parser.parse_args()
    ratios = [r for r in args.ratios.split(",") if r and 0 <= float(r) <= 1]
    workloads = {w: WORKLOADS[w] for w in args.workloads.split(",") if w in WORKLOADS}
    runs, seconds = max(1, min(args.runs, 20)), max(1, min(args.seconds, 30))
    copies = max(1, min(args.copies, 8))
    os.sched_setaffinity(0, {LOAD_CPU})
    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{sink.server_address[1]}"
    variants = {"off": ""} | {ratio: f"tracing: {{otlp_endpoint: '{endpoint}', sample_ratio: {ratio}}}\n"
                              for ratio in ratios}
    with tempfile.TemporaryDirectory(prefix="brownout-tracing-bench-") as tmp:
        stack = Stack(Path(tmp))
        try:
            up = free_port()
            stack.nginx("upstream", LOAD_CPU, up, f"location = /json {{ default_type application/json; return 200 '{JSON_300}'; }}")
            trees = ({"before": (args.before, "")} if args.before else {}) | {
                name: (".", block) for name, block in variants.items()}
            # Copies interleaved (off#0, 0.01#0, ..., off#1, ...): a slow spell hits every variant alike.
            targets: dict[tuple[str, int], tuple[int, int, int]] = {
                (name, copy): start_variant(stack, f"tracing-{name}-{copy}", tree, up, block)
                for copy in range(copies) for name, (tree, block) in trees.items()}
            for port, _, _ in targets.values():
                wrk(f"http://127.0.0.1:{port}/json", 64, 1)
            by_copy: dict[tuple[str, int, str], list[tuple[WrkResult, float]]] = {}
            shuffle = random.Random(args.seed).shuffle
            for _ in range(runs):
                for w, (path, conns) in workloads.items():
                    order = list(targets.items())
                    shuffle(order)  # no variant always runs first, or always after another
                    for (name, copy), (port, pid, _) in order:
                        result = loop_and_total(f"http://127.0.0.1:{port}{path}", conns, seconds, pid, args.rate)
                        by_copy.setdefault((name, copy, w), []).append(result)
            # Run-major, then copy: the i-th entries of two variants are one run of one copy each.
            results = {(name, w): [by_copy[(name, c, w)][r] for r in range(runs) for c in range(copies)]
                       for name in trees for w in workloads}
            counters = {name: span_counters(admin) for (name, copy), (_, _, admin) in targets.items()
                        if name in ratios and copy == 0}
        finally:
            stack.close()
            sink.shutdown()
    base = "before" if args.before else "off"
    print(f"| tracing | workload | req/s | p50 ms | p99 ms | CPU µs/req median | vs {base} | CPU µs/req best | vs {base} "
          f"| vs {base}, paired | of it, event loop | export thread |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    pairs: dict[tuple[str, str], list[float]] = {}
    for w in workloads:
        ref = [r for r, _ in results[(base, w)]]
        ref_cpu, ref_best = median([r.cpu_us for r in ref]), min(r.cpu_us for r in ref)
        for name in trees:
            rs, loop = [r for r, _ in results[(name, w)]], median([cpu for _, cpu in results[(name, w)]])
            export = median([r.cpu_us - cpu for r, cpu in results[(name, w)]])
            cpu, best, rps = median([r.cpu_us for r in rs]), min(r.cpu_us for r in rs), median([r.rps for r in rs])
            # Each run against the base's run of the same round and copy: a slow spell of the
            # machine lifts both, so these ratios are the steadiest estimate.
            ratios = pairs[(name, w)] = [r.cpu_us / b.cpu_us - 1 for r, b in zip(rs, ref)]
            print(f"| {name} | {w} | {rps:,.0f} | {median([r.p50_ms for r in rs]):.3f} | {median([r.p99_ms for r in rs]):.2f} "
                  f"| {cpu:.1f} | {cpu / ref_cpu - 1:+.1%} | {best:.1f} | {best / ref_best - 1:+.1%} | {median(ratios):+.1%} "
                  f"| {loop:.1f} | {export:.2f} |")
    print(f"\nPaired, the mean of every run's ratio to {base}'s run of the same round and copy, with its standard error:")
    for (name, w), ratios in pairs.items():
        if name != base:
            error = statistics.stdev(ratios) / len(ratios) ** 0.5 if len(ratios) > 1 else float("nan")
            print(f"  {name} {w}: {statistics.mean(ratios):+.1%} ± {error:.1%} ({len(ratios)} pairs)")
    spread = {name: [r.cpu_us for w in workloads for r, _ in results[(name, w)]] for name in trees}
    print("\nCPU µs/req of every run (the spread is the noise):")
    for name, values in spread.items():
        print(f"  {name}: " + " ".join(f"{v:.1f}" for v in values))
    if copies > 1:
        print("\nCPU µs/req, median of each process (the spread between processes of one tree is noise too):")
        for w in workloads:
            for name in trees:
                print(f"  {name} {w}: " + " ".join(f"{median([r.cpu_us for r, _ in by_copy[(name, c, w)]]):.1f}"
                                                    for c in range(copies)))
    print(f"\nSink: {_Sink.exports} exports, {_Sink.bytes / 2**20:.1f} MiB (gzip). Spans by proxy: "
          + "; ".join(f"{name}: " + ", ".join(f"{k} {v:,.0f}" for k, v in c.items()) for name, c in counters.items())
          + (" (the first process of each)" if copies > 1 else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
