"""TCP relay, side by side: direct vs a Brownout tcp route (vs toxiproxy-server when on PATH).

Echo round trip: one connection, 64-byte ping-pong, per-trip latency (p50, p99), and the relay's
own CPU time per round trip (from /proc): on this two-CPU layout every trip crosses CPUs four
times, so the latency mostly measures wake-ups; the CPU time is the relay's work.
Bulk: one connection reads N MiB from a loopback source through the relay (MiB/s).
The relay is pinned to the server CPU; the upstreams and these clients to the load CPU.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time
import urllib.request
from dataclasses import dataclass

from benchmarks.harness import (
    LOAD_CPU,
    MIB,
    NGINX,
    STREAM_MODULE,
    SUT_CPU,
    Stack,
    cpu_seconds,
    free_port,
    median,
)


@dataclass(frozen=True)
class TcpRow:
    target: str
    rtt_p50_us: float
    rtt_p99_us: float
    mib_s: float
    runs: int
    cpu_us_per_trip: float | None


def round_trips(port: int, count: int, size: int = 64) -> list[float]:
    """``count`` ping-pongs of ``size`` bytes on one connection; each trip in µs."""
    msg = b"x" * size
    trips = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(count + 200):  # the first 200 warm the path and are not counted
            t = time.perf_counter_ns()
            s.sendall(msg)
            got = 0
            while got < size:
                chunk = s.recv(size - got)
                if not chunk:
                    raise RuntimeError(f"echo on {port} closed early")
                got += len(chunk)
            if i >= 200:
                trips.append((time.perf_counter_ns() - t) / 1000)
    return trips


def bulk(port: int, nbytes: int) -> float:
    """Read ``nbytes`` from the source through ``port``; MiB/s."""
    buf = bytearray(MIB)
    got = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        t = time.perf_counter()
        s.sendall(f"{nbytes}\n".encode())
        while n := s.recv_into(buf):
            got += n
        elapsed = time.perf_counter() - t
    if got != nbytes:
        raise RuntimeError(f"bulk through {port}: got {got} of {nbytes} bytes")
    return got / MIB / elapsed


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def start_targets(stack: Stack) -> dict[str, tuple[int, int, int | None]]:
    """target name → (echo port, source port, relay pid or None)."""
    echo, src = free_port(), free_port()
    stack.spawn([sys.executable, "-m", "benchmarks.tcp_upstream", str(echo), str(src)], LOAD_CPU, echo, "tcp-upstream")
    targets: dict[str, tuple[int, int, int | None]] = {"direct": (echo, src, None)}
    b_echo, b_src = free_port(), free_port()
    stack.brownout("brownout-tcp", SUT_CPU, [
        {"name": "echo", "kind": "tcp", "listen": f"127.0.0.1:{b_echo}", "upstream": f"127.0.0.1:{echo}"},
        {"name": "bulk", "kind": "tcp", "listen": f"127.0.0.1:{b_src}", "upstream": f"127.0.0.1:{src}"},
    ])
    targets["brownout tcp route"] = (b_echo, b_src, stack.procs[-1].pid)
    if os.path.exists(STREAM_MODULE):
        targets["nginx stream (C relay)"] = _nginx_stream(stack, echo, src)
    exe = shutil.which("toxiproxy-server")
    if exe:
        api = free_port()
        toxiproxy = stack.spawn([exe, "-host", "127.0.0.1", "-port", str(api)], SUT_CPU, api, "toxiproxy")
        ports = []
        for name, upstream in (("echo", echo), ("bulk", src)):
            listen = free_port()
            body = json.dumps({"name": name, "listen": f"127.0.0.1:{listen}", "upstream": f"127.0.0.1:{upstream}"})
            urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{api}/proxies", data=body.encode(),
                                                          headers={"Content-Type": "application/json"}), timeout=10)
            ports.append(listen)
        targets["toxiproxy-server"] = (ports[0], ports[1], toxiproxy.pid)
    return targets


def _nginx_stream(stack: Stack, echo: int, src: int) -> tuple[int, int, int]:
    """nginx's stream module as a reference byte relay written in C (one worker)."""
    d = stack.workdir / "nginx-stream"
    d.mkdir()
    ports = free_port(), free_port()
    servers = "".join(f"server {{ listen 127.0.0.1:{p}; proxy_pass 127.0.0.1:{u}; }}\n" for p, u in zip(ports, (echo, src)))
    (d / "nginx.conf").write_text(
        f"load_module {STREAM_MODULE};\nworker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\n"
        f"error_log {d}/error.log warn;\nevents {{ worker_connections 1024; }}\nstream {{\n{servers}}}\n")
    nginx = stack.spawn([NGINX, "-c", str(d / "nginx.conf"), "-p", str(d)], SUT_CPU, ports[0], "nginx-stream")
    return ports[0], ports[1], nginx.pid


def run(stack: Stack, runs: int, quick: bool) -> list[TcpRow]:
    targets = start_targets(stack)
    trips, nbytes = (2000, 128 * MIB) if quick else (5000, 512 * MIB)
    rtts: dict[str, list[list[float]]] = {t: [] for t in targets}
    rates: dict[str, list[float]] = {t: [] for t in targets}
    cpu: dict[str, list[float]] = {t: [] for t in targets}
    for _ in range(runs):
        for name, (echo, src, pid) in targets.items():
            before = cpu_seconds(pid) if pid else 0.0
            rtts[name].append(round_trips(echo, trips))
            if pid:
                cpu[name].append((cpu_seconds(pid) - before) / (trips + 200) * 1e6)
            rates[name].append(bulk(src, nbytes))
    return [TcpRow(name, median([_pct(r, 0.5) for r in rtts[name]]), median([_pct(r, 0.99) for r in rtts[name]]),
                   median(rates[name]), runs, median(cpu[name]) if cpu[name] else None) for name in targets]


def report(rows: list[TcpRow]) -> list[str]:
    direct = rows[0]
    out = ["### TCP relay (64-byte echo round trip on one connection; bulk read through the relay; medians)", "",
           "| target | RTT p50 µs | RTT p99 µs | added p50 µs | relay CPU µs per trip | bulk MiB/s | × direct |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        work = f"{r.cpu_us_per_trip:.1f}" if r.cpu_us_per_trip is not None else "—"
        out.append(f"| {r.target} | {r.rtt_p50_us:.0f} | {r.rtt_p99_us:.0f} | {r.rtt_p50_us - direct.rtt_p50_us:+.0f} | "
                   f"{work} | {r.mib_s:,.0f} | {r.mib_s / direct.mib_s:.2f} |")
    if not any(r.target == "toxiproxy-server" for r in rows):
        out += ["", ("No `toxiproxy-server` on PATH: compare with Toxiproxy's published figures: "
                     "< 100 µs added latency with no toxics, ~1000 MB/s with GOMAXPROCS=4 on a MacBook Pro. "
                     "The nginx stream row is a C relay measured the same way on this machine.")]
    return out
