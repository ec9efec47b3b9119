"""How fast can ``brownout load`` go open-loop on one core?

Starts nginx (``/usr/sbin/nginx``, one worker, a small JSON from ``return 200``) on
127.0.0.1 — or a tiny aiohttp server when nginx is absent — pins the generator to one CPU
(and nginx to another when there are two), and runs a constant open-loop rate at each
target for a few seconds. A target is *held* when the achieved rate is within 1% of it and
nothing was dropped. Bounded: every step is a few seconds; loopback only.

    .venv/bin/python benchmarks/load_generator.py [--rates 10000,20000,30000,40000] [--seconds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import free_port, wait_listening
from brownout.load.generator import run_load
from brownout.load.shapes import ConstantShape

NGINX = "/usr/sbin/nginx"
TINY_SERVER = """
import sys
from aiohttp import web
async def ok(request):
    return web.Response(body=b'{"ok":true}', content_type="application/json")
app = web.Application()
app.router.add_get("/", ok)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


def start_server(port: int, workdir: Path, server_cpu: int | None) -> tuple[subprocess.Popen[bytes], str]:
    pin = ["taskset", "-c", str(server_cpu)] if server_cpu is not None and shutil.which("taskset") else []
    if os.path.exists(NGINX):
        conf = workdir / "nginx.conf"
        conf.write_text(textwrap.dedent(f"""
            worker_processes 1;
            daemon off;
            pid {workdir}/nginx.pid;
            error_log {workdir}/error.log warn;
            events {{ worker_connections 4096; }}
            http {{
                access_log off;
                keepalive_requests 10000000;
                keepalive_timeout 120s;
                client_body_temp_path {workdir};
                proxy_temp_path {workdir};
                fastcgi_temp_path {workdir};
                uwsgi_temp_path {workdir};
                scgi_temp_path {workdir};
                server {{
                    listen 127.0.0.1:{port};
                    location / {{ default_type application/json; return 200 '{{"ok":true}}'; }}
                }}
            }}
        """))
        proc = subprocess.Popen([*pin, NGINX, "-c", str(conf), "-p", str(workdir)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        kind = "nginx"
    else:
        script = workdir / "tiny.py"
        script.write_text(TINY_SERVER)
        proc = subprocess.Popen([*pin, sys.executable, str(script), str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        kind = "aiohttp (nginx not found)"
    wait_listening(port)
    return proc, kind


async def measure(url: str, rates: list[int], seconds: float, connections: int) -> list[dict[str, float]]:
    rows = []
    await run_load(url, ConstantShape(1000, 0.5), connections=connections)  # warm up sockets and caches
    for rate in rates:
        t_cpu = time.process_time()
        s = await run_load(url, ConstantShape(rate, seconds), connections=connections, request_timeout=5)
        cpu = time.process_time() - t_cpu
        rows.append({
            "target": rate, "achieved": s.achieved_rate, "ratio": s.achieved_rate / rate,
            "sent": s.sent, "completed": s.total.completed, "dropped": s.dropped, "errors": s.total.errors, "p50_ms": s.total.p50_ms,
            "p99_ms": s.total.p99_ms, "lag_ms": s.client_lag_max_s * 1000,
            "cpu_us_per_req": cpu / max(1, s.sent) * 1e6,
        })
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="10000,20000,30000,40000", help="comma-separated targets (req/s)")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per target (default 3)")
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",") if r]
    cpus = sorted(os.sched_getaffinity(0))
    client_cpu = cpus[0]
    server_cpu = cpus[1] if len(cpus) > 1 else None
    os.sched_setaffinity(0, {client_cpu})  # the generator gets exactly one core
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="brownout-bench-") as tmp:
        proc, kind = start_server(port, Path(tmp), server_cpu)
        try:
            try:
                import uvloop

                rows = uvloop.run(measure(f"http://127.0.0.1:{port}/", rates, args.seconds, args.connections))
                loop_kind = "uvloop"
            except ImportError:
                rows = asyncio.run(measure(f"http://127.0.0.1:{port}/", rates, args.seconds, args.connections))
                loop_kind = "asyncio"
        finally:
            proc.terminate()
            proc.wait(10)
    print(f"brownout load generator, open loop, one core (cpu {client_cpu}), {loop_kind}; server: {kind}"
          f"{f' on cpu {server_cpu}' if server_cpu is not None else ' (same cpu)'}; {args.seconds:g}s per target")
    print(f"{'target/s':>9} {'achieved/s':>11} {'ratio':>7} {'dropped':>8} {'errors':>7} {'p50 ms':>7} "
          f"{'p99 ms':>7} {'lag ms':>7} {'cpu µs/req':>10} {'answered':>9}  held")
    best = 0.0
    for r in rows:
        held = (abs(r["ratio"] - 1) <= 0.01 and r["dropped"] == 0 and r["errors"] == 0
                and r["completed"] == r["sent"])
        best = max(best, r["target"]) if held else best
        print(f"{r['target']:>9.0f} {r['achieved']:>11.0f} {r['ratio']:>7.3f} {r['dropped']:>8.0f} "
              f"{r['errors']:>7.0f} {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} {r['lag_ms']:>7.1f} "
              f"{r['cpu_us_per_req']:>10.1f} {r['completed'] / max(1, r['sent']):>9.1%}  {'yes' if held else 'NO'}")
    print(f"highest target held within 1%: {best:.0f}/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
