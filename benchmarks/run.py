"""Brownout's benchmarks, side by side in one invocation.

    .venv/bin/python -m benchmarks.run            # full: about 10 minutes
    .venv/bin/python -m benchmarks.run --quick    # about 2 minutes
    .venv/bin/python -m benchmarks.run --only http,tcp

Installs nginx and wrk from Debian (apt-get, as root) and mitmproxy (pip, into a private
venv) when missing. Everything listens on 127.0.0.1; the server under test is pinned to one
CPU, wrk and the upstreams to the other. Prints a Markdown report (machine line, command,
tables) and writes it to ``benchmarks/results/latest.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness, http_bench, loadgen_bench, memory_bench, tcp_bench

SECTIONS = ("http", "tcp", "loadgen", "distributed", "memory")


def machine_line() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    nginx = subprocess.run([harness.NGINX, "-v"], capture_output=True, text=True, check=False).stderr.strip().split("/")[-1]
    return (f"{cpu}, {os.cpu_count()} CPUs (server under test on CPU {harness.SUT_CPU}, load and upstreams on "
            f"CPU {harness.LOAD_CPU}), {mem:.0f} GiB RAM, Linux {platform.release()}, Python "
            f"{platform.python_version()}, nginx {nginx}")


def http_section(rows: list[http_bench.HttpRow], exact: dict[str, bool]) -> list[str]:
    by = {(r.target, r.workload): r for r in rows}
    targets = list(dict.fromkeys(r.target for r in rows))
    nginx = {w: by[("nginx", w)] for w in ("json c8", "json c64", "1 MiB c8")}
    direct = {w: by[("direct", w)] for w in ("json c8", "json c1")}
    out = ["### HTTP pass-through (wrk, 1 thread; medians)", "",
           ("| target | json c8 req/s | p50 ms | p99 ms | json c64 req/s | p50 ms | p99 ms | 1 MiB c8 MiB/s "
            "| × nginx: c8 / c64 / 1 MiB | byte-exact | errors |"),
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: |"]
    for t in targets:
        a, b, c = by[(t, "json c8")], by[(t, "json c64")], by[(t, "1 MiB c8")]
        ratio = f"{a.rps / nginx['json c8'].rps:.2f} / {b.rps / nginx['json c64'].rps:.2f} / {c.mib_s / nginx['1 MiB c8'].mib_s:.2f}"
        errors = sum(by[(t, w.name)].errors for w in http_bench.WORKLOADS)
        out.append(f"| {t} | {a.rps:,.0f} | {a.p50_ms:.3f} | {a.p99_ms:.2f} | {b.rps:,.0f} | {b.p50_ms:.2f} | "
                   f"{b.p99_ms:.2f} | {c.mib_s:,.0f} | {ratio} | {'yes' if exact.get(t) else 'NO'} | {errors} |")
    out += ["", "CPU time of the server under test per request (from /proc, robust to a busy machine) and added latency:", "",
            ("| target | CPU µs/req json c8 | json c64 | per 1 MiB | × nginx by CPU (c64) | +p50 over direct, c8 ms "
             "| +p50 over direct, c1 ms |"),
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for t in targets[1:]:
        a, b, c, d = (by[(t, w.name)] for w in http_bench.WORKLOADS)
        out.append(f"| {t} | {a.cpu_us:.0f} | {b.cpu_us:.0f} | {c.cpu_us:,.0f} | {nginx['json c64'].cpu_us / b.cpu_us:.2f} | "
                   f"{a.p50_ms - direct['json c8'].p50_ms:+.3f} | {d.p50_ms - direct['json c1'].p50_ms:+.3f} |")
    if ("brownout+10 faults", "json c8") in by:
        cost = ", ".join(
            f"{w.name} {by[('brownout+10 faults', w.name)].cpu_us / by[('brownout', w.name)].cpu_us - 1:+.1%} CPU/req "
            f"({by[('brownout+10 faults', w.name)].rps / by[('brownout', w.name)].rps - 1:+.0%} req/s)"
            for w in http_bench.WORKLOADS[:3])
        out += ["", f"Cost of 10 active non-matching faults, vs Brownout with none: {cost}."]
    if ("brownout+rate_limit", "json c8") in by:
        cost = ", ".join(
            f"{w.name} {by[('brownout+rate_limit', w.name)].cpu_us / by[('brownout', w.name)].cpu_us:.2f}× CPU/req "
            f"({by[('brownout+rate_limit', w.name)].cpu_us:.0f} vs {by[('brownout', w.name)].cpu_us:.0f} µs)"
            for w in http_bench.WORKLOADS[:2])
        out += ["", f"Cost of a rate_limit that admits every request (a token bucket, its x-ratelimit-* headers), "
                    f"vs Brownout with no fault: {cost}."]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter runs and a 100k-request soak (~2 min)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--runs", type=int, help="runs per comparison (default 3)")
    parser.add_argument("--output", default=str(Path(__file__).parent / "results" / "latest.md"))
    args = parser.parse_args()
    only = [s for s in args.only.split(",") if s]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; known: {', '.join(SECTIONS)}")
    harness.ensure_debian_tools()
    os.sched_setaffinity(0, {harness.LOAD_CPU})  # our own clients share the load CPU with wrk
    runs = args.runs or 3
    seconds = 2 if args.quick else 4
    command = "python -m benchmarks.run" + (" --quick" if args.quick else "") + \
        (f" --only {args.only}" if args.only != ",".join(SECTIONS) else "") + (f" --runs {args.runs}" if args.runs else "")
    report = [f"Machine: {machine_line()}", f"Command: `{command}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})", ""]
    started = time.monotonic()
    for section in only:
        with tempfile.TemporaryDirectory(prefix=f"brownout-bench-{section}-") as tmp:
            stack = harness.Stack(Path(tmp))
            try:
                print(f"== {section} ...", flush=True)
                if section == "http":
                    report += http_section(*http_bench.run(stack, runs, seconds))
                elif section == "tcp":
                    report += tcp_bench.report(tcp_bench.run(stack, runs, quick=args.quick))
                elif section == "loadgen":
                    report += loadgen_bench.run(quick=args.quick)
                elif section == "distributed":
                    report += loadgen_bench.run_distributed(quick=args.quick)
                elif section == "memory":
                    report += memory_bench.report(memory_bench.run(stack, quick=args.quick))
            finally:
                stack.close()
        report.append("")
    report.append(f"Total time: {time.monotonic() - started:.0f} s.")
    text = "\n".join(report) + "\n"
    print(text)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
