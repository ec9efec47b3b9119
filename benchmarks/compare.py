"""Before/after: several Brownout source trees side by side, with nginx, in one invocation.

    git archive HEAD proxy faults brownout | (mkdir -p /tmp/before && tar -x -C /tmp/before)
    .venv/bin/python -m benchmarks.compare before=/tmp/before after=. after+10f=.:faults

Each variant is ``NAME=DIR`` (a tree holding proxy/, faults/, brownout/), with ``:faults`` to add
10 non-matching faults, ``:rate_limit`` for a rate_limit that admits every request, ``:latency0``
for a latency of 0 ms on every request (what any selected fault costs), ``:observer`` for an
observer on the route that follows no exchange, ``:record`` to record every exchange (its writer
moved to the load CPU, as the recording goal counts the proxy process alone); several joined
by ``+``. Every variant runs as
``brownout proxy`` pinned to the server CPU; runs are interleaved and medians kept. The column
to trust on a busy machine is CPU µs per request.

wrk drives each variant as fast as it goes; a variant that answers slower then also runs at a
lower rate, and a proxy at a lower rate spends more CPU per request (fewer requests per loop
turn and per system call). ``--rate N`` drives every variant at the same rate instead, with
Brownout's own open-loop generator (json workloads only): CPU per request at equal load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import (
    JSON_300,
    LOAD_CPU,
    SUT_CPU,
    VENV_BIN,
    Stack,
    WrkResult,
    add_admitting_rate_limit,
    add_idle_faults,
    add_zero_latency,
    children,
    cpu_seconds,
    free_port,
    median,
    pin,
    wait_listening,
    wrk,
)
from brownout.load.generator import run_load
from brownout.load.shapes import ConstantShape

WORKLOADS = {"json c8": ("/json", 8), "json c64": ("/json", 64), "1m c8": ("/1m", 8)}
MAIN = "import sys; sys.path.insert(0, '.'); from brownout.cli import main; sys.exit(main())"
# ``:observer``: every http route gets an observer that follows no exchange (tracing
# registers an observer that samples rarely): what every request pays for the observer contract.
OBSERVED_MAIN = """import sys; sys.path.insert(0, '.')
from proxy.http_route import HttpRoute
from proxy.observers import ExchangeObserver
start = HttpRoute.start
async def observed(self):
    self.observers.append(ExchangeObserver())
    await start(self)
