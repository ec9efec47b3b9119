"""Proxy memory: RSS at 1,000 open connections, and its growth over a bounded soak.

RSS is VmRSS from /proc/PID/status. 1,000 idle keep-alive connections are held open after one
request each; then wrk keeps 1,000 connections busy for a few seconds; then the soak sends at
least ``soak_requests`` through the proxy with wrk in fixed segments (RSS sampled after each),
stopping at the request target or the time cap, whichever comes first.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from benchmarks.harness import (
    JSON_300,
    LOAD_CPU,
    SUT_CPU,
    Stack,
    free_port,
    rss_kb,
    wrk,
)


@dataclass
class MemoryResult:
    start_kb: int
    idle_1000_kb: int
    busy_1000_peak_kb: int
    soak: list[tuple[int, float, int]] = field(default_factory=list)  # (requests so far, seconds, RSS KiB)
    soak_target: int = 0
    soak_errors: int = 0


def hold_idle_connections(port: int, count: int) -> list[socket.socket]:
    """Open ``count`` connections, one GET each, responses read, then leave them idle."""
    socks = []
    request = f"GET /json HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(request)
        socks.append(s)
    for s in socks:
        data = b""
        while len(JSON_300.encode()) > len(data.partition(b"\r\n\r\n")[2]):
            chunk = s.recv(4096)
            if not chunk:
                raise RuntimeError("proxy closed an idle-test connection")
            data += chunk
    return socks


def peak_rss_during(pid: int, action: Callable[[], object]) -> int:
    peak = [rss_kb(pid)]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            peak[0] = max(peak[0], rss_kb(pid))

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        action()
    finally:
        done.set()
        t.join()
    return max(peak[0], rss_kb(pid))


def run(stack: Stack, quick: bool) -> MemoryResult:
    up, port = free_port(), free_port()
    stack.nginx("upstream", LOAD_CPU, up,
                f"location = /json {{ default_type application/json; return 200 '{JSON_300}'; }}")
    stack.brownout("brownout-mem", SUT_CPU, [{"name": "bench", "kind": "http", "listen": f"127.0.0.1:{port}",
                                               "upstream": f"http://127.0.0.1:{up}"}])
    pid = stack.procs[-1].pid
    url = f"http://127.0.0.1:{port}/json"
    wrk(url, 8, 1)  # warm: imports, pools, caches
    result = MemoryResult(start_kb=rss_kb(pid), idle_1000_kb=0, busy_1000_peak_kb=0)
    socks = hold_idle_connections(port, 1000)
    time.sleep(0.5)
    result.idle_1000_kb = rss_kb(pid)
    for s in socks:
        s.close()
    result.busy_1000_peak_kb = peak_rss_during(pid, lambda: wrk(url, 1000, 3 if quick else 5))
    target, cap, segment = (100_000, 60.0, 5) if quick else (1_000_000, 420.0, 10)
    result.soak_target = target
    done, started = 0, time.monotonic()
    result.soak.append((0, 0.0, rss_kb(pid)))
    while done < target and time.monotonic() - started < cap:
        r = wrk(url, 64, segment)
        done += r.requests
        result.soak_errors += r.errors
        result.soak.append((done, time.monotonic() - started, rss_kb(pid)))
    return result


def report(r: MemoryResult) -> list[str]:
    mb = 1024
    first, last = r.soak[1] if len(r.soak) > 1 else r.soak[0], r.soak[-1]
    reached = "reached" if last[0] >= r.soak_target else f"stopped by the time cap at {last[0]:,}"
    samples = ", ".join(f"{n / 1000:.0f}k: {kb / mb:.1f}" for n, _, kb in r.soak)
    return [
        "### Memory (Brownout, one http route, VmRSS)", "",
        "| measure | RSS MB |", "| --- | ---: |",
        f"| after start and a 1 s warm-up | {r.start_kb / mb:.1f} |",
        f"| 1,000 idle keep-alive connections open | {r.idle_1000_kb / mb:.1f} |",
        f"| 1,000 busy connections (wrk -c1000), peak | {r.busy_1000_peak_kb / mb:.1f} |",
        (f"| soak: after the first segment → after {last[0]:,} requests | {first[2] / mb:.1f} → {last[2] / mb:.1f} "
         f"({(last[2] - first[2]) / mb:+.1f}) |"),
        "", (f"Soak: target {r.soak_target:,} requests ({reached}) in {last[1]:.0f} s at 64 connections, "
             f"{r.soak_errors} errors. RSS (MB) by requests served: {samples}."),
    ]