HttpRoute.start = observed
from brownout.cli import main; sys.exit(main())"""


FLAGS = ("faults", "rate_limit", "latency0", "observer", "record")


def start_variant(stack: Stack, name: str, tree: str, upstream: int, flag: str, log_level: str) -> tuple[int, int]:
    """``brownout proxy`` from ``tree``; ``flag``: what to add, several joined by ``+`` (``latency0+observer``)."""
    flags = [f for f in flag.split("+") if f]
    unknown = [f for f in flags if f not in FLAGS]
    if unknown:
        raise SystemExit(f"unknown variant flag {unknown[0]!r}: {', '.join(FLAGS)}")
    port, admin = free_port(), free_port()
    conf = stack.workdir / f"{name}.yaml"
    record = (f"record: {{dir: '{stack.workdir / name}-recordings', max_bytes: 256MiB}}\n", ", record: true") \
        if "record" in flags else ("", "")
    conf.write_text(f"admin: {{listen: '127.0.0.1:{admin}'}}\nfault_ttl: {{default: 1h, max: 1h}}\n{record[0]}routes:\n"
                    f"  - {{name: bench, kind: http, listen: '127.0.0.1:{port}', upstream: 'http://127.0.0.1:{upstream}'"
                    f"{record[1]}}}\n")
    with open(stack.workdir / f"{name}.log", "wb") as log:  # the child keeps its own copy of the fd
        proc = subprocess.Popen([*pin(SUT_CPU), str(VENV_BIN / "python"), "-c",
                                 OBSERVED_MAIN if "observer" in flags else MAIN, "proxy", "--config", str(conf),
                                 "--log-level", log_level], cwd=os.path.abspath(tree), stdout=log, stderr=subprocess.STDOUT)
    stack.procs.append(proc)
    wait_listening(admin)
    wait_listening(port)
    for writer in children(proc.pid):  # a recording writer works off the event loop's core, as deployed
        os.sched_setaffinity(writer, {LOAD_CPU})
    for flag in flags:
        if flag == "faults":
            add_idle_faults(admin, "bench", 10)
        elif flag == "rate_limit":
            add_admitting_rate_limit(admin, "bench")
        elif flag == "latency0":
            add_zero_latency(admin, "bench")
    return port, proc.pid


def at_rate(url: str, connections: int, seconds: float, pid: int, rate: int) -> WrkResult:
    """One open-loop run at ``rate`` requests/s, in this process (on the load CPU), as a ``WrkResult``."""
    before, own_before = cpu_seconds(pid), cpu_seconds(pid, children=False)
    summary = asyncio.run(run_load(url, ConstantShape(rate, seconds), connections=connections, request_timeout=5))
    used, own = cpu_seconds(pid) - before, cpu_seconds(pid, children=False) - own_before
    done = max(1, summary.total.completed)
    return WrkResult(done, summary.achieved_rate, float("nan"), summary.total.p50_ms, summary.total.p99_ms,
                     summary.total.errors + summary.dropped, used / done * 1e6, own / done * 1e6)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variants", nargs="+", metavar="NAME=DIR[:FLAG[+FLAG]]")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--log-level", default="warning", choices=["info", "warning"],
                        help="the proxies' log level: info logs every injection (fault_injected), as `brownout proxy` does by default")
    parser.add_argument("--rate", type=int, default=0,
                        help="drive every variant at this many requests/s (open loop) instead of wrk's fastest")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help=f"subset of {','.join(WORKLOADS)}")
    args = parser.parse_args()
    workloads = [w for w in args.workloads.split(",") if w in WORKLOADS]
    os.sched_setaffinity(0, {LOAD_CPU})
    with tempfile.TemporaryDirectory(prefix="brownout-compare-") as tmp:
        stack = Stack(Path(tmp))
        try:
            up = free_port()
            (stack.workdir / "www").mkdir()
            (stack.workdir / "www" / "1m").write_bytes(bytes(range(256)) * 4096)
            stack.nginx("upstream", LOAD_CPU, up, f"""
                location = /json {{ default_type application/json; return 200 '{JSON_300}'; }}
                location / {{ root {stack.workdir / 'www'}; }}""")
            targets = {"nginx": (free_port(), 0)}
            stack.nginx("nginx", SUT_CPU, targets["nginx"][0], """
                location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection "";
                             proxy_buffers 16 64k; proxy_buffer_size 64k; proxy_max_temp_file_size 0; }""",
                        http_extra=f"upstream up {{ server 127.0.0.1:{up}; keepalive 256; }}")
            targets["nginx"] = (targets["nginx"][0], stack.procs[-1].pid)
            for spec in args.variants:
                name, _, rest = spec.partition("=")
                tree, _, flag = rest.partition(":")
                targets[name] = start_variant(stack, name, tree, up, flag, args.log_level)
            for port, _ in targets.values():
                wrk(f"http://127.0.0.1:{port}/json", 64, 1)
            results: dict[tuple[str, str], list] = {}
            for _ in range(args.runs):
                for w in workloads:
                    path, conns = WORKLOADS[w]
                    for name, (port, pid) in targets.items():
                        url = f"http://127.0.0.1:{port}{path}"
                        results.setdefault((name, w), []).append(
                            at_rate(url, conns, args.seconds, pid, args.rate) if args.rate and pid
                            else wrk(url, conns, args.seconds, pid))
        finally:
            stack.close()
    print(f"{'workload':9} {'target':12} {'req/s':>8} {'MiB/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'CPU µs/req':>10} {'own µs/req':>10} {'× nginx':>8}")
    for w in workloads:
        base = median([r.rps for r in results[("nginx", w)]])
        for name in targets:
            rs = results[(name, w)]
            rps = median([r.rps for r in rs])
            print(f"{w:9} {name:12} {rps:8.0f} {median([r.bytes_per_s / 2**20 for r in rs]):7.0f} "
                  f"{median([r.p50_ms for r in rs]):7.3f} {median([r.p99_ms for r in rs]):7.2f} "
                  f"{median([r.cpu_us for r in rs]):10.1f} {median([r.own_cpu_us for r in rs]):10.1f} {rps / base:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
